/* dwconv_phase_avx2.c — the depthwise kernel's main AVX2/FMA path: each block
 * of input rows is copied once into a small zero-padded buffer, split by
 * column phase for stride 2, and every output vector is then a sum of plain
 * unaligned loads times taps, with no border case and no shuffle per tap.
 *
 * Buffer row layout (stride S = 1 or 2 along the width): S phase rows of Lr
 * floats, phase ph holding padded columns S*i + ph. Output column ox, tap kx
 * reads padded column S*ox + kx*dw = phase (kx*dw) % S, index ox + (kx*dw)/S,
 * so stride 2 is deinterleaved once per input row (two shuffles per 16
 * inputs) instead of once per tap and output row. The zero padding is
 * written with the copy, only where the taps read it.
 *
 * 3x3 and 5x5 stride-1 planes at least 16 wide skip the copy: column
 * strips (strip3, strip5) read the input rows in place, through lane masks
 * where the taps reach past a row's ends.
 *
 * Other outputs are computed in tiles of R rows x V vectors of 8 columns; a row's
 * last vector overlaps the one before it (ow >= 8) so every store is a full
 * vector; rows narrower than 8 store 8 lanes running into the next rows
 * (rewritten later) where the block has them, else lane by lane.
 * Measured against the older tiles (dwconv_avx2.c) in one process, 1 thread,
 * min of 2000 runs on a loaded 2-core EPYC: 32x112x112 3x3 0.171-0.178 ms
 * vs 0.182-0.238, 256x28x28 3x3 0.120-0.142 vs 0.150-0.157, 96x56x56 5x5
 * 0.275-0.288 vs 0.343-0.354; the copy (~16 cycles a row) is what keeps
 * small planes from doing better. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/kernels/dwconv.h"

#define PH_INLINE static inline __attribute__((always_inline))
/* Keeps a loaded input vector in a register: otherwise GCC folds the load
 * into each FMA that uses it, repeating it for every output row. */
#define PIN(v) __asm__("" : "+x"(v))
#define PH_MAX_R 4
#define PH_MAX_V 2

/* Where a stride-1 buffer row starts within its rs floats: the input's
 * first column then lands on a 32-byte boundary, so the copy's stores never
 * split a cache line (with pl = 1 every other one did). */
static int64_t row_shift(const dw_plane *p) { return p->sw == 1 ? (8 - p->pl % 8) % 8 : 0; }

bool dwconv_phase_geometry(const dw_plane *p, dw_phase_geom *g)
{
    memset(g, 0, sizeof *g);
    if (p->sw < 1 || p->sw > 2 || p->kw > DW_PHASE_MAX_KW || p->kh * p->kw > DW_PHASE_MAX_TAPS) return false;
    if (p->iw > DW_PHASE_FLOATS || p->ow > DW_PHASE_FLOATS || p->pl > DW_PHASE_FLOATS || p->dw > DW_PHASE_FLOATS)
        return false;
    int64_t s = p->sw, maxshift = ((p->kw - 1) * p->dw) / s;
    int64_t cols = p->ow < 8 ? 8 : p->ow;
    int64_t need = cols + maxshift; /* phase-row indices the taps read */
    int64_t lr = need + 8;          /* room for the last zero store */
    int64_t data_end = (p->pl + p->iw + s - 1) / s + 9; /* the copy's last (masked) store */
    if (lr < data_end) lr = data_end;
    lr = (lr + row_shift(p) + 7) & ~(int64_t)7;
    int64_t row_span = (p->kh - 1) * p->dh + 1; /* buffer rows one output row needs */
    int64_t rs = s * lr;
    if (rs > DW_PHASE_FLOATS || row_span > (DW_PHASE_FLOATS - 16) / rs) return false;
    g->s = s;
    g->lr = lr;
    g->rs = rs;
    g->need = need;
    g->max_rows = ((DW_PHASE_FLOATS - 16) / rs - row_span) / p->sh + 1;
    /* stride 1 copies 8 inputs a step, stride 2 16: the tail is what is left of the last 8 */
    int64_t rem = p->iw % (8 * s);
    g->tail_lanes = rem > 8 ? rem - 8 : rem;
    for (int j = 0; j < 8; j++) {
        g->tail_idx[j] = (int32_t)(j + 8 - g->tail_lanes) & 7;
        g->tail_keep[j] = j < g->tail_lanes ? -1 : 0;
    }
    return true;
}

/* ------------------------------------------------------------ the copy */

/* zeros over phase-row indices [from, to) (stores may run up to 7 past to);
 * PIN keeps GCC from turning the loop into a call to memset */
static inline void zero_span(float *row, int64_t from, int64_t to)
{
    __m256 z = _mm256_setzero_ps();
    for (int64_t i = from; i < to; i += 8) {
        PIN(z);
        _mm256_storeu_ps(row + i, z);
    }
}

/* The row's last g->tail_lanes inputs in the low lanes, zeros above: taken
 * from the 8 inputs ending the row with a permute, as masked loads wait on
 * the buffer's older stores here (they cost 3x the whole copy). */
static inline __m256 tail_vector(const float *row_end, const dw_phase_geom *g)
{
    __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row_end - 8), _mm256_loadu_si256((const __m256i *)g->tail_idx));
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)g->tail_keep)));
}

/* a row shorter than a vector, through a zero-padded copy */
static inline __m256 short_vector(const float *src, int64_t n)
{
    float tmp[8] = {0};
    for (int64_t i = 0; i < n && i < 8; i++) tmp[i] = src[i];
    return _mm256_loadu_ps(tmp);
}

/* Buffer rows for input rows [iy0, iy0 + rows) of one input plane. With
 * pads_ready the buffer already holds these rows of another plane: its
 * zeros are where they belong and only the data is copied (the per-row
 * zeroing branches cost as much as the copy on 14x14 planes). */
static void fill_rows(const dw_plane *p, const dw_phase_geom *g, const float *in, float *buf, int64_t iy0,
                      int64_t rows, bool pads_ready)
{
    const int64_t iw = p->iw, pl = p->pl, lr = g->lr, need = g->need;
    for (int64_t r = 0; r < rows; r++) {
        float *dst = buf + r * g->rs + row_shift(p);
        int64_t iy = iy0 + r;
        if (iy < 0 || iy >= p->ih) {
            if (!pads_ready)
                for (int64_t ph = 0; ph < g->s; ph++) zero_span(dst + ph * lr, 0, need);
            continue;
        }
        const float *src = in + iy * iw;
        if (g->s == 1) {
            if (!pads_ready) zero_span(dst, 0, pl);
            int64_t c = 0;
            for (; c + 8 <= iw; c += 8) _mm256_storeu_ps(dst + pl + c, _mm256_loadu_ps(src + c));
            if (c < iw)
                _mm256_storeu_ps(dst + pl + c, iw >= 8 ? tail_vector(src + iw, g) : short_vector(src + c, iw - c));
            if (!pads_ready) zero_span(dst, pl + iw, need);
            continue;
        }
        /* stride 2: input column c goes to phase (c + pl) & 1, index (c + pl) >> 1 */
        float *even_dst = dst + (pl & 1) * lr, *odd_dst = dst + ((pl + 1) & 1) * lr;
        int64_t even_at = pl >> 1, odd_at = (pl + 1) >> 1; /* where input columns 0 and 1 go */
        if (!pads_ready) {
            zero_span(dst, 0, (pl + 1) >> 1); /* phase 0: padded columns 0, 2, .. < pl */
            zero_span(dst + lr, 0, pl >> 1);  /* phase 1: padded columns 1, 3, .. < pl */
        }
        for (int64_t c = 0; c < iw; c += 16) {
            __m256 lo, hi;
            int64_t left = iw - c;
            if (left >= 16) {
                lo = _mm256_loadu_ps(src + c);
                hi = _mm256_loadu_ps(src + c + 8);
            } else if (iw < 8) {
                lo = short_vector(src + c, left);
                hi = _mm256_setzero_ps();
            } else if (left > 8) {
                lo = _mm256_loadu_ps(src + c);
                hi = tail_vector(src + iw, g);
            } else {
                lo = left == 8 ? _mm256_loadu_ps(src + c) : tail_vector(src + iw, g);
                hi = _mm256_setzero_ps();
            }
            __m256 ev = _mm256_shuffle_ps(lo, hi, 0x88), od = _mm256_shuffle_ps(lo, hi, 0xDD);
            ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
            od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8));
            _mm256_storeu_ps(even_dst + even_at + c / 2, ev);
            _mm256_storeu_ps(odd_dst + odd_at + c / 2, od);
        }
        if (!pads_ready) {
            zero_span(dst, (pl + iw + 1) >> 1, need);  /* phase 0 from padded column pl + iw (rounded up to even) */
            zero_span(dst + lr, (pl + iw) >> 1, need); /* phase 1 from the first odd column >= pl + iw */
        }
    }
}

/* ------------------------------------------------------------ the tiles */

/* Output rows [0, R) x V vectors at columns x0 (and x1) of a block whose
 * buffer row 0 is output row 0's first input row; `out` is output row 0.
 * Tap kx of a row sits at phase (kx*DWD) % SW, index (kx*DWD) / SW. The
 * clamp bounds are loaded at the store: held in registers they pushed the
 * accumulators out to the stack. */
PH_INLINE void tile(const float *buf, int64_t rs, int64_t lr, const float *wb, float bias, const float *clamp,
                    float *out, int64_t ow, int64_t x0, int64_t x1, int64_t rows_left, const int R, const int V,
                    const int64_t KH, const int64_t KW, const int64_t SH, const int64_t SW, const int64_t DH,
                    const int64_t DWD)
{
    __m256 acc[PH_MAX_R][PH_MAX_V];
    const __m256 b = _mm256_set1_ps(bias);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[r][v] = b;
    const int64_t rows = (R - 1) * SH + (KH - 1) * DH + 1;
    const float *row = buf;
#pragma GCC unroll 16
    for (int64_t t = 0; t < rows; t++, row += rs) {
#pragma GCC unroll 8
        for (int64_t kx = 0; kx < KW; kx++) {
            int64_t k = kx * DWD;
            const float *at = row + (SW == 2 ? (k & 1) * lr + (k >> 1) : k);
            __m256 in[PH_MAX_V];
            in[0] = _mm256_loadu_ps(at + x0);
            if (V > 1) in[1] = _mm256_loadu_ps(at + x1);
            if (R > 1)
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) PIN(in[v]);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                int64_t d = t - r * SH;
                if (d < 0 || d % DH != 0 || d / DH >= KH) continue;
                __m256 wv = _mm256_load_ps(wb + 8 * ((d / DH) * KW + kx));
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(in[v], wv, acc[r][v]);
            }
        }
    }
    const __m256 lo = _mm256_broadcast_ss(clamp), hi = _mm256_broadcast_ss(clamp + 1);
    /* no max/min without an activation: they run on the FMA pipes here */
    const bool clamped = clamp[0] != -INFINITY || clamp[1] != INFINITY;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            /* max/min return their second operand when either is NaN: NaN passes */
            __m256 y = clamped ? _mm256_min_ps(hi, _mm256_max_ps(lo, acc[r][v])) : acc[r][v];
            float *dst = out + r * ow + (v ? x1 : x0);
            if (ow < 8 && (rows_left - r) * ow < 8) {
                float part[8];
                _mm256_storeu_ps(part, y);
                for (int64_t i = 0; i < ow; i++) dst[i] = part[i];
            } else {
                _mm256_storeu_ps(dst, y);
            }
        }
    }
}

typedef struct ph_ctx {
    int64_t rs, lr, ow;
    const float *wb, *clamp;
    float bias;
} ph_ctx;

/* Output rows [0, R) of a block, every column. A row narrower than a vector
 * stores 8 lanes only when the rows_left rows from row 0 on hold them. */
PH_INLINE void row_group(const ph_ctx *c, const float *buf, float *out, int64_t rows_left, const int R,
                         const int64_t KH, const int64_t KW, const int64_t SH, const int64_t SW, const int64_t DH,
                         const int64_t DWD)
{
    const int64_t ow = c->ow;
    if (ow < 8) {
        tile(buf, c->rs, c->lr, c->wb, c->bias, c->clamp, out, ow, 0, 0, rows_left, R, 1, KH, KW, SH, SW, DH, DWD);
        return;
    }
    int64_t ox = 0;
    for (; ox + 16 <= ow; ox += 16)
        tile(buf, c->rs, c->lr, c->wb, c->bias, c->clamp, out, ow, ox, ox + 8, 8, R, 2, KH, KW, SH, SW, DH, DWD);
    int64_t left = ow - ox;
    if (left > 8)
        tile(buf, c->rs, c->lr, c->wb, c->bias, c->clamp, out, ow, ox, ow - 8, 8, R, 2, KH, KW, SH, SW, DH, DWD);
    else if (left > 0)
        tile(buf, c->rs, c->lr, c->wb, c->bias, c->clamp, out, ow, ow - 8, 0, 8, R, 1, KH, KW, SH, SW, DH, DWD);
}

/* Output rows [0, nrows) of one plane from its filled buffer. */
PH_INLINE void block_rows(const ph_ctx *c, const float *buf, float *out, int64_t nrows, const int64_t KH,
                          const int64_t KW, const int64_t SH, const int64_t SW, const int64_t DH, const int64_t DWD)
{
    int64_t y = 0;
    for (; y + 4 <= nrows; y += 4)
        row_group(c, buf + y * SH * c->rs, out + y * c->ow, nrows - y, 4, KH, KW, SH, SW, DH, DWD);
    for (; y + 2 <= nrows; y += 2)
        row_group(c, buf + y * SH * c->rs, out + y * c->ow, nrows - y, 2, KH, KW, SH, SW, DH, DWD);
    for (; y < nrows; y++)
        row_group(c, buf + y * SH * c->rs, out + y * c->ow, nrows - y, 1, KH, KW, SH, SW, DH, DWD);
}

/* ------------------------------------------------------------ column strips (3x3, stride 1) */

/* The 3x3 stride-1 strip: output columns [x, x+8) of rows [0, nrows),
 * walking down input rows t = 0 .. nrows+1 (rows[t] + col). Each row's
 * three input vectors are loaded once and feed the three output rows that
 * read it: c1 (output row t-1) and c2 (row t-2) carry their sums from row
 * to row, row t-2 is complete after row t and is stored. The nine taps stay
 * in registers, so the loop issues three input loads per nine FMAs (the
 * R-row tiles load a tap per FMA pair and each input several times); it
 * runs at ~5.1 cycles a row from L1, 7.5 with the max/min of an activation
 * (they compete with the FMAs), so CLAMP (0: none, 1: relu, 2: relu6) is a
 * compile-time choice. */
PH_INLINE __m256 fma3(__m256 a, __m256 b, __m256 c, __m256 w0, __m256 w1, __m256 w2, __m256 acc)
{
    return _mm256_fmadd_ps(c, w2, _mm256_fmadd_ps(b, w1, _mm256_fmadd_ps(a, w0, acc)));
}

/* an input vector; in an edge strip (MASKED) lanes outside the row are
 * not read and are zero, mask[0..7] being -1 on the lanes inside */
PH_INLINE __m256 in_vec(const float *at, const int32_t *mask, const int MASKED)
{
    return MASKED ? _mm256_maskload_ps(at, _mm256_load_si256((const __m256i *)mask)) : _mm256_loadu_ps(at);
}

PH_INLINE void strip3(const float *const *rows, int64_t col, const float *wb, const float *vec, const int32_t *mask,
                      float *out, int64_t ow, int64_t nrows, const int MASKED, const int CLAMP)
{
    /* vec: bias, lo, hi as 8-lane vectors (memory operands, no registers) */
    const __m256 w00 = _mm256_load_ps(wb), w01 = _mm256_load_ps(wb + 8), w02 = _mm256_load_ps(wb + 16);
    const __m256 w10 = _mm256_load_ps(wb + 24), w11 = _mm256_load_ps(wb + 32), w12 = _mm256_load_ps(wb + 40);
    const __m256 w20 = _mm256_load_ps(wb + 48), w21 = _mm256_load_ps(wb + 56), w22 = _mm256_load_ps(wb + 64);
    __m256 a, b, c, c1, c2; /* c1: output row t-1 through kernel row 0; c2: row t-2 through rows 0, 1 */
    const float *row = rows[0] + col;
    a = in_vec(row, mask, MASKED), b = in_vec(row + 1, mask + 8, MASKED), c = in_vec(row + 2, mask + 16, MASKED);
    c2 = fma3(a, b, c, w00, w01, w02, _mm256_load_ps(vec));
    row = rows[1] + col;
    a = in_vec(row, mask, MASKED), b = in_vec(row + 1, mask + 8, MASKED), c = in_vec(row + 2, mask + 16, MASKED);
    c2 = fma3(a, b, c, w10, w11, w12, c2);
    c1 = fma3(a, b, c, w00, w01, w02, _mm256_load_ps(vec));
    for (int64_t t = 2; t < nrows + 2; t++, out += ow) {
        row = rows[t] + col;
        a = in_vec(row, mask, MASKED), b = in_vec(row + 1, mask + 8, MASKED), c = in_vec(row + 2, mask + 16, MASKED);
        PIN(a);
        PIN(b);
        PIN(c);
        __m256 y = fma3(a, b, c, w20, w21, w22, c2);
        if (CLAMP > 0) y = _mm256_max_ps(_mm256_load_ps(vec + 8), y);
        if (CLAMP > 1) y = _mm256_min_ps(_mm256_load_ps(vec + 16), y);
        _mm256_storeu_ps(out, y);
        c2 = fma3(a, b, c, w10, w11, w12, c1);
        /* on the last row this starts an output row nobody stores: rows[]
         * still holds the row it reads, and a branch would cost more */
        c1 = fma3(a, b, c, w00, w01, w02, _mm256_load_ps(vec));
    }
}

/* Output rows [0, nrows) of one plane from its block of rows in the buffer:
 * square 3x3, 5x5 and 7x7 kernels at strides 1 and 2 through a loop with
 * every size a constant, the rest one row at a time */
static void block_any(const float *buf, const dw_phase_geom *g, const dw_plane *p, float *out, int64_t nrows,
                      const float *clamp)
{
    const ph_ctx c = {.rs = g->rs, .lr = g->lr, .ow = p->ow, .wb = p->wb, .clamp = clamp, .bias = p->bias};
    const int64_t kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw, dh = p->dh, dw = p->dw;
    bool plain = dh == 1 && dw == 1 && kh == kw && sh == sw;
    if (plain && kh == 3 && sh == 1)
        block_rows(&c, buf, out, nrows, 3, 3, 1, 1, 1, 1);
    else if (plain && kh == 3 && sh == 2)
        block_rows(&c, buf, out, nrows, 3, 3, 2, 2, 1, 1);
    else if (plain && kh == 5 && sh == 1)
        block_rows(&c, buf, out, nrows, 5, 5, 1, 1, 1, 1);
    else if (plain && kh == 5 && sh == 2)
        block_rows(&c, buf, out, nrows, 5, 5, 2, 2, 1, 1);
    else if (plain && kh == 7 && sh == 1)
        block_rows(&c, buf, out, nrows, 7, 7, 1, 1, 1, 1);
    else if (plain && kh == 7 && sh == 2)
        block_rows(&c, buf, out, nrows, 7, 7, 2, 2, 1, 1);
    else if (sw == 1)
        for (int64_t y = 0; y < nrows; y++) /* one row at a time, bounds at run time */
            row_group(&c, buf + y * sh * c.rs, out + y * c.ow, nrows - y, 1, kh, kw, sh, 1, dh, dw);
    else
        for (int64_t y = 0; y < nrows; y++)
            row_group(&c, buf + y * sh * c.rs, out + y * c.ow, nrows - y, 1, kh, kw, sh, 2, dh, dw);
}

/* ------------------------------------------------------------ column strips (5x5, stride 1) */

/* One input row t of the 5x5 strip, V vectors at row[0] and row[8]: the
 * accumulators a[o % 5] hold output rows o = t-4 .. t, and output row t-k
 * takes kernel row k from this input row, for k in [klo, KHI] (klo > 0 on
 * the last input rows, whose later output rows do not exist); PH = t % 5.
 * Each input vector is loaded once for the five output rows it feeds, a
 * tap once for both vectors. Then output row t-4 is stored (when `store`)
 * and its accumulator restarts from the bias as row t+1's. The rotation by
 * PH keeps every accumulator in its register: moving them along instead
 * made GCC spill. Same order of sums as the tiles. */
PH_INLINE void row5(const float *row, const float *wb, const int32_t *mask, __m256 a[5][2], const float *vec, float *out,
                    int klo, const int KHI, const int PH, const bool store, const int V, const int MASKED, const int CLAMP)
{
    /* the taps' loads stay in the loop: hoisted, they went to stack slots
     * and pushed the accumulators out with them */
    __asm__("" : "+r"(wb));
#pragma GCC unroll 5
    for (int i = 0; i < 5; i++) {
        __m256 x0 = in_vec(row + i, mask + 8 * i, MASKED), x1 = x0;
        PIN(x0);
        if (V > 1) {
            x1 = in_vec(row + 8 + i, mask + 8 * (5 + i), MASKED);
            PIN(x1);
        }
#pragma GCC unroll 5
        for (int k = 0; k <= KHI; k++) {
            if (k < klo) continue;
            __m256 w = _mm256_load_ps(wb + 8 * (k * 5 + i));
            if (V > 1) PIN(w);
            const int o = (PH - k + 5) % 5;
            if (V > 1) {
                a[o][0] = _mm256_fmadd_ps(x0, w, a[o][0]);
                a[o][1] = _mm256_fmadd_ps(x1, w, a[o][1]);
            } else {
                a[o][i & 1] = _mm256_fmadd_ps(x0, w, a[o][i & 1]);
            }
        }
    }
    const int done = (PH + 1) % 5;
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) {
        if (store) {
            __m256 y = V > 1 ? a[done][v] : _mm256_add_ps(a[done][0], a[done][1]);
            if (CLAMP > 0) y = _mm256_max_ps(_mm256_load_ps(vec + 8), y);
            if (CLAMP > 1) y = _mm256_min_ps(_mm256_load_ps(vec + 16), y);
            _mm256_storeu_ps(out + 8 * v, y);
        }
        a[done][v] = _mm256_load_ps(vec);
    }
    if (V == 1) a[done][1] = _mm256_setzero_ps();
}

/* The 5x5 stride-1 strip: output columns [x, x + 8V) of rows [0, nrows),
 * walking down input rows t = 0 .. nrows+3 (rows[t] + col); output row t-4
 * is stored after input row t. 25 taps do not fit in registers as strip3's
 * nine do, so two vectors share each tap load: per input row 10 input and
 * 25 tap loads feed 50 FMAs (the R-row tiles need 180 loads per 200).
 * vec: bias, lo, hi as 8-lane vectors. */
PH_INLINE void strip5(const float *const *rows, int64_t col, const float *wb, const float *vec, const int32_t *mask,
                      float *out, int64_t ow, int64_t nrows, const int V, const int MASKED, const int CLAMP)
{
    __m256 a[5][2];
#pragma GCC unroll 5
    for (int k = 0; k < 5; k++) a[k][0] = a[k][1] = V > 1 ? _mm256_load_ps(vec) : _mm256_setzero_ps();
#pragma GCC unroll 5
    for (int k = 0; k < 5; k++) a[k][0] = _mm256_load_ps(vec);
    /* the first four input rows: output rows t-k < 0 do not exist */
    row5(rows[0] + col, wb, mask, a, vec, out, 0, 0, 0, false, V, MASKED, CLAMP);
    row5(rows[1] + col, wb, mask, a, vec, out, 0, 1, 1, false, V, MASKED, CLAMP);
    row5(rows[2] + col, wb, mask, a, vec, out, 0, 2, 2, false, V, MASKED, CLAMP);
    row5(rows[3] + col, wb, mask, a, vec, out, 0, 3, 3, false, V, MASKED, CLAMP);
    int64_t t = 4;
    for (; t + 5 <= nrows; t += 5, out += 5 * ow) {
        row5(rows[t] + col, wb, mask, a, vec, out, 0, 4, 4, true, V, MASKED, CLAMP);
        row5(rows[t + 1] + col, wb, mask, a, vec, out + ow, 0, 4, 0, true, V, MASKED, CLAMP);
        row5(rows[t + 2] + col, wb, mask, a, vec, out + 2 * ow, 0, 4, 1, true, V, MASKED, CLAMP);
        row5(rows[t + 3] + col, wb, mask, a, vec, out + 3 * ow, 0, 4, 2, true, V, MASKED, CLAMP);
        row5(rows[t + 4] + col, wb, mask, a, vec, out + 4 * ow, 0, 4, 3, true, V, MASKED, CLAMP);
    }
    /* the rest, and the last four input rows (from kernel row t - nrows + 1 on) */
    for (; t < nrows + 4; t++, out += ow) {
        int klo = t < nrows ? 0 : (int)(t - nrows + 1);
        const float *row = rows[t] + col;
        switch (t % 5) {
        case 0: row5(row, wb, mask, a, vec, out, klo, 4, 0, true, V, MASKED, CLAMP); break;
        case 1: row5(row, wb, mask, a, vec, out, klo, 4, 1, true, V, MASKED, CLAMP); break;
        case 2: row5(row, wb, mask, a, vec, out, klo, 4, 2, true, V, MASKED, CLAMP); break;
        case 3: row5(row, wb, mask, a, vec, out, klo, 4, 3, true, V, MASKED, CLAMP); break;
        default: row5(row, wb, mask, a, vec, out, klo, 4, 4, true, V, MASKED, CLAMP); break;
        }
    }
}

/* ------------------------------------------------------------ direct strips */

/* Stride-1 3x3 and 5x5 planes at least two vectors wide: every strip reads
 * the input rows in place, with no copy into the buffer at all (it took
 * 30% of a 112x112 3x3 plane and 17% of a 56x56 5x5 one, its loads
 * waiting on L2/L3 with no FMAs to overlap). Strips whose taps reach past
 * either end of a row (the edge strips) load through lane masks, zero
 * outside the row; rows above and below the input read a zeroed row. */
#define PH_DIRECT_MAX_ROWS 256
static bool direct_ok(const dw_plane *p)
{
    return p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 && p->kh == p->kw && (p->kh == 3 || p->kh == 5) &&
           p->ow >= 16 && p->iw <= DW_PHASE_FLOATS;
}

/* strip3 (K = 3) or strip5 (K = 5, V vectors), every choice compile-time */
PH_INLINE void strip_k(const float *const *rows, int64_t col, const float *wb, const float *vec, const int32_t *mask,
                       float *out, int64_t ow, int64_t nrows, const int K, const int V, const int MASKED,
                       const int CLAMP)
{
    if (K == 3)
        strip3(rows, col, wb, vec, mask, out, ow, nrows, MASKED, CLAMP);
    else
        strip5(rows, col, wb, vec, mask, out, ow, nrows, V, MASKED, CLAMP);
}

/* the same with the activation (0: none, 1: relu, 2: relu6) chosen at run time */
PH_INLINE void strip_act(const float *const *rows, const dw_plane *p, int64_t col, const float *vec,
                         const int32_t *mask, float *out, int64_t nrows, int act, const int K, const int V,
                         const int MASKED)
{
    if (act == 0)
        strip_k(rows, col, p->wb, vec, mask, out, p->ow, nrows, K, V, MASKED, 0);
    else if (act == 1)
        strip_k(rows, col, p->wb, vec, mask, out, p->ow, nrows, K, V, MASKED, 1);
    else
        strip_k(rows, col, p->wb, vec, mask, out, p->ow, nrows, K, V, MASKED, 2);
}

/* a strip of v vectors (3x3: always 1); MASKED: an edge strip, loading through mask */
PH_INLINE void strip_any(const float *const *rows, const dw_plane *p, int64_t col, const float *vec,
                         const int32_t *mask, float *out, int64_t nrows, int64_t v, const int MASKED)
{
    const int act = p->act == CONV_ACT_NONE ? 0 : p->act == CONV_ACT_RELU ? 1 : 2;
    if (p->kw == 3)
        strip_act(rows, p, col, vec, mask, out, nrows, act, 3, 1, MASKED);
    else if (v == 2)
        strip_act(rows, p, col, vec, mask, out, nrows, act, 5, 2, MASKED);
    else
        strip_act(rows, p, col, vec, mask, out, nrows, act, 5, 1, MASKED);
}

/* One strip of v vectors at output column ox of rows [0, nrows): rows[t]
 * is input row t of the block (or a zeroed row), at column 0. */
static void direct_strip(const float *const *rows, const dw_plane *p, const float *vec, float *out, int64_t nrows,
                         int64_t ox, int64_t v)
{
    const int64_t k = p->kw, col = ox - p->pl;
    out += ox;
    if (col >= 0 && col + 8 * v + k - 1 <= p->iw) {
        static const int32_t none[1] = {0};
        strip_any(rows, p, col, vec, none, out, nrows, v, 0);
        return;
    }
    /* mask[(vi * k + i) * 8 + j]: lane j of vector vi's load at tap column
     * i reads input column col + 8 vi + i + j, inside the row or not */
    _Alignas(32) int32_t mask[2 * 5 * 8];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t vi = 0; vi < v; vi++)
        for (int64_t i = 0; i < k; i++) {
            /* lane j inside when 0 <= c0 + j < iw (|c0| < 2^31: iw < 2^30, pads within the buffer) */
            __m256i c = _mm256_add_epi32(lane, _mm256_set1_epi32((int32_t)(col + 8 * vi + i)));
            __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), c),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)p->iw), c));
            _mm256_store_si256((__m256i *)(mask + (vi * k + i) * 8), m);
        }
    /* the loads address columns from col on; masked lanes are not read */
    strip_any(rows, p, col, vec, mask, out, nrows, v, 1);
}

/* Output rows [0, nrows) of one plane: 3x3 in strips of one vector, 5x5 of
 * two (the last strip overlaps the one before, rewriting the same values). */
static void direct_strips(const float *const *rows, const dw_plane *p, const float *clamp, float *out, int64_t nrows)
{
    const int64_t ow = p->ow;
    _Alignas(32) float vec[24];
    for (int i = 0; i < 8; i++) vec[i] = p->bias, vec[8 + i] = clamp[0], vec[16 + i] = clamp[1];
    for (int64_t ox = 0; ox < ow;) {
        int64_t left = ow - ox, v = p->kw == 5 && left > 8 ? 2 : 1;
        if (left < 8 * v) ox = ow - 8 * v;
        direct_strip(rows, p, vec, out, nrows, ox, v);
        ox += 8 * v;
    }
}

void dwconv_phase_rows(const dw_plane *p, const dw_phase_geom *g, const float *in_plane, const dw_plane *outs,
                       int64_t nouts, int64_t y0, int64_t y1, float *buf, int64_t layout[2])
{
    const float clamp[2] = {p->act == CONV_ACT_NONE ? -INFINITY : 0.0f, p->act == CONV_ACT_RELU6 ? 6.0f : INFINITY};
    int64_t max_rows = g->max_rows;
    for (int64_t y = y0; y < y1; y += max_rows) {
        int64_t n = y1 - y < max_rows ? y1 - y : max_rows;
        int64_t rows_in = (n - 1) * p->sh + (p->kh - 1) * p->dh + 1;
        bool ready = layout[0] == y && layout[1] == n;
        if (direct_ok(p) && rows_in <= PH_DIRECT_MAX_ROWS) {
            const float *rows[PH_DIRECT_MAX_ROWS];
            bool zero_row = false;
            for (int64_t r = 0; r < rows_in; r++) {
                int64_t iy = y - p->pt + r;
                zero_row |= iy < 0 || iy >= p->ih;
                rows[r] = iy >= 0 && iy < p->ih ? in_plane + iy * p->iw : buf;
            }
            if (zero_row && layout[0] != -2) zero_span(buf, 0, p->iw); /* -2: buf holds the zeroed row */
            if (zero_row) layout[0] = -2, layout[1] = -2;
            for (int64_t m = 0; m < nouts; m++) direct_strips(rows, &outs[m], clamp, outs[m].out + y * p->ow, n);
            continue;
        }
        fill_rows(p, g, in_plane, buf, y * p->sh - p->pt, rows_in, ready);
        layout[0] = y, layout[1] = n;
        for (int64_t m = 0; m < nouts; m++)
            block_any(buf + row_shift(p), g, &outs[m], outs[m].out + y * p->ow, n, clamp);
    }
}
