/* winograd_avx512.c — the Winograd F(4x4, 3x3) GEMMs on AVX-512 (16 tiles a
 * zmm register), and winograd.h's transforms compiled for it; called only
 * when conv_cpu()->avx512. Sums run in channel order, as in the AVX2 loops. */
#pragma GCC optimize("fp-contract=fast")

#include "core/kernels/winograd.h"

#define W512_LANES 16

/* The transforms 16 tiles a zmm: the same arithmetic as winograd.h's
 * (WINO_BT, WINO_AT) on vectors twice as wide, the column phases split and
 * joined by two-source permutes, and the row ends, where a load or a store
 * would leave the row or the segment, through lane masks. */
typedef float w16 __attribute__((vector_size(64)));
typedef int32_t w16i __attribute__((vector_size(64)));

/* row + x with x possibly negative: the lanes outside are masked, never read */
static inline const float *w16_at(const float *row, int64_t x)
{
    return (const float *)((uintptr_t)row + (uintptr_t)(x * (int64_t)sizeof(float)));
}

/* lanes l < 16 (and in `keep`) with column start + l in [0, width) */
static inline __mmask16 w16_mask(int64_t start, int64_t width, __mmask16 keep)
{
    int64_t lo = start < 0 ? -start : 0, hi = width - start;
    if (hi > W512_LANES) hi = W512_LANES;
    if (lo >= hi) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u) & keep);
}

void wino_input_avx512(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                       size_t xi_stride)
{
    /* segments of up to 8 tiles (maps up to 32 wide) fill a ymm, not a
     * zmm: 28-wide rows took 1.18x the time 16 tiles a vector */
    if (tiles <= WINO_LANES) {
        wino_input_impl(rows, x0, width, tiles, v, xi_stride);
        return;
    }
    /* phase q of 8 tiles from 32 columns (lanes 8-15 unused), the two
     * halves joined, then columns 4 and 5 of each tile: columns 0 and 1 of
     * the next, the last tile's from the fifth load */
    const w16i phase[4] = {
        {0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0},
        {1, 5, 9, 13, 17, 21, 25, 29, 0, 0, 0, 0, 0, 0, 0, 0},
        {2, 6, 10, 14, 18, 22, 26, 30, 0, 0, 0, 0, 0, 0, 0, 0},
        {3, 7, 11, 15, 19, 23, 27, 31, 0, 0, 0, 0, 0, 0, 0, 0},
    };
    const w16i join = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const w16i next0 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const w16i next1 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};
    for (int64_t t = 0; t < tiles; t += W512_LANES) {
        int64_t left = x0 + WINO_OUT * t;
        bool inside = left >= 0 && left + WINO_OUT * W512_LANES + 2 <= width;
        __mmask16 store = tiles - t >= W512_LANES ? 0xFFFF : (__mmask16)((1u << (tiles - t)) - 1u);
        w16 h[WINO_IN][WINO_IN];
        for (int r = 0; r < WINO_IN; r++) {
            if (!rows[r]) {
                for (int j = 0; j < WINO_IN; j++) h[r][j] = (w16){0};
                continue;
            }
            w16 x[5], d[WINO_IN];
            for (int k = 0; k < 4; k++) {
                int64_t start = left + W512_LANES * k;
                x[k] = inside ? (w16)_mm512_loadu_ps(rows[r] + start)
                              : (w16)_mm512_maskz_loadu_ps(w16_mask(start, width, 0xFFFF), w16_at(rows[r], start));
            }
            int64_t start = left + WINO_OUT * W512_LANES;
            x[4] = (w16)_mm512_maskz_loadu_ps(inside ? 0x3 : w16_mask(start, width, 0x3), w16_at(rows[r], start));
            for (int q = 0; q < 4; q++)
                d[q] = __builtin_shuffle(__builtin_shuffle(x[0], x[1], phase[q]), __builtin_shuffle(x[2], x[3], phase[q]),
                                         join);
            d[4] = __builtin_shuffle(d[0], x[4], next0);
            d[5] = __builtin_shuffle(d[1], x[4], next1);
            WINO_BT(d, h[r]);
        }
        for (int j = 0; j < WINO_IN; j++) {
            w16 d[WINO_IN], o[WINO_IN];
            for (int r = 0; r < WINO_IN; r++) d[r] = h[r][j];
            WINO_BT(d, o);
            for (int i = 0; i < WINO_IN; i++)
                _mm512_mask_storeu_ps(v + (size_t)(i * WINO_IN + j) * xi_stride + (size_t)t, store, (__m512)o[i]);
        }
    }
}

void wino_output_avx512(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                        float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width)
{
    /* tiles 0-7 and 8-15 of phases (0, 1) and (2, 3) interleaved, then
     * four tiles of all four phases a vector */
    const w16i pair_lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    const w16i pair_hi = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const w16i quad_lo = {0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23};
    const w16i quad_hi = {8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31};
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int64_t t = 0; t < tiles; t += W512_LANES) {
        __mmask16 load = tiles - t >= W512_LANES ? 0xFFFF : (__mmask16)((1u << (tiles - t)) - 1u);
        w16 vert[WINO_OUT][WINO_IN];
        for (int k = 0; k < WINO_IN; k++) {
            w16 col[WINO_IN], o[WINO_OUT];
            for (int r = 0; r < WINO_IN; r++)
                col[r] = (w16)_mm512_maskz_loadu_ps(load, m + (size_t)(r * WINO_IN + k) * xi_stride + (size_t)t);
            WINO_AT(col, o);
            for (int i = 0; i < WINO_OUT; i++) vert[i][k] = o[i];
        }
        int64_t first = x0 + WINO_OUT * t;
        /* stop at the image edge and at the segment's end */
        int64_t end = x0 + WINO_OUT * tiles < out_width ? x0 + WINO_OUT * tiles : out_width;
        int64_t valid = end - first;
        for (int i = 0; i < WINO_OUT; i++) {
            if (!out_rows[i]) continue;
            w16 y[WINO_OUT];
            WINO_AT(vert[i], y);
            for (int j = 0; j < WINO_OUT; j++) {
                __m512 a = (__m512)(y[j] + bias);
                /* vmaxps/vminps return their second operand when either is NaN */
                if (act != CONV_ACT_NONE) a = _mm512_max_ps(zero, a);
                if (act == CONV_ACT_RELU6) a = _mm512_min_ps(six, a);
                y[j] = (w16)a;
            }
            w16 lo01 = __builtin_shuffle(y[0], y[1], pair_lo), hi01 = __builtin_shuffle(y[0], y[1], pair_hi);
            w16 lo23 = __builtin_shuffle(y[2], y[3], pair_lo), hi23 = __builtin_shuffle(y[2], y[3], pair_hi);
            w16 out[4] = {__builtin_shuffle(lo01, lo23, quad_lo), __builtin_shuffle(lo01, lo23, quad_hi),
                          __builtin_shuffle(hi01, hi23, quad_lo), __builtin_shuffle(hi01, hi23, quad_hi)};
            float *dst = out_rows[i] + first;
            for (int k = 0; k < 4; k++) {
                int64_t n = valid - W512_LANES * k;
                if (n >= W512_LANES)
                    _mm512_storeu_ps(dst + W512_LANES * k, (__m512)out[k]);
                else if (n > 0)
                    _mm512_mask_storeu_ps(dst + W512_LANES * k, (__mmask16)((1u << n) - 1u), (__m512)out[k]);
            }
        }
    }
}

/* Vector j of n along a row of M or V: the last one through `last` (eight
 * lanes where the columns end at an odd multiple of 8). */
static inline __attribute__((always_inline)) __m512 row_load(int j, int n, __mmask16 last, const float *p)
{
    return j == n - 1 ? _mm512_maskz_loadu_ps(last, p) : _mm512_loadu_ps(p);
}

static inline __attribute__((always_inline)) void row_store(int j, int n, __mmask16 last, float *p, __m512 x)
{
    if (j == n - 1)
        _mm512_mask_storeu_ps(p, last, x);
    else
        _mm512_storeu_ps(p, x);
}

/* R rows of U (row stride cin) x NV zmm of V per channel (channel stride
 * vs), the last vector through `last` (eight lanes where the columns end at
 * an odd multiple of 8); 8 x 3 accumulators, three loads and a broadcast. */
static inline __attribute__((always_inline)) void gemm_tile(int R, int NV, const float *u, int64_t cin,
                                                            const float *v, size_t vs, __mmask16 last, float *m,
                                                            size_t ms)
{
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) acc[r][j] = _mm512_setzero_ps();
    for (int64_t c = 0; c < cin; c++) {
        __m512 b[3];
        const float *vc = v + (size_t)c * vs;
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) b[j] = row_load(j, NV, last, vc + W512_LANES * j);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(u[r * cin + c]);
#pragma GCC unroll 3
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_fmadd_ps(a, b[j], acc[r][j]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) row_store(j, NV, last, m + (size_t)r * ms + (size_t)(W512_LANES * j), acc[r][j]);
}

void wino_gemm_avx512(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                      int64_t tiles, float *m)
{
    const size_t stride = WINO_POINTS * ld; /* between channels, in V and in M */
    int64_t cols = (tiles + WINO_LANES - 1) / WINO_LANES * WINO_LANES;
    for (size_t xi = 0; xi < WINO_POINTS; xi++) {
        const float *u_xi = u + xi * u_xi_stride;
        for (int64_t t = 0; t < cols; t += 3 * W512_LANES) {
            int64_t width = cols - t < 3 * W512_LANES ? cols - t : 3 * W512_LANES;
            int nv = (int)((width + W512_LANES - 1) / W512_LANES);
            __mmask16 last = width % W512_LANES ? 0x00FF : 0xFFFF;
            const float *vt = v + xi * ld + (size_t)t;
            for (int64_t r = 0; r < rows; r += 8) {
                int64_t rr = rows - r < 8 ? rows - r : 8;
                const float *ur = u_xi + r * cin;
                float *mt = m + (size_t)r * stride + xi * ld + (size_t)t;
                switch (rr * 4 + nv) {
#define W512_GEMM_CASE(R)                                                                                       \
    case (R) * 4 + 1: gemm_tile(R, 1, ur, cin, vt, stride, last, mt, stride); break;                           \
    case (R) * 4 + 2: gemm_tile(R, 2, ur, cin, vt, stride, last, mt, stride); break;                           \
    case (R) * 4 + 3: gemm_tile(R, 3, ur, cin, vt, stride, last, mt, stride); break;
                    W512_GEMM_CASE(1) W512_GEMM_CASE(2) W512_GEMM_CASE(3) W512_GEMM_CASE(4)
                    W512_GEMM_CASE(5) W512_GEMM_CASE(6) W512_GEMM_CASE(7) W512_GEMM_CASE(8)
#undef W512_GEMM_CASE
                default: break;
                }
            }
        }
    }
}

/* NP U panels (4 NP rows) x NZ zmm of one V panel (rows of `width` floats,
 * the last zmm through `last`), kc channels: up to 12 x 2 accumulators. */
static inline __attribute__((always_inline)) void ptile(int NP, int NZ, const float *u, size_t ups, const float *v,
                                                        int64_t width, int64_t kc, __mmask16 last, bool accumulate,
                                                        float *m, size_t ms)
{
    __m512 acc[12][2];
#pragma GCC unroll 12
    for (int r = 0; r < 4 * NP; r++)
#pragma GCC unroll 2
        for (int j = 0; j < NZ; j++)
            acc[r][j] = accumulate ? row_load(j, NZ, last, m + (size_t)r * ms + (size_t)(W512_LANES * j))
                                   : _mm512_setzero_ps();
    for (int64_t c = 0; c < kc; c++) {
        __m512 b[2];
        const float *vc = v + (size_t)c * (size_t)width;
#pragma GCC unroll 2
        for (int j = 0; j < NZ; j++) b[j] = row_load(j, NZ, last, vc + W512_LANES * j);
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
            for (int r = 0; r < WINO_PU; r++) {
                __m512 a = _mm512_set1_ps(u[(size_t)p * ups + (size_t)c * WINO_PU + (size_t)r]);
#pragma GCC unroll 2
                for (int j = 0; j < NZ; j++) acc[p * WINO_PU + r][j] = _mm512_fmadd_ps(a, b[j], acc[p * WINO_PU + r][j]);
            }
    }
#pragma GCC unroll 12
    for (int r = 0; r < 4 * NP; r++)
#pragma GCC unroll 2
        for (int j = 0; j < NZ; j++) row_store(j, NZ, last, m + (size_t)r * ms + (size_t)(W512_LANES * j), acc[r][j]);
}

/* ptile with np (1-3) and nz (1-2) made constants */
static void ptiles(int np, int nz, const float *u, size_t ups, const float *v, int64_t width, int64_t kc,
                   __mmask16 last, bool accumulate, float *m, size_t ms)
{
    switch (np * 2 + nz) {
#define PTILE_CASE(NP, NZ)                                                                                     \
    case (NP) * 2 + (NZ): ptile(NP, NZ, u, ups, v, width, kc, last, accumulate, m, ms); break;
        PTILE_CASE(1, 1) PTILE_CASE(1, 2) PTILE_CASE(2, 1) PTILE_CASE(2, 2) PTILE_CASE(3, 1) PTILE_CASE(3, 2)
#undef PTILE_CASE
    default: break;
    }
}

void wino_pgemm_avx512(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin, int64_t k0,
                       int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms)
{
    const float *uk = u + (size_t)k0 * WINO_PU;
    for (int64_t q = 0; q * WINO_PV512 < vecs; q++) {
        int64_t nv = vecs - q * WINO_PV512 < WINO_PV512 ? vecs - q * WINO_PV512 : WINO_PV512;
        int64_t width = WINO_LANES * nv;
        int nz = (int)((nv + 1) / 2);
        __mmask16 last = nv % 2 ? 0x00FF : 0xFFFF;
        /* the V panel stays in L1 while every U panel passes over it */
        const float *vq = v + (size_t)q * (size_t)cin * (WINO_LANES * WINO_PV512) + (size_t)(k0 * width);
        float *mq = m + (size_t)q * (WINO_LANES * WINO_PV512);
        for (int64_t p = 0; p < panels;) {
            int np = panels - p < 3 ? (int)(panels - p) : 3;
            ptiles(np, nz, uk + (size_t)p * u_panel_stride, u_panel_stride, vq, width, kc, last, accumulate,
                   mq + (size_t)p * WINO_PU * ms, ms);
            p += np;
        }
    }
}
