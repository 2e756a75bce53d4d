/* dwconv_blocked_avx2.c — the depthwise kernel's channel-blocked AVX2/FMA
 * path for small maps and stride 2: 8 channel planes at a time are
 * transposed into a zero-padded [rows][cols][8] scratch, so each tap is one
 * FMA on a vector of 8 channels and stride 2 is only a wider pixel step;
 * output tiles of 8 pixels (a row's last 1-4: 4 pixels, not an overlapping 8)
 * are transposed back to the 8 NCHW planes in registers.
 *
 * Per-plane vectors waste most of their lanes and per-plane setup on 7x7 or
 * 14x14 outputs, and stride 2 costs them a deinterleave; here a whole
 * 8-channel block costs one pass, the price being two 8x8 transposes per 8
 * pixels (in and out). */
#include <immintrin.h>
#include <string.h>

#include "core/kernels/dwconv.h"
#include "core/kernels/store_lanes_avx2.h"

#define BL_INLINE static inline __attribute__((always_inline))
/* -O2 leaves these loops rolled, and the accumulator arrays in memory with them */
#define UNROLL8 _Pragma("GCC unroll 8")

bool dwconv_blocked_geometry(const dw_plane *p, dw_blocked_geom *g)
{
    memset(g, 0, sizeof *g);
    if (p->sw < 1 || p->sw > 2 || p->kh * p->kw > DW_BLOCKED_MAX_TAPS) return false;
    if (p->ow > DW_BLOCKED_FLOATS || p->kw > DW_BLOCKED_FLOATS || p->dw > DW_BLOCKED_FLOATS ||
        p->kh > DW_BLOCKED_FLOATS || p->dh > DW_BLOCKED_FLOATS || p->iw > ((int64_t)1 << 30))
        return false;
    /* every tile is 8 pixels wide: outputs narrower than 8 read zero columns past their last one */
    int64_t tile_span = p->ow < 8 ? 8 : p->ow;
    int64_t cols = (tile_span - 1) * p->sw + (p->kw - 1) * p->dw + 1;
    int64_t span = (p->kh - 1) * p->dh + 1; /* scratch rows one output row reads */
    if (cols * 8 > DW_BLOCKED_FLOATS || span > DW_BLOCKED_FLOATS / (cols * 8)) return false;
    /* strips as tall as the whole scratch holds: fewer rows transposed in
     * twice where strips meet. In-process A/B, 1 thread, time / strips of
     * half the scratch (then kept in L1) wherever those were 8 rows or
     * more: 5x5 96x56x56 0.97-0.98, 144x56x56 0.96, 7x7 32x56x56 0.98, 3x3
     * stride 2 128x56x56 0.97, the suite's fused separable layers within
     * 1% */
    int64_t max_rows = DW_BLOCKED_FLOATS / (cols * 8);
    g->cols = cols;
    g->strip_rows = (max_rows - span) / p->sh + 1;
    if (g->strip_rows > p->oh) g->strip_rows = p->oh;
    int64_t t = 0;
    for (int64_t ky = 0; ky < p->kh; ky++)
        for (int64_t kx = 0; kx < p->kw; kx++) g->tap_off[t++] = (int32_t)((ky * p->dh * cols + kx * p->dw) * 8);
    return true;
}

/* ------------------------------------------------------------ the copy in */

/* 4 pixels x 8 channels: rows[ch] + x, x in [0, 4), to dst[x][ch] (a
 * row's tail of 1-4 pixels past its last 8, instead of an overlapping 8) */
BL_INLINE void transpose_in4(const float *const rows[8], int64_t x, float *dst)
{
    __m256 a[4];
    UNROLL8
    for (int i = 0; i < 4; i++)
        a[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(rows[i] + x)), _mm_loadu_ps(rows[i + 4] + x), 1);
    __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
    __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
    _mm256_storeu_ps(dst + 0, _mm256_shuffle_ps(t0, t2, 0x44));
    _mm256_storeu_ps(dst + 8, _mm256_shuffle_ps(t0, t2, 0xEE));
    _mm256_storeu_ps(dst + 16, _mm256_shuffle_ps(t1, t3, 0x44));
    _mm256_storeu_ps(dst + 24, _mm256_shuffle_ps(t1, t3, 0xEE));
}

/* 8 pixels x 8 channels: rows[ch] + x, x in [0, 8), to dst[x][ch] */
BL_INLINE void transpose_in(const float *const rows[8], int64_t x, float *dst)
{
    transpose_in4(rows, x, dst);
    transpose_in4(rows, x + 4, dst + 32);
}

static inline void zero_pixels(float *dst, int64_t n)
{
    __m256 z = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i++) _mm256_storeu_ps(dst + i * 8, z);
}

void dwconv_blocked_fill(const dw_plane *p, const dw_blocked_geom *g, const float *const in[8], int64_t iy0,
                         int64_t rows, float *buf, bool pads_ready)
{
    const int64_t cols = g->cols, pl = p->pl < cols ? p->pl : cols;
    int64_t n = p->iw < cols - pl ? p->iw : cols - pl; /* input columns the taps read */
    for (int64_t r = 0; r < rows; r++) {
        float *dst = buf + r * cols * 8;
        int64_t iy = iy0 + r;
        if (iy < 0 || iy >= p->ih) {
            if (!pads_ready) zero_pixels(dst, cols);
            continue;
        }
        if (!pads_ready) {
            zero_pixels(dst, pl);
            zero_pixels(dst + (pl + n) * 8, cols - pl - n);
        }
        const float *src[8];
        UNROLL8
        for (int ch = 0; ch < 8; ch++) src[ch] = in[ch] + iy * p->iw;
        float *d = dst + pl * 8;
        int64_t x = 0;
        for (; x + 8 <= n; x += 8) transpose_in(src, x, d + x * 8);
        if (x < n) {
            if (n >= 8 && n - x <= 4) {
                transpose_in4(src, n - 4, d + (n - 4) * 8); /* may overlap the last full step */
            } else if (n >= 8) {
                transpose_in(src, n - 8, d + (n - 8) * 8); /* overlaps the last full step */
            } else {
                /* a row narrower than a vector: through a zero-padded copy (a
                 * full load could run past the end of the tensor) */
                float tmp[8][8] = {{0}};
                const float *trow[8];
                UNROLL8
                for (int ch = 0; ch < 8; ch++) {
                    for (int64_t i = 0; i < n; i++) tmp[ch][i] = src[ch][i];
                    trow[ch] = tmp[ch];
                }
                float out[64];
                transpose_in(trow, 0, out);
                memcpy(d, out, (size_t)n * 8 * sizeof(float));
            }
        }
    }
}

/* ------------------------------------------------------------ the stencil */

/* 8 output pixels (channel vectors) to 8 channel rows of 8 pixels, stored at
 * out[ch] + off for ch < nch: all 8 lanes when full (those past the row's
 * end land on later rows, rewritten after), else the first `lanes` */
BL_INLINE void store_tile(__m256 acc[8], float *const out[8], int64_t off, int nch, int lanes, bool full)
{
    __m256 t0 = _mm256_unpacklo_ps(acc[0], acc[1]), t1 = _mm256_unpackhi_ps(acc[0], acc[1]);
    __m256 t2 = _mm256_unpacklo_ps(acc[2], acc[3]), t3 = _mm256_unpackhi_ps(acc[2], acc[3]);
    __m256 t4 = _mm256_unpacklo_ps(acc[4], acc[5]), t5 = _mm256_unpackhi_ps(acc[4], acc[5]);
    __m256 t6 = _mm256_unpacklo_ps(acc[6], acc[7]), t7 = _mm256_unpackhi_ps(acc[6], acc[7]);
    /* s[k] = [pixels 0-3 of channel k | of channel k+4], u[k] the same for pixels 4-7 */
    __m256 s[4], u[4];
    s[0] = _mm256_shuffle_ps(t0, t2, 0x44), s[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    s[2] = _mm256_shuffle_ps(t1, t3, 0x44), s[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    u[0] = _mm256_shuffle_ps(t4, t6, 0x44), u[1] = _mm256_shuffle_ps(t4, t6, 0xEE);
    u[2] = _mm256_shuffle_ps(t5, t7, 0x44), u[3] = _mm256_shuffle_ps(t5, t7, 0xEE);
    __m256 v[8];
    UNROLL8
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_permute2f128_ps(s[k], u[k], 0x20);
        v[k + 4] = _mm256_permute2f128_ps(s[k], u[k], 0x31);
    }
    if (full) {
        if (nch == 8) {
            UNROLL8
            for (int ch = 0; ch < 8; ch++) _mm256_storeu_ps(out[ch] + off, v[ch]);
        } else {
            for (int ch = 0; ch < nch; ch++) _mm256_storeu_ps(out[ch] + off, v[ch]);
        }
    } else {
        for (int ch = 0; ch < nch; ch++) store_lanes(out[ch] + off, v[ch], lanes);
    }
}

/* 4 output pixels (channel vectors acc[0..3]) to 4 floats of each of nch channel rows at out[ch] + off */
BL_INLINE void store_tile4(__m256 acc[8], float *const out[8], int64_t off, int nch)
{
    __m256 t0 = _mm256_unpacklo_ps(acc[0], acc[1]), t1 = _mm256_unpackhi_ps(acc[0], acc[1]);
    __m256 t2 = _mm256_unpacklo_ps(acc[2], acc[3]), t3 = _mm256_unpackhi_ps(acc[2], acc[3]);
    /* s[k] = [pixels 0-3 of channel k | of channel k+4] */
    __m256 s[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE), _mm256_shuffle_ps(t1, t3, 0x44),
                   _mm256_shuffle_ps(t1, t3, 0xEE)};
    if (nch == 8) {
        UNROLL8
        for (int k = 0; k < 4; k++) {
            _mm_storeu_ps(out[k] + off, _mm256_castps256_ps128(s[k]));
            _mm_storeu_ps(out[k + 4] + off, _mm256_extractf128_ps(s[k], 1));
        }
    } else {
        for (int ch = 0; ch < nch; ch++)
            _mm_storeu_ps(out[ch] + off, ch < 4 ? _mm256_castps256_ps128(s[ch]) : _mm256_extractf128_ps(s[ch - 4], 1));
    }
}

/* Keeps a loaded input vector in a register: otherwise GCC folds the load
 * into every FMA that uses it, one load per tap again. */
#define PIN(v) __asm__("" : "+x"(v))

/* Taps of any size and dilation: per tap, one weight load and 8 FMAs
 * reading the input from memory. */
BL_INLINE void taps_any(const dw_plane *p, const dw_blocked_geom *g, const float *src, const float *w, __m256 acc[8],
                        const int64_t sw, const int np)
{
    const int64_t taps = p->kh * p->kw;
    for (int64_t t = 0; t < taps; t++) {
        const float *x = src + g->tap_off[t];
        __m256 wt = _mm256_load_ps(w + t * 8);
        UNROLL8
        for (int j = 0; j < np; j++) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + j * sw * 8), wt, acc[j]);
    }
}

/* Dilation 1 along the width, KW taps a row: the row's weights stay in
 * registers and each input pixel is loaded once for every output of the
 * tile it reaches (about half the loads of taps_any, which were the bound). */
BL_INLINE void taps_row(const dw_plane *p, const dw_blocked_geom *g, const float *src, const float *w, __m256 acc[8],
                        const int kw, const int sw, const int np)
{
    const int64_t row_step = p->dh * g->cols * 8;
    for (int64_t ky = 0; ky < p->kh; ky++) {
        const float *x = src + ky * row_step;
        __m256 wv[5];
        _Pragma("GCC unroll 5") for (int k = 0; k < kw; k++) wv[k] = _mm256_load_ps(w + (ky * kw + k) * 8);
        _Pragma("GCC unroll 20") for (int i = 0; i < (np - 1) * sw + kw; i++)
        {
            __m256 xi = _mm256_loadu_ps(x + i * 8);
            PIN(xi);
            _Pragma("GCC unroll 5") for (int k = 0; k < kw; k++)
            {
                int d = i - k;
                if (d >= 0 && d % sw == 0 && d / sw < np) acc[d / sw] = _mm256_fmadd_ps(xi, wv[k], acc[d / sw]);
            }
        }
    }
}

/* 5x5 at stride 1: per tap, one weight vector and a FMA for each pixel of
 * the tile taking its input from the (aligned) scratch. taps_row's sliding
 * window updates 5 accumulators per input pixel, so each waits on its last
 * FMA after about 6 others; here after 8. More loads, less waiting:
 * in-process A/B, 1 thread, 0.98 of taps_row's time on 96x56x56,
 * 240x28x28 and 32x112x112 (same order of sums); at stride 2 1.04, so
 * taps_row keeps those. */
BL_INLINE void taps_row_5x5_s1(const dw_plane *p, const dw_blocked_geom *g, const float *src, const float *w,
                               __m256 acc[8], const int np)
{
    const int64_t row_step = p->dh * g->cols * 8;
    for (int64_t ky = 0; ky < p->kh; ky++) {
        const float *x = src + ky * row_step;
        _Pragma("GCC unroll 5") for (int k = 0; k < 5; k++)
        {
            __m256 wk = _mm256_load_ps(w + (ky * 5 + k) * 8);
            UNROLL8
            for (int j = 0; j < np; j++) acc[j] = _mm256_fmadd_ps(_mm256_load_ps(x + (j + k) * 8), wk, acc[j]);
        }
    }
}

/* np: pixels in the tile, 8, or 4 for a row's tail of 1-4 pixels (stored whole) */
BL_INLINE void tile(const dw_plane *p, const dw_blocked_geom *g, const float *src, const float *w, __m256 bias,
                    float *const out[8], int64_t off, int nch, int lanes, bool full, const int kw, const int64_t sw,
                    const int np)
{
    __m256 acc[8];
    UNROLL8
    for (int j = 0; j < np; j++) acc[j] = bias;
    if (kw == 5 && sw == 1)
        taps_row_5x5_s1(p, g, src, w, acc, np);
    else if (kw == 3 || kw == 5)
        taps_row(p, g, src, w, acc, kw, (int)sw, np);
    else
        taps_any(p, g, src, w, acc, sw, np);
    if (p->act != CONV_ACT_NONE) {
        /* max/min return their second operand on NaN: NaN passes as in the reference */
        __m256 zero = _mm256_setzero_ps();
        UNROLL8
        for (int j = 0; j < np; j++) acc[j] = _mm256_max_ps(zero, acc[j]);
        if (p->act == CONV_ACT_RELU6) {
            __m256 six = _mm256_set1_ps(6.0f);
            UNROLL8
            for (int j = 0; j < np; j++) acc[j] = _mm256_min_ps(six, acc[j]);
        }
    }
    if (np == 4)
        store_tile4(acc, out, off, nch);
    else
        store_tile(acc, out, off, nch, lanes, full);
}

/* kw: 3 or 5 for taps_row (dilation 1 along the width), else 0 */
BL_INLINE void rows_sw(const dw_plane *p, const dw_blocked_geom *g, const float *buf, const float *w,
                       const float *bias8, float *const out[8], int nch, int64_t y0, int64_t y1, const int kw,
                       const int64_t sw)
{
    __m256 bias = _mm256_loadu_ps(bias8);
    for (int64_t oy = y0; oy < y1; oy++) {
        const float *row = buf + (oy - y0) * p->sh * g->cols * 8;
        int64_t base = oy * p->ow;
        if (p->ow < 8) {
            /* rows narrower than a tile: full stores while the lanes past the row stay within rows still to come */
            tile(p, g, row, w, bias, out, base, nch, (int)p->ow, base + 8 <= y1 * p->ow, kw, sw, 8);
            continue;
        }
        int64_t ox = 0;
        for (; ox + 8 <= p->ow; ox += 8)
            tile(p, g, row + ox * sw * 8, w, bias, out, base + ox, nch, 8, true, kw, sw, 8);
        if (ox < p->ow) {
            /* the last 1-4 pixels as a 4-pixel tile, 5-7 as an 8-pixel one, overlapping the last full tile */
            int np = p->ow - ox <= 4 ? 4 : 8;
            ox = p->ow - np;
            if (np == 4)
                tile(p, g, row + ox * sw * 8, w, bias, out, base + ox, nch, 4, true, kw, sw, 4);
            else
                tile(p, g, row + ox * sw * 8, w, bias, out, base + ox, nch, 8, true, kw, sw, 8);
        }
    }
}

void dwconv_blocked_rows(const dw_plane *p, const dw_blocked_geom *g, const float *buf, const float *w,
                         const float *bias8, float *const out[8], int nch, int64_t y0, int64_t y1)
{
    int kw = p->dw == 1 && (p->kw == 3 || p->kw == 5) ? (int)p->kw : 0;
    if (p->sw == 1) {
        if (kw == 3)
            rows_sw(p, g, buf, w, bias8, out, nch, y0, y1, 3, 1);
        else if (kw == 5)
            rows_sw(p, g, buf, w, bias8, out, nch, y0, y1, 5, 1);
        else
            rows_sw(p, g, buf, w, bias8, out, nch, y0, y1, 0, 1);
    } else {
        if (kw == 3)
            rows_sw(p, g, buf, w, bias8, out, nch, y0, y1, 3, 2);
        else if (kw == 5)
            rows_sw(p, g, buf, w, bias8, out, nch, y0, y1, 5, 2);
        else
            rows_sw(p, g, buf, w, bias8, out, nch, y0, y1, 0, 2);
    }
}
