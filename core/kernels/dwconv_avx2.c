/* dwconv_avx2.c — depthwise planes with AVX2/FMA (built with -mavx2 -mfma;
 * dwconv.c calls it only when the CPU has both).
 *
 * Everything is computed in tiles of R output rows x V vectors of 8 output
 * columns. A tile walks the input rows it needs once, loads each tap's 8
 * inputs per vector once and feeds them to every output row that uses that
 * input row, so neighbouring output rows share loads. Tile shapes are
 * compile-time for 3x3 and 5x5 at stride 1 and 2 (fully unrolled); other
 * kernels, strides and dilations run the same code with run-time bounds.
 * Stride 2 loads 16 inputs and keeps the even or odd ones with one in-lane
 * shuffle, leaving lanes in the order 0,1,4,5,2,3,6,7; accumulating in that
 * order and permuting once at the store saves a cross-lane permute per tap.
 *
 * The border never reaches the tiles' loop; it is handled in one of two ways:
 *  - padded rows (the usual path): a block of the input rows that a run of
 *    output rows needs is copied into a zero-padded buffer on the stack
 *    (DW_PADDED_FLOATS), and every tile then runs unchecked;
 *  - split plane (rows too wide for that buffer): the interior (every tap
 *    inside) runs unchecked tiles; border rows run the same tiles with the
 *    kernel rows clipped to the input; the 8-column edge tiles at both ends
 *    take each tap's lanes through a small table (made once per run) that
 *    shifts them in with a lane permute from a load inside the row and zeroes
 *    the lanes outside it.
 * Measured on the 1x32x112x112 3x3 layer the padded path took 0.17-0.19 ms
 * where the split one took 0.24 ms, and far less on small planes (28x28:
 * 0.16 against 0.52 ms), so the split path only serves rows it cannot copy.
 * Masked loads (vmaskmovps) were tried for the edges: on this CPU they wait
 * for older stores to addresses that may alias (the output rows) and made
 * the edges cost as much as the interior; masked stores are avoided too. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/kernels/dwconv.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_MAX_R 4
#define DW_MAX_V 4
#define DW_STACK_TAPS 64
/* Keeps a loaded input vector in a register: otherwise GCC folds the load
 * into each FMA that uses it, repeating it for every output row. */
#define PIN(v) __asm__("" : "+x"(v))
#define DW_MAX_KW 16 /* wider kernels take the scalar path */

/* ------------------------------------------------------------ lane loads */

/* How to load lanes j = row[c + j], 0 where c + j is outside [0, width):
 * permute the 8 inputs at row[start] (inside the row) by `shift`, then
 * zero the lanes outside. One branch-free form for every case, as a
 * per-tap switch mispredicted badly; only rows shorter than a vector,
 * where no 8 inputs lie inside, go through a padded copy. */
typedef struct lane_fix {
    __m256i shift, inside;
    int64_t c, start;
    bool short_row;
} lane_fix;

static lane_fix make_fix(int64_t c, int64_t width)
{
    lane_fix f = {.c = c, .short_row = width < 8};
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    if (c >= 0 && c + 8 <= width) {
        f.start = c;
    } else if (c + 8 <= 0 || c >= width || width < 8) {
        f.start = 0;
    } else {
        f.start = c < 0 ? 0 : width - 8;
    }
    f.shift = _mm256_add_epi32(lane, _mm256_set1_epi32((int)(c - f.start)));
    if (c + 8 <= 0 || c >= width) {
        f.inside = _mm256_setzero_si256();
    } else {
        __m256i col = _mm256_add_epi32(_mm256_set1_epi32((int)c), lane);
        f.inside = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), col),
                                       _mm256_cmpgt_epi32(_mm256_set1_epi32((int)width), col));
    }
    return f;
}

static inline __m256 load_fixed(const float *row, const lane_fix *f, int64_t width)
{
    if (f->short_row) {
        if (!(f->c + 8 > 0 && f->c < width)) return _mm256_setzero_ps();
        float padded[24] = {0}; /* 8 zeros, the row, zeros */
        memcpy(padded + 8, row, (size_t)width * sizeof(float));
        return _mm256_loadu_ps(padded + 8 + f->c);
    }
    return _mm256_and_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(row + f->start), f->shift),
                         _mm256_castsi256_ps(f->inside));
}

/* The 8 lanes x[SW*j] (for SW = 2 in the order 0,1,4,5,2,3,6,7), all
 * inside the row; for SW = 2 `odd` is the parity of the tap's offset in the
 * tile, so the 16 loads start at or one before x and never pass the end
 * that the interior's column bound allows for. */
DW_INLINE __m256 tap_plain(const float *x, const int SW, int odd)
{
    if (SW == 1) return _mm256_loadu_ps(x);
    const float *pair = x - odd;
    __m256 lo = _mm256_loadu_ps(pair), hi = _mm256_loadu_ps(pair + 8);
    return odd ? _mm256_shuffle_ps(lo, hi, 0xDD) : _mm256_shuffle_ps(lo, hi, 0x88);
}

/* The same through an edge tile's fixes (lo and hi halves for SW = 2,
 * which start at the even column at or below the tap's, so `odd` is the
 * parity of the tap's input column). */
DW_INLINE __m256 tap_fixed(const float *row, const lane_fix *fix, int64_t width, const int SW, int odd)
{
    if (SW == 1) return load_fixed(row, fix, width);
    __m256 lo = load_fixed(row, &fix[0], width), hi = load_fixed(row, &fix[1], width);
    return odd ? _mm256_shuffle_ps(lo, hi, 0xDD) : _mm256_shuffle_ps(lo, hi, 0x88);
}

/* the loads of every tap of the edge tile at output column ox */
static void make_fixes(const dw_plane *p, int64_t ox, lane_fix fix[DW_MAX_KW][2])
{
    for (int64_t kx = 0; kx < p->kw; kx++) {
        int64_t c = ox * p->sw - p->pl + kx * p->dw;
        if (p->sw == 1) {
            fix[kx][0] = make_fix(c, p->iw);
        } else {
            fix[kx][0] = make_fix(c & ~(int64_t)1, p->iw); /* floor to even, also below zero */
            fix[kx][1] = make_fix((c & ~(int64_t)1) + 8, p->iw);
        }
    }
}

/* Activation as a clamp to [lo, hi] (-inf/inf, 0/inf or 0/6): max/min
 * return their second operand when either is NaN, so NaN passes as it
 * does in conv_activate. Then stride 2's lane order is undone. */
DW_INLINE __m256 finish(__m256 v, __m256 lo, __m256 hi, const int SW)
{
    v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    if (SW == 2) v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
    return v;
}

/* ------------------------------------------------------------ tiles */

/* Output rows [oy, oy+R) x columns [ox, ox+8V) (only the first n columns
 * stored when n < 8, V = 1). With R = 1 only kernel rows [ky_lo, ky_hi) are
 * summed (the others fall on padding); with R > 1 every row is inside. */
DW_INLINE void tile(const dw_plane *p, int64_t oy, int64_t ox, int64_t n, const lane_fix (*fix)[2], int64_t ky_lo,
                    int64_t ky_hi, const int R, const int V, const int64_t KH, const int64_t KW, const int64_t SH,
                    const int SW, const int64_t DH, const int64_t DW)
{
    const int64_t iw = p->iw, iy0 = oy * SH - p->pt, col0 = ox * SW - p->pl;
    const float *w = p->wb; /* 8 copies of each tap */
    __m256 acc[DW_MAX_R][DW_MAX_V];
    const __m256 bias = _mm256_set1_ps(p->bias);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[r][v] = bias;

    /* Plain tiles address taps from the tile's first input (x + constant);
     * edge tiles from the row start through their fixes. */
    if (R == 1) {
        const float *row = p->in + (iy0 + ky_lo * DH) * iw;
        for (int64_t ky = ky_lo; ky < ky_hi; ky++, row += DH * iw) {
            const float *x = row + (fix ? 0 : col0);
#pragma GCC unroll 8
            for (int64_t kx = 0; kx < KW; kx++) {
                __m256 wv = _mm256_load_ps(w + 8 * (ky * KW + kx));
                int odd = (int)((fix ? col0 + kx * DW : kx * DW) & 1);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) {
                    __m256 in = fix ? tap_fixed(row, fix[kx], iw, SW, odd)
                                    : tap_plain(x + 8 * SW * v + kx * DW, SW, odd);
                    acc[0][v] = _mm256_fmadd_ps(in, wv, acc[0][v]);
                }
            }
        }
    } else {
        /* input row t serves output row r through kernel row (t - r*SH) / DH */
        const int64_t rows = (R - 1) * SH + (KH - 1) * DH + 1;
        const float *row = p->in + iy0 * iw;
#pragma GCC unroll 8
        for (int64_t t = 0; t < rows; t++, row += iw) {
            const float *x = row + (fix ? 0 : col0);
#pragma GCC unroll 8
            for (int64_t kx = 0; kx < KW; kx++) {
                __m256 in[DW_MAX_V];
                int odd = (int)((fix ? col0 + kx * DW : kx * DW) & 1);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    in[v] = fix ? tap_fixed(row, fix[kx], iw, SW, odd) : tap_plain(x + 8 * SW * v + kx * DW, SW, odd);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) PIN(in[v]);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    int64_t d = t - r * SH;
                    if (d < 0 || d % DH != 0 || d / DH >= KH) continue;
                    __m256 wv = _mm256_load_ps(w + 8 * ((d / DH) * KW + kx));
#pragma GCC unroll 4
                    for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(in[v], wv, acc[r][v]);
                }
            }
        }
    }
    const __m256 lo = _mm256_set1_ps(p->act == CONV_ACT_NONE ? -INFINITY : 0.0f);
    const __m256 hi = _mm256_set1_ps(p->act == CONV_ACT_RELU6 ? 6.0f : INFINITY);
    float *out_row = p->out + oy * p->ow + ox;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++, out_row += p->ow) {
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            float *y = out_row + 8 * v;
            __m256 out = finish(acc[r][v], lo, hi, SW);
            if (n < 8) {
                /* not a masked store: later loads near it would wait for it to retire */
                float part[8];
                _mm256_storeu_ps(part, out);
                memcpy(y, part, (size_t)n * sizeof(float));
            } else {
                _mm256_storeu_ps(y, out);
            }
        }
    }
}

/* the kernel rows of output row oy that land inside the input */
static inline void kernel_rows(const dw_plane *p, int64_t oy, int64_t *lo, int64_t *hi)
{
    int64_t iy0 = oy * p->sh - p->pt, last = p->ih - 1 - iy0;
    *lo = iy0 >= 0 ? 0 : (-iy0 + p->dh - 1) / p->dh;
    *hi = last < 0 ? 0 : last / p->dh + 1;
    if (*hi > p->kh) *hi = p->kh;
}

/* Columns [x0, x1) (at least 8, every tap inside horizontally) of rows
 * [oy, oy+R): tiles of 8V columns, then of 8, then one ending at x1
 * (outputs it overlaps are recomputed to the same values). */
DW_INLINE void middle_rows(const dw_plane *p, int64_t oy, int64_t x0, int64_t x1, int64_t ky_lo, int64_t ky_hi,
                           const int R, const int V, const int64_t KH, const int64_t KW, const int64_t SH,
                           const int SW, const int64_t DH, const int64_t DW)
{
    int64_t ox = x0;
    for (; ox + 8 * V <= x1; ox += 8 * V) tile(p, oy, ox, 8, NULL, ky_lo, ky_hi, R, V, KH, KW, SH, SW, DH, DW);
    for (; ox + 8 <= x1; ox += 8) tile(p, oy, ox, 8, NULL, ky_lo, ky_hi, R, 1, KH, KW, SH, SW, DH, DW);
    if (ox < x1) tile(p, oy, x1 - 8, 8, NULL, ky_lo, ky_hi, R, 1, KH, KW, SH, SW, DH, DW);
}

/* The edge tiles of a row range: up to DW_EDGE_TILES per plane keep their
 * load tables for every row; beyond that (huge padding or dilation) each
 * tile rebuilds its table. */
#define DW_EDGE_TILES 4
typedef struct edge_tiles {
    int64_t count, ox[DW_EDGE_TILES], n[DW_EDGE_TILES];
    lane_fix fix[DW_EDGE_TILES][DW_MAX_KW][2];
} edge_tiles;

/* Edge tiles over columns [x0, x1); a short piece is widened to 8 columns
 * (leftwards at the right end) when the row has them, to store unmasked. */
static void add_edge_tiles(const dw_plane *p, int64_t x0, int64_t x1, edge_tiles *e, int64_t *overflow_x0)
{
    for (int64_t ox = x0; ox < x1; ox += 8) {
        if (e->count == DW_EDGE_TILES) {
            if (*overflow_x0 < 0) *overflow_x0 = ox;
            return;
        }
        int64_t start = ox, n = x1 - ox < 8 ? x1 - ox : 8;
        if (n < 8 && p->ow >= 8) {
            if (start + 8 > p->ow) start = p->ow - 8;
            n = 8;
        }
        e->ox[e->count] = start;
        e->n[e->count] = n;
        make_fixes(p, start, e->fix[e->count]);
        e->count++;
    }
}

/* One group of R rows (R = 1 with kernel rows [lo, hi) for border rows):
 * left edge tiles, the middle, right edge tiles, so each input row is
 * still in L1 for all of them. */
DW_INLINE void row_group(const dw_plane *p, int64_t oy, int64_t x0, int64_t x1, const edge_tiles *e,
                         int64_t lo, int64_t hi, const int R, const int V, const int64_t KH, const int64_t KW,
                         const int64_t SH, const int SW, const int64_t DH, const int64_t DW)
{
    for (int64_t i = 0; i < e->count; i++)
        if (e->ox[i] < x0) tile(p, oy, e->ox[i], e->n[i], e->fix[i], lo, hi, R, 1, KH, KW, SH, SW, DH, DW);
    if (x0 < x1) middle_rows(p, oy, x0, x1, lo, hi, R, V, KH, KW, SH, SW, DH, DW);
    for (int64_t i = 0; i < e->count; i++)
        if (e->ox[i] >= x0) tile(p, oy, e->ox[i], e->n[i], e->fix[i], lo, hi, R, 1, KH, KW, SH, SW, DH, DW);
}

static void rebuilt_edge_tiles(const dw_plane *p, int64_t y0, int64_t y1, int64_t x0, int64_t x1)
{
    lane_fix fix[DW_MAX_KW][2];
    for (int64_t ox = x0; ox < x1; ox += 8) {
        int64_t start = ox, n = x1 - ox < 8 ? x1 - ox : 8;
        if (n < 8 && p->ow >= 8) {
            if (start + 8 > p->ow) start = p->ow - 8;
            n = 8;
        }
        make_fixes(p, start, fix);
        for (int64_t oy = y0; oy < y1; oy++) {
            int64_t lo, hi;
            kernel_rows(p, oy, &lo, &hi);
            tile(p, oy, start, n, fix, lo, hi, 1, 1, p->kh, p->kw, p->sh, p->sw == 1 ? 1 : 2, p->dh, p->dw);
        }
    }
}

/* The column split of every plane of a run: interior columns [x0, x1) and
 * the edge tiles with their load tables. Depends on the geometry only, so
 * it is made once per run (rebuilding the tables per plane cost more than
 * a 7x7 plane's arithmetic). */
typedef struct column_plan {
    int64_t x0, x1, overflow_left, overflow_right;
    edge_tiles e;
} column_plan;
_Static_assert(sizeof(column_plan) + 32 <= DWCONV_AVX2_PLAN_BYTES, "DWCONV_AVX2_PLAN_BYTES too small");

static column_plan *plan_of(const dw_avx2_plan *plan)
{
    return (column_plan *)(((uintptr_t)plan->bytes + 31) & ~(uintptr_t)31);
}

void dwconv_avx2_prepare(const dw_plane *p, dw_avx2_plan *plan)
{
    column_plan *c = plan_of(plan);
    /* Interior columns for plain loads. Stride 2 loads 16 inputs from the
     * even tap offset at or below each tap's; the last may lie one past the
     * window, so they stop where that stays inside the row. They start on
     * a multiple of 8 when that leaves a vector, so edge tiles are whole. */
    int64_t x0 = p->ow_lo, x1 = p->ow_hi;
    if (p->sw == 2) {
        int64_t num = p->iw + p->pl - ((p->kw - 1) * p->dw & ~(int64_t)1);
        int64_t end = num < 0 ? 0 : num / 2;
        if (end < x1) x1 = end;
    }
    int64_t aligned = (x0 + 7) & ~(int64_t)7;
    if (x1 - aligned >= 8) x0 = aligned;
    if (x1 - x0 < 8 || p->oh_lo >= p->oh_hi) x0 = x1 = 0; /* no vector of interior: edge tiles everywhere */
    c->x0 = x0, c->x1 = x1;
    c->e.count = 0;
    c->overflow_left = c->overflow_right = -1;
    if (p->sw > 2 || p->kw > DW_MAX_KW) return; /* the scalar path runs these */
    add_edge_tiles(p, 0, x0, &c->e, &c->overflow_left);
    add_edge_tiles(p, x1, p->ow, &c->e, &c->overflow_right);
}

DW_INLINE void plane_rows(const dw_plane *p, const column_plan *c, int64_t y0, int64_t y1, const int R,
                          const int V, const int64_t KH, const int64_t KW, const int64_t SH, const int SW,
                          const int64_t DH, const int64_t DW)
{
    int64_t x0 = c->x0, x1 = c->x1;
    int64_t in0 = y0 > p->oh_lo ? y0 : p->oh_lo, in1 = y1 < p->oh_hi ? y1 : p->oh_hi;
    if (in0 >= in1) in0 = in1 = y1;
    int64_t lo, hi, oy = y0;
    for (; oy < in0; oy++) {
        kernel_rows(p, oy, &lo, &hi);
        row_group(p, oy, x0, x1, &c->e, lo, hi, 1, 1, KH, KW, SH, SW, DH, DW);
    }
    if (R > 1)
        for (; oy + R <= in1; oy += R) row_group(p, oy, x0, x1, &c->e, 0, KH, R, V, KH, KW, SH, SW, DH, DW);
    for (; oy < in1; oy++) row_group(p, oy, x0, x1, &c->e, 0, KH, 1, V, KH, KW, SH, SW, DH, DW);
    for (; oy < y1; oy++) {
        kernel_rows(p, oy, &lo, &hi);
        row_group(p, oy, x0, x1, &c->e, lo, hi, 1, 1, KH, KW, SH, SW, DH, DW);
    }
    if (c->overflow_left >= 0) rebuilt_edge_tiles(p, y0, y1, c->overflow_left, x0);
    if (c->overflow_right >= 0) rebuilt_edge_tiles(p, y0, y1, c->overflow_right, p->ow);
}

/* The padded path: a block of the input rows a run of output rows needs
 * is copied into a zero-padded buffer on the stack, and every tile of those
 * rows runs with plain loads. */
#define DW_PADDED_FLOATS 8192

/* the padded copy's row length: the input with its padding, and enough
 * zeros on the right for whole tiles' loads (stride 2: one more) */
static int64_t padded_width(const dw_plane *p)
{
    int64_t need = ((p->ow + 7) & ~(int64_t)7) * p->sw + (p->kw - 1) * p->dw + 2;
    int64_t have = p->pl + p->iw + p->pr;
    return need > have ? need : have;
}

static bool fits_padded(const dw_plane *p, int64_t rows)
{
    int64_t w = padded_width(p);
    int64_t need = ((rows - 1) * p->sh + (p->kh - 1) * p->dh + 1);
    return w <= DW_PADDED_FLOATS && need <= DW_PADDED_FLOATS / w;
}

/* All columns of rows [oy, oy+R) of a plane without padding: tiles of 8V
 * columns, then of 8, the last one storing only the columns left. */
DW_INLINE void padded_row_group(const dw_plane *q, int64_t oy, const int R, const int V, const int64_t KH,
                                const int64_t KW, const int64_t SH, const int SW, const int64_t DH, const int64_t DW)
{
    int64_t ox = 0;
    for (; ox + 8 * V <= q->ow; ox += 8 * V) tile(q, oy, ox, 8, NULL, 0, KH, R, V, KH, KW, SH, SW, DH, DW);
    for (; ox < q->ow; ox += 8)
        tile(q, oy, ox, q->ow - ox < 8 ? q->ow - ox : 8, NULL, 0, KH, R, 1, KH, KW, SH, SW, DH, DW);
}

DW_INLINE void padded_rows(const dw_plane *p, int64_t y0, int64_t y1, float *buf, const int R, const int V,
                           const int64_t KH, const int64_t KW, const int64_t SH, const int SW, const int64_t DH,
                           const int64_t DW)
{
    int64_t w = padded_width(p), first = y0 * SH - p->pt;
    int64_t rows = (y1 - y0 - 1) * SH + (KH - 1) * DH + 1;
    for (int64_t r = 0; r < rows; r++) {
        float *dst = buf + r * w;
        int64_t iy = first + r;
        memset(dst, 0, (size_t)w * sizeof(float));
        if (iy >= 0 && iy < p->ih) memcpy(dst + p->pl, p->in + iy * p->iw, (size_t)p->iw * sizeof(float));
    }
    /* the copy as a plane with no padding whose row 0 is output row y0's first */
    dw_plane q = *p;
    q.in = buf;
    q.ih = rows, q.iw = w;
    q.pt = y0 * SH, q.pl = 0;
    int64_t oy = y0;
    if (R > 1)
        for (; oy + R <= y1; oy += R) padded_row_group(&q, oy, R, V, KH, KW, SH, SW, DH, DW);
    for (; oy < y1; oy++) padded_row_group(&q, oy, 1, V, KH, KW, SH, SW, DH, DW);
}

/* Rows [y0, y1) in blocks whose padded copy fits the buffer. */
DW_INLINE void padded_plane(const dw_plane *p, int64_t y0, int64_t y1, const int R, const int V, const int64_t KH,
                            const int64_t KW, const int64_t SH, const int SW, const int64_t DH, const int64_t DW)
{
    _Alignas(32) float buf[DW_PADDED_FLOATS];
    int64_t w = padded_width(p);
    int64_t block = ((DW_PADDED_FLOATS / w) - (KH - 1) * DH - 1) / SH + 1; /* rows whose copy fits */
    if (block > R) block -= block % R;
    for (int64_t y = y0; y < y1; y += block)
        padded_rows(p, y, y + block < y1 ? y + block : y1, buf, R, V, KH, KW, SH, SW, DH, DW);
}

void dwconv_rows_avx2(const dw_plane *plane, const dw_avx2_plan *plan, int64_t y0, int64_t y1)
{
    const column_plan *c = plan_of(plan);
    /* Taps come pre-broadcast from pack(); a caller without packed weights
     * (tests calling the kernel directly) gets them broadcast here. */
    dw_plane copy;
    const dw_plane *p = plane;
    _Alignas(32) float taps[DW_STACK_TAPS * 8];
    if (!p->wb) {
        if (p->kh * p->kw > DW_STACK_TAPS) {
            dwconv_rows_scalar(p, y0, y1);
            return;
        }
        dwconv_broadcast_taps(p->w, p->kh * p->kw, taps);
        copy = *p;
        copy.wb = taps;
        p = &copy;
    }
    bool square = p->dh == 1 && p->dw == 1 && p->kh == p->kw && p->sh == p->sw;
    if (p->sw <= 2 && p->kw <= DW_MAX_KW && fits_padded(p, 1)) {
        if (square && p->kh == 3 && p->sw == 1)
            padded_plane(p, y0, y1, 4, 2, 3, 3, 1, 1, 1, 1);
        else if (square && p->kh == 3 && p->sw == 2)
            padded_plane(p, y0, y1, 2, 2, 3, 3, 2, 2, 1, 1);
        else if (square && p->kh == 5 && p->sw == 1)
            padded_plane(p, y0, y1, 2, 2, 5, 5, 1, 1, 1, 1);
        else if (p->sw == 1)
            padded_plane(p, y0, y1, 1, 2, p->kh, p->kw, p->sh, 1, p->dh, p->dw);
        else
            padded_plane(p, y0, y1, 1, 2, p->kh, p->kw, p->sh, 2, p->dh, p->dw);
    } else if (square && p->kh == 3 && p->sw == 1) {
        plane_rows(p, c, y0, y1, 4, 2, 3, 3, 1, 1, 1, 1);
    } else if (square && p->kh == 3 && p->sw == 2) {
        plane_rows(p, c, y0, y1, 2, 2, 3, 3, 2, 2, 1, 1);
    } else if (square && p->kh == 5 && p->sw == 1) {
        plane_rows(p, c, y0, y1, 2, 2, 5, 5, 1, 1, 1, 1);
    } else if (square && p->kh == 5 && p->sw == 2) {
        plane_rows(p, c, y0, y1, 2, 2, 5, 5, 2, 2, 1, 1);
    } else if (p->kw <= DW_MAX_KW && p->sw == 1) {
        plane_rows(p, c, y0, y1, 1, 2, p->kh, p->kw, p->sh, 1, p->dh, p->dw);
    } else if (p->kw <= DW_MAX_KW && p->sw == 2) {
        plane_rows(p, c, y0, y1, 1, 2, p->kh, p->kw, p->sh, 2, p->dh, p->dw);
    } else {
        dwconv_rows_scalar(p, y0, y1);
    }
}
