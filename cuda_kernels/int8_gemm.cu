// INT8 GEMM on tensor cores: C[M,N] (int32) = A[M,K] (int8, row-major) * B[N,K]^T (int8, K-major).
// mma.sync m16n8k32 s8 with int32 accumulation; 128x128xBK block tile, 8 warps (2x4, warp tile
// 64x32), STAGES-deep cp.async pipeline, XOR-swizzled shared memory read by ldmatrix. K % 16 == 0.
// Variants (BN, BK, STAGES): v0 (128,64,4) v1 (128,128,3) v2 (128,64,6) v3 (256,64,4) v4 (256,128,3).
#include "common.cuh"

#define BM 128
#define NTHREADS 256

template <int BK>
CK_DEVICE int swz(int r, int c) {
  if constexpr (BK == 64) return r * BK + ((c ^ ((r >> 1) & 3)) << 4);
  else return r * BK + ((c ^ (r & 7)) << 4);
}

template <int BN, int BK, int STAGES>
__device__ __forceinline__ void int8_gemm_impl(const signed char* __restrict__ A,
                                               const signed char* __restrict__ B,
                                               int* __restrict__ C, int M, int N, int K) {
  extern __shared__ __align__(128) unsigned char sm[];
  unsigned char* As = sm;                        // STAGES x BM x BK
  unsigned char* Bs = sm + STAGES * BM * BK;     // STAGES x BN x BK
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  constexpr int NJ = BN / 32;  // 8-wide n-tiles per warp (warp tile 64 x BN/4)
  const int wm = warp >> 2, wn = warp & 3;
  // grouped rasterization: 8 row-tiles per group for L2 reuse
  const int tiles_m = (M + BM - 1) / BM, tiles_n = (N + BN - 1) / BN;
  const int pid = blockIdx.x, group = 8, per_group = group * tiles_n;
  const int first_m = (pid / per_group) * group;
  const int gsz = min(tiles_m - first_m, group);
  const int tm = first_m + (pid % per_group) % gsz, tn = (pid % per_group) / gsz;
  const int m0 = tm * BM, n0 = tn * BN;
  const int ktiles = (K + BK - 1) / BK;

  constexpr int CPR = BK / 16;  // 16-byte chunks per row
  auto load = [&](int stage, int kt) {
    const int k0 = kt * BK;
#pragma unroll
    for (int i = 0; i < BM * CPR / NTHREADS; ++i) {
      int c = tid + i * NTHREADS;
      int r = c / CPR, ch = c % CPR;
      int kk = k0 + ch * 16;
      bool okA = (m0 + r < M) && (kk < K);
      const signed char* ga = okA ? A + (size_t)(m0 + r) * K + kk : A;
      cp_async16(As + stage * BM * BK + swz<BK>(r, ch), ga, okA ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < BN * CPR / NTHREADS; ++i) {
      int c = tid + i * NTHREADS;
      int r = c / CPR, ch = c % CPR;
      int kk = k0 + ch * 16;
      bool okB = (n0 + r < N) && (kk < K);
      const signed char* gb = okB ? B + (size_t)(n0 + r) * K + kk : B;
      cp_async16(Bs + stage * BN * BK + swz<BK>(r, ch), gb, okB ? 16 : 0);
    }
  };

  int acc[4][NJ][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < NJ; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      int nk = kt + STAGES - 1;
      if (nk < ktiles) load(nk % STAGES, nk);
      cp_async_commit();
    }
    const unsigned char* At = As + (kt % STAGES) * BM * BK;
    const unsigned char* Bt = Bs + (kt % STAGES) * BN * BK;
#pragma unroll
    for (int ks = 0; ks < BK / 32; ++ks) {
      unsigned af[4][4], bf[NJ][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        int r = wm * 64 + mi * 16 + (lane & 15);
        ldmatrix_x4(af[mi], At + swz<BK>(r, ks * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int nj = 0; nj < NJ; nj += 2) {
        int r = wn * (BN / 4) + nj * 8 + (lane & 7) + ((lane >> 4) << 3);
        unsigned t[4];
        ldmatrix_x4(t, Bt + swz<BK>(r, ks * 2 + ((lane >> 3) & 1)));
        bf[nj][0] = t[0]; bf[nj][1] = t[1]; bf[nj + 1][0] = t[2]; bf[nj + 1][1] = t[3];
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int nj = 0; nj < NJ; ++nj) mma_16832_s8(acc[mi][nj], af[mi], bf[nj]);
    }
  }
  cp_async_wait<0>();
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int nj = 0; nj < NJ; ++nj) {
      int col = n0 + wn * (BN / 4) + nj * 8 + 2 * t4;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int row = m0 + wm * 64 + mi * 16 + g + h * 8;
        if (row >= M) continue;
        int* cp = C + (size_t)row * N + col;
        if (col + 1 < N && (N & 1) == 0) {
          *reinterpret_cast<int2*>(cp) = make_int2(acc[mi][nj][2 * h], acc[mi][nj][2 * h + 1]);
        } else {
          if (col < N) cp[0] = acc[mi][nj][2 * h];
          if (col + 1 < N) cp[1] = acc[mi][nj][2 * h + 1];
        }
      }
    }
  }
}

#define I8_INST(NAME, BN, BK, ST, MINB)                                                         \
  extern "C" __global__ void __launch_bounds__(NTHREADS, MINB)                                 \
      NAME(const signed char* A, const signed char* B, int* C, int M, int N, int K) {          \
    int8_gemm_impl<BN, BK, ST>(A, B, C, M, N, K);                                               \
  }
I8_INST(int8_gemm_tn_v0, 128, 64, 4, 2)
I8_INST(int8_gemm_tn_v1, 128, 128, 3, 2)
I8_INST(int8_gemm_tn_v2, 128, 64, 6, 2)
I8_INST(int8_gemm_tn_v3, 256, 64, 4, 1)
I8_INST(int8_gemm_tn_v4, 256, 128, 3, 1)
