// Fused attention forward (FlashAttention-2 style: tiled, online softmax, mma.sync),
// split-K decode, SpAtten importance and KV compaction.
// Layout: q (BH, Lq, D), k/v (BH, Lk, D), o (BH, Lq, D), contiguous.
#include "common.cuh"

#define LOG2E 1.4426950408889634f

// ---------------------------------------------------------------------------------------------
// Prefill / encoder kernel. One block = 4 warps x (16*MT) query rows; key tiles of BC=64 keys,
// double-buffered with cp.async. MT=1: Q fragments stay in registers; MT=2: each warp owns two
// 16-row m-tiles (K/V fragments reused twice), Q fragments re-read from shared memory.
// INT8QK: q, k are int8 (S via m16n8k32 s8, exact int32, then * qk_scale); v is T.
template <typename T, bool INT8QK, int D, int MT>
__device__ __forceinline__ void flash_fwd(const void* __restrict__ qp, const void* __restrict__ kp,
                                          const T* __restrict__ vp, T* __restrict__ op,
                                          float* __restrict__ lse, int Lq, int Lk, float scale,
                                          int causal) {
  constexpr int NW = 4, BR = 16 * NW * MT, BC = 64;
  constexpr int QKB = INT8QK ? D : 2 * D;   // bytes of one q/k row
  constexpr int QKS = QKB + 16;             // padded smem row (odd number of 16B chunks)
  constexpr int VS = 2 * D + 16;
  constexpr int KSTEPS = QKB / 32;          // 32 bytes of k per mma
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* Qs = smem;                       // BR x QKS
  unsigned char* Ks = Qs + BR * QKS;              // 2 x BC x QKS
  unsigned char* Vs = Ks + 2 * BC * QKS;          // 2 x BC x VS

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int bh = blockIdx.y;
  const int mblk = causal ? (gridDim.x - 1 - blockIdx.x) : blockIdx.x;  // heavy blocks first
  const int q0 = mblk * BR;
  const unsigned char* qg = reinterpret_cast<const unsigned char*>(qp) + (size_t)bh * Lq * QKB;
  const unsigned char* kg = reinterpret_cast<const unsigned char*>(kp) + (size_t)bh * Lk * QKB;
  const unsigned char* vg = reinterpret_cast<const unsigned char*>(vp) + (size_t)bh * Lk * 2 * D;
  const int shift = Lk - Lq;  // bottom-right causal alignment
  int nkb = (Lk + BC - 1) / BC;
  if (causal) {
    int last = q0 + BR - 1 + shift;  // last visible key of this block
    nkb = min(nkb, max(0, last / BC + 1));
  }

  auto load_rows = [&](unsigned char* dst, const unsigned char* src, int row0, int nrows,
                       int nrows_valid, int rowbytes, int stride) {
    const int chunks = rowbytes / 16;
    for (int c = tid; c < nrows * chunks; c += NW * 32) {
      int r = c / chunks, cc = c % chunks;
      bool ok = (row0 + r) < nrows_valid;
      const unsigned char* s = ok ? src + (size_t)(row0 + r) * rowbytes + cc * 16 : src;
      cp_async16(dst + r * stride + cc * 16, s, ok ? 16 : 0);
    }
  };
  load_rows(Qs, qg, q0, BR, Lq, QKB, QKS);
  if (nkb > 0) {
    load_rows(Ks, kg, 0, BC, Lk, QKB, QKS);
    load_rows(Vs, vg, 0, BC, Lk, 2 * D, VS);
  }
  cp_async_commit();

  float o[MT][D / 8][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.f;
  float m_r[MT][2], l_r[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    m_r[mt][0] = m_r[mt][1] = -CK_INF;
    l_r[mt][0] = l_r[mt][1] = 0.f;
  }
  const float sl2 = scale * LOG2E;
  unsigned qf[MT == 1 ? KSTEPS : 1][4];
  auto qrow = [&](int mt, int half) { return q0 + warp * 16 * MT + mt * 16 + g + 8 * half; };

  for (int kb = 0; kb < nkb; ++kb) {
    const int stage = kb & 1;
    if (kb + 1 < nkb) {
      load_rows(Ks + (stage ^ 1) * BC * QKS, kg, (kb + 1) * BC, BC, Lk, QKB, QKS);
      load_rows(Vs + (stage ^ 1) * BC * VS, vg, (kb + 1) * BC, BC, Lk, 2 * D, VS);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if constexpr (MT == 1) {
      if (kb == 0) {
#pragma unroll
        for (int kk = 0; kk < KSTEPS; ++kk)
          ldmatrix_x4(qf[kk], Qs + (warp * 16 + (lane & 15)) * QKS + kk * 32 + (lane >> 4) * 16);
      }
    }
    const unsigned char* Kt = Ks + stage * BC * QKS;
    const unsigned char* Vt = Vs + stage * BC * VS;
    // ---- S = Q K^T (16*MT x 64 per warp)
    float s[MT][BC / 8][4];
    {
      int si[INT8QK ? MT : 1][INT8QK ? BC / 8 : 1][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < BC / 8; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            s[mt][i][j] = 0.f;
            if constexpr (INT8QK) si[mt][i][j] = 0;
          }
#pragma unroll
      for (int kk = 0; kk < KSTEPS; ++kk) {
        unsigned a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          if constexpr (MT == 1) {
#pragma unroll
            for (int j = 0; j < 4; ++j) a[mt][j] = qf[kk][j];
          } else {
            ldmatrix_x4(a[mt], Qs + (warp * 16 * MT + mt * 16 + (lane & 15)) * QKS + kk * 32 +
                                   (lane >> 4) * 16);
          }
        }
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt += 2) {
          unsigned b[4];
          ldmatrix_x4(b, Kt + (nt * 8 + (lane & 7) + ((lane >> 4) << 3)) * QKS + kk * 32 +
                             ((lane >> 3) & 1) * 16);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            if constexpr (INT8QK) {
              mma_16832_s8(si[mt][nt], a[mt], b);
              mma_16832_s8(si[mt][nt + 1], a[mt], b + 2);
            } else {
              mma_16816<T>(s[mt][nt], a[mt], b);
              mma_16816<T>(s[mt][nt + 1], a[mt], b + 2);
            }
          }
        }
      }
      if constexpr (INT8QK) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int i = 0; i < BC / 8; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) s[mt][i][j] = (float)si[mt][i][j];
      }
    }
    // ---- mask (tail keys, causal) and online softmax in log2 domain
    const int k0 = kb * BC;
    const bool need_mask = (k0 + BC > Lk) || (causal && (k0 + BC - 1 > q0 + shift));
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      float mx[2] = {m_r[mt][0], m_r[mt][1]};
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float v = s[mt][nt][j] * sl2;
          if (need_mask) {
            int key = k0 + nt * 8 + 2 * t4 + (j & 1);
            if (key >= Lk || (causal && key > qrow(mt, j >> 1) + shift)) v = -CK_INF;
          }
          s[mt][nt][j] = v;
          mx[j >> 1] = fmaxf(mx[j >> 1], v);
        }
      }
      float base[2], corr[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 2));
        base[r] = (mx[r] == -CK_INF) ? 0.f : mx[r];
        corr[r] = exp2f(m_r[mt][r] - base[r]);  // m_r=-inf -> 0
        m_r[mt][r] = mx[r];
        l_r[mt][r] *= corr[r];
      }
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        o[mt][i][0] *= corr[0]; o[mt][i][1] *= corr[0];
        o[mt][i][2] *= corr[1]; o[mt][i][3] *= corr[1];
      }
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float p = exp2f(s[mt][nt][j] - base[j >> 1]);
          s[mt][nt][j] = p;
          l_r[mt][j >> 1] += p;
        }
      }
    }
    // ---- O += P V
#pragma unroll
    for (int kk2 = 0; kk2 < BC / 16; ++kk2) {
      unsigned a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        a[mt][0] = pack2<T>(s[mt][2 * kk2][0], s[mt][2 * kk2][1]);
        a[mt][1] = pack2<T>(s[mt][2 * kk2][2], s[mt][2 * kk2][3]);
        a[mt][2] = pack2<T>(s[mt][2 * kk2 + 1][0], s[mt][2 * kk2 + 1][1]);
        a[mt][3] = pack2<T>(s[mt][2 * kk2 + 1][2], s[mt][2 * kk2 + 1][3]);
      }
#pragma unroll
      for (int dt = 0; dt < D / 8; dt += 2) {
        unsigned b[4];
        ldmatrix_x4_trans(b, Vt + (kk2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * VS +
                                 (dt * 8 + (lane >> 4) * 8) * 2);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_16816<T>(o[mt][dt], a[mt], b);
          mma_16816<T>(o[mt][dt + 1], a[mt], b + 2);
        }
      }
    }
    __syncthreads();  // stage is overwritten by the next iteration's loads
  }
  cp_async_wait<0>();
  // ---- epilogue
  T* og = op + (size_t)bh * Lq * D;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l_r[mt][r] += __shfl_xor_sync(0xffffffff, l_r[mt][r], 1);
      l_r[mt][r] += __shfl_xor_sync(0xffffffff, l_r[mt][r], 2);
      inv[r] = l_r[mt][r] > 0.f ? 1.f / l_r[mt][r] : 0.f;
    }
    const int ra = qrow(mt, 0), rb = qrow(mt, 1);
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      int col = dt * 8 + 2 * t4;
      if (ra < Lq)
        *reinterpret_cast<unsigned*>(og + (size_t)ra * D + col) =
            pack2<T>(o[mt][dt][0] * inv[0], o[mt][dt][1] * inv[0]);
      if (rb < Lq)
        *reinterpret_cast<unsigned*>(og + (size_t)rb * D + col) =
            pack2<T>(o[mt][dt][2] * inv[1], o[mt][dt][3] * inv[1]);
    }
    if (lse != nullptr && t4 == 0) {  // natural-log LSE of the scaled scores
      if (ra < Lq) lse[(size_t)bh * Lq + ra] = (m_r[mt][0] + log2f(l_r[mt][0])) / LOG2E;
      if (rb < Lq) lse[(size_t)bh * Lq + rb] = (m_r[mt][1] + log2f(l_r[mt][1])) / LOG2E;
    }
  }
}

#define FLASH_INST(NAME, T, I8, D, MT)                                                           \
  extern "C" __global__ void __launch_bounds__(128) NAME(                                       \
      const void* q, const void* k, const T* v, T* o, float* lse, int Lq, int Lk, float scale,  \
      int causal) {                                                                              \
    flash_fwd<T, I8, D, MT>(q, k, v, o, lse, Lq, Lk, scale, causal);                             \
  }
FLASH_INST(flash_fwd_f16_d64_m1, __half, false, 64, 1)
FLASH_INST(flash_fwd_f16_d128_m1, __half, false, 128, 1)
FLASH_INST(flash_fwd_bf16_d64_m1, __nv_bfloat16, false, 64, 1)
FLASH_INST(flash_fwd_bf16_d128_m1, __nv_bfloat16, false, 128, 1)
FLASH_INST(flash_fwd_f16_d64_m2, __half, false, 64, 2)
FLASH_INST(flash_fwd_f16_d128_m2, __half, false, 128, 2)
FLASH_INST(flash_fwd_bf16_d64_m2, __nv_bfloat16, false, 64, 2)
FLASH_INST(flash_fwd_bf16_d128_m2, __nv_bfloat16, false, 128, 2)
FLASH_INST(flash_fwd_i8f16_d64_m1, __half, true, 64, 1)
FLASH_INST(flash_fwd_i8f16_d128_m1, __half, true, 128, 1)
FLASH_INST(flash_fwd_i8bf16_d64_m1, __nv_bfloat16, true, 64, 1)
FLASH_INST(flash_fwd_i8bf16_d128_m1, __nv_bfloat16, true, 128, 1)
FLASH_INST(flash_fwd_i8f16_d128_m2, __half, true, 128, 2)
FLASH_INST(flash_fwd_i8bf16_d128_m2, __nv_bfloat16, true, 128, 2)

// ---------------------------------------------------------------------------------------------
// Decode (Lq == 1), split-K ("flash-decoding"). Block = 4 warps over one key chunk of one (b,h).
// G = D/8 lanes share one key (16 bytes each); U keys per group in flight.
template <typename T, int D>
__device__ __forceinline__ void decode_part(const T* __restrict__ q, const T* __restrict__ k,
                                            const T* __restrict__ v, float* __restrict__ opart,
                                            float* __restrict__ mpart, float* __restrict__ lpart,
                                            T* __restrict__ ofinal, float* __restrict__ lse,
                                            int Lk, int chunk, float scale) {
  constexpr int G = D / 8, KPW = 32 / G, NW = 4, U = 4;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int grp = lane / G, gl = lane % G;
  const int bh = blockIdx.y, split = blockIdx.x, nsplit = gridDim.x;
  const int kbeg = split * chunk, kend = min(Lk, kbeg + chunk);
  const float sl2 = scale * LOG2E;
  float qv[8];
  {
    uint4 raw = *reinterpret_cast<const uint4*>(q + (size_t)bh * D + gl * 8);
    const T* h = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) qv[i] = to_f<T>(h[i]) * sl2;
  }
  const T* kb = k + (size_t)bh * Lk * D + gl * 8;
  const T* vb = v + (size_t)bh * Lk * D + gl * 8;
  float m = -CK_INF, l = 0.f, acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i] = 0.f;
  constexpr int STEP = NW * KPW;  // keys per block-iteration per unroll slot
  // warp-uniform trip count: every lane runs the same iterations (shuffles below are full-warp)
  for (int wbase = kbeg + warp * KPW; wbase < kend; wbase += STEP * U) {
    const int base = wbase + grp;
    uint4 kr[U], vr[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      kr[u] = make_uint4(0u, 0u, 0u, 0u);
      vr[u] = kr[u];
      int key = base + u * STEP;
      if (key < kend) {
        kr[u] = __ldg(reinterpret_cast<const uint4*>(kb + (size_t)key * D));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(vb + (size_t)key * D));
      }
    }
    float sc[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const T* h = reinterpret_cast<const T*>(&kr[u]);
      float d = 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) d += qv[i] * to_f<T>(h[i]);
#pragma unroll
      for (int off = 1; off < G; off <<= 1) d += __shfl_xor_sync(0xffffffff, d, off);
      sc[u] = (base + u * STEP < kend) ? d : -CK_INF;
    }
    float mn = m;
#pragma unroll
    for (int u = 0; u < U; ++u) mn = fmaxf(mn, sc[u]);
    if (mn == -CK_INF) continue;  // no valid key for this group yet (no shuffles skipped)
    float c = exp2f(m - mn);
    l *= c;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] *= c;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float p = exp2f(sc[u] - mn);
      l += p;
      const T* h = reinterpret_cast<const T*>(&vr[u]);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += p * to_f<T>(h[i]);
    }
    m = mn;
  }
  // combine the KPW groups of a warp, then the warps
#pragma unroll
  for (int off = G; off < 32; off <<= 1) {
    float m2 = __shfl_xor_sync(0xffffffff, m, off);
    float l2 = __shfl_xor_sync(0xffffffff, l, off);
    float mn = fmaxf(m, m2);
    float c1 = (m == -CK_INF) ? 0.f : exp2f(m - mn);
    float c2 = (m2 == -CK_INF) ? 0.f : exp2f(m2 - mn);
    l = l * c1 + l2 * c2;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * c1 + __shfl_xor_sync(0xffffffff, acc[i], off) * c2;
    m = mn;
  }
  __shared__ float sm_m[NW], sm_l[NW], sm_acc[NW][D];
  if (grp == 0) {
#pragma unroll
    for (int i = 0; i < 8; ++i) sm_acc[warp][gl * 8 + i] = acc[i];
    if (gl == 0) { sm_m[warp] = m; sm_l[warp] = l; }
  }
  __syncthreads();
  if (tid < D) {
    float mg = -CK_INF;
    for (int w = 0; w < NW; ++w) mg = fmaxf(mg, sm_m[w]);
    float lt = 0.f, at = 0.f;
    for (int w = 0; w < NW; ++w) {
      float c = (sm_m[w] == -CK_INF) ? 0.f : exp2f(sm_m[w] - mg);
      lt += sm_l[w] * c;
      at += sm_acc[w][tid] * c;
    }
    if (nsplit == 1) {  // no combine pass needed
      ofinal[(size_t)bh * D + tid] = from_f<T>(lt > 0.f ? at / lt : 0.f);
      if (tid == 0 && lse != nullptr) lse[bh] = (mg + log2f(lt)) / LOG2E;
    } else {
      size_t pi = (size_t)bh * nsplit + split;
      opart[pi * D + tid] = at;
      if (tid == 0) { mpart[pi] = mg; lpart[pi] = lt; }
    }
  }
}

#define DECODE_INST(NAME, T, D)                                                                 \
  extern "C" __global__ void __launch_bounds__(128) NAME(const T* q, const T* k, const T* v,   \
                                                         float* op, float* mp, float* lp,      \
                                                         T* o, float* lse, int Lk, int chunk,  \
                                                         float scale) {                        \
    decode_part<T, D>(q, k, v, op, mp, lp, o, lse, Lk, chunk, scale);                           \
  }
DECODE_INST(decode_part_f16_d64, __half, 64)
DECODE_INST(decode_part_f16_d128, __half, 128)
DECODE_INST(decode_part_bf16_d64, __nv_bfloat16, 64)
DECODE_INST(decode_part_bf16_d128, __nv_bfloat16, 128)

// Combine split partials: one block of D threads per (b,h). Also writes the natural-log LSE.
template <typename T>
__device__ __forceinline__ void decode_combine(const float* opart, const float* mpart,
                                               const float* lpart, T* o, float* lse, int nsplit,
                                               int D) {
  const int bh = blockIdx.x, d = threadIdx.x;
  float mg = -CK_INF;
  for (int s = 0; s < nsplit; ++s) mg = fmaxf(mg, mpart[(size_t)bh * nsplit + s]);
  float lt = 0.f, at = 0.f;
  for (int s = 0; s < nsplit; ++s) {
    size_t pi = (size_t)bh * nsplit + s;
    float c = (mpart[pi] == -CK_INF) ? 0.f : exp2f(mpart[pi] - mg);
    lt += lpart[pi] * c;
    at += opart[pi * D + d] * c;
  }
  o[(size_t)bh * D + d] = from_f<T>(lt > 0.f ? at / lt : 0.f);
  if (d == 0 && lse != nullptr) lse[bh] = (mg + log2f(lt)) / LOG2E;
}
extern "C" __global__ void decode_combine_f16(const float* op, const float* mp, const float* lp,
                                              __half* o, float* lse, int nsplit, int D) {
  decode_combine<__half>(op, mp, lp, o, lse, nsplit, D);
}
extern "C" __global__ void decode_combine_bf16(const float* op, const float* mp, const float* lp,
                                               __nv_bfloat16* o, float* lse, int nsplit, int D) {
  decode_combine<__nv_bfloat16>(op, mp, lp, o, lse, nsplit, D);
}

// ---------------------------------------------------------------------------------------------
// SpAtten token importance: imp[b, j] = prev[b, j] + sum_h sum_i exp(s[b,h,i,j]*scale - lse[b,h,i]).
// One thread per (b, j); fixed summation order (deterministic). Not a tuned kernel.
template <typename T>
__device__ __forceinline__ void token_importance(const T* q, const T* k, const float* lse,
                                                 const float* prev, float* imp, int H, int Lq,
                                                 int Lk, int D, float scale, int causal) {
  const int b = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= Lk) return;
  float tot = prev ? prev[(size_t)b * Lk + j] : 0.f;
  for (int h = 0; h < H; ++h) {
    const size_t bh = (size_t)b * H + h;
    const T* kr = k + (bh * Lk + j) * D;
    for (int i = 0; i < Lq; ++i) {
      if (causal && j > i + (Lk - Lq)) continue;
      const T* qr = q + (bh * Lq + i) * D;
      float s = 0.f;
      for (int d = 0; d < D; ++d) s += to_f<T>(qr[d]) * to_f<T>(kr[d]);
      tot += __expf(s * scale - lse[bh * Lq + i]);
    }
  }
  imp[(size_t)b * Lk + j] = tot;
}
extern "C" __global__ void token_importance_f16(const __half* q, const __half* k, const float* lse,
                                                const float* prev, float* imp, int H, int Lq,
                                                int Lk, int D, float scale, int causal) {
  token_importance<__half>(q, k, lse, prev, imp, H, Lq, Lk, D, scale, causal);
}
extern "C" __global__ void token_importance_bf16(const __nv_bfloat16* q, const __nv_bfloat16* k,
                                                 const float* lse, const float* prev, float* imp,
                                                 int H, int Lq, int Lk, int D, float scale,
                                                 int causal) {
  token_importance<__nv_bfloat16>(q, k, lse, prev, imp, H, Lq, Lk, D, scale, causal);
}

// Head importance: imp[bh] = prev[bh] + sum |out[bh, :, :]|. One block (256 threads) per (b,h).
template <typename T>
__device__ __forceinline__ void head_importance(const T* out, const float* prev, float* imp, int n) {
  const int bh = blockIdx.x;
  const T* p = out + (size_t)bh * n;
  float s = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += fabsf(to_f<T>(p[i]));
  for (int off = 16; off; off >>= 1) s += __shfl_xor_sync(0xffffffff, s, off);
  __shared__ float red[32];
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = prev ? prev[bh] : 0.f;
    for (int w = 0; w < (int)(blockDim.x >> 5); ++w) t += red[w];
    imp[bh] = t;
  }
}
extern "C" __global__ void head_importance_f16(const __half* o, const float* prev, float* imp, int n) {
  head_importance<__half>(o, prev, imp, n);
}
extern "C" __global__ void head_importance_bf16(const __nv_bfloat16* o, const float* prev, float* imp,
                                                int n) {
  head_importance<__nv_bfloat16>(o, prev, imp, n);
}

// KV compaction: kc[b,h,n,:] = k[b,h,idx[b,n],:] (and v). 16-byte copies; rowbytes % 16 == 0.
extern "C" __global__ void compact_kv(const uint4* __restrict__ k, const uint4* __restrict__ v,
                                      const long long* __restrict__ idx, uint4* __restrict__ kc,
                                      uint4* __restrict__ vc, int H, int L, int nkeep, int chunks) {
  const int bh = blockIdx.y, b = bh / H;
  const long long total = (long long)nkeep * chunks;
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    int n = (int)(e / chunks), c = (int)(e % chunks);
    long long src = idx[(size_t)b * nkeep + n];
    size_t so = ((size_t)bh * L + src) * chunks + c, dso = ((size_t)bh * nkeep + n) * chunks + c;
    kc[dso] = k[so];
    vc[dso] = v[so];
  }
}
