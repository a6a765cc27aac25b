// Row-wise top-k by 8-bit radix select (4 passes over 32-bit sortable keys), one block per row.
// Order contract (sw_reference/topk.py): larger key first, ties to the lower index.
// mode 0: selected elements in ascending index order (values as raw 32-bit words, int64 indices)
// mode 1: sorted best-first, bitonic sort of (key<<32 | ~idx) in dynamic shared memory (k <= 8192)
// mode 3: as mode 0, plus signed 32-bit sort keys (key ^ 2^31) in out_comp, for a stable
//         external sort (ties keep index order)
// cache=1: the row's keys are kept in dynamic shared memory after pass 0 (passes 1-4 read smem)
// mode 2: writes signed-sortable int64 composites (key<<32 | ~idx) ^ 2^63 (sorted by topk_sort_rows)
#include "common.cuh"


CK_DEVICE unsigned to_key(unsigned u, int is_float, int largest) {
  unsigned key = is_float ? ((u & 0x80000000u) ? ~u : (u | 0x80000000u)) : (u ^ 0x80000000u);
  return largest ? key : ~key;
}
CK_DEVICE unsigned from_key(unsigned key, int is_float, int largest) {
  if (!largest) key = ~key;
  if (!is_float) return key ^ 0x80000000u;
  return (key & 0x80000000u) ? (key ^ 0x80000000u) : ~key;
}

// Block-wide exclusive scan of one int per thread; returns the block total in *total.
template <int NT>
CK_DEVICE int block_excl_scan(int v, int* ws, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int x = v;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    int y = __shfl_up_sync(0xffffffff, x, off);
    if (lane >= off) x += y;
  }
  if (lane == 31) ws[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = (lane < NT / 32) ? ws[lane] : 0;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      int y = __shfl_up_sync(0xffffffff, w, off);
      if (lane >= off) w += y;
    }
    if (lane < NT / 32) ws[lane] = w;  // inclusive warp prefix
  }
  __syncthreads();
  int before = (warp ? ws[warp - 1] : 0) + x - v;
  *total = ws[NT / 32 - 1];
  __syncthreads();
  return before;
}

template <int NT>
__device__ __forceinline__ void radix_topk(const unsigned* __restrict__ x, int n, int k,
                                           int is_float, int largest, int mode, int sort_cap,
                                           int cache, unsigned* __restrict__ out_val,
                                           long long* __restrict__ out_idx,
                                           long long* __restrict__ out_comp) {
  constexpr int NW = NT / 32, PER = 4;
  __shared__ unsigned hist_w[NW * 256];
  __shared__ int ws[32];
  __shared__ unsigned s_prefix;
  __shared__ int s_kr;
  extern __shared__ __align__(16) unsigned long long dsm[];  // sort buffer, then row cache
  unsigned long long* sbuf = dsm;
  unsigned* rowc = reinterpret_cast<unsigned*>(dsm + sort_cap);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const unsigned* row = x + (size_t)blockIdx.x * n;
  const bool vec = (n & 3) == 0;
  // keys of elements p0..p0+3 (p0 = base + 4*tid); invalid -> 0 with valid mask
  auto fetch = [&](int p0, bool from_cache, unsigned* kk) {
    if (from_cache) {
      if (vec && p0 < n) {
        uint4 u = *reinterpret_cast<const uint4*>(rowc + p0);
        kk[0] = u.x; kk[1] = u.y; kk[2] = u.z; kk[3] = u.w;
      } else {
#pragma unroll
        for (int j = 0; j < PER; ++j) kk[j] = (p0 + j < n) ? rowc[p0 + j] : 0u;
      }
    } else {
      if (vec && p0 < n) {
        uint4 u = __ldg(reinterpret_cast<const uint4*>(row + p0));
        kk[0] = to_key(u.x, is_float, largest); kk[1] = to_key(u.y, is_float, largest);
        kk[2] = to_key(u.z, is_float, largest); kk[3] = to_key(u.w, is_float, largest);
      } else {
#pragma unroll
        for (int j = 0; j < PER; ++j)
          kk[j] = (p0 + j < n) ? to_key(__ldg(row + p0 + j), is_float, largest) : 0u;
      }
    }
  };
  unsigned prefix = 0, pmask = 0;
  int kr = k;
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    for (int i = tid; i < NW * 256; i += NT) hist_w[i] = 0;
    __syncthreads();
    unsigned* hw = hist_w + warp * 256;
    const bool fc = cache && pass > 0;
    for (int base = 0; base < n; base += NT * PER) {
      const int p0 = base + tid * PER;
      unsigned kk[PER];
      fetch(p0, fc, kk);
      if (cache && pass == 0 && p0 < n) {
        if (vec) *reinterpret_cast<uint4*>(rowc + p0) = make_uint4(kk[0], kk[1], kk[2], kk[3]);
        else
          for (int j = 0; j < PER; ++j) if (p0 + j < n) rowc[p0 + j] = kk[j];
      }
#pragma unroll
      for (int j = 0; j < PER; ++j) {
        const bool valid = (p0 + j < n) && ((kk[j] & pmask) == prefix);
        const unsigned bin = (kk[j] >> shift) & 255u;
        if (pass == 0) {  // skewed top digits: aggregate equal bins within the warp
          unsigned peers = __match_any_sync(0xffffffffu, valid ? bin : 0xffffffffu);
          if (valid && lane == __ffs(peers) - 1) atomicAdd(hw + bin, (unsigned)__popc(peers));
        } else if (valid) {
          atomicAdd(hw + bin, 1u);
        }
      }
    }
    __syncthreads();
    for (int b = tid; b < 256; b += NT) {
      unsigned s = 0;
      for (int w = 0; w < NW; ++w) s += hist_w[w * 256 + b];
      hist_w[b] = s;  // thread b only touches column b
    }
    __syncthreads();
    if (warp == 0) {
      unsigned c[8], sum = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) { c[i] = hist_w[lane * 8 + i]; sum += c[i]; }
      unsigned suf = sum;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        unsigned y = __shfl_down_sync(0xffffffff, suf, off);
        if (lane + off < 32) suf += y;
      }
      unsigned above = suf - sum;
      if (above < (unsigned)kr && suf >= (unsigned)kr) {
        unsigned acc = above;
        for (int i = 7; i >= 0; --i) {
          if (acc + c[i] >= (unsigned)kr) {
            s_prefix = prefix | ((unsigned)(lane * 8 + i) << shift);
            s_kr = kr - (int)acc;
            break;
          }
          acc += c[i];
        }
      }
    }
    __syncthreads();
    prefix = s_prefix;
    kr = s_kr;
    pmask |= 255u << shift;
    __syncthreads();
  }
  const unsigned kth = prefix;  // exact k-th key; take the first kr elements equal to it
  int P = 1;
  if (mode == 1) {
    while (P < k) P <<= 1;
    for (int i = tid; i < P; i += NT) sbuf[i] = 0ull;
    __syncthreads();
  }
  int base_gt = 0, base_eq = 0;
  for (int base = 0; base < n; base += NT * PER) {
    const int p0 = base + tid * PER;
    unsigned keys[PER];
    fetch(p0, cache, keys);
    int ngt = 0, neq = 0;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      if (p0 + j < n) { ngt += keys[j] > kth; neq += keys[j] == kth; }
    }
    int tot;
    int ex = block_excl_scan<NT>(ngt | (neq << 16), ws, &tot);
    int gt = base_gt + (ex & 0xffff), eq = base_eq + (ex >> 16);
    base_gt += tot & 0xffff;
    base_eq += tot >> 16;
    if ((tot & 0xffff) == 0 && (eq >= kr || (tot >> 16) == 0)) continue;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int p = p0 + j;
      if (p >= n) break;
      bool sel = keys[j] > kth || (keys[j] == kth && eq < kr);
      if (sel) {
        int pos = gt + min(eq, kr);
        unsigned long long comp =
            ((unsigned long long)keys[j] << 32) | (unsigned long long)(0xffffffffu - (unsigned)p);
        if (mode == 0 || mode == 3) {
          out_val[(size_t)blockIdx.x * k + pos] = from_key(keys[j], is_float, largest);
          out_idx[(size_t)blockIdx.x * k + pos] = p;
          if (mode == 3)
            reinterpret_cast<int*>(out_comp)[(size_t)blockIdx.x * k + pos] = (int)(keys[j] ^ 0x80000000u);
        } else if (mode == 1) {
          sbuf[pos] = comp;
        } else {
          out_comp[(size_t)blockIdx.x * k + pos] = (long long)(comp ^ 0x8000000000000000ull);
        }
      }
      gt += keys[j] > kth;
      eq += keys[j] == kth;
    }
  }
  if (mode != 1) return;
  __syncthreads();
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < P / 2; i += NT) {
        int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
        bool desc = (lo & size) == 0;
        unsigned long long a = sbuf[lo], b = sbuf[hi];
        if ((a < b) == desc) { sbuf[lo] = b; sbuf[hi] = a; }
      }
      __syncthreads();
    }
  }
  for (int i = tid; i < k; i += NT) {
    unsigned long long c = sbuf[i];
    out_val[(size_t)blockIdx.x * k + i] = from_key((unsigned)(c >> 32), is_float, largest);
    out_idx[(size_t)blockIdx.x * k + i] = (long long)(0xffffffffu - (unsigned)(c & 0xffffffffu));
  }
}

extern "C" __global__ void __launch_bounds__(128) topk_radix_128(
    const unsigned* x, int n, int k, int is_float, int largest, int mode, int sort_cap, int cache,
    unsigned* ov, long long* oi, long long* oc) {
  radix_topk<128>(x, n, k, is_float, largest, mode, sort_cap, cache, ov, oi, oc);
}
extern "C" __global__ void __launch_bounds__(1024) topk_radix_1024(
    const unsigned* x, int n, int k, int is_float, int largest, int mode, int sort_cap, int cache,
    unsigned* ov, long long* oi, long long* oc) {
  radix_topk<1024>(x, n, k, is_float, largest, mode, sort_cap, cache, ov, oi, oc);
}

// ---------------------------------------------------------------------------------------------
// Multi-block path for few long rows: grid (segments, rows), each block owns `seg` elements.
// hist: [rows][4][256] (zeroed), one launch per radix pass; every block replays the previous
// passes' histograms to get the current prefix. Then count (gt, eq) per segment, then write in
// index order (mode 0), as composites (mode 2; then topk_sort_rows) or with 32-bit keys (mode 3).
#define MB_NT 512

// One warp: digit whose suffix count crosses kr; returns new kr via *kr_out.
CK_DEVICE unsigned mb_digit(const unsigned* h, int kr, int* kr_out) {
  const int lane = threadIdx.x & 31;
  unsigned c[8], sum = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) { c[i] = h[lane * 8 + i]; sum += c[i]; }
  unsigned suf = sum;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    unsigned y = __shfl_down_sync(0xffffffff, suf, off);
    if (lane + off < 32) suf += y;
  }
  unsigned above = suf - sum;
  unsigned digit = 0, nk = 0;
  if (above < (unsigned)kr && suf >= (unsigned)kr) {
    unsigned acc = above;
    for (int i = 7; i >= 0; --i) {
      if (acc + c[i] >= (unsigned)kr) { digit = lane * 8 + i; nk = kr - acc; break; }
      acc += c[i];
    }
  }
  unsigned who = __ballot_sync(0xffffffff, nk != 0);
  int src = __ffs(who) - 1;
  digit = __shfl_sync(0xffffffff, digit, src);
  *kr_out = (int)__shfl_sync(0xffffffff, nk, src);
  return digit;
}

// Replay `passes` radix passes of this row; result in (*prefix, *kr) for all threads.
CK_DEVICE void mb_replay(const unsigned* hrow, int passes, int k, unsigned* prefix, int* kr) {
  __shared__ unsigned s_p;
  __shared__ int s_k;
  if (threadIdx.x < 32) {
    unsigned p = 0;
    int r = k;
    for (int i = 0; i < passes; ++i) {
      int nr;
      unsigned d = mb_digit(hrow + i * 256, r, &nr);
      p |= d << (24 - 8 * i);
      r = nr;
    }
    if (threadIdx.x == 0) { s_p = p; s_k = r; }
  }
  __syncthreads();
  *prefix = s_p;
  *kr = s_k;
}

CK_DEVICE void mb_keys(const unsigned* row, int p0, int end, int vec, int is_float, int largest,
                       unsigned* kk) {
  if (vec && p0 + 3 < end) {
    uint4 u = __ldg(reinterpret_cast<const uint4*>(row + p0));
    kk[0] = to_key(u.x, is_float, largest); kk[1] = to_key(u.y, is_float, largest);
    kk[2] = to_key(u.z, is_float, largest); kk[3] = to_key(u.w, is_float, largest);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) kk[j] = (p0 + j < end) ? to_key(__ldg(row + p0 + j), is_float, largest) : 0u;
  }
}

extern "C" __global__ void __launch_bounds__(MB_NT) topk_mb_hist(
    const unsigned* __restrict__ x, int n, int k, int is_float, int largest, int seg, int pass,
    unsigned* __restrict__ hist) {
  constexpr int NW = MB_NT / 32;
  __shared__ unsigned hw[NW * 256];
  const int row = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned* hrow = hist + (size_t)row * 4 * 256;
  unsigned prefix;
  int kr;
  mb_replay(hrow, pass, k, &prefix, &kr);
  const unsigned pmask = pass ? (0xffffffffu << (32 - 8 * pass)) : 0u;
  const int shift = 24 - 8 * pass;
  for (int i = threadIdx.x; i < NW * 256; i += MB_NT) hw[i] = 0;
  __syncthreads();
  const unsigned* r = x + (size_t)row * n;
  const int beg = blockIdx.x * seg, end = min(n, beg + seg), vec = (n & 3) == 0;
  for (int base = beg; base < end; base += MB_NT * 4) {
    const int p0 = base + threadIdx.x * 4;
    unsigned kk[4];
    mb_keys(r, p0, end, vec, is_float, largest, kk);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const bool valid = (p0 + j < end) && ((kk[j] & pmask) == prefix);
      const unsigned bin = (kk[j] >> shift) & 255u;
      if (pass == 0) {  // skewed top digits: aggregate equal bins within the warp
        unsigned peers = __match_any_sync(0xffffffffu, valid ? bin : 0xffffffffu);
        if (valid && lane == __ffs(peers) - 1) atomicAdd(hw + warp * 256 + bin, (unsigned)__popc(peers));
      } else if (valid) {
        atomicAdd(hw + warp * 256 + bin, 1u);
      }
    }
  }
  __syncthreads();
  for (int b = threadIdx.x; b < 256; b += MB_NT) {
    unsigned s = 0;
    for (int w = 0; w < NW; ++w) s += hw[w * 256 + b];
    if (s) atomicAdd(hrow + pass * 256 + b, s);
  }
}

extern "C" __global__ void __launch_bounds__(MB_NT) topk_mb_count(
    const unsigned* __restrict__ x, int n, int k, int is_float, int largest, int seg,
    const unsigned* __restrict__ hist, int2* __restrict__ counts) {
  __shared__ int ws[32];
  const int row = blockIdx.y;
  unsigned kth;
  int kr;
  mb_replay(hist + (size_t)row * 4 * 256, 4, k, &kth, &kr);
  const unsigned* r = x + (size_t)row * n;
  const int beg = blockIdx.x * seg, end = min(n, beg + seg), vec = (n & 3) == 0;
  int ngt = 0, neq = 0;
  for (int base = beg; base < end; base += MB_NT * 4) {
    const int p0 = base + threadIdx.x * 4;
    unsigned kk[4];
    mb_keys(r, p0, end, vec, is_float, largest, kk);
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (p0 + j < end) { ngt += kk[j] > kth; neq += kk[j] == kth; }
  }
  int tg, te;
  block_excl_scan<MB_NT>(ngt, ws, &tg);
  block_excl_scan<MB_NT>(neq, ws, &te);
  if (threadIdx.x == 0) counts[(size_t)row * gridDim.x + blockIdx.x] = make_int2(tg, te);
}

extern "C" __global__ void __launch_bounds__(MB_NT) topk_mb_write(
    const unsigned* __restrict__ x, int n, int k, int is_float, int largest, int seg,
    const unsigned* __restrict__ hist, const int2* __restrict__ counts, int mode,
    unsigned* __restrict__ out_val, long long* __restrict__ out_idx,
    long long* __restrict__ out_comp) {
  __shared__ int ws[32];
  __shared__ int s_bg, s_be;
  const int row = blockIdx.y;
  unsigned kth;
  int kr;
  mb_replay(hist + (size_t)row * 4 * 256, 4, k, &kth, &kr);
  if (threadIdx.x < 32) {
    int g = 0, e = 0;
    for (int s = threadIdx.x; s < (int)blockIdx.x; s += 32) {
      int2 c = counts[(size_t)row * gridDim.x + s];
      g += c.x; e += c.y;
    }
    for (int off = 16; off; off >>= 1) {
      g += __shfl_xor_sync(0xffffffff, g, off);
      e += __shfl_xor_sync(0xffffffff, e, off);
    }
    if (threadIdx.x == 0) { s_bg = g; s_be = e; }
  }
  __syncthreads();
  int base_gt = s_bg, base_eq = s_be;
  const unsigned* r = x + (size_t)row * n;
  const int beg = blockIdx.x * seg, end = min(n, beg + seg), vec = (n & 3) == 0;
  for (int base = beg; base < end; base += MB_NT * 4) {
    const int p0 = base + threadIdx.x * 4;
    unsigned kk[4];
    mb_keys(r, p0, end, vec, is_float, largest, kk);
    int ngt = 0, neq = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (p0 + j < end) { ngt += kk[j] > kth; neq += kk[j] == kth; }
    int tot;
    int ex = block_excl_scan<MB_NT>(ngt | (neq << 16), ws, &tot);
    int gt = base_gt + (ex & 0xffff), eq = base_eq + (ex >> 16);
    base_gt += tot & 0xffff;
    base_eq += tot >> 16;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int p = p0 + j;
      if (p >= end) break;
      if (kk[j] > kth || (kk[j] == kth && eq < kr)) {
        const size_t o = (size_t)row * k + gt + min(eq, kr);
        if (mode == 0 || mode == 3) {
          out_val[o] = from_key(kk[j], is_float, largest);
          out_idx[o] = p;
          if (mode == 3) reinterpret_cast<int*>(out_comp)[o] = (int)(kk[j] ^ 0x80000000u);
        } else {
          unsigned long long comp =
              ((unsigned long long)kk[j] << 32) | (unsigned long long)(0xffffffffu - (unsigned)p);
          out_comp[o] = (long long)(comp ^ 0x8000000000000000ull);
        }
      }
      gt += kk[j] > kth;
      eq += kk[j] == kth;
    }
  }
}

// Sort each row's k composites (k <= 8192) best-first in shared memory; write values, indices.
extern "C" __global__ void __launch_bounds__(1024) topk_sort_rows(
    const long long* __restrict__ comp, int k, int P, int is_float, int largest,
    unsigned* __restrict__ out_val, long long* __restrict__ out_idx) {
  extern __shared__ __align__(16) unsigned long long sb[];
  const int row = blockIdx.x, tid = threadIdx.x, NT = blockDim.x;
  for (int i = tid; i < P; i += NT)
    sb[i] = i < k ? ((unsigned long long)comp[(size_t)row * k + i] ^ 0x8000000000000000ull) : 0ull;
  __syncthreads();
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < P / 2; i += NT) {
        int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
        bool desc = (lo & size) == 0;
        unsigned long long a = sb[lo], b = sb[hi];
        if ((a < b) == desc) { sb[lo] = b; sb[hi] = a; }
      }
      __syncthreads();
    }
  }
  for (int i = tid; i < k; i += NT) {
    unsigned long long c = sb[i];
    out_val[(size_t)row * k + i] = from_key((unsigned)(c >> 32), is_float, largest);
    out_idx[(size_t)row * k + i] = (long long)(0xffffffffu - (unsigned)(c & 0xffffffffu));
  }
}
