/* implicit_gemm_impl.h — the implicit GEMM of conv_implicit_gemm_avx2.c (see
 * its opening comment), written once for a vector width: included by
 * conv_implicit_gemm_avx2.c (8 lanes) and conv_implicit_gemm_avx512.c (16),
 * which define IG_LANES, IG_VEC, the vector operations and the register
 * block (IG_ROWS x IG_VECS) first. Everything here is static; each file
 * exports its own workspace and run functions. */
#ifndef CONVD_CORE_KERNELS_IMPLICIT_GEMM_IMPL_H
#define CONVD_CORE_KERNELS_IMPLICIT_GEMM_IMPL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/kernels/gemm_common.h"

/* A task's zero-padded input band (every channel of its group and every
 * phase) stays within this many floats, about a quarter of the L2: it is
 * written right before it is read, so the reads hit the cache. */
#define IG_BAND_FLOATS (32 * 1024)
#define IG_SLACK IG_LANES /* floats after a flat-mode band that its last vector reads */
#define IG_BLOCK (IG_VECS * IG_LANES) /* floats a block's vectors span when they share a row */
#define IG_TASKS_PER_THREAD 4 /* when the images and groups alone are too few */

typedef struct ig_geometry {
    int64_t hp, wp;  /* padded plane */
    int64_t hq, wq;  /* one polyphase component (the padded plane when stride 1) */
    int64_t phases;  /* components per input plane: sh * sw */
    int64_t halo;    /* phase rows read below a band's last output row: (kh-1)*dh / sh */
    int64_t band;    /* output rows per task */
    int64_t bands;   /* tasks per (image, group) */
    int64_t rows;    /* phase rows per plane of a task's padded band (hq when read in place) */
    int64_t spill;   /* floats the last row's taps read past its plane's end (merged padding) */
    int64_t per_row; /* vectors per output row (rows mode) */
    bool flat;       /* output rows narrower than a vector: vectors over flattened positions */
    bool copy;       /* the input needs a zero-padded copy */
    size_t band_floats; /* one thread's padded band, CONV_ALIGNMENT-aligned; 0 without copy */
} ig_geometry;

/* The padded copy is made per task, one band of output rows of one
 * (image, group) at a time, into the thread's own buffer: one pass over the
 * input instead of a copy of the whole tensor, the band hot in the cache
 * when the taps read it, and a single parallel loop. Bands are sized for the
 * cache, then split further until every thread has IG_TASKS_PER_THREAD of
 * them, in a count that divides evenly between the threads. */
static void ig_geometry_of(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                           ig_geometry *g)
{
    g->hp = in->h + p->pad_top + p->pad_bottom;
    g->wp = in->w + p->pad_left + p->pad_right;
    g->hq = (g->hp + p->stride_h - 1) / p->stride_h;
    g->wq = (g->wp + p->stride_w - 1) / p->stride_w;
    g->phases = p->stride_h * p->stride_w;
    g->halo = (p->kernel_h - 1) * p->dilation_h / p->stride_h;
    g->flat = out->w < IG_LANES;
    g->per_row = (out->w + IG_LANES - 1) / IG_LANES;
    /* flat mode's last vector reads past the band: only into the copy's slack */
    g->copy = p->pad_top || p->pad_bottom || p->pad_left || p->pad_right || g->phases > 1 || g->flat;
    g->spill = 0;
    if (g->copy && p->stride_w == 1) {
        /* Consecutive rows share their padding: row r's right padding is
         * row r+1's left padding, so a row takes in->w + max(left, right)
         * floats instead of both (28-wide rows padded by 1 compute 29
         * positions each, not 30). The row width stays at least out->w, so
         * flattened positions still map to one output each. The last row's
         * right padding then reads that many floats past its plane: the next
         * plane's left padding, or zeros written there. */
        int64_t z = p->pad_left > p->pad_right ? p->pad_left : p->pad_right;
        if (out->w - in->w > z) z = out->w - in->w;
        g->wq = in->w + z;
        g->spill = g->wp - g->wq > 0 ? g->wp - g->wq : 0;
    }
    if (g->copy && !g->flat) {
        /* Rows mode reads no row past its own outputs, so the copy's rows
         * need not share padding; a row length rounded up to a vector keeps
         * every row of every phase vector-aligned, and then so are the loads
         * of every tap whose column offset is a multiple of 8 (2 of 3 taps of
         * the stride-2 stem layer: 0.33 -> 0.316 ms at 1 thread, min). */
        g->wq = ((g->wp + p->stride_w - 1) / p->stride_w + IG_LANES - 1) & ~(int64_t)(IG_LANES - 1);
        g->spill = 0;
    }
    if (threads < 1) threads = 1;
    int64_t oh_n = out->h, outer = out->n * p->groups;
    int64_t bands = 1;
    if (g->copy) {
        /* floats of one phase row over the group's channels and phases (small: shapes are checked) */
        int64_t per_row = (p->in_channels / p->groups) * g->phases * g->wq;
        int64_t fit = IG_BAND_FLOATS / (per_row > 0 ? per_row : 1) - g->halo;
        if (fit < 1) fit = 1;
        bands = (oh_n + fit - 1) / fit;
    }
    if (threads > 1) {
        int64_t want = IG_TASKS_PER_THREAD * (int64_t)threads;
        if (outer * bands < want) bands = (want + outer - 1) / outer;
        while ((outer * bands) % threads && bands < oh_n) bands++;
    }
    if (bands > oh_n) bands = oh_n;
    g->band = (oh_n + bands - 1) / bands;
    g->bands = (oh_n + g->band - 1) / g->band;
    g->rows = g->copy ? g->band + g->halo : g->hq;
    g->band_floats = 0;
    if (g->copy) {
        /* bounded by the padded input, whose size the caller checked */
        size_t f = (size_t)(p->in_channels / p->groups) * (size_t)g->phases * (size_t)g->rows * (size_t)g->wq +
                   (size_t)g->spill + (g->flat ? IG_SLACK : 0);
        g->band_floats = (f + CONV_ALIGNMENT / sizeof(float) - 1) & ~(CONV_ALIGNMENT / sizeof(float) - 1);
    }
}

/* Workspace: the tap offset table, the table of input rows to prefetch (at
 * most one per tap), then one padded band per thread. */
static size_t ig_tables_bytes(size_t taps)
{
    return (2 * taps * sizeof(int64_t) + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1);
}

static bool ig_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads, size_t *bytes)
{
    size_t taps, band_bound;
    int64_t k_dims[3] = {p->in_channels / p->groups, p->kernel_h, p->kernel_w};
    /* A band holds at most cin_g x (hp + sh + (kh-1)*dh) x (wp + sw)
     * floats; refuse what cannot be addressed before ig_geometry_of
     * multiplies any of it in int64. */
    int64_t band_dims[3] = {p->in_channels / p->groups,
                            in->h + p->pad_top + p->pad_bottom + p->stride_h + (p->kernel_h - 1) * p->dilation_h,
                            in->w + p->pad_left + p->pad_right + p->stride_w};
    if (!conv_dims_product(k_dims, 3, &taps) || taps > SIZE_MAX / 4 / sizeof(int64_t) ||
        !conv_dims_product(band_dims, 3, &band_bound) || band_bound > SIZE_MAX / 8 / sizeof(float))
        return false;
    ig_geometry g;
    ig_geometry_of(p, in, out, threads, &g);
    size_t padded;
    if (!conv_size_mul(g.band_floats, sizeof(float), &padded) ||
        !conv_size_mul(padded, (size_t)(threads < 1 ? 1 : threads), &padded))
        return false;
    return conv_size_add(ig_tables_bytes(taps), padded, bytes);
}

typedef struct ig_job {
    const conv_run_args *a;
    ig_geometry g;
    conv_activation act;
    int64_t k;                  /* taps per output: cin_g * kh * kw */
    const int64_t *offset;      /* [k]: where tap t reads, relative to the output position */
    const int64_t *prefetch;    /* [prefetches]: the distinct input rows the taps read */
    int64_t prefetches;
    float *bands;               /* [threads][band_floats] when the input needs a padded copy */
} ig_job;

/* Phase rows [r0, r0 + rows) of one input plane, every phase, into dst
 * ([phases][g->rows][wq]); rows past the padded plane are zeros. */
static void ig_pad_band(const ig_job *job, const float *src, float *dst, int64_t r0, int64_t rows)
{
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const ig_geometry *g = &job->g;
    int64_t sh = p->stride_h, sw = p->stride_w;
    int64_t ih_n = a->in.h, iw_n = a->in.w, wq = g->wq, pl = p->pad_left, phase_plane = g->rows * wq;
    /* row by row of the input plane, so that its rows are read in order */
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t py = 0; py < sh; py++) {
            float *base = dst + py * sw * phase_plane;
            int64_t ih = (r0 + r) * sh + py - p->pad_top;
            if (ih < 0 || ih >= ih_n) {
                /* (sw == 1: with the spill of the last row) */
                for (int64_t px = 0; px < sw; px++)
                    memset(base + px * phase_plane + r * wq, 0,
                           (size_t)(wq + (r == rows - 1 ? g->spill : 0)) * sizeof(float));
                continue;
            }
            const float *in_row = src + ih * iw_n;
#if IG_LANES == 16
            if (sw == 1) {
                /* AVX-512: each vector of the padded row as one load masked
                 * to the input's columns (masked lanes are not read), no
                 * libc calls: three a row, for rows of ~30 floats, were a
                 * tenth of a 16-channel group's time */
                float *d = base + r * wq;
                int64_t end = wq + (r == rows - 1 ? g->spill : 0);
                for (int64_t x = 0; x < end; x += IG_LANES) {
                    int64_t col = x - pl, lo = col < 0 ? -col : 0, hi = iw_n - col;
                    if (hi > IG_LANES) hi = IG_LANES;
                    __mmask16 keep = end - x >= IG_LANES ? 0xFFFF : (__mmask16)((1u << (end - x)) - 1u);
                    __mmask16 in = lo < hi ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
                    const float *from = (const float *)((uintptr_t)in_row + (uintptr_t)(col * (int64_t)sizeof(float)));
                    _mm512_mask_storeu_ps(d + x, keep, _mm512_maskz_loadu_ps(in & keep, from));
                }
                continue;
            }
#endif
            if (sw == 1) {
                float *d = base + r * wq;
                memset(d, 0, (size_t)pl * sizeof(float));
                memcpy(d + pl, in_row, (size_t)iw_n * sizeof(float));
                memset(d + pl + iw_n, 0, (size_t)(wq - pl - iw_n) * sizeof(float));
                if (r == rows - 1) memset(d + wq, 0, (size_t)g->spill * sizeof(float));
            } else if (sw == 2) {
                /* input column 2m + e lands in phase (e + pl) % 2 at (e + pl) / 2 + m:
                 * split the row into its even and odd columns in one pass */
                float *row0 = base + r * wq, *row1 = base + phase_plane + r * wq;
                int64_t e0 = pl / 2, n0 = (iw_n + 1) / 2, o0 = (1 + pl) / 2, n1 = iw_n / 2;
                float *even = (pl % 2 ? row1 : row0) + e0, *odd = (pl % 2 ? row0 : row1) + o0;
                float *even_row = pl % 2 ? row1 : row0, *odd_row = pl % 2 ? row0 : row1;
                memset(even_row, 0, (size_t)e0 * sizeof(float));
                memset(even + n0, 0, (size_t)(wq - e0 - n0) * sizeof(float));
                memset(odd_row, 0, (size_t)o0 * sizeof(float));
                memset(odd + n1, 0, (size_t)(wq - o0 - n1) * sizeof(float));
                int64_t m = 0;
                for (; 2 * m + 16 <= iw_n; m += 8) {
                    __m256 lo = _mm256_loadu_ps(in_row + 2 * m), hi = _mm256_loadu_ps(in_row + 2 * m + 8);
                    /* the shuffles pick lanes within 128-bit halves; the permute orders the halves */
                    __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                    __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
                    _mm256_storeu_ps(even + m, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8)));
                    _mm256_storeu_ps(odd + m, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xd8)));
                }
                for (; 2 * m < iw_n; m++) {
                    even[m] = in_row[2 * m];
                    if (2 * m + 1 < iw_n) odd[m] = in_row[2 * m + 1];
                }
            } else {
                for (int64_t px = 0; px < sw; px++) memset(base + px * phase_plane + r * wq, 0, (size_t)wq * sizeof(float));
                for (int64_t c = 0; c < iw_n; c++)
                    base[((c + pl) % sw) * phase_plane + r * wq + (c + pl) / sw] = in_row[c];
            }
        }
    }
}

/* Where one register block's vectors read and write: vector v loads the
 * band at in_off[v] (plus each tap's offset) and, in rows mode, stores its 8
 * lanes at out_off[v] of each output plane. Worked out once per block for
 * all its output channels. */
typedef struct ig_pos {
    int64_t in_off[IG_VECS], out_off[IG_VECS];
} ig_pos;

/* Activates and writes one register block's `rows` x `vecs` vectors.
 * Inlined into ig_block so the accumulators go from registers to memory
 * once. Rows mode stores whole vectors (every lane is an output, replacing
 * the branchy lane bookkeeping of vectors that wrapped rows: stem layer
 * 0.36 -> 0.33 ms); flat mode, lane by lane, dropping the lanes in the
 * padding or past the band (AVX2 masked stores are microcoded and slow on
 * AMD). */
static inline __attribute__((always_inline)) void ig_store(const ig_job *job, float *out, int64_t oc0, int rows,
                                                           int vecs, IG_VEC acc[][IG_VECS], const ig_pos *pos,
                                                           int64_t span)
{
    conv_activation act = job->act;
    /* locals: the compiler cannot tell that the stores leave them alone */
    const bool flat = job->g.flat;
    int64_t ow_n = job->a->out.w, wq = job->g.wq, plane = job->a->out.h * ow_n;
    int64_t out_off[IG_VECS];
    _Pragma("GCC unroll 8")
    for (int v = 0; v < vecs; v++) out_off[v] = pos->out_off[v];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++) {
        float *dst = out + (oc0 + r) * plane;
        _Pragma("GCC unroll 8")
        for (int v = 0; v < vecs; v++) {
            IG_VEC x = acc[r][v];
            if (act != CONV_ACT_NONE) {
                /* NaN stays NaN, as torch does */
                x = IG_RELU(x);
                if (act == CONV_ACT_RELU6) x = IG_MIN6(x);
            }
            if (!flat) {
                IG_STOREU(dst + out_off[v], x);
            } else {
                float lane[IG_LANES];
                IG_STOREU(lane, x);
                int64_t j = pos->in_off[v];
                for (int i = 0; i < IG_LANES && j + i < span; i++) {
                    int64_t oh = (j + i) / wq, ow = (j + i) % wq;
                    if (ow < ow_n) dst[oh * ow_n + ow] = lane[i];
                }
            }
        }
    }
}

/* One tap t of a register block: its `rows` weights broadcast, its input
 * vectors read at offset o from each vector's position. */
static inline __attribute__((always_inline)) void ig_tap(const float *w, int64_t k, int64_t t, int64_t o, int rows,
                                                         int vecs, const float *const *src_v,
                                                         IG_VEC sum[][IG_VECS])
{
    /* the row weights stay in registers, one input vector at a time */
    IG_VEC wv[IG_ROWS];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++) wv[r] = IG_SET1(w[r * k + t]);
    _Pragma("GCC unroll 8")
    for (int v = 0; v < vecs; v++) {
        IG_VEC x = IG_LOADU(src_v[v] + o);
        /* one load per vector: otherwise gcc folds it into every FMA */
        __asm__("" : "+v"(x));
        _Pragma("GCC unroll 8")
        for (int r = 0; r < rows; r++) sum[r][v] = IG_FMADD(wv[r], x, sum[r][v]);
    }
}

/* Taps of a 3x3 kernel over 3 input channels (RGB first layers, the
 * commonest GEMM here): a full block of them is unrolled whole. Without the
 * loop's counter, compare and branch (and its mispredicted exit once per
 * block) a tap is 21 instructions for 12 FMAs instead of 25, which is what
 * counts when another thread shares the core: kernel alone, interleaved
 * runs on a loaded machine, median stem layer 0.46-0.48 -> 0.44-0.46 ms,
 * 3->10 at 128x128 0.188-0.192 -> 0.180-0.186, minimums unchanged. */
#define IG_RGB3X3_TAPS 27

/* One register block: `rows` (1 or IG_ROWS) output channels x `vecs`
 * vectors. Inlined with constant rows/vecs so each variant's loops unroll. */
static inline __attribute__((always_inline)) void ig_block(const ig_job *job, const float *in, const float *w,
                                                           int rows, int vecs, const ig_pos *pos, float *out,
                                                           const float *bias, int64_t oc0, int64_t span)
{
    int64_t k = job->k;
    const int64_t *offset = job->offset;
    /* the sums start from the bias: no add per vector at the store */
    IG_VEC sum[IG_ROWS][IG_VECS];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++) {
        IG_VEC b = IG_SET1(bias ? bias[oc0 + r] : 0.0f);
        _Pragma("GCC unroll 8")
        for (int v = 0; v < vecs; v++) sum[r][v] = b;
    }
    const float *src_v[IG_VECS];
    _Pragma("GCC unroll 8")
    for (int v = 0; v < vecs; v++) src_v[v] = in + pos->in_off[v];
    if (rows == IG_ROWS && vecs == IG_VECS && k == IG_RGB3X3_TAPS) {
        _Pragma("GCC unroll 32")
        for (int t = 0; t < IG_RGB3X3_TAPS; t++) ig_tap(w, IG_RGB3X3_TAPS, t, offset[t], rows, vecs, src_v, sum);
    } else {
        for (int64_t t = 0; t < k; t++) ig_tap(w, k, t, offset[t], rows, vecs, src_v, sum);
    }
    ig_store(job, out, oc0, rows, vecs, sum, pos, span);
}

/* The output lines a register block will store (`rows` planes from `out`,
 * floats [lo, hi) of each) into L2 ahead of time. A block's stores go to
 * lines no cache holds yet (a stem layer's 1.6 MB output is three L2s), one
 * run of lines in each of 32 planes, more streams than the hardware
 * prefetcher follows; their misses are what made the stem layer's time
 * swing on a busy machine. Asked for one block ahead, channel block by
 * channel block, they arrive while that block computes (stem layer, kernel
 * alone, interleaved runs on a loaded machine: median 0.61 -> 0.49 ms, p10
 * 0.39 -> 0.33, min unchanged). L2 rather than L1 (prefetchw measured the
 * same): the lines are written whole, and in L1 they would only push out
 * the input rows the taps reuse. */
static inline void ig_prefetch_out(const float *out, int64_t plane, int rows, int64_t lo, int64_t hi)
{
    for (int r = 0; r < rows; r++) {
        uintptr_t end = (uintptr_t)(out + r * plane + hi);
        for (uintptr_t line = (uintptr_t)(out + r * plane + lo) & ~(uintptr_t)63; line < end; line += 64)
            _mm_prefetch((const char *)line, _MM_HINT_T1);
    }
}

/* Every output channel of the group over one block of vectors, each channel
 * block prefetching its outputs of the next one ([next_lo, next_hi) of each
 * plane; empty for the last block and in flat mode); `vecs` is a constant
 * after inlining. */
static inline __attribute__((always_inline)) void ig_channels(const ig_job *job, const float *in, const float *w,
                                                              int64_t cout_g, int vecs, const ig_pos *pos,
                                                              float *out, const float *bias, int64_t span,
                                                              int64_t next_lo, int64_t next_hi)
{
    int64_t oc = 0, k = job->k, plane = job->a->out.h * job->a->out.w;
    for (; oc + IG_ROWS <= cout_g; oc += IG_ROWS) {
        ig_prefetch_out(out + oc * plane, plane, IG_ROWS, next_lo, next_hi);
        ig_block(job, in, w + oc * k, IG_ROWS, vecs, pos, out, bias, oc, span);
    }
    for (; oc < cout_g; oc++) {
        ig_prefetch_out(out + oc * plane, plane, 1, next_lo, next_hi);
        ig_block(job, in, w + oc * k, 1, vecs, pos, out, bias, oc, span);
    }
}

/* Vector q of a band: in rows mode row q / per_row, columns from
 * IG_LANES * (q % per_row), a row's last vector moved left to end on its
 * last output; in flat mode flattened positions from IG_LANES * q. */
static inline void ig_vector_at(const ig_geometry *g, int64_t ow_n, int64_t q, int64_t *in_off, int64_t *out_off)
{
    if (g->flat) {
        *in_off = *out_off = IG_LANES * q;
        return;
    }
    int64_t r = q / g->per_row, c = IG_LANES * (q % g->per_row);
    if (c > ow_n - IG_LANES) c = ow_n - IG_LANES;
    *in_off = r * g->wq + c;
    *out_off = r * ow_n + c;
}

/* One task: output rows [oh0, oh0 + band) of one (image, group). */
static void ig_task(void *ctx, size_t task, int thread)
{
    const ig_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const ig_geometry *geo = &job->g;
    int64_t b = (int64_t)task % geo->bands;
    int64_t g = ((int64_t)task / geo->bands) % p->groups;
    int64_t n = (int64_t)task / geo->bands / p->groups;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t oh0 = b * geo->band, nrows = a->out.h - oh0 < geo->band ? a->out.h - oh0 : geo->band;
    int64_t wq = geo->wq, in_plane = a->in.h * a->in.w, ow_n = a->out.w;
    const float *src = a->input + (n * p->in_channels + g * cin_g) * in_plane;
    const float *in;
    if (geo->copy) {
        float *band = job->bands + (size_t)thread * geo->band_floats;
        int64_t rows = nrows + geo->halo;
        for (int64_t c = 0; c < cin_g; c++)
            ig_pad_band(job, src + c * in_plane, band + c * geo->phases * geo->rows * wq, oh0, rows);
        if (geo->flat) /* what the last vector's lanes past the band read */
            memset(band + cin_g * geo->phases * geo->rows * wq + geo->spill, 0, IG_SLACK * sizeof(float));
        in = band;
    } else {
        in = src + oh0 * wq;
    }
    float *out = a->output + (n * p->out_channels + g * cout_g) * a->out.h * ow_n + oh0 * ow_n;
    const float *w = a->weight + g * cout_g * job->k;
    const float *bias = a->bias ? a->bias + g * cout_g : NULL;
    int64_t span = (nrows - 1) * wq + ow_n; /* flattened positions (flat mode) */
    int64_t nvec = geo->flat ? (span + IG_LANES - 1) / IG_LANES : nrows * geo->per_row;
    for (int64_t q0 = 0; q0 < nvec; q0 += IG_VECS) {
        int vecs = nvec - q0 < IG_VECS ? (int)(nvec - q0) : IG_VECS;
        ig_pos pos;
        for (int v = 0; v < vecs; v++) ig_vector_at(geo, ow_n, q0 + v, &pos.in_off[v], &pos.out_off[v]);
        /* The first output channels of a block wait on every input row the
         * taps read, one stream per row: more streams than the hardware
         * prefetcher follows. Fetch the next block's rows while this one runs. */
        int64_t next_lo = 0, next_hi = 0;
        if (nvec - q0 > IG_VECS) {
            int64_t next, unused;
            ig_vector_at(geo, ow_n, q0 + IG_VECS, &next, &next_lo);
            for (int64_t t = 0; t < job->prefetches; t++) {
                const char *line0 = (const char *)(in + job->prefetch[t] + next);
                for (int line = 0; line <= IG_BLOCK * (int)sizeof(float) / 64; line++)
                    _mm_prefetch(line0 + 64 * line, _MM_HINT_T0);
            }
            if (!geo->flat) { /* the next block's outputs: contiguous in rows mode */
                int64_t last = (q0 + 2 * IG_VECS < nvec ? q0 + 2 * IG_VECS : nvec) - 1;
                ig_vector_at(geo, ow_n, last, &unused, &next_hi);
                next_hi += IG_LANES;
            }
        }
        switch (vecs) {
        case 1: ig_channels(job, in, w, cout_g, 1, &pos, out, bias, span, next_lo, next_hi); break;
#if IG_VECS > 2
        case 2: ig_channels(job, in, w, cout_g, 2, &pos, out, bias, span, next_lo, next_hi); break;
#endif
#if IG_VECS > 3
        case 3: ig_channels(job, in, w, cout_g, 3, &pos, out, bias, span, next_lo, next_hi); break;
#endif
#if IG_VECS > 4
        case 4: ig_channels(job, in, w, cout_g, 4, &pos, out, bias, span, next_lo, next_hi); break;
#endif
#if IG_VECS > 5
        case 5: ig_channels(job, in, w, cout_g, 5, &pos, out, bias, span, next_lo, next_hi); break;
#endif
        default: ig_channels(job, in, w, cout_g, IG_VECS, &pos, out, bias, span, next_lo, next_hi); break;
        }
    }
}

static void ig_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    int threads = conv_threadpool_size(a->pool);
    ig_job job = {.a = a, .act = p->activation};
    ig_geometry_of(p, &a->in, &a->out, threads, &job.g);
    int64_t cin_g = p->in_channels / p->groups;
    job.k = cin_g * p->kernel_h * p->kernel_w;
    int64_t *offset = a->workspace, *prefetch = offset + job.k;
    int64_t t = 0, plane = job.g.rows * job.g.wq, sh = p->stride_h, sw = p->stride_w;
    for (int64_t c = 0; c < cin_g; c++)
        for (int64_t ky = 0; ky < p->kernel_h; ky++)
            for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                int64_t y = ky * p->dilation_h, x = kx * p->dilation_w;
                int64_t phase = (y % sh) * sw + x % sw;
                offset[t++] = (c * job.g.phases + phase) * plane + (y / sh) * job.g.wq + x / sw;
            }
    /* the rows to prefetch: one per (channel, ky, column phase) the taps use,
     * from its first column (a block's lines reach one line past it) */
    int64_t np = 0;
    for (int64_t c = 0; c < cin_g; c++)
        for (int64_t ky = 0; ky < p->kernel_h; ky++) {
            int64_t y = ky * p->dilation_h;
            for (int64_t px = 0; px < sw; px++) {
                int64_t first = -1;
                for (int64_t kx = 0; kx < p->kernel_w && first < 0; kx++)
                    if ((kx * p->dilation_w) % sw == px) first = kx * p->dilation_w / sw;
                if (first < 0) continue;
                prefetch[np++] = (c * job.g.phases + (y % sh) * sw + px) * plane + (y / sh) * job.g.wq + first;
            }
        }
    job.offset = offset;
    job.prefetch = prefetch;
    job.prefetches = np;
    if (job.g.copy) job.bands = (float *)((char *)a->workspace + ig_tables_bytes((size_t)job.k));
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.g.bands), ig_task, &job);
}

#endif
