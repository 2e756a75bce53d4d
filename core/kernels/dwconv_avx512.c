/* dwconv_avx512.c — the depthwise kernel's AVX-512 path: square 3x3 and 5x5
 * kernels at stride 1 or 2 (dilation 1), output rows of one plane read in
 * place from NCHW, 16 outputs of a row a zmm register.
 *
 * AVX-512 lane masks suppress faults on the lanes they clear, so the zero
 * padding is a mask on each load: a chunk at a row's ends runs the same loop
 * as any other, with no edge tables and no copy. At stride 1 tap column kx
 * is one load at column x - pl + kx. At stride 2 the taps read columns
 * 2x - pl + kx: two loads of 16 columns and one vpermt2ps pick the even
 * columns (kx = 0), a second permute the odd ones (kx = 1), and two loads
 * two columns on serve kx = 2 and 3, and so on. ROWS output rows go together,
 * so an input row is loaded once for every output row it feeds. */
#include <immintrin.h>

#include "core/kernels/dwconv.h"

#define LANES 16
#define ROWS 8 /* output rows computed together: 8 independent sums */
#define D5_INLINE static inline __attribute__((always_inline))

bool dwconv_avx512_supports(const dw_plane *p)
{
    /* any padding: a load wholly in it has an empty mask */
    return (p->kh == 3 || p->kh == 5) && p->kw == p->kh && p->sh == p->sw && (p->sw == 1 || p->sw == 2) &&
           p->dh == 1 && p->dw == 1;
}

/* lanes l of a load starting at column x whose column lies in [0, width) */
static inline __mmask16 columns_mask(int64_t x, int64_t width)
{
    int64_t lo = x < 0 ? -x : 0, hi = width - x;
    if (hi > LANES) hi = LANES;
    if (lo >= hi) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* row + x with x possibly negative: formed as an integer, as the lanes
 * before the row are masked and never read */
static inline const float *at(const float *row, int64_t x)
{
    return (const float *)((uintptr_t)row + (uintptr_t)(x * (int64_t)sizeof(float)));
}

/* The masks of a chunk's loads (S == 1: one per tap column; S == 2, a
 * pair per two tap columns), passed by value so they stay in k registers
 * (read from an array, each load reloaded its mask from the stack). */
typedef struct load_masks {
    __mmask16 m[6];
} load_masks;

/* The K tap columns of one input row for one chunk: v[kx] holds the inputs
 * tap kx multiplies for the chunk's 16 outputs. */
D5_INLINE void tap_columns(int K, int S, const float *row, int64_t x0, const load_masks mask, __m512 *v)
{
    if (S == 1) {
#pragma GCC unroll 5
        for (int kx = 0; kx < K; kx++) v[kx] = _mm512_maskz_loadu_ps(mask.m[kx], at(row, x0 + kx));
        return;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#pragma GCC unroll 3
    for (int kx = 0; kx < K; kx += 2) {
        __m512 lo = _mm512_maskz_loadu_ps(mask.m[kx], at(row, x0 + kx));
        __m512 hi = _mm512_maskz_loadu_ps(mask.m[kx + 1], at(row, x0 + kx + LANES));
        v[kx] = _mm512_permutex2var_ps(lo, even, hi);
        if (kx + 1 < K) v[kx + 1] = _mm512_permutex2var_ps(lo, odd, hi);
    }
}

/* R output rows from oy of one chunk (output columns ox0.., `store` lanes
 * written), input columns from x0. */
D5_INLINE void chunk_rows(int K, int S, int R, const dw_plane *p, const __m512 *w, int64_t oy, int64_t ox0,
                          int64_t x0, const load_masks mask, __mmask16 store)
{
    __m512 acc[ROWS];
    const __m512 bias = _mm512_set1_ps(p->bias);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r] = bias;
    /* input rows iy0 + i, i < (R - 1) * S + K, each feeding the output rows
     * r with i - r * S a tap row */
    int64_t iy0 = oy * S - p->pt;
#pragma GCC unroll 24
    for (int i = 0; i < (R - 1) * S + K; i++) {
        int64_t iy = iy0 + i;
        if (iy < 0 || iy >= p->ih) continue;
        __m512 v[5];
        tap_columns(K, S, p->in + iy * p->iw, x0, mask, v);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            int ky = i - r * S;
            if (ky < 0 || ky >= K) continue;
#pragma GCC unroll 5
            for (int kx = 0; kx < K; kx++) acc[r] = _mm512_fmadd_ps(w[ky * K + kx], v[kx], acc[r]);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        __m512 x = acc[r];
        /* vmaxps/vminps return their second operand when either is NaN */
        if (p->act != CONV_ACT_NONE) x = _mm512_max_ps(zero, x);
        if (p->act == CONV_ACT_RELU6) x = _mm512_min_ps(six, x);
        _mm512_mask_storeu_ps(p->out + (oy + r) * p->ow + ox0, store, x);
    }
}

D5_INLINE void plane_rows(int K, int S, const dw_plane *p, int64_t y0, int64_t y1)
{
    __m512 w[25];
#pragma GCC unroll 25
    for (int t = 0; t < K * K; t++) w[t] = _mm512_set1_ps(p->w[t]);
    int loads = S == 1 ? K : (K + 1) / 2 * 2;
    for (int64_t ox0 = 0; ox0 < p->ow; ox0 += LANES) {
        int64_t x0 = ox0 * S - p->pl;
        load_masks mask = {{0}};
#pragma GCC unroll 6
        for (int l = 0; l < loads; l++) {
            int64_t start = S == 1 ? x0 + l : x0 + (l / 2) * 2 + (l % 2) * LANES;
            mask.m[l] = columns_mask(start, p->iw);
        }
        int64_t n = p->ow - ox0 < LANES ? p->ow - ox0 : LANES;
        __mmask16 store = (__mmask16)((1u << n) - 1u);
        int64_t oy = y0;
        for (; oy + ROWS <= y1; oy += ROWS) chunk_rows(K, S, ROWS, p, w, oy, ox0, x0, mask, store);
        for (; oy + 4 <= y1; oy += 4) chunk_rows(K, S, 4, p, w, oy, ox0, x0, mask, store);
        for (; oy + 2 <= y1; oy += 2) chunk_rows(K, S, 2, p, w, oy, ox0, x0, mask, store);
        for (; oy < y1; oy++) chunk_rows(K, S, 1, p, w, oy, ox0, x0, mask, store);
    }
}

void dwconv_rows_avx512(const dw_plane *p, int64_t y0, int64_t y1)
{
    if (p->kh == 3 && p->sw == 1)
        plane_rows(3, 1, p, y0, y1);
    else if (p->kh == 3)
        plane_rows(3, 2, p, y0, y1);
    else if (p->sw == 1)
        plane_rows(5, 1, p, y0, y1);
    else
        plane_rows(5, 2, p, y0, y1);
}
