// DOTA's crossbar GEMM with the digital twin's ADC (sw_reference/dota_fx.py, bit-exact): one thread per
// output (i, j). The reduction runs in chunks of nl elements; step k feeds core c chunk k*cores + c; tau
// steps integrate before one conversion (all cores summed with ADC sharing, one integral per core
// without); adc(v) = clamp(rne(v / 2^shift), adc_bits); Y = sum of the codes.
// m1: [n1 x d] int8 (uint8 when m1_unsigned), m2t: [n2 x d] int8 (M2 transposed), y: [n1 x n2] int32.
#include <cstdint>

#define DOTA_MAX_CORES 16

__device__ __forceinline__ long long dota_adc(long long v, int shift, int bits) {
  long long q = v >> shift;
  if (shift > 0) {
    long long r = v - (q << shift);
    long long half = 1LL << (shift - 1);
    if (r > half || (r == half && (q & 1))) q += 1;
  }
  long long hi = (1LL << (bits - 1)) - 1, lo = -(1LL << (bits - 1));
  return q > hi ? hi : (q < lo ? lo : q);
}

extern "C" __global__ void dota_crossbar_gemm(const int8_t* __restrict__ m1, const int8_t* __restrict__ m2t,
                                              int* __restrict__ y, int n1, int n2, int d, int nl, int cores,
                                              int tau, int adc_bits, int shift, int share, int m1_unsigned) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  int i = blockIdx.y;
  if (j >= n2 || i >= n1) return;
  const int8_t* a = m1 + (long long)i * d;
  const int8_t* b = m2t + (long long)j * d;
  int chunks = (d + nl - 1) / nl;
  int steps = (chunks + cores - 1) / cores;
  long long out = 0;
  for (int w0 = 0; w0 < steps; w0 += tau) {
    long long v[DOTA_MAX_CORES];
    for (int c = 0; c < cores; ++c) v[c] = 0;
    int w1 = min(w0 + tau, steps);
    for (int k = w0; k < w1; ++k) {
      for (int c = 0; c < cores; ++c) {
        int base = (k * cores + c) * nl;
        for (int l = 0; l < nl; ++l) {
          int dd = base + l;
          if (dd < d) {
            int x = m1_unsigned ? (int)(uint8_t)a[dd] : (int)a[dd];
            v[c] += (long long)x * (long long)b[dd];
          }
        }
      }
    }
    if (share) {
      long long s = 0;
      for (int c = 0; c < cores; ++c) s += v[c];
      out += dota_adc(s, shift, adc_bits);
    } else {
      for (int c = 0; c < cores; ++c) out += dota_adc(v[c], shift, adc_bits);
    }
  }
  y[(long long)i * n2 + j] = (int)out;
}
