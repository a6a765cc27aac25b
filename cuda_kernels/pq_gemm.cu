// SpAtten progressive-quantization Q.K^T, bit-exact with sw_reference/pq_gemm.py.
// One block per query row (b, i). Pass 1: MSB scores (dp4a) -> out, row max. Pass 2: integer
// LUT softmax denominator Z. If 2^31 < thr_q * Z: pass 3 re-reads only the LSB plane and adds
// q . k_lsb. D % 16 == 0, D <= 256.
#include "common.cuh"

#define PQ_LUT 512

template <int D>
__device__ __forceinline__ void pq_row(const signed char* __restrict__ q,
                                       const signed char* __restrict__ kmsb,
                                       const signed char* __restrict__ klsb,
                                       const int* __restrict__ lut, int* __restrict__ out,
                                       unsigned char* __restrict__ req, int M, int N, int lsb,
                                       long long mult, long long thr_q) {
  constexpr int G = D / 16;  // lanes per key (16 bytes each)
  constexpr int NT = 256, KPB = NT / G;
  __shared__ int s_lut[PQ_LUT];
  __shared__ long long s_red[NT / 32];
  __shared__ int s_redi[NT / 32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int row = blockIdx.x, b = row / M;
  const int gl = tid % G;
  for (int i = tid; i < PQ_LUT; i += NT) s_lut[i] = lut[i];
  const int4 qv = *reinterpret_cast<const int4*>(q + (size_t)row * D + gl * 16);
  const signed char* km = kmsb + (size_t)b * N * D + gl * 16;
  const signed char* kl = klsb + (size_t)b * N * D + gl * 16;
  int* o = out + (size_t)row * N;
  int mx = CK_INT_MIN;
  // warp-uniform trip counts (the G-lane shuffles below need the whole warp)
  const int wfirst = (tid & ~31) / G;
  for (int jw = wfirst; jw < N; jw += KPB) {
    const int j = jw + (lane / G);
    int4 kv = make_int4(0, 0, 0, 0);
    if (j < N) kv = __ldg(reinterpret_cast<const int4*>(km + (size_t)j * D));
    int acc = __dp4a(qv.x, kv.x, 0);
    acc = __dp4a(qv.y, kv.y, acc);
    acc = __dp4a(qv.z, kv.z, acc);
    acc = __dp4a(qv.w, kv.w, acc);
#pragma unroll
    for (int off = 1; off < G; off <<= 1) acc += __shfl_xor_sync(0xffffffff, acc, off);
    int s = acc << lsb;
    if (j < N) {
      if (gl == 0) o[j] = s;
      mx = max(mx, s);
    }
  }
  for (int off = 16; off; off >>= 1) mx = max(mx, __shfl_xor_sync(0xffffffff, mx, off));
  if (lane == 0) s_redi[warp] = mx;
  __syncthreads();
  mx = s_redi[0];
  for (int w = 1; w < NT / 32; ++w) mx = max(mx, s_redi[w]);
  // pass 2: Z = sum LUT[(d*mult)>>16]
  unsigned long long z = 0;
  for (int j = tid; j < N; j += NT) {
    long long d = (long long)mx - (long long)o[j];
    long long t = (d * mult) >> 16;
    if (t < PQ_LUT) z += (unsigned long long)s_lut[t];
  }
  for (int off = 16; off; off >>= 1) z += __shfl_xor_sync(0xffffffff, z, off);
  if (lane == 0) s_red[warp] = (long long)z;
  __syncthreads();
  unsigned long long zt = 0;
  for (int w = 0; w < NT / 32; ++w) zt += (unsigned long long)s_red[w];
  const bool rq = (1ull << 31) < (unsigned long long)thr_q * zt;
  if (tid == 0) req[row] = rq;
  if (!rq) return;
  __syncthreads();  // pass-1 stores visible to all threads of the block
  for (int jw = wfirst; jw < N; jw += KPB) {
    const int j = jw + (lane / G);
    int4 kv = make_int4(0, 0, 0, 0);
    if (j < N) kv = __ldg(reinterpret_cast<const int4*>(kl + (size_t)j * D));
    int acc = __dp4a(qv.x, kv.x, 0);
    acc = __dp4a(qv.y, kv.y, acc);
    acc = __dp4a(qv.z, kv.z, acc);
    acc = __dp4a(qv.w, kv.w, acc);
#pragma unroll
    for (int off = 1; off < G; off <<= 1) acc += __shfl_xor_sync(0xffffffff, acc, off);
    if (gl == 0 && j < N) o[j] += acc;
  }
}

#define PQ_INST(D)                                                                              \
  extern "C" __global__ void __launch_bounds__(256) pq_gemm_d##D(                              \
      const signed char* q, const signed char* km, const signed char* kl, const int* lut,      \
      int* out, unsigned char* req, int M, int N, int lsb, long long mult, long long thr) {    \
    pq_row<D>(q, km, kl, lut, out, req, M, N, lsb, mult, thr);                                  \
  }
PQ_INST(16)
PQ_INST(32)
PQ_INST(64)
PQ_INST(128)
PQ_INST(256)
