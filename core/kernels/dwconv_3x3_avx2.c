/* dwconv_3x3_avx2.c — the depthwise kernel's AVX2/FMA path for 3x3
 * planes, stride 1 or 2, read in place from NCHW with no copy.
 *
 * A vector holds 8 outputs of a row (a chunk). At stride 1 each tap column
 * is one unaligned load; 4 output rows go together, so each input row is
 * loaded once for the up to 3 of them it feeds, and 9 taps in registers
 * meet 4 independent sums. At stride 2 the taps read input columns 2x-1,
 * 2x, 2x+1: two loads of 8 columns split by one in-lane shuffle each into
 * even and odd columns, a third vector from a second pair 2 columns on; the
 * outputs come out in the order 0 1 4 5 2 3 6 7 and one permute per row
 * restores it; each output row's bottom input row, loaded once, also
 * starts the next output row's sum, and on rows of at most 7 outputs the
 * third vector is the first one moved a lane by a permute instead of two
 * more loads. Planes of rows under 8 wide (7x7 maps) run in one loop over
 * the planes of a task at either stride. Against the channel-blocked path this saves its two
 * 8x8 transposes per 8 pixels and its scratch; against the per-plane
 * strips, their per-plane setup. Columns outside the input are zeroed by
 * lane masks made once per geometry for the few chunks at a row's ends. */
#include <immintrin.h>
#include <string.h>

#include "core/kernels/dwconv.h"
#include "core/kernels/store_lanes_avx2.h"

#define D3_INLINE static inline __attribute__((always_inline))
#define UNROLL(n) _Pragma(#n)

/* a chunk's loads start these many columns after its first input column */
static const int load_offset[2][DW_3X3_LOADS] = {{0, 1, 2, 0}, {0, 8, 2, 10}};
/* input columns a chunk reads, from its first */
static inline int64_t chunk_span(const dw_plane *p) { return p->sw == 1 ? 10 : 18; }

/* first output column of chunk c: 8c, the last chunk of a row wider than 8
 * overlapping the one before instead of running past the row */
static inline int64_t chunk_first_output(int64_t ow, int64_t c) { return ow >= 8 && c * 8 + 8 > ow ? ow - 8 : c * 8; }

static inline int64_t chunk_first_input(const dw_plane *p, int64_t c)
{
    return chunk_first_output(p->ow, c) * p->sw - p->pl;
}

/* whether chunk c reads only inside the row */
static inline bool chunk_inside(const dw_plane *p, int64_t c)
{
    int64_t x0 = chunk_first_input(p, c);
    return x0 >= 0 && x0 + chunk_span(p) <= p->iw;
}

/* the output (0-7) that lane l of load v feeds, -1 for none. Stride 1:
 * lane l, whatever the load. Stride 2: the even lanes of loads 0 and 1
 * feed the column-2x-1 taps of outputs 0-3 and 4-7, their odd lanes the
 * column-2x taps, the even lanes of loads 2 and 3 the column-2x+1 taps. */
static int lane_output(int64_t stride, int v, int l)
{
    if (stride == 1) return v < 3 ? l : -1;
    if (v >= 2 && l % 2) return -1;
    return (v % 2) * 4 + l / 2;
}

bool dwconv_3x3_geometry(const dw_plane *p, dw_3x3_geom *g)
{
    memset(g, 0, sizeof *g);
    if (p->kh != 3 || p->kw != 3 || p->sh != p->sw || p->sw < 1 || p->sw > 2 || p->dh != 1 || p->dw != 1)
        return false;
    if (p->iw >= ((int64_t)1 << 30) || p->pl > 16 || p->ow < 1 || p->oh < 1) return false;
    g->chunks = (p->ow + 7) / 8;
    int64_t lead = 0, trail = 0;
    while (lead < g->chunks && !chunk_inside(p, lead)) lead++;
    if (lead < g->chunks)
        while (!chunk_inside(p, g->chunks - 1 - trail)) trail++;
    if (lead + trail > DW_3X3_MAX_EDGE_CHUNKS) return false;
    g->first_inside = lead;
    g->end_inside = g->chunks - trail;
    for (int64_t e = 0; e < lead + trail; e++) {
        int64_t c = e < lead ? e : g->end_inside + (e - lead);
        int64_t ox0 = chunk_first_output(p->ow, c), x0 = chunk_first_input(p, c);
        int64_t used = p->ow - ox0 < 8 ? p->ow - ox0 : 8; /* outputs of the chunk that are stored */
        for (int v = 0; v < DW_3X3_LOADS; v++)
            for (int l = 0; l < 8; l++) {
                int64_t x = x0 + load_offset[p->sw - 1][v] + l;
                bool inside = x >= 0 && x < p->iw;
                int out = lane_output(p->sw, v, l);
                g->row_masks[e][v][l] = inside ? -1 : 0;
                /* a lane outside the row matters only if a stored output reads it */
                g->keep_masks[e][v][l] = inside || out < 0 || out >= used ? -1 : 0;
                if (!g->keep_masks[e][v][l]) g->masked_loads[e] |= 1u << v;
            }
    }
    return true;
}

/* Stride 2: one input row's three tap vectors for a chunk, the columns tap
 * kx reads for its 8 outputs, in the shuffled order */
typedef struct row_taps3 {
    __m256 kx[3];
} row_taps3;

enum { LOAD_PLAIN, LOAD_MASK_FIRST, LOAD_MASK_THIRD, LOAD_MASK_ALL, LOAD_GUARDED };

/* Stride 2: load v of the row at r (its first column x0, which may lie
 * outside the row): plain; at the row's ends with the lanes that must read
 * as zero cleared (the first load's only, the usual left edge; the third's
 * only; or all); or masked, never touching the masked-out memory, where it
 * may lie outside the tensor */
D3_INLINE __m256 load(const float *r, int off, const __m256 m[DW_3X3_LOADS], int v, const int mode)
{
    if (mode == LOAD_PLAIN || (mode == LOAD_MASK_FIRST && v != 0) || (mode == LOAD_MASK_THIRD && v != 2))
        return _mm256_loadu_ps(r + off);
    if (mode == LOAD_GUARDED) return _mm256_maskload_ps(r + off, _mm256_castps_si256(m[v]));
    return _mm256_and_ps(_mm256_loadu_ps(r + off), m[v]);
}

/* stride 2: the row's even, odd and next even columns from two pairs of loads */
D3_INLINE row_taps3 load_row(const float *r, const __m256 m[DW_3X3_LOADS], const int mode)
{
    __m256 v0 = load(r, 0, m, 0, mode), v1 = load(r, 8, m, 1, mode);
    __m256 v2 = load(r, 2, m, 2, mode), v3 = load(r, 10, m, 3, mode);
    return (row_taps3){{_mm256_shuffle_ps(v0, v1, 0x88), _mm256_shuffle_ps(v0, v1, 0xDD),
                        _mm256_shuffle_ps(v2, v3, 0x88)}};
}

/* load_row for rows of at most 7 outputs; `pair`: from the first pair of
 * loads only, the column-2x+1 taps being the column-2x-1 taps of output
 * x+1, moved by one permute (the loads were the bottleneck, not the
 * shuffles) */
D3_INLINE row_taps3 load_row_narrow(const float *r, const __m256 m[DW_3X3_LOADS], const int mode, const bool pair)
{
    if (!pair) return load_row(r, m, mode);
    __m256 v0 = load(r, 0, m, 0, mode), v1 = load(r, 8, m, 1, mode);
    __m256 minus = _mm256_shuffle_ps(v0, v1, 0x88);
    /* lane p holds output 0 1 4 5 2 3 6 7 [p]; lane p of the result, output x's x+1 */
    const __m256i next_output = _mm256_setr_epi32(1, 4, 3, 6, 5, 2, 7, 7);
    return (row_taps3){{minus, _mm256_shuffle_ps(v0, v1, 0xDD), _mm256_permutevar8x32_ps(minus, next_output)}};
}

/* acc + the row's taps times kernel row w[0..2] */
D3_INLINE __m256 kernel_row(row_taps3 r, const __m256 w[3], __m256 acc)
{
    acc = _mm256_fmadd_ps(r.kx[0], w[0], acc);
    acc = _mm256_fmadd_ps(r.kx[1], w[1], acc);
    return _mm256_fmadd_ps(r.kx[2], w[2], acc);
}

/* Activates one output row's sum, restores the lane order (stride 2) and
 * stores it: whole while the lanes past a row narrower than 8 land on rows
 * of this block still to be written, else only the row's lanes. The
 * activation's constants are made here, not held in registers across the
 * FMAs, which need all 16. */
D3_INLINE void store_row(__m256 acc, conv_activation act, float *out, bool whole, int64_t ow, const int stride)
{
    /* max/min return their second operand on NaN: NaN passes as in the reference */
    if (act != CONV_ACT_NONE) acc = _mm256_max_ps(_mm256_setzero_ps(), acc);
    if (act == CONV_ACT_RELU6) acc = _mm256_min_ps(_mm256_set1_ps(6.0f), acc);
    if (stride == 2) acc = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc), 0xD8));
    if (whole)
        _mm256_storeu_ps(out, acc);
    else
        store_lanes(out, acc, (int)ow);
}

/* Output rows [0, end) of a block ending at row y1 and followed by `slack`
 * floats written later may be stored as whole vectors: oy * ow + 8 <=
 * y1 * ow + slack (rows under 8 wide overlap the next rows) */
static inline int64_t whole_rows_end(int64_t ow, int64_t y1, int64_t slack)
{
    if (ow >= 8 || slack >= 8) return y1;
    int64_t last_start = y1 * ow + slack - 8; /* the last offset a whole store may start at */
    return last_start < 0 ? 0 : last_start / ow + 1;
}

/* the activation over count contiguous outputs */
static inline void activate_span(float *o, int64_t count, conv_activation act)
{
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) store_row(_mm256_loadu_ps(o + i), act, o + i, true, 8, 1);
    for (; i < count; i++) o[i] = conv_activate(o[i], act);
}

/* the 9 taps, each broadcast to 8 lanes ([9][8], 32-byte aligned) */
D3_INLINE void load_taps(const float *wb, __m256 w[9])
{
    UNROLL(GCC unroll 9)
    for (int k = 0; k < 9; k++) w[k] = _mm256_load_ps(wb + 8 * k);
}

/* output rows handled together at stride 1 */
#define S1_ROWS 4

/* the load mode of edge chunk e: which of its loads need lanes cleared */
static int edge_mode(const dw_3x3_geom *g, int64_t e)
{
    unsigned bits = g->masked_loads[e];
    if (bits == 0) return LOAD_PLAIN;
    if (bits == 1) return LOAD_MASK_FIRST;
    if (bits == 4) return LOAD_MASK_THIRD;
    return LOAD_MASK_ALL;
}

/* A run's edge chunks: their masks as vectors and their load modes. */
typedef struct edge_chunks {
    __m256 keep[DW_3X3_MAX_EDGE_CHUNKS][DW_3X3_LOADS], row[DW_3X3_MAX_EDGE_CHUNKS][DW_3X3_LOADS];
    int mode[DW_3X3_MAX_EDGE_CHUNKS];
    __m256 ones[DW_3X3_LOADS]; /* the masks of chunks inside the row */
} edge_chunks;

/* Stride 1: output rows [y0, y1) of one chunk, S1_ROWS at a time; input
 * row r of a group feeds its output rows r-2..r. Loads are masked by an
 * AND (all lanes kept inside the row), except in `plain` chunks: this loop
 * issues about as many instructions a cycle as the core retires, and its
 * time moved by a fifth to a third with each copy, check or branch added
 * to it (measured: a loop per load mode, the activation or a narrow-row
 * test inside it); the one copy kept, the inner chunks of whole "same"
 * planes without the ANDs, drops 4-5 of about 21 instructions a vector
 * (in-process A/B, 1 / 2 threads: 256x28x28 0.97 / 0.98 of the time,
 * 128x56x56 0.94-0.96 / 0.95, 128x28x28 0.97 / 0.97, 64x56x56 0.95).
 * `general`: masked loads (never touching the lanes masked out, for the
 * tensor's first and last planes); `narrow`: stores of rows narrower than
 * 8, whole up to whole_end. The activation is a second pass over the rows. */
D3_INLINE void chunk_s1(const float *in, float *out, int64_t ih, int64_t iw, int64_t ow, int64_t pt, const __m256 w[9],
                        __m256 bias, const __m256 m[DW_3X3_LOADS], int64_t y0, int64_t y1, int64_t whole_end,
                        const bool general, const bool narrow, const bool same, const bool plain)
{
    if (same) ow = iw, pt = 1;
    const __m256 m0 = m[0], m1 = m[1], m2 = m[2];
    /* pointers stepped, not recomputed: the loop is short of registers */
    const float *group_in = in + (y0 - pt) * iw;
    float *group_out = out + y0 * ow;
    for (int64_t oy = y0; oy < y1; oy += S1_ROWS, group_in += S1_ROWS * iw, group_out += S1_ROWS * ow) {
        int64_t n = y1 - oy < S1_ROWS ? y1 - oy : S1_ROWS;
        __m256 acc[S1_ROWS];
        UNROLL(GCC unroll 4)
        for (int j = 0; j < S1_ROWS; j++) acc[j] = bias;
        const float *x = group_in;
        UNROLL(GCC unroll 6)
        for (int r = 0; r < S1_ROWS + 2; r++, x += iw) {
            int64_t iy = oy - pt + r;
            /* with "same" padding over all rows, r >= n + 2 implies iy >= ih */
            if (iy < 0 || iy >= ih || (!(same && y1 == ih) && r >= n + 2)) continue;
            __m256 x0, x1, x2;
            if (general) {
                x0 = _mm256_maskload_ps(x, _mm256_castps_si256(m0));
                x1 = _mm256_maskload_ps(x + 1, _mm256_castps_si256(m1));
                x2 = _mm256_maskload_ps(x + 2, _mm256_castps_si256(m2));
            } else if (plain) {
                x0 = _mm256_loadu_ps(x);
                x1 = _mm256_loadu_ps(x + 1);
                x2 = _mm256_loadu_ps(x + 2);
            } else {
                x0 = _mm256_and_ps(_mm256_loadu_ps(x), m0);
                x1 = _mm256_and_ps(_mm256_loadu_ps(x + 1), m1);
                x2 = _mm256_and_ps(_mm256_loadu_ps(x + 2), m2);
            }
            UNROLL(GCC unroll 3)
            for (int ky = 0; ky < 3; ky++) {
                int j = r - ky;
                if (j < 0 || j >= S1_ROWS) continue;
                acc[j] = _mm256_fmadd_ps(x0, w[3 * ky], acc[j]);
                acc[j] = _mm256_fmadd_ps(x1, w[3 * ky + 1], acc[j]);
                acc[j] = _mm256_fmadd_ps(x2, w[3 * ky + 2], acc[j]);
            }
        }
        float *o = group_out;
        UNROLL(GCC unroll 4)
        for (int j = 0; j < S1_ROWS; j++, o += ow) {
            if (j >= n) break;
            if (narrow) /* rows under 8 wide: stores overlap the next rows */
                store_row(acc[j], CONV_ACT_NONE, o, oy + j < whole_end, ow, 1);
            else
                _mm256_storeu_ps(o, acc[j]);
        }
    }
}

/* Stride 1: output rows [y0, y1) of one plane (in: its input plane),
 * chunk by chunk, its taps in registers throughout; `slack`: floats after
 * row y1 that are written later (rows under 8 wide store whole vectors
 * into them). */
D3_INLINE void plane_s1(const dw_plane *shape, const dw_3x3_geom *g, const edge_chunks *edges, const float *in,
                        float *out, const float *wb, float bias_value, int64_t y0, int64_t y1, int64_t slack,
                        const bool general)
{
    const int64_t ih = shape->ih, iw = shape->iw, ow = shape->ow, pt = shape->pt;
    const int64_t whole_end = whole_rows_end(ow, y1, slack);
    const bool narrow = ow < 8;
    __m256 w[9];
    load_taps(wb, w);
    const __m256 bias = _mm256_set1_ps(bias_value);
    for (int64_t c = 0; c < g->chunks; c++) {
        int64_t ox0 = chunk_first_output(ow, c), x0 = chunk_first_input(shape, c);
        const __m256 *m = edges->ones;
        if (c < g->first_inside || c >= g->end_inside) {
            int64_t e = c < g->first_inside ? c : g->first_inside + (c - g->end_inside);
            m = general ? edges->row[e] : edges->keep[e];
        }
        /* padding 1 all round, the output as large as the input (most 3x3
         * layers): its own loop, the output stride that of the input */
        if (!general && !narrow && pt == 1 && ow == iw && y0 == 0 && y1 == ih && m == edges->ones)
            chunk_s1(in + x0, out + ox0, ih, iw, ow, pt, w, bias, m, 0, ih, whole_end, false, false, true, true);
        else if (!general && narrow && pt == 1 && ow == iw && y0 == 0 && y1 == ih)
            chunk_s1(in + x0, out + ox0, ih, iw, ow, pt, w, bias, m, 0, ih, whole_end, false, true, true, false);
        else if (!general && pt == 1 && ow == iw && y0 == 0 && y1 == ih)
            chunk_s1(in + x0, out + ox0, ih, iw, ow, pt, w, bias, m, 0, ih, whole_end, false, false, true, false);
        else if (!general && !narrow && pt == 1 && ow == iw)
            chunk_s1(in + x0, out + ox0, ih, iw, ow, pt, w, bias, m, y0, y1, whole_end, false, false, true, false);
        else
            chunk_s1(in + x0, out + ox0, ih, iw, ow, pt, w, bias, m, y0, y1, whole_end, general, general || narrow,
                     false, false);
    }
    if (shape->act == CONV_ACT_NONE) return;
    if (ow < 8) {
        activate_span(out + y0 * ow, (y1 - y0) * ow, shape->act); /* whole rows of this block */
        return;
    }
    for (int64_t oy = y0; oy < y1; oy++)
        for (int64_t c = 0; c < g->chunks; c++) {
            float *o = out + oy * ow + chunk_first_output(ow, c);
            store_row(_mm256_loadu_ps(o), shape->act, o, true, ow, 1);
        }
}

/* Stride 2: output row oy near the top or bottom edge, each input row checked. */
D3_INLINE void edge_row_s2(const dw_plane *shape, const float *in, float *out, const __m256 w[9], __m256 bias,
                           const __m256 m[DW_3X3_LOADS], int64_t oy, bool whole, const int mode)
{
    __m256 sum[3] = {bias, _mm256_setzero_ps(), _mm256_setzero_ps()};
    UNROLL(GCC unroll 3)
    for (int ky = 0; ky < 3; ky++) {
        int64_t iy = oy * 2 - shape->pt + ky;
        if (iy >= 0 && iy < shape->ih)
            sum[ky] = kernel_row(load_row(in + iy * shape->iw, m, mode), w + 3 * ky, sum[ky]);
    }
    store_row(_mm256_add_ps(sum[0], _mm256_add_ps(sum[1], sum[2])), shape->act, out + oy * shape->ow, whole,
              shape->ow, 2);
}

/* Stride 2: the rows [lo, hi) of [y0, y1) whose taps all land inside the
 * input (2 oy - pt >= 0 and 2 oy - pt + 2 < ih); lo = hi = y1 if none */
static inline void inside_rows_s2(const dw_plane *shape, int64_t y0, int64_t y1, int64_t *lo, int64_t *hi)
{
    const int64_t ih = shape->ih, pt = shape->pt;
    *lo = (pt + 1) / 2, *hi = ih - 3 + pt < 0 ? 0 : (ih - 3 + pt) / 2 + 1;
    if (*lo < y0) *lo = y0;
    if (*hi > y1) *hi = y1;
    if (*lo > *hi) *lo = *hi = y1;
}

/* Stride 2: the sum of an output row whose top input row is at row (its
 * top kernel row's part already in *top), which then starts the next
 * output row's sum from its bottom input row */
D3_INLINE __m256 inside_row_s2(const float *row, int64_t iw, const __m256 w[9], __m256 bias, __m256 *top,
                               const __m256 m[DW_3X3_LOADS], const int mode, const bool pair)
{
    row_taps3 middle = load_row_narrow(row + iw, m, mode, pair), bottom = load_row_narrow(row + 2 * iw, m, mode, pair);
    __m256 sum = _mm256_add_ps(kernel_row(bottom, w + 6, *top), kernel_row(middle, w + 3, _mm256_setzero_ps()));
    *top = kernel_row(bottom, w, bias);
    return sum;
}

/* Stride 2: output rows [y0, y1) of one plane's chunk. Rows whose taps all
 * land inside the input run without checks (inside_row_s2), the bottom
 * input row of one starting the sum of the next (measured against carrying
 * that row's taps instead, 1 thread: 256x28x28 and 128x32x32 0.95 of the
 * time, 3x224x224 0.96). */
D3_INLINE void chunk_rows_s2(const dw_plane *shape, const float *in, float *out, const __m256 w[9], __m256 bias,
                             const __m256 m[DW_3X3_LOADS], int64_t y0, int64_t y1, int64_t whole_end, const int mode)
{
    const int64_t iw = shape->iw, ow = shape->ow, pt = shape->pt;
    const conv_activation act = shape->act;
    int64_t lo, hi;
    inside_rows_s2(shape, y0, y1, &lo, &hi);
    for (int64_t oy = y0; oy < lo; oy++) edge_row_s2(shape, in, out, w, bias, m, oy, oy < whole_end, mode);
    if (lo < hi) {
        const float *row = in + (lo * 2 - pt) * iw;
        __m256 top = kernel_row(load_row(row, m, mode), w, bias);
        for (int64_t oy = lo; oy < hi; oy++, row += 2 * iw)
            store_row(inside_row_s2(row, iw, w, bias, &top, m, mode, false), act, out + oy * ow, oy < whole_end, ow, 2);
    }
    for (int64_t oy = hi; oy < y1; oy++) edge_row_s2(shape, in, out, w, bias, m, oy, oy < whole_end, mode);
}

/* Stride 2: output rows [y0, y1) of one plane (in: its input plane),
 * chunk by chunk, its taps in registers throughout; `guarded`: the edge
 * chunks' loads go masked (the tensor's first and last planes). */
static __attribute__((noinline)) void plane_rows_s2(const dw_plane *shape, const dw_3x3_geom *g,
                                                    const edge_chunks *edges, const float *in, float *out,
                                                    const float *wb, float bias_value, int64_t y0, int64_t y1,
                                                    bool guarded)
{
    const int64_t ow = shape->ow, whole_end = whole_rows_end(ow, y1, 0);
    __m256 w[9];
    load_taps(wb, w);
    const __m256 bias = _mm256_set1_ps(bias_value);
    for (int64_t c = 0; c < g->chunks; c++) {
        int64_t ox0 = chunk_first_output(ow, c);
        const float *x = in + chunk_first_input(shape, c);
        float *o = out + ox0;
        if (c >= g->first_inside && c < g->end_inside) {
            chunk_rows_s2(shape, x, o, w, bias, NULL, y0, y1, whole_end, LOAD_PLAIN);
            continue;
        }
        int64_t e = c < g->first_inside ? c : g->first_inside + (c - g->end_inside);
        if (guarded) {
            chunk_rows_s2(shape, x, o, w, bias, edges->row[e], y0, y1, whole_end, LOAD_GUARDED);
            continue;
        }
        const __m256 *m = edges->keep[e];
        switch (edges->mode[e]) {
        case LOAD_PLAIN: chunk_rows_s2(shape, x, o, w, bias, m, y0, y1, whole_end, LOAD_PLAIN); break;
        case LOAD_MASK_FIRST: chunk_rows_s2(shape, x, o, w, bias, m, y0, y1, whole_end, LOAD_MASK_FIRST); break;
        case LOAD_MASK_THIRD: chunk_rows_s2(shape, x, o, w, bias, m, y0, y1, whole_end, LOAD_MASK_THIRD); break;
        default: chunk_rows_s2(shape, x, o, w, bias, m, y0, y1, whole_end, LOAD_MASK_ALL); break;
        }
    }
}

/* The walk over output planes [plane0, ...) of the whole-plane loops:
 * output plane p reads input plane p / multiplier (across images too) and
 * its channel's taps and bias, all stepped per plane rather than divided,
 * and held in the loop's locals rather than reloaded through t. */
typedef struct plane_walk {
    const float *taps, *biases, *wb; /* wb: the current plane's taps */
    float *out;                      /* the current plane's output */
    int64_t multiplier, out_channels, wb_stride, in_plane, out_plane, oc, j, in_offset;
} plane_walk;

D3_INLINE plane_walk plane_walk_at(const dw_3x3_planes *t, int64_t plane0, int64_t in_plane, int64_t out_plane)
{
    plane_walk w = {.taps = t->wb, .biases = t->bias, .out = t->output + plane0 * out_plane,
                    .multiplier = t->multiplier, .out_channels = t->out_channels, .wb_stride = t->wb_stride,
                    .in_plane = in_plane, .out_plane = out_plane, .oc = plane0 % t->out_channels,
                    .j = plane0 % t->multiplier, .in_offset = plane0 / t->multiplier * in_plane};
    w.wb = w.taps + w.oc * w.wb_stride;
    return w;
}

/* The current plane's bias and input plane offset; counts on to the next
 * plane's channel (out and wb move in plane_walk_step). */
D3_INLINE void plane_walk_take(plane_walk *w, float *bias, int64_t *plane_in)
{
    if (w->oc == w->out_channels) w->oc = 0, w->wb = w->taps;
    *bias = w->biases ? w->biases[w->oc] : 0.0f;
    *plane_in = w->in_offset;
    w->oc++;
    if (++w->j == w->multiplier) w->j = 0, w->in_offset += w->in_plane;
}

D3_INLINE void plane_walk_step(plane_walk *w)
{
    w->out += w->out_plane;
    w->wb += w->wb_stride;
}

/* Stride 2, whole planes of rows of at most 8 outputs (one chunk): the
 * plane loop inside and lean, as a 14x14 plane is only 7 row iterations
 * (in-process against oneDNN's blocked primitive on 1x512x14x14, 1 thread:
 * 0.86-0.90 of its speed when each plane reloaded the job's fields and
 * masks and ran its padded top row as an edge row; 1.09-1.12 like this).
 * Rows narrower than 8 are stored whole where the lanes past the row land
 * on rows this loop writes later. Guarded planes (see dwconv_3x3_planes)
 * go to plane_rows_s2. */
D3_INLINE void planes_s2_narrow(const dw_plane *shape, const dw_3x3_geom *g, const edge_chunks *edges,
                                const dw_3x3_planes *t, const int64_t guard[2], int64_t plane0, int64_t plane1,
                                const __m256 *m, const int mode, const bool pair)
{
    const int64_t ih = shape->ih, iw = shape->iw, ow = shape->ow, oh = shape->oh, pt = shape->pt;
    const int64_t in_plane = ih * iw, out_plane = oh * ow, first_input = chunk_first_input(shape, 0);
    const __m256 zero = _mm256_setzero_ps(), ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    /* the masks as values: through the pointer they were reloaded every row */
    const __m256 mv[DW_3X3_LOADS] = {m ? m[0] : ones, m ? m[1] : ones, m ? m[2] : ones, m ? m[3] : ones};
    int64_t lo, hi;
    inside_rows_s2(shape, 0, oh, &lo, &hi);
    /* with 1 row of top padding, output row 0 reads input rows 0 and 1 only */
    const bool top_padded = pt == 1 && lo == 1 && hi >= 1 && ih >= 2;
    /* planes from tail_from on have fewer than 8 floats of this call after them;
     * one compare a plane before them (whole_rows_end every plane: 5% slower) */
    const int64_t tail_from = plane1 - (8 + out_plane - 1) / out_plane;
    const float *const input = t->input;
    const int64_t guard_lo = guard[0], guard_hi = guard[1];
    const conv_activation act = shape->act;
    plane_walk walk = plane_walk_at(t, plane0, in_plane, out_plane);
    for (int64_t plane = plane0; plane < plane1; plane++, plane_walk_step(&walk)) {
        float bias_value;
        int64_t plane_in;
        plane_walk_take(&walk, &bias_value, &plane_in);
        float *const out = walk.out;
        const float *const wb = walk.wb;
        if (plane_in < guard_lo || plane_in > guard_hi) {
            plane_rows_s2(shape, g, edges, input + plane_in, out, wb, bias_value, 0, oh, true);
            continue;
        }
        /* the taps as memory operands: the loop needs the registers */
        const __m256 *w = (const __m256 *)__builtin_assume_aligned(wb, 32);
        const __m256 bias = _mm256_set1_ps(bias_value);
        const float *in = input + plane_in + first_input;
        const int64_t whole_end = plane < tail_from ? oh : whole_rows_end(ow, oh, (plane1 - plane - 1) * out_plane);
        /* each bottom input row also starts the next output row's sum (top) */
        __m256 top = bias;
        int64_t oy = 0;
        if (top_padded) {
            row_taps3 r0 = load_row_narrow(in, mv, mode, pair), r1 = load_row_narrow(in + iw, mv, mode, pair);
            store_row(_mm256_add_ps(kernel_row(r0, w + 3, bias), kernel_row(r1, w + 6, zero)), CONV_ACT_NONE, out,
                      whole_end > 0, ow, 2);
            top = kernel_row(r1, w, bias);
            oy = 1;
        } else {
            for (; oy < lo; oy++) edge_row_s2(shape, in, out, w, bias, mv, oy, oy < whole_end, mode);
            if (lo < hi) top = kernel_row(load_row_narrow(in + (lo * 2 - pt) * iw, mv, mode, pair), w, bias);
        }
        const float *row = top_padded ? in + iw : in + (oy * 2 - pt) * iw;
        const int64_t whole_hi = hi < whole_end ? hi : whole_end;
        for (; oy < whole_hi; oy++, row += 2 * iw)
            store_row(inside_row_s2(row, iw, w, bias, &top, mv, mode, pair), CONV_ACT_NONE, out + oy * ow, true, ow, 2);
        for (; oy < hi; oy++, row += 2 * iw)
            store_row(inside_row_s2(row, iw, w, bias, &top, mv, mode, pair), CONV_ACT_NONE, out + oy * ow, false, ow, 2);
        for (; oy < oh; oy++) edge_row_s2(shape, in, out, w, bias, mv, oy, oy < whole_end, mode);
        if (act != CONV_ACT_NONE) activate_span(out, out_plane, act);
    }
}

static __attribute__((noinline)) void planes_s2_narrow_any(const dw_plane *shape, const dw_3x3_geom *g,
                                                           const edge_chunks *edges, const dw_3x3_planes *t,
                                                           const int64_t guard[2], int64_t plane0, int64_t plane1)
{
    const bool inside = g->first_inside == 0 && g->end_inside == 1;
    const __m256 *m = inside ? NULL : edges->keep[0];
    const int mode = inside ? LOAD_PLAIN : edges->mode[0];
    /* rows of at most 7 outputs whose column-2x+1 taps all read inside the
     * row (so only the first load can need a mask: the left padding) */
    const bool pair = shape->ow <= 7 && shape->pl <= 1 && 2 * shape->ow - shape->pl <= shape->iw;
    if (pair && mode == LOAD_PLAIN) {
        planes_s2_narrow(shape, g, edges, t, guard, plane0, plane1, m, LOAD_PLAIN, true);
        return;
    }
    if (pair && mode == LOAD_MASK_FIRST) {
        planes_s2_narrow(shape, g, edges, t, guard, plane0, plane1, m, LOAD_MASK_FIRST, true);
        return;
    }
    switch (mode) {
    case LOAD_PLAIN: planes_s2_narrow(shape, g, edges, t, guard, plane0, plane1, m, LOAD_PLAIN, false); break;
    case LOAD_MASK_FIRST: planes_s2_narrow(shape, g, edges, t, guard, plane0, plane1, m, LOAD_MASK_FIRST, false); break;
    case LOAD_MASK_THIRD: planes_s2_narrow(shape, g, edges, t, guard, plane0, plane1, m, LOAD_MASK_THIRD, false); break;
    default: planes_s2_narrow(shape, g, edges, t, guard, plane0, plane1, m, LOAD_MASK_ALL, false); break;
    }
}

static void plane_rows_s1_general(const dw_plane *shape, const dw_3x3_geom *g, const edge_chunks *edges,
                                  const float *in, float *out, const float *wb, float bias, int64_t y0, int64_t y1);

/* Stride 1, whole planes of rows narrower than 8 (MobileNet's 7x7 maps):
 * the plane loop inside, as in planes_s2_narrow, with plain loads cleared
 * by AND masks and whole-vector stores wherever the lanes past a row land
 * on outputs this loop writes later. Guarded planes go to the general
 * per-plane path. */
static __attribute__((noinline)) void planes_s1_narrow(const dw_plane *shape, const dw_3x3_geom *g,
                                                       const edge_chunks *edges, const dw_3x3_planes *t,
                                                       const int64_t guard[2], int64_t plane0, int64_t plane1)
{
    const int64_t ih = shape->ih, iw = shape->iw, ow = shape->ow, oh = shape->oh, pt = shape->pt;
    const int64_t in_plane = ih * iw, out_plane = oh * ow, x0 = chunk_first_input(shape, 0);
    const bool inside = g->first_inside == 0 && g->end_inside == 1;
    const __m256 *m = inside ? edges->ones : edges->keep[0];
    const bool same = pt == 1 && ow == iw;
    const int64_t tail_from = plane1 - (8 + out_plane - 1) / out_plane;
    const float *const input = t->input;
    const int64_t guard_lo = guard[0], guard_hi = guard[1];
    const conv_activation act = shape->act;
    plane_walk walk = plane_walk_at(t, plane0, in_plane, out_plane);
    for (int64_t plane = plane0; plane < plane1; plane++, plane_walk_step(&walk)) {
        float bias_value;
        int64_t plane_in;
        plane_walk_take(&walk, &bias_value, &plane_in);
        float *const out = walk.out;
        const float *const wb = walk.wb;
        if (plane_in < guard_lo || plane_in > guard_hi) {
            plane_rows_s1_general(shape, g, edges, input + plane_in, out, wb, bias_value, 0, oh);
            continue;
        }
        __m256 w[9];
        load_taps(wb, w);
        const __m256 bias = _mm256_set1_ps(bias_value);
        const int64_t whole_end = plane < tail_from ? oh : whole_rows_end(ow, oh, (plane1 - plane - 1) * out_plane);
        if (same)
            chunk_s1(input + plane_in + x0, out, ih, iw, ow, pt, w, bias, m, 0, oh, whole_end, false, true, true, false);
        else
            chunk_s1(input + plane_in + x0, out, ih, iw, ow, pt, w, bias, m, 0, oh, whole_end, false, true, false, false);
        if (act != CONV_ACT_NONE) activate_span(out, out_plane, act);
    }
}

/* Stride 1, one instance per function (sharing one, the loops spilled) */
static __attribute__((noinline)) void plane_rows_s1(const dw_plane *shape, const dw_3x3_geom *g,
                                                    const edge_chunks *edges, const float *in, float *out,
                                                    const float *wb, float bias, int64_t y0, int64_t y1,
                                                    int64_t slack)
{
    plane_s1(shape, g, edges, in, out, wb, bias, y0, y1, slack, false);
}

/* the tensor's first and last planes (edge chunks' loads would leave it) */
static __attribute__((noinline)) void plane_rows_s1_general(const dw_plane *shape, const dw_3x3_geom *g,
                                                            const edge_chunks *edges, const float *in, float *out,
                                                            const float *wb, float bias, int64_t y0, int64_t y1)
{
    plane_s1(shape, g, edges, in, out, wb, bias, y0, y1, 0, true);
}

void dwconv_3x3_planes(const dw_plane *shape, const dw_3x3_geom *g, const dw_3x3_planes *t, int64_t plane0,
                       int64_t plane1, int64_t y0, int64_t y1)
{
    const int64_t in_plane = shape->ih * shape->iw, out_plane = shape->oh * shape->ow;
    const int64_t in_floats = t->images * t->in_channels * in_plane;
    edge_chunks edges;
    for (int64_t e = 0; e < g->first_inside + (g->chunks - g->end_inside); e++) {
        for (int v = 0; v < DW_3X3_LOADS; v++) {
            edges.keep[e][v] = _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)g->keep_masks[e][v]));
            edges.row[e][v] = _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)g->row_masks[e][v]));
        }
        edges.mode[e] = edge_mode(g, e);
    }
    for (int v = 0; v < DW_3X3_LOADS; v++) edges.ones[v] = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    /* From the floats a plane's edge chunks read before and after its first
     * one: input plane offsets in [guard[0], guard[1]] read only inside the
     * tensor, which all but its first and last planes do. */
    const int64_t first_read = chunk_first_input(shape, 0);
    const int64_t last_read = (shape->ih - 1) * shape->iw + chunk_first_input(shape, g->chunks - 1) + chunk_span(shape);
    const int64_t guard[2] = {-first_read, in_floats - last_read};
    if (shape->sw == 2 && g->chunks == 1 && y0 == 0 && y1 == shape->oh) {
        planes_s2_narrow_any(shape, g, &edges, t, guard, plane0, plane1);
        return;
    }
    if (shape->sw == 1 && shape->ow < 8 && y0 == 0 && y1 == shape->oh) {
        planes_s1_narrow(shape, g, &edges, t, guard, plane0, plane1);
        return;
    }
    /* output plane (n, oc) reads input channel ic = oc / multiplier: counted, not divided, per plane */
    int64_t n = plane0 / t->out_channels, oc = plane0 % t->out_channels;
    int64_t ic = oc / t->multiplier, j = oc % t->multiplier;
    for (int64_t plane = plane0; plane < plane1; plane++) {
        int64_t in_offset = (n * t->in_channels + ic) * in_plane;
        const float *in = t->input + in_offset, *wb = t->wb + oc * t->wb_stride;
        float *out = t->output + plane * out_plane, bias = t->bias ? t->bias[oc] : 0.0f;
        bool guarded = in_offset < guard[0] || in_offset > guard[1];
        if (shape->sw == 2)
            plane_rows_s2(shape, g, &edges, in, out, wb, bias, y0, y1, guarded);
        else if (guarded)
            plane_rows_s1_general(shape, g, &edges, in, out, wb, bias, y0, y1);
        else /* rows under 8 wide store whole vectors where later planes of this call overwrite the excess */
            plane_rows_s1(shape, g, &edges, in, out, wb, bias, y0, y1,
                          y0 == 0 && y1 == shape->oh ? (plane1 - plane - 1) * out_plane : 0);
        if (++j == t->multiplier) j = 0, ic++;
        if (++oc == t->out_channels) oc = 0, ic = 0, n++;
    }
}
