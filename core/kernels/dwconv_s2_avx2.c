/* dwconv_s2_avx2.c — the depthwise kernel's AVX2/FMA path for 3x3 stride-2
 * planes (MobileNet's downsampling layers), read in place from NCHW.
 *
 * A vector holds 8 outputs of a row. Their taps read input columns 2x-1,
 * 2x, 2x+1: two loads of 8 columns split by one shuffle each into the even
 * and odd columns, and a third vector from a second pair of loads 2 columns
 * on, so a row costs 4 loads and 3 shuffles for 8 outputs — against the
 * channel-blocked path's two 8x8 transposes per 8 pixels, the whole cost of
 * that path on these small maps. The shuffles work within 128-bit lanes, so
 * the outputs come out in the order 0 1 4 5 2 3 6 7; one permute per output
 * row restores it. Columns outside the input are zeroed by lane masks, made
 * once per geometry for the few chunks at the row's ends. */
#include <immintrin.h>
#include <string.h>

#include "core/kernels/dwconv.h"

#define S2_INLINE static inline __attribute__((always_inline))

/* a chunk's 4 loads start these many columns after its first input column */
static const int load_offset[4] = {0, 8, 2, 10};

/* first output column of chunk c: 8c, the last chunk of a row wider than 8
 * overlapping the one before instead of running past the row */
static inline int64_t chunk_first_output(int64_t ow, int64_t c) { return ow >= 8 && c * 8 + 8 > ow ? ow - 8 : c * 8; }

/* whether chunk c's 18 input columns all lie inside the row */
static inline bool chunk_inside(const dw_plane *p, int64_t c)
{
    int64_t x0 = 2 * chunk_first_output(p->ow, c) - p->pl;
    return x0 >= 0 && x0 + 18 <= p->iw;
}

/* the output (0-7) that lane l of load v feeds: the even lanes of loads 0
 * and 1 feed the column-2x-1 taps of outputs 0-3 and 4-7, their odd lanes
 * the column-2x taps, the even lanes of loads 2 and 3 the column-2x+1 taps;
 * -1 for the odd lanes of loads 2 and 3, which feed nothing */
static int lane_output(int v, int l)
{
    if (v >= 2 && l % 2) return -1;
    return (v % 2) * 4 + l / 2;
}

bool dwconv_s2_geometry(const dw_plane *p, dw_s2_geom *g)
{
    memset(g, 0, sizeof *g);
    if (p->kh != 3 || p->kw != 3 || p->sh != 2 || p->sw != 2 || p->dh != 1 || p->dw != 1) return false;
    if (p->iw >= ((int64_t)1 << 30) || p->pl > 16 || p->ow < 1 || p->oh < 1) return false;
    g->chunks = (p->ow + 7) / 8;
    int64_t lead = 0, trail = 0;
    while (lead < g->chunks && !chunk_inside(p, lead)) lead++;
    if (lead < g->chunks)
        while (!chunk_inside(p, g->chunks - 1 - trail)) trail++;
    if (lead + trail > DW_S2_MAX_EDGE_CHUNKS) return false;
    g->first_inside = lead;
    g->end_inside = g->chunks - trail;
    for (int64_t e = 0; e < lead + trail; e++) {
        int64_t c = e < lead ? e : g->end_inside + (e - lead);
        int64_t ox0 = chunk_first_output(p->ow, c), x0 = 2 * ox0 - p->pl;
        int64_t used = p->ow - ox0 < 8 ? p->ow - ox0 : 8; /* outputs of the chunk that are stored */
        for (int v = 0; v < 4; v++)
            for (int l = 0; l < 8; l++) {
                int64_t x = x0 + load_offset[v] + l;
                bool inside = x >= 0 && x < p->iw;
                int out = lane_output(v, l);
                g->row_masks[e][v][l] = inside ? -1 : 0;
                /* a lane outside the row matters only if a stored output reads it */
                g->keep_masks[e][v][l] = inside || out < 0 || out >= used ? -1 : 0;
                if (!g->keep_masks[e][v][l]) g->masked_loads[e] |= 1 << v;
            }
    }
    return true;
}

/* One input row's three tap vectors for a chunk: columns 2x-1+kx (kx = 0, 1, 2)
 * of its 8 outputs, in the shuffled order */
typedef struct s2_row {
    __m256 even, odd, next_even;
} s2_row;

S2_INLINE s2_row split_row(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
    return (s2_row){_mm256_shuffle_ps(v0, v1, 0x88), _mm256_shuffle_ps(v0, v1, 0xDD), _mm256_shuffle_ps(v2, v3, 0x88)};
}

enum { LOAD_PLAIN, LOAD_MASK_FIRST, LOAD_MASK_ALL, LOAD_GUARDED };

/* the row's columns from r (its first column x0, which may lie outside the
 * row): plain loads; or at the row's ends plain loads with the lanes that
 * must read as zero cleared (the first load's only, the usual left edge, or
 * all four); or masked loads, which never touch the masked-out memory,
 * where that memory may lie outside the tensor */
S2_INLINE s2_row load_row(const float *r, const __m256 m[4], const int mode)
{
    if (mode == LOAD_PLAIN)
        return split_row(_mm256_loadu_ps(r), _mm256_loadu_ps(r + 8), _mm256_loadu_ps(r + 2), _mm256_loadu_ps(r + 10));
    if (mode == LOAD_MASK_FIRST)
        return split_row(_mm256_and_ps(_mm256_loadu_ps(r), m[0]), _mm256_loadu_ps(r + 8), _mm256_loadu_ps(r + 2),
                         _mm256_loadu_ps(r + 10));
    if (mode == LOAD_MASK_ALL)
        return split_row(_mm256_and_ps(_mm256_loadu_ps(r), m[0]), _mm256_and_ps(_mm256_loadu_ps(r + 8), m[1]),
                         _mm256_and_ps(_mm256_loadu_ps(r + 2), m[2]), _mm256_and_ps(_mm256_loadu_ps(r + 10), m[3]));
    return split_row(_mm256_maskload_ps(r, _mm256_castps_si256(m[0])),
                     _mm256_maskload_ps(r + 8, _mm256_castps_si256(m[1])),
                     _mm256_maskload_ps(r + 2, _mm256_castps_si256(m[2])),
                     _mm256_maskload_ps(r + 10, _mm256_castps_si256(m[3])));
}

/* weights by row: w[(3*ky + kx) * 8], each tap broadcast to 8 lanes */
S2_INLINE __m256 row_taps(s2_row r, const float *w, __m256 acc)
{
    acc = _mm256_fmadd_ps(r.even, _mm256_load_ps(w), acc);
    acc = _mm256_fmadd_ps(r.odd, _mm256_load_ps(w + 8), acc);
    return _mm256_fmadd_ps(r.next_even, _mm256_load_ps(w + 16), acc);
}

/* the low `lanes` (< 8) lanes of v to dst (masked stores are slow on AMD) */
static inline void store_lanes(float *dst, __m256 v, int lanes)
{
    __m128 x = _mm256_castps256_ps128(v);
    if (lanes & 4) {
        _mm_storeu_ps(dst, x);
        x = _mm256_extractf128_ps(v, 1);
        dst += 4;
    }
    if (lanes & 2) {
        _mm_storel_pi((__m64 *)(void *)dst, x);
        x = _mm_movehl_ps(x, x);
        dst += 2;
    }
    if (lanes & 1) _mm_store_ss(dst, x);
}

/* Sums the taps of one output row, activates it, restores the lane order
 * and stores it: whole while the lanes past a row narrower than 8 land on
 * rows of this block still to be written, else only the row's lanes. */
S2_INLINE void finish_row(__m256 top, __m256 mid, __m256 bottom, conv_activation act, float *out, bool whole,
                          int64_t ow)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 acc = _mm256_add_ps(top, _mm256_add_ps(mid, bottom));
    /* max/min return their second operand on NaN: NaN passes as in the reference */
    if (act != CONV_ACT_NONE) acc = _mm256_max_ps(zero, acc);
    if (act == CONV_ACT_RELU6) acc = _mm256_min_ps(_mm256_set1_ps(6.0f), acc);
    acc = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc), 0xD8));
    if (whole)
        _mm256_storeu_ps(out, acc);
    else
        store_lanes(out, acc, (int)ow);
}

/* Output row oy near the top or bottom edge: each input row checked. */
S2_INLINE void edge_row(const dw_plane *shape, const float *in, float *out, const float *w, __m256 bias,
                        const __m256 m[4], int64_t oy, bool whole, const int mode)
{
    const int64_t ih = shape->ih, iw = shape->iw;
    __m256 sum[3] = {bias, _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t ky = 0; ky < 3; ky++) {
        int64_t iy = oy * 2 - shape->pt + ky;
        if (iy >= 0 && iy < ih) sum[ky] = row_taps(load_row(in + iy * iw, m, mode), w + ky * 24, sum[ky]);
    }
    finish_row(sum[0], sum[1], sum[2], shape->act, out + oy * shape->ow, whole, shape->ow);
}

/* Output rows [y0, y1) of one plane's chunk (in: its first input column
 * on input row 0; out: its first output on output row 0). Rows whose taps
 * all land inside the input run without checks, and the bottom input row
 * of one output row, the top row of the next (stride 2, 3 rows), is loaded
 * once. Each kernel row sums apart, so an output waits on 3 FMAs and 2 adds
 * instead of a chain of 9. */
S2_INLINE void chunk_rows(const dw_plane *shape, const float *in, float *out, const float *w, float bias_value,
                          const __m256 m[4], int64_t y0, int64_t y1, const int mode)
{
    const int64_t ih = shape->ih, iw = shape->iw, ow = shape->ow, pt = shape->pt;
    const conv_activation act = shape->act; /* a local: the stores may alias *shape */
    const __m256 bias = _mm256_set1_ps(bias_value), zero = _mm256_setzero_ps();
    /* rows [0, whole_end) may be stored whole: oy * ow + 8 <= y1 * ow */
    int64_t whole_end = ow >= 8 ? y1 : y1 - (8 + ow - 1) / ow + 1;
    /* inside rows: 2 oy - pt >= 0 and 2 oy - pt + 2 < ih */
    int64_t lo = (pt + 1) / 2, hi = ih - 3 + pt < 0 ? 0 : (ih - 3 + pt) / 2 + 1;
    if (lo < y0) lo = y0;
    if (hi > y1) hi = y1;
    if (lo > hi) lo = hi = y1;
    for (int64_t oy = y0; oy < lo; oy++) edge_row(shape, in, out, w, bias, m, oy, oy < whole_end, mode);
    if (lo < hi) {
        const float *row = in + (lo * 2 - pt) * iw;
        s2_row carry = load_row(row, m, mode);
        for (int64_t oy = lo; oy < hi; oy++) {
            s2_row next = load_row(row + iw, m, mode), last = load_row(row + 2 * iw, m, mode);
            __m256 top = row_taps(carry, w, bias), mid = row_taps(next, w + 24, zero);
            __m256 bottom = row_taps(last, w + 48, zero);
            finish_row(top, mid, bottom, act, out + oy * ow, oy < whole_end, ow);
            carry = last;
            row += 2 * iw;
        }
    }
    for (int64_t oy = hi; oy < y1; oy++) edge_row(shape, in, out, w, bias, m, oy, oy < whole_end, mode);
}

/* One chunk of planes [plane0, plane1), its loads in `mode`. A chunk that
 * reads outside the row reads outside the tensor only on the tensor's first
 * or last plane: those take masked loads (row_masks: every lane outside
 * the row off). */
S2_INLINE void chunk_planes(const dw_plane *shape, const dw_s2_planes *t, int64_t plane0, int64_t plane1, int64_t c,
                            const __m256 keep[4], const __m256 row[4], int64_t y0, int64_t y1, const int mode)
{
    const int64_t in_plane = shape->ih * shape->iw, out_plane = shape->oh * shape->ow;
    const int64_t ox0 = chunk_first_output(shape->ow, c), x0 = 2 * ox0 - shape->pl;
    const int64_t in_floats = t->images * t->in_channels * in_plane;
    const bool reads_outside = row != NULL;
    for (int64_t plane = plane0; plane < plane1; plane++) {
        int64_t n = plane / t->out_channels, oc = plane % t->out_channels;
        int64_t in_offset = (n * t->in_channels + oc / t->multiplier) * in_plane + x0;
        const float *in = t->input + in_offset, *w = t->wb + oc * t->wb_stride;
        float *out = t->output + plane * out_plane + ox0;
        float bias = t->bias ? t->bias[oc] : 0.0f;
        if (reads_outside && (in_offset < 0 || in_offset + (shape->ih - 1) * shape->iw + 18 > in_floats))
            chunk_rows(shape, in, out, w, bias, row, y0, y1, LOAD_GUARDED);
        else
            chunk_rows(shape, in, out, w, bias, keep, y0, y1, mode);
    }
}

static void chunk_range(const dw_plane *shape, const dw_s2_geom *g, const dw_s2_planes *t, int64_t plane0,
                        int64_t plane1, int64_t c, int64_t y0, int64_t y1)
{
    if (c >= g->first_inside && c < g->end_inside) {
        chunk_planes(shape, t, plane0, plane1, c, NULL, NULL, y0, y1, LOAD_PLAIN);
        return;
    }
    int64_t e = c < g->first_inside ? c : g->first_inside + (c - g->end_inside);
    __m256 keep[4], row[4];
    for (int v = 0; v < 4; v++) {
        keep[v] = _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)g->keep_masks[e][v]));
        row[v] = _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)g->row_masks[e][v]));
    }
    if (g->masked_loads[e] == 0)
        chunk_planes(shape, t, plane0, plane1, c, keep, row, y0, y1, LOAD_PLAIN);
    else if (g->masked_loads[e] == 1)
        chunk_planes(shape, t, plane0, plane1, c, keep, row, y0, y1, LOAD_MASK_FIRST);
    else
        chunk_planes(shape, t, plane0, plane1, c, keep, row, y0, y1, LOAD_MASK_ALL);
}

void dwconv_s2_planes(const dw_plane *shape, const dw_s2_geom *g, const dw_s2_planes *t, int64_t plane0,
                      int64_t plane1, int64_t y0, int64_t y1)
{
    /* a row of one chunk: the planes in the inner loop, its masks loaded
     * once (per-plane setup is a good part of a 7x7 plane's ~100 cycles) */
    if (g->chunks == 1) {
        chunk_range(shape, g, t, plane0, plane1, 0, y0, y1);
        return;
    }
    for (int64_t plane = plane0; plane < plane1; plane++)
        for (int64_t c = 0; c < g->chunks; c++) chunk_range(shape, g, t, plane, plane + 1, c, y0, y1);
}
