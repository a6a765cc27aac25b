// Hopper (sm_90a) prefill attention, D = 128: wgmma for Q.K^T (both operands in shared memory)
// and P.V (P from registers, V as an N-major operand), 128-byte swizzled tiles.
// Block = NWG warpgroups x 64 query rows; 64-key tiles double-buffered by cp.async.
// Same contract as flash_fwd in attention.cu (bottom-right causal, LSE optional).
#include "common.cuh"

#define LOG2E_W 1.4426950408889634f

CK_DEVICE unsigned long long sw128_desc(unsigned saddr) {
  // start >> 4 | LBO (unused for swizzled K-major) = 1 | SBO = 1024 B | 128B swizzle
  return (unsigned long long)((saddr & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) |
         (1ull << 62);
}
// N-major (transposed) B operand, 128B swizzle: lbo/sbo in bytes
CK_DEVICE unsigned long long sw128_desc_mn(unsigned saddr, unsigned lbo, unsigned sbo) {
  return (unsigned long long)((saddr & 0x3FFFF) >> 4) | ((unsigned long long)((lbo >> 4) & 0x3FFF) << 16) |
         ((unsigned long long)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}
CK_DEVICE void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
CK_DEVICE void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
CK_DEVICE void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
CK_DEVICE void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

CK_DEVICE void wgmma_s_f16(float* d, unsigned long long da, unsigned long long db) {
  asm volatile("{\n wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, 1, 1, 1, 0, 0;\n}\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
               : "l"(da), "l"(db));
}
CK_DEVICE void wgmma_s_bf16(float* d, unsigned long long da, unsigned long long db) {
  asm volatile("{\n wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, 1, 1, 1, 0, 0;\n}\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
               : "l"(da), "l"(db));
}
CK_DEVICE void wgmma_ot_f16(float* d, const unsigned* a, unsigned long long db) {
  asm volatile("{\n wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, 1, 1, 1, 1;\n}\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
CK_DEVICE void wgmma_ot_bf16(float* d, const unsigned* a, unsigned long long db) {
  asm volatile("{\n wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, 1, 1, 1, 1;\n}\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
template <typename T> CK_DEVICE void wgmma_ot(float* d, const unsigned* a, unsigned long long b);
template <> CK_DEVICE void wgmma_ot<__half>(float* d, const unsigned* a, unsigned long long b) { wgmma_ot_f16(d, a, b); }
template <> CK_DEVICE void wgmma_ot<__nv_bfloat16>(float* d, const unsigned* a, unsigned long long b) { wgmma_ot_bf16(d, a, b); }
template <typename T> CK_DEVICE void wgmma_s(float* d, unsigned long long a, unsigned long long b);
template <> CK_DEVICE void wgmma_s<__half>(float* d, unsigned long long a, unsigned long long b) { wgmma_s_f16(d, a, b); }
template <> CK_DEVICE void wgmma_s<__nv_bfloat16>(float* d, unsigned long long a, unsigned long long b) { wgmma_s_bf16(d, a, b); }

// byte offset of (row, 16B chunk) inside a [rows][128 B] 128B-swizzled tile
CK_DEVICE int sw(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

template <typename T, int NWG>
__device__ __forceinline__ void flash_wgmma(const T* __restrict__ qp, const T* __restrict__ kp,
                                            const T* __restrict__ vp, T* __restrict__ op,
                                            float* __restrict__ lse, int Lq, int Lk, float scale,
                                            int causal) {
  // V is copied as-is by cp.async into [2 d-halves][64 keys][128 B] swizzled tiles and read as an
  // N-major ("transposed") B operand: LBO = distance between the d-halves, SBO = 8 keys * 128 B.
  constexpr int D = 128, BR = 64 * NWG, BC = 64, NT = 128 * NWG;
  constexpr int QH = BR * 128, KH = BC * 128;  // bytes of one 64-column half tile
  extern __shared__ unsigned char smem_raw[];
  const unsigned raw = smem_u32(smem_raw);
  unsigned char* base = smem_raw + (((raw + 1023) & ~1023u) - raw);
  unsigned char* Qs = base;                 // 2 halves x [128][128 B]
  unsigned char* Ks = Qs + 2 * QH;          // 2 stages x 2 halves x [64][128 B]
  unsigned char* Vt = Ks + 2 * 2 * KH;      // 2 stages x 2 halves x [64 keys][128 B]
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int bh = blockIdx.y;
  const int mblk = causal ? (gridDim.x - 1 - blockIdx.x) : blockIdx.x;
  const int q0 = mblk * BR;
  const T* qg = qp + (size_t)bh * Lq * D;
  const T* kg = kp + (size_t)bh * Lk * D;
  const T* vg = vp + (size_t)bh * Lk * D;
  const int shift = Lk - Lq;
  int nkb = (Lk + BC - 1) / BC;
  if (causal) nkb = min(nkb, max(0, (q0 + BR - 1 + shift) / BC + 1));

  for (int c = tid; c < BR * 16; c += NT) {  // Q: 128 rows x 16 chunks
    int r = c >> 4, cc = c & 15;
    bool ok = q0 + r < Lq;
    cp_async16(Qs + (cc >> 3) * QH + sw(r, cc & 7), ok ? qg + (size_t)(q0 + r) * D + cc * 8 : qg, ok ? 16 : 0);
  }
  auto load_k = [&](int stage, int kb) {
    for (int c = tid; c < BC * 16; c += NT) {
      int r = c >> 4, cc = c & 15, key = kb * BC + r;
      bool ok = key < Lk;
      cp_async16(Ks + stage * 2 * KH + (cc >> 3) * KH + sw(r, cc & 7), ok ? kg + (size_t)key * D + cc * 8 : kg,
                 ok ? 16 : 0);
    }
  };
  auto load_v_async = [&](int stage, int kb) {
    for (int c = tid; c < BC * 16; c += NT) {
      int r = c >> 4, cc = c & 15, key = kb * BC + r;
      bool ok = key < Lk;
      cp_async16(Vt + stage * (D * 128) + (cc >> 3) * KH + sw(r, cc & 7), ok ? vg + (size_t)key * D + cc * 8 : vg,
                 ok ? 16 : 0);
    }
  };
  if (nkb > 0) {
    load_k(0, 0);
    load_v_async(0, 0);
  }
  cp_async_commit();

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  float m_r[2] = {-CK_INF, -CK_INF}, l_r[2] = {0.f, 0.f};
  const float sl2 = scale * LOG2E_W;
  const int row_a = q0 + wg * 64 + warp * 16 + g, row_b = row_a + 8;
  const unsigned qbase = smem_u32(Qs) + wg * 64 * 128;

  for (int kb = 0; kb < nkb; ++kb) {
    const int st = kb & 1;
    if (kb + 1 < nkb) {
      load_k(st ^ 1, kb + 1);
      load_v_async(st ^ 1, kb + 1);
    }
    cp_async_commit();
    cp_async_wait<1>();
    fence_async_smem();
    __syncthreads();
    // ---- S = Q K^T (64 x 64 per warpgroup)
    float s[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] = 0.f;
    const unsigned kbase = smem_u32(Ks + st * 2 * KH);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const unsigned off = (kk & 3) * 32;
      wgmma_s<T>(s, sw128_desc(qbase + (kk >> 2) * QH + off), sw128_desc(kbase + (kk >> 2) * KH + off));
    }
    wg_commit();
    wg_wait0();
    // ---- mask + online softmax (accumulator layout = mma.sync n8 tiles: s[4*nt + j])
    const int k0 = kb * BC;
    const bool need_mask = (k0 + BC > Lk) || (causal && (k0 + BC - 1 > q0 + shift));
    float mx[2] = {m_r[0], m_r[1]};
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      float v = s[i] * sl2;
      if (need_mask) {
        int key = k0 + (i >> 2) * 8 + 2 * t4 + (i & 1);
        int qr = (i & 2) ? row_b : row_a;
        if (key >= Lk || (causal && key > qr + shift)) v = -CK_INF;
      }
      s[i] = v;
      mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], v);
    }
    float bse[2], corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 2));
      bse[r] = (mx[r] == -CK_INF) ? 0.f : mx[r];
      corr[r] = exp2f(m_r[r] - bse[r]);
      m_r[r] = mx[r];
      l_r[r] *= corr[r];
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] *= corr[(i >> 1) & 1];
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      float p = exp2f(s[i] - bse[(i >> 1) & 1]);
      s[i] = p;
      l_r[(i >> 1) & 1] += p;
    }
    // ---- O += P V   (A = P from registers, B = V^T tile, K-major over keys)
    const unsigned vbase = smem_u32(Vt + st * (D * 128));
    unsigned a[BC / 16][4];
#pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) {
      a[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
      a[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
      a[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
      a[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
    }
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) wgmma_ot<T>(o, a[kk], sw128_desc_mn(vbase + kk * 2048, KH, 1024));
    wg_commit();
    wg_wait0();
    __syncthreads();
  }
  cp_async_wait<0>();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_r[r] += __shfl_xor_sync(0xffffffff, l_r[r], 1);
    l_r[r] += __shfl_xor_sync(0xffffffff, l_r[r], 2);
  }
  const float inv[2] = {l_r[0] > 0.f ? 1.f / l_r[0] : 0.f, l_r[1] > 0.f ? 1.f / l_r[1] : 0.f};
  T* og = op + (size_t)bh * Lq * D;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    const int col = nt * 8 + 2 * t4;
    if (row_a < Lq)
      *reinterpret_cast<unsigned*>(og + (size_t)row_a * D + col) = pack2<T>(o[4 * nt] * inv[0], o[4 * nt + 1] * inv[0]);
    if (row_b < Lq)
      *reinterpret_cast<unsigned*>(og + (size_t)row_b * D + col) =
          pack2<T>(o[4 * nt + 2] * inv[1], o[4 * nt + 3] * inv[1]);
  }
  if (lse != nullptr && t4 == 0) {
    if (row_a < Lq) lse[(size_t)bh * Lq + row_a] = (m_r[0] + log2f(l_r[0])) / LOG2E_W;
    if (row_b < Lq) lse[(size_t)bh * Lq + row_b] = (m_r[1] + log2f(l_r[1])) / LOG2E_W;
  }
}

#define WG_INST(NAME, T, NWG)                                                                   \
  extern "C" __global__ void __launch_bounds__(128 * NWG, 1) NAME(                              \
      const T* q, const T* k, const T* v, T* o, float* lse, int Lq, int Lk, float scale,        \
      int causal) {                                                                              \
    flash_wgmma<T, NWG>(q, k, v, o, lse, Lq, Lk, scale, causal);                                 \
  }
WG_INST(flash_wgmma_f16_d128_w2, __half, 2)
WG_INST(flash_wgmma_bf16_d128_w2, __nv_bfloat16, 2)
WG_INST(flash_wgmma_f16_d128_w3, __half, 3)
WG_INST(flash_wgmma_bf16_d128_w3, __nv_bfloat16, 3)
