/* winograd.h — F(4x4, 3x3) Winograd internals shared by conv_winograd.c (the
 * kernel entry, portable build of the transforms) and winograd_avx2.c (the same
 * transforms compiled for AVX2/FMA).
 *
 * Interpolation points {0, 1, -1, 2, -1/2, inf}. Against Lavin & Gray's
 * {0, 1, -1, 2, -2, inf} they cut the float32 error about 2.5x (measured on
 * random data, 64 and 256 input channels); the transforms cost the same.
 *
 *   B^T = [ 1  3/2  -2  -3/2   1  0 ]   G = [   1      0     0  ]   A^T = [ 1  1  1  1    1     0 ]
 *         [ 0   2    5    1   -2  0 ]       [  1/6    1/6   1/6 ]         [ 0  1 -1  2  -1/2    0 ]
 *         [ 0   2    1   -5    2  0 ]       [  1/6   -1/6   1/6 ]         [ 0  1  1  4   1/4    0 ]
 *         [ 0  -1   -2    1    2  0 ]       [ 1/30   1/15  2/15 ]         [ 0  1 -1  8  -1/8    1 ]
 *         [ 0  -2    1    2   -1  0 ]       [16/15  -8/15  4/15 ]
 *         [ 0   1   3/2  -2  -3/2  1 ]      [   0      0     1  ]
 *
 * Y = A^T [ (G g G^T) .* (B^T d B) ] A for a 6x6 input tile d and 3x3 filter g.
 *
 * The transforms work on a segment of consecutive tiles of one tile row and
 * one channel, eight tiles per vector: the input rows are split by column
 * phase (x mod 4) so that the same element of eight neighbouring tiles is
 * contiguous, and V/M hold each of the 36 transformed elements as a row of
 * tiles, which is what the 36 GEMMs of a tile block read and write. */
#ifndef CONVD_CORE_KERNELS_WINOGRAD_H
#define CONVD_CORE_KERNELS_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/internal.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#define WINO_OUT 4    /* output tile edge */
#define WINO_IN 6     /* input tile edge, 4 + 3 - 1 */
#define WINO_POINTS 36
#define WINO_LANES 8  /* tiles per vector step */

/* V for one channel and one segment of `tiles` tiles of a tile row.
 * rows[r] is input row (top + r) of the tile row, NULL where it lies in the
 * zero padding; x0 is the input column under the first tile's left edge
 * (negative inside the left padding), width the input row length. Element xi
 * of segment tile s goes to v[xi * xi_stride + s]; up to 7 columns past the
 * segment are written too (the caller's row stride leaves room). */
typedef void (*wino_input_fn)(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles,
                              float *v, size_t xi_stride);

/* Y for one output channel and one segment: reads M element xi of tile s at
 * m[xi * xi_stride + s] (up to 7 columns past the segment are read, not used),
 * adds bias, activates and stores the 4x4 tiles into out_rows[0..3] (NULL past
 * the bottom edge) starting at output column x0, cropped at out_width. */
typedef void (*wino_output_fn)(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                               float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width);

void wino_input_generic(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                        size_t xi_stride);
void wino_output_generic(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                         float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width);
/* Same, compiled for AVX2/FMA; call only when conv_cpu()->avx2_fma. */
void wino_input_avx2(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                     size_t xi_stride);
void wino_output_avx2(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                      float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width);

/* M = U V for output channels [0, rows) of one block, every transformed
 * element: m[(r * 36 + xi) * ld + t] = sum_c u[xi * u_xi_stride + r * cin + c]
 * * v[(c * 36 + xi) * ld + t] for t < tiles, summed in channel order. V and M
 * are the block's buffers as the transforms read and write them, so nothing
 * is packed or zeroed; columns up to the next multiple of 8 are computed too
 * (the row stride leaves room, and the output transform never uses them). */
typedef void (*wino_gemm_fn)(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                             int64_t tiles, float *m);
void wino_gemm_generic(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                       int64_t tiles, float *m);
void wino_gemm_avx2(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                    int64_t tiles, float *m);

/* Wider layers (more than WINO_FUSED_MAX_CIN input channels per group) run
 * on packed operands instead: U as panels of WINO_PU output channels,
 * [panel][xi][cin][WINO_PU], packed once at load; V as panels of up to
 * WINO_PV tile vectors, [xi][panel][cin][8 * vectors of the panel], packed
 * per block from the transforms' output. A register tile then reads both
 * operands as contiguous streams, the V panel (cin x 24 floats) from L1. */
#define WINO_PU 4
#define WINO_PV 3
#define WINO_PV512 4 /* tile vectors a V panel holds for wino_pgemm_avx512: two zmm */

/* M rows [0, panels * WINO_PU) at one transformed element, over input
 * channels [k0, k0 + kc) of V's cin: m[r * ms + t] (+)= sum_c
 * u[(r / 4) * u_panel_stride + c * 4 + r % 4] * V[c][t] for t < 8 * vecs;
 * v is V at this element (panel q at v + q * cin * 24), u U at this element
 * and channel 0 of panel 0. Adds to m when accumulate, else overwrites it. */
typedef void (*wino_pgemm_fn)(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin,
                              int64_t k0, int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms);
void wino_pgemm_generic(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin,
                        int64_t k0, int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms);
void wino_pgemm_avx2(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin, int64_t k0,
                     int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms);

/* The same four on AVX-512 (winograd_avx512.c; only where conv_cpu()->avx512):
 * the GEMMs 16 tiles a zmm register, pgemm's V panels WINO_PV512 vectors wide
 * (the caller packs V for the pgemm it calls). */
void wino_input_avx512(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                       size_t xi_stride);
void wino_output_avx512(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                        float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width);
void wino_gemm_avx512(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                      int64_t tiles, float *m);
void wino_pgemm_avx512(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin, int64_t k0,
                       int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms);

/* A dilated convolution runs as a dilation-1 one on the mosaic of its
 * dilation phases (conv_winograd_phased.c). With packed operands and one
 * block per image, the kernel builds the mosaic one channel at a time in
 * the thread's scratch instead of reading a whole mosaic tensor: gather
 * writes input channel c of image n as its mosaic plane (the inner
 * convolution's in.h x in.w), scatter takes output channel c's mosaic
 * plane (out.h x out.w) to where it belongs; a->input and a->output are
 * not used. per_channel says whether this convolution runs that way; the
 * workspace is for that mode. */
typedef struct wino_mosaic_io {
    void (*gather)(const void *ctx, int64_t n, int64_t c, float *plane);
    void (*scatter)(const void *ctx, int64_t n, int64_t c, const float *plane);
    const void *ctx;
} wino_mosaic_io;
bool conv_winograd_mosaic_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                    bool *per_channel, size_t *bytes);
void conv_winograd_run_mosaic(const conv_run_args *a, const wino_mosaic_io *io);

/* conv_kernel_winograd.run with the AVX2 transforms allowed or not (tests run
 * the portable transforms on machines that have AVX2 through this). */
void conv_winograd_run_isa(const conv_run_args *a, bool allow_avx2);

/* ------------------------------------------------------------------------
 * The transforms themselves, written once with GCC vector extensions and
 * instantiated by both files: eight floats per vector become one ymm
 * register under -mavx2 and a pair of xmm registers otherwise. */

typedef float wino_v8 __attribute__((vector_size(32)));
typedef int32_t wino_i8 __attribute__((vector_size(32)));

/* Unaligned access through a type that may alias float. Vectors never cross
 * a function boundary by value: without -mavx the ABI for passing 32-byte
 * vectors is unsettled and GCC warns about it. */
typedef float wino_v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define WINO_LOAD(v, p) ((v) = *(const wino_v8u *)(const void *)(p))
#define WINO_STORE(p, v) (*(wino_v8u *)(void *)(p) = (v))

/* row[start + l] for l < 8 where that column lies in [0, width), else 0;
 * never touches memory outside the row */
static inline void wino_load_clipped(wino_v8 *v, const float *row, int64_t start, int64_t width)
{
#ifdef __AVX2__
    /* masked loads are slow on AMD (five of them a row spent half of the
     * input transform of a 28-wide map): whole vectors load or clear, and
     * one that straddles one edge is a plain load moved by a lane permute */
    if (start >= 0 && start + WINO_LANES <= width) {
        WINO_LOAD(*v, row + start);
        return;
    }
    if (start >= width || start + WINO_LANES <= 0) {
        *v = (wino_v8){0};
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    if (width >= WINO_LANES && (start >= 0 || start + WINO_LANES <= width)) {
        /* the row's first or last eight columns; lanes outside it cleared */
        int64_t base = start < 0 ? 0 : width - WINO_LANES;
        __m256i idx = _mm256_add_epi32(lane, _mm256_set1_epi32((int)(start - base)));
        __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), idx),
                                         _mm256_cmpgt_epi32(_mm256_set1_epi32(WINO_LANES), idx));
        __m256 x = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row + base), idx);
        *v = (wino_v8)_mm256_and_ps(x, _mm256_castsi256_ps(in));
        return;
    }
    /* lanes [lo, hi) hold row columns */
    int64_t lo = start < 0 ? -start : 0, hi = width - start;
    if (lo > WINO_LANES) lo = WINO_LANES;
    if (hi > WINO_LANES) hi = WINO_LANES;
    if (hi < lo) hi = lo;
    __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)lo), lane),
                                     _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), lane));
    *v = (wino_v8)_mm256_maskload_ps(row + start, in);
#else
    for (int l = 0; l < WINO_LANES; l++) (*v)[l] = start + l >= 0 && start + l < width ? row[start + l] : 0.0f;
#endif
}

/* x[0..31] (four vectors) -> phase[q][t] = x[4t + q] for q < 4, t < 8. A 4x4 transpose
 * inside each 128-bit half leaves tiles in the order 0 2 4 6 1 3 5 7, which
 * one cross-lane permute per phase puts right. */
static inline void wino_deinterleave4(const wino_v8 x[4], wino_v8 phase[4])
{
    const wino_i8 lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    const wino_i8 movelh = {0, 1, 8, 9, 4, 5, 12, 13}, movehl = {2, 3, 10, 11, 6, 7, 14, 15};
    const wino_i8 order = {0, 4, 1, 5, 2, 6, 3, 7};
    wino_v8 a = x[0], b = x[1], c = x[2], d = x[3];
    wino_v8 ab_lo = __builtin_shuffle(a, b, lo), ab_hi = __builtin_shuffle(a, b, hi);
    wino_v8 cd_lo = __builtin_shuffle(c, d, lo), cd_hi = __builtin_shuffle(c, d, hi);
    phase[0] = __builtin_shuffle(__builtin_shuffle(ab_lo, cd_lo, movelh), order);
    phase[1] = __builtin_shuffle(__builtin_shuffle(ab_lo, cd_lo, movehl), order);
    phase[2] = __builtin_shuffle(__builtin_shuffle(ab_hi, cd_hi, movelh), order);
    phase[3] = __builtin_shuffle(__builtin_shuffle(ab_hi, cd_hi, movehl), order);
}

/* The inverse: y[q][t] (q < 4, t < 8) -> x[4t + q]. */
static inline void wino_interleave4(const wino_v8 y[4], float *x)
{
    const wino_i8 unorder = {0, 2, 4, 6, 1, 3, 5, 7};
    const wino_i8 lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    const wino_i8 movelh = {0, 1, 8, 9, 4, 5, 12, 13}, movehl = {2, 3, 10, 11, 6, 7, 14, 15};
    wino_v8 y0 = __builtin_shuffle(y[0], unorder), y1 = __builtin_shuffle(y[1], unorder);
    wino_v8 y2 = __builtin_shuffle(y[2], unorder), y3 = __builtin_shuffle(y[3], unorder);
    wino_v8 t0 = __builtin_shuffle(y0, y1, lo), t1 = __builtin_shuffle(y0, y1, hi);
    wino_v8 t2 = __builtin_shuffle(y2, y3, lo), t3 = __builtin_shuffle(y2, y3, hi);
    wino_v8 x0 = __builtin_shuffle(t0, t2, movelh), x1 = __builtin_shuffle(t0, t2, movehl);
    wino_v8 x2 = __builtin_shuffle(t1, t3, movelh), x3 = __builtin_shuffle(t1, t3, movehl);
    WINO_STORE(x, x0), WINO_STORE(x + 8, x1), WINO_STORE(x + 16, x2), WINO_STORE(x + 24, x3);
}

/* B^T applied to d0..d5 (one column of a tile, or one row of B^T d). */
#define WINO_BT(d, t)                                                                   \
    do {                                                                                \
        (t)[0] = (d)[0] + 1.5f * ((d)[1] - (d)[3]) - 2.0f * (d)[2] + (d)[4];            \
        (t)[1] = 2.0f * ((d)[1] - (d)[4]) + 5.0f * (d)[2] + (d)[3];                     \
        (t)[2] = 2.0f * ((d)[1] + (d)[4]) + (d)[2] - 5.0f * (d)[3];                     \
        (t)[3] = 2.0f * ((d)[4] - (d)[2]) + (d)[3] - (d)[1];                            \
        (t)[4] = 2.0f * ((d)[3] - (d)[1]) + (d)[2] - (d)[4];                            \
        (t)[5] = (d)[1] + 1.5f * ((d)[2] - (d)[4]) - 2.0f * (d)[3] + (d)[5];            \
    } while (0)

/* A^T applied to m0..m5. */
#define WINO_AT(m, y)                                                                   \
    do {                                                                                \
        (y)[0] = (m)[0] + ((m)[1] + (m)[2]) + ((m)[3] + (m)[4]);                        \
        (y)[1] = ((m)[1] - (m)[2]) + 2.0f * (m)[3] - 0.5f * (m)[4];                     \
        (y)[2] = ((m)[1] + (m)[2]) + 4.0f * (m)[3] + 0.25f * (m)[4];                    \
        (y)[3] = ((m)[1] - (m)[2]) + 8.0f * (m)[3] - 0.125f * (m)[4] + (m)[5];          \
    } while (0)

static inline void wino_input_impl(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles,
                                   float *v, size_t xi_stride)
{
    /* columns 4 and 5 of tile t are columns 0 and 1 of tile t + 1 */
    const wino_i8 next0 = {1, 2, 3, 4, 5, 6, 7, 8}, next1 = {1, 2, 3, 4, 5, 6, 7, 9};
    const int64_t span = WINO_OUT * WINO_LANES + WINO_LANES; /* input columns one step reads */
    for (int64_t t = 0; t < tiles; t += WINO_LANES) {
        int64_t left = x0 + WINO_OUT * t;
        bool inside = left >= 0 && left + span <= width;
        /* B^T along each row first, straight from the split row, then down
         * the columns: h[r][j] = (d B)[r][j] for the step's eight tiles */
        wino_v8 h[WINO_IN][WINO_IN];
        for (int r = 0; r < WINO_IN; r++) {
            if (!rows[r]) {
                for (int j = 0; j < WINO_IN; j++) h[r][j] = (wino_v8){0};
                continue;
            }
            wino_v8 x[5], d[WINO_IN];
            if (inside) {
                for (int k = 0; k < 5; k++) WINO_LOAD(x[k], rows[r] + left + WINO_LANES * k);
            } else {
                for (int k = 0; k < 5; k++) wino_load_clipped(&x[k], rows[r], left + WINO_LANES * k, width);
            }
            wino_deinterleave4(x, d);
            d[4] = __builtin_shuffle(d[0], x[4], next0);
            d[5] = __builtin_shuffle(d[1], x[4], next1);
            WINO_BT(d, h[r]);
        }
        for (int j = 0; j < WINO_IN; j++) {
            wino_v8 d[WINO_IN], o[WINO_IN];
            for (int r = 0; r < WINO_IN; r++) d[r] = h[r][j];
            WINO_BT(d, o);
            for (int i = 0; i < WINO_IN; i++) WINO_STORE(v + (size_t)(i * WINO_IN + j) * xi_stride + (size_t)t, o[i]);
        }
    }
}

static inline void wino_activate(wino_v8 *y, conv_activation act)
{
    /* comparisons with NaN are false, so NaN passes through as in conv_activate */
    const wino_v8 zero = {0}, six = zero + 6.0f;
    if (act == CONV_ACT_NONE) return;
    wino_i8 keep = ~(*y < zero);
    *y = (wino_v8)((wino_i8)*y & keep);
    if (act == CONV_ACT_RELU6) {
        wino_i8 over = *y > six;
        *y = (wino_v8)(((wino_i8)*y & ~over) | ((wino_i8)six & over));
    }
}

static inline void wino_output_impl(const float *m, size_t xi_stride, int64_t tiles, float bias,
                                    conv_activation act, float *const out_rows[WINO_OUT], int64_t x0,
                                    int64_t out_width)
{
    for (int64_t t = 0; t < tiles; t += WINO_LANES) {
        /* A^T down the columns: vert[i][k] = sum_r A^T[i][r] M[r][k] */
        wino_v8 vert[WINO_OUT][WINO_IN];
        for (int k = 0; k < WINO_IN; k++) {
            wino_v8 col[WINO_IN], o[WINO_OUT];
            for (int r = 0; r < WINO_IN; r++) WINO_LOAD(col[r], m + (size_t)(r * WINO_IN + k) * xi_stride + (size_t)t);
            WINO_AT(col, o);
            for (int i = 0; i < WINO_OUT; i++) vert[i][k] = o[i];
        }
        int64_t first = x0 + WINO_OUT * t; /* output column of this step's first tile */
        /* stop at the image edge and at the segment's end: the tiles after
         * it belong to another task */
        int64_t end = x0 + WINO_OUT * tiles < out_width ? x0 + WINO_OUT * tiles : out_width;
        int64_t valid = end - first;
        if (valid > WINO_OUT * WINO_LANES) valid = WINO_OUT * WINO_LANES;
        for (int i = 0; i < WINO_OUT; i++) {
            if (!out_rows[i]) continue;
            wino_v8 y[WINO_OUT];
            WINO_AT(vert[i], y);
            for (int j = 0; j < WINO_OUT; j++) {
                y[j] += bias;
                wino_activate(&y[j], act);
            }
            float *dst = out_rows[i] + first;
            if (valid == WINO_OUT * WINO_LANES) {
                wino_interleave4(y, dst);
            } else {
                float row[WINO_OUT * WINO_LANES];
                wino_interleave4(y, row);
                memcpy(dst, row, (size_t)valid * sizeof(float));
            }
        }
    }
}

/* One R x (8 * NV) tile of M at one transformed element: R rows of U (row
 * stride cin) against NV vectors of V per channel (channel stride vs), R x NV
 * accumulators in registers (4 x 3 + 3 loads + 1 broadcast fill the 16 ymm). */
static inline __attribute__((always_inline)) void wino_gemm_tile(int R, int NV, const float *u, int64_t cin,
                                                                 const float *v, size_t vs, float *m, size_t ms)
{
    wino_v8 acc[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) acc[r][j] = (wino_v8){0};
    for (int64_t c = 0; c < cin; c++) {
        wino_v8 b[3];
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) WINO_LOAD(b[j], v + (size_t)c * vs + (size_t)(WINO_LANES * j));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float a = u[r * cin + c];
#pragma GCC unroll 3
            for (int j = 0; j < NV; j++) acc[r][j] += a * b[j];
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) WINO_STORE(m + (size_t)r * ms + (size_t)(WINO_LANES * j), acc[r][j]);
}

static inline void wino_gemm_impl(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v,
                                  size_t ld, int64_t tiles, float *m)
{
    const size_t stride = WINO_POINTS * ld; /* between channels, in V and in M */
    for (size_t xi = 0; xi < WINO_POINTS; xi++) {
        const float *u_xi = u + xi * u_xi_stride;
        for (int64_t t = 0; t < tiles; t += 3 * WINO_LANES) {
            int64_t nv = (tiles - t + WINO_LANES - 1) / WINO_LANES;
            if (nv > 3) nv = 3;
            const float *vt = v + xi * ld + (size_t)t;
            for (int64_t r = 0; r < rows; r += 4) {
                int64_t rr = rows - r < 4 ? rows - r : 4;
                const float *ur = u_xi + r * cin;
                float *mt = m + (size_t)r * stride + xi * ld + (size_t)t;
                switch (rr * 4 + nv) {
#define WINO_GEMM_CASE(R, NV)                                 \
    case (R) * 4 + (NV):                                      \
        wino_gemm_tile(R, NV, ur, cin, vt, stride, mt, stride); \
        break;
                    WINO_GEMM_CASE(1, 1) WINO_GEMM_CASE(1, 2) WINO_GEMM_CASE(1, 3)
                    WINO_GEMM_CASE(2, 1) WINO_GEMM_CASE(2, 2) WINO_GEMM_CASE(2, 3)
                    WINO_GEMM_CASE(3, 1) WINO_GEMM_CASE(3, 2) WINO_GEMM_CASE(3, 3)
                    WINO_GEMM_CASE(4, 1) WINO_GEMM_CASE(4, 2) WINO_GEMM_CASE(4, 3)
#undef WINO_GEMM_CASE
                default: break;
                }
            }
        }
    }
}

/* NP U panels (4 NP rows) x NV vectors of one V panel (8 NV floats a row),
 * kc channels: 4 x 3 or 8 x 1 accumulators, one broadcast and NV loads. */
static inline __attribute__((always_inline)) void wino_ptile(int NP, int NV, const float *u, size_t ups,
                                                             const float *v, int64_t kc, bool accumulate, float *m,
                                                             size_t ms)
{
    wino_v8 acc[8][3];
#pragma GCC unroll 8
    for (int r = 0; r < 4 * NP; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) {
            if (accumulate)
                WINO_LOAD(acc[r][j], m + (size_t)r * ms + (size_t)(WINO_LANES * j));
            else
                acc[r][j] = (wino_v8){0};
        }
    for (int64_t c = 0; c < kc; c++) {
        wino_v8 b[3];
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) WINO_LOAD(b[j], v + (size_t)c * (size_t)(WINO_LANES * NV) + (size_t)(WINO_LANES * j));
#pragma GCC unroll 2
        for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
            for (int r = 0; r < WINO_PU; r++) {
                float a = u[(size_t)p * ups + (size_t)c * WINO_PU + (size_t)r];
#pragma GCC unroll 3
                for (int j = 0; j < NV; j++) acc[p * WINO_PU + r][j] += a * b[j];
            }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 4 * NP; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) WINO_STORE(m + (size_t)r * ms + (size_t)(WINO_LANES * j), acc[r][j]);
}

static inline void wino_pgemm_impl(const float *u, size_t u_panel_stride, int64_t panels, const float *v,
                                   int64_t cin, int64_t k0, int64_t kc, int64_t vecs, bool accumulate, float *m,
                                   size_t ms)
{
    const float *uk = u + (size_t)k0 * WINO_PU;
    for (int64_t q = 0; q * WINO_PV < vecs; q++) {
        int64_t nv = vecs - q * WINO_PV < WINO_PV ? vecs - q * WINO_PV : WINO_PV;
        /* the V panel stays in L1 while every U panel passes over it */
        const float *vq = v + (size_t)q * (size_t)cin * (WINO_LANES * WINO_PV) + (size_t)k0 * (size_t)(WINO_LANES * nv);
        float *mq = m + (size_t)q * (WINO_LANES * WINO_PV);
        int64_t p = 0;
        if (nv == 1) /* one vector: two panels at once, for 8 independent sums */
            for (; p + 2 <= panels; p += 2)
                wino_ptile(2, 1, uk + (size_t)p * u_panel_stride, u_panel_stride, vq, kc, accumulate,
                           mq + (size_t)p * WINO_PU * ms, ms);
        for (; p < panels; p++) {
            const float *up = uk + (size_t)p * u_panel_stride;
            float *mp = mq + (size_t)p * WINO_PU * ms;
            if (nv == 3)
                wino_ptile(1, 3, up, u_panel_stride, vq, kc, accumulate, mp, ms);
            else if (nv == 2)
                wino_ptile(1, 2, up, u_panel_stride, vq, kc, accumulate, mp, ms);
            else
                wino_ptile(1, 1, up, u_panel_stride, vq, kc, accumulate, mp, ms);
        }
    }
}

#endif
