/* fused_separable.c — a depthwise stage and the 1x1 stage it feeds, computed
 * tile by tile so the depthwise output never leaves the cache: for a band of
 * output rows, every mid channel's rows go into a per-thread tile buffer
 * (through the depthwise kernel's row routines, with its bias/BN/activation),
 * then one GEMM turns the tile into those rows of every output channel,
 * written straight into NCHW with the pointwise epilogue.
 *
 * Tiles are sized so the buffer (mid channels x rows x width) stays well
 * inside this machine's 512 KiB L2 next to the packed pointwise weights; the
 * unfused pair writes the whole mid tensor and reads it back from L3 or DRAM.
 * Work is split over (image, row band) tiles, their rows chosen for the
 * thread count (tile_rows); when the last round has fewer tiles than threads,
 * each of those tiles is split by output channels among all of them. The
 * depthwise stage runs as the depthwise kernel would: channel-blocked on
 * small maps and at stride 2, else through its phase-buffer rows (its main
 * AVX2 path), else its older AVX2 row tiles or the scalar rows. Whether a
 * pair is fused at all is the plan's choice (conv_fused_separable_pays, or
 * autotune). */
#include <cblas.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/kernels/dwconv.h"
#include "core/kernels/fused_separable.h"
#include "core/kernels/gemm_common.h"
#include "core/kernels/pw_gemm.h"

/* Measured on 1x32x112x112 (14 KiB per mid row) and 1x256x28x28 (28 KiB):
 * 64-192 KiB tiles ran within noise of each other, whole-image tiles slower. */
#define FUSED_TILE_BYTES (128 * 1024)


bool conv_fused_separable_supports(const conv_params *dw, const conv_params *pw)
{
    bool depthwise = dw->groups >= 1 && dw->groups == dw->in_channels && dw->out_channels % dw->groups == 0 &&
                     dw->kernel_h >= 1 && dw->kernel_w >= 1 && dw->stride_h >= 1 && dw->stride_w >= 1 &&
                     dw->dilation_h >= 1 && dw->dilation_w >= 1 && dw->pad_top >= 0 && dw->pad_bottom >= 0 &&
                     dw->pad_left >= 0 && dw->pad_right >= 0;
    bool pointwise = pw->kernel_h == 1 && pw->kernel_w == 1 && pw->stride_h == 1 && pw->stride_w == 1 &&
                     pw->pad_top == 0 && pw->pad_bottom == 0 && pw->pad_left == 0 && pw->pad_right == 0 &&
                     pw->groups == 1 && pw->in_channels == dw->out_channels;
    return depthwise && pointwise;
}

/* Rows per tile for `threads` threads: the tile (mid channels x rows x
 * width) within FUSED_TILE_BYTES, and among those the rows whose tiles finish
 * soonest, counted as rounds of tiles claimed by all threads times a tile's
 * 16-column GEMM panels plus one panel's worth of per-tile overhead (ties: the
 * larger tile). 1x32x112x112 -> 8 rows (896 columns, 14 tiles), 1x3x128x128
 * -> 64 rows (two tiles), 1x256x28x28 -> 4 rows (112 columns, 7 tiles). */
static int64_t tile_rows(const conv_dims *mid, int64_t threads)
{
    int64_t row_bytes = mid->c * mid->w * (int64_t)sizeof(float);
    int64_t max_rows = row_bytes > 0 ? FUSED_TILE_BYTES / row_bytes : 1;
    if (max_rows < 1) max_rows = 1;
    if (max_rows > mid->h) max_rows = mid->h;
    if (threads < 1) threads = 1;
    int64_t best = 1;
    double best_cost = 0;
    for (int64_t r = 1; r <= max_rows; r++) {
        int64_t tiles = mid->n * ((mid->h + r - 1) / r);
        int64_t rounds = (tiles + threads - 1) / threads;
        double cost = (double)rounds * (double)((r * mid->w + PW_NR - 1) / PW_NR + 1);
        if (r == 1 || cost <= best_cost) best = r, best_cost = cost;
    }
    return best;
}

/* Fusion saves the round trip of the mid tensor through L3 or DRAM but
 * gives the GEMM only a tile's columns at a time and the depthwise stage only
 * a tile's rows (each re-reading kh - 1 rows of halo); on a small map of many
 * channels a tile is a few rows, the tiles are too few to share evenly among
 * threads, and the unfused stages run faster. Measured (1 thread, minimum of
 * interleaved runs): 1x256x28x28 -> 256 (tiles of 112 columns) fused
 * 1.35-1.40, unfused 1.27-1.28 (with the depthwise stage on phase-buffer
 * rows; channel-blocked, it is the exception below); 1x32x112x112 -> 64
 * (896 columns) fused 0.80-0.81, unfused 0.85-0.87; 1x3x128x128 -> 10 (two
 * 8192-column tiles) fused 0.048-0.064, unfused 0.047-0.063 ms. */
#define FUSED_MIN_COLUMNS 256

/* The exception, on small maps whose depthwise stage is channel-blocked:
 * when an image's mid tensor outgrows this machine's 512 KiB L2 but the
 * pointwise weights fit in half of it, the unfused GEMM streams the mid
 * tensor from L3 while the fused one finds each tile in L2, which outweighs
 * the narrow tiles. 1x256x28x28 -> 256 (784 KiB mid, 256 KiB weights),
 * medians of 4-6 interleaved runs in two sessions, fused vs unfused: 1
 * thread 1.55 vs 1.67 ms and 1.49 vs 1.48 (min 1.22-1.23 vs 1.23-1.30); 2
 * threads 0.777 vs 0.780 and 0.767 vs 0.884 (min 0.633 vs 0.684). Smaller
 * mid tensors or larger weights stay unfused (fused vs unfused, 1 thread:
 * 128x28x28 0.475 vs 0.429, 512x14x14 1.87 vs 1.69, 1024x7x7 2.48 vs 2.32). */
#define FUSED_L2_BYTES (512 * 1024)

bool conv_fused_separable_pays(const conv_params *dw, const conv_params *pw, const conv_dims *mid)
{
    int64_t row_bytes = mid->c * mid->w * (int64_t)sizeof(float);
    int64_t rows = row_bytes > 0 ? FUSED_TILE_BYTES / row_bytes : mid->h;
    if (rows < 1) rows = 1;
    if (rows >= mid->h) return true; /* one tile holds the map: nothing to lose */
    if (rows * mid->w >= FUSED_MIN_COLUMNS) return true;
    double mid_bytes = (double)row_bytes * (double)mid->h;
    double weight_bytes = (double)pw->out_channels * (double)pw->in_channels * sizeof(float);
    bool blocked = dwconv_blocked_preferred(dw->in_channels, mid->h, mid->w, dw->stride_w);
    return blocked && mid_bytes > FUSED_L2_BYTES && weight_bytes <= FUSED_L2_BYTES / 2;
}

bool conv_fused_separable_workspace(const conv_params *dw, const conv_dims *mid, int threads, size_t *bytes)
{
    (void)dw;
    size_t per;
    if (!conv_size_mul((size_t)mid->c, (size_t)mid->w, &per) ||
        !conv_size_mul(per, (size_t)tile_rows(mid, threads), &per) || !conv_size_mul(per, sizeof(float), &per))
        return false;
    per = (per + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1);
    return conv_size_mul(per, (size_t)(threads < 1 ? 1 : threads), bytes);
}

typedef struct fused_job {
    const fused_sep_args *a;
    dw_plane shape;
    int64_t multiplier, rows, tiles_per_image;
    /* tiles [0, whole) are one task each; each later tile is `parts` tasks,
     * each computing the tile's depthwise rows and one slice of the output
     * channels (part_rows rows, a multiple of PW_MR), so the last round of
     * tiles is shared by every thread instead of left to a few */
    int64_t whole, parts, part_rows;
    size_t tile_stride; /* bytes between threads' tile buffers */
    bool avx2, avx512, blocked, phase, own_gemm;
    dw_blocked_geom bg; /* blocked: the depthwise kernel's path for small maps and stride 2 */
    dw_phase_geom g;    /* phase: the depthwise kernel's main AVX2 path */
    dw_avx2_plan plan;  /* avx2 without blocked or phase: the older row tiles */
} fused_job;

/* The tile's rows [y0, y1) of every mid channel through the channel-blocked
 * path: 8 input planes at a time transposed into buf, as dwconv.c's
 * dw_blocked_task does for whole planes. */
static void fused_blocked_rows(const fused_job *job, int64_t n, int64_t y0, int64_t y1, float *tile, int64_t ld)
{
    const fused_sep_args *a = job->a;
    const dw_plane *s = &job->shape;
    int64_t taps = s->kh * s->kw, mult = job->multiplier, span = (s->kh - 1) * s->dh + 1, cin = a->in.c;
    int64_t in_plane = s->ih * s->iw, ow = s->ow;
    _Alignas(32) float buf[DW_BLOCKED_FLOATS];
    _Alignas(32) float wtmp[DW_BLOCKED_MAX_TAPS * 8];
    float bias8[8];
    int64_t layout_iy0 = 0, layout_rows = -1;
    for (int64_t c0 = 0; c0 < cin; c0 += 8) {
        int nch = cin - c0 < 8 ? (int)(cin - c0) : 8;
        const float *in[8];
        for (int ch = 0; ch < 8; ch++) in[ch] = a->input + (n * cin + c0 + (ch < nch ? ch : 0)) * in_plane;
        for (int64_t sy = y0; sy < y1; sy += job->bg.strip_rows) {
            int64_t sy1 = sy + job->bg.strip_rows < y1 ? sy + job->bg.strip_rows : y1;
            int64_t iy0 = sy * s->sh - s->pt, rows = (sy1 - 1 - sy) * s->sh + span;
            dwconv_blocked_fill(s, &job->bg, in, iy0, rows, buf, iy0 == layout_iy0 && rows == layout_rows);
            layout_iy0 = iy0, layout_rows = rows;
            for (int64_t j = 0; j < mult; j++) {
                float *out[8];
                /* row oy lands at out + oy*ow: each channel's slice of the
                 * tile shifted back by y0 rows (through uintptr_t, as the
                 * shifted pointer lies before the buffer) */
                for (int ch = 0; ch < nch; ch++)
                    out[ch] = (float *)((uintptr_t)(tile + ((c0 + ch) * mult + j) * ld) -
                                        (uintptr_t)(y0 * ow) * sizeof(float));
                for (int ch = nch; ch < 8; ch++) out[ch] = NULL;
                const float *w;
                if (a->dw_packed) {
                    /* dwconv.c's pack: the broadcast taps, then [ceil(in/8)][mult][taps][8] */
                    w = (const float *)a->dw_packed + a->mid.c * taps * 8 + (c0 / 8 * mult + j) * taps * 8;
                } else {
                    for (int64_t t = 0; t < taps; t++)
                        for (int l = 0; l < 8; l++)
                            wtmp[t * 8 + l] = l < nch ? a->dw_weight[((c0 + l) * mult + j) * taps + t] : 0.0f;
                    w = wtmp;
                }
                for (int l = 0; l < 8; l++) bias8[l] = a->dw_bias && l < nch ? a->dw_bias[(c0 + l) * mult + j] : 0.0f;
                dwconv_blocked_rows(s, &job->bg, buf, w, bias8, out, nch, sy, sy1);
            }
        }
    }
}

/* output channels computed from one copy of their input rows (as in dwconv.c) */
#define FUSED_PHASE_OUTS 4

static void fused_task(void *ctx, size_t task, int thread)
{
    const fused_job *job = ctx;
    const fused_sep_args *a = job->a;
    int64_t tile_index = (int64_t)task, part = -1;
    if (tile_index >= job->whole) {
        part = (tile_index - job->whole) % job->parts;
        tile_index = job->whole + (tile_index - job->whole) / job->parts;
    }
    int64_t n = tile_index / job->tiles_per_image, t = tile_index % job->tiles_per_image;
    int64_t y0 = t * job->rows, y1 = y0 + job->rows < a->mid.h ? y0 + job->rows : a->mid.h;
    int64_t ow = a->mid.w, ld = (y1 - y0) * ow, mid_c = a->mid.c;
    float *tile = (float *)((char *)a->workspace + (size_t)thread * job->tile_stride);
    const float *taps = a->dw_packed;

    /* the row routines write row oy at out + oy*ow: each channel's base is
     * shifted so row y0 lands at the start of its slice of the tile (through
     * uintptr_t, as the shifted pointer lies before the buffer) */
#define TILE_BASE(c) ((float *)((uintptr_t)(tile + (c) * ld) - (uintptr_t)(y0 * ow) * sizeof(float)))
    if (job->blocked) {
        fused_blocked_rows(job, n, y0, y1, tile, ld);
    } else if (job->phase) {
        _Alignas(32) float buf[DW_PHASE_FLOATS];
        _Alignas(32) float unpacked[FUSED_PHASE_OUTS][DW_PHASE_MAX_TAPS * 8];
        dw_plane outs[FUSED_PHASE_OUTS];
        int64_t layout[2] = {-1, -1}, taps_n = job->shape.kh * job->shape.kw, mult = job->multiplier;
        for (int64_t ic = 0; ic < a->in.c; ic++) {
            const float *in = a->input + (n * a->in.c + ic) * job->shape.ih * job->shape.iw;
            for (int64_t m0 = 0; m0 < mult; m0 += FUSED_PHASE_OUTS) {
                int64_t nouts = mult - m0 < FUSED_PHASE_OUTS ? mult - m0 : FUSED_PHASE_OUTS;
                for (int64_t j = 0; j < nouts; j++) {
                    int64_t c = ic * mult + m0 + j;
                    outs[j] = job->shape;
                    outs[j].out = TILE_BASE(c);
                    outs[j].w = a->dw_weight + c * taps_n;
                    if (taps) {
                        outs[j].wb = taps + c * taps_n * 8;
                    } else {
                        dwconv_broadcast_taps(outs[j].w, taps_n, unpacked[j]);
                        outs[j].wb = unpacked[j];
                    }
                    outs[j].bias = a->dw_bias ? a->dw_bias[c] : 0.0f;
                }
                dwconv_phase_rows(&job->shape, &job->g, in, outs, nouts, y0, y1, buf, layout);
            }
        }
    } else {
        dw_plane p = job->shape;
        for (int64_t c = 0; c < mid_c; c++) {
            p.in = a->input + (n * a->in.c + c / job->multiplier) * p.ih * p.iw;
            p.out = TILE_BASE(c);
            p.w = a->dw_weight + c * p.kh * p.kw;
            p.wb = taps ? taps + c * p.kh * p.kw * 8 : NULL;
            p.bias = a->dw_bias ? a->dw_bias[c] : 0.0f;
            if (job->avx512)
                dwconv_rows_avx512(&p, y0, y1);
            else if (job->avx2)
                dwconv_rows_avx2(&p, &job->plan, y0, y1);
            else
                dwconv_rows_scalar(&p, y0, y1);
        }
    }
#undef TILE_BASE

    int64_t plane = a->out.h * a->out.w, cout = a->out.c, r0 = 0, r1 = cout;
    if (part >= 0) {
        r0 = part * job->part_rows;
        r1 = r0 + job->part_rows < cout ? r0 + job->part_rows : cout;
        if (r0 >= r1) return;
    }
    float *out = a->output + (n * cout + r0) * plane + y0 * ow;
    const float *bias = a->pw_bias ? a->pw_bias + r0 : NULL;
    if (job->own_gemm) {
        /* rows r0.. of the packed weights: r0 is a multiple of PW_MR, where a panel starts */
        const pw_packed *pk = a->pw_packed;
        pw_packed slice = {.a = pk->a + r0 * pk->k, .m = r1 - r0, .k = pk->k};
        pw_gemm(&slice, tile, ld, ld, out, plane, bias, a->pw->activation);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)ld, (int)mid_c, 1.0f,
                    a->pw_weight + r0 * mid_c, (int)mid_c, tile, (int)ld, 0.0f, out, (int)plane);
        gemm_epilogue(out, r1 - r0, ld, plane, bias, a->pw->activation);
    }
}

void conv_fused_separable_run(const fused_sep_args *a)
{
    const conv_params *cp = a->dw;
    /* everything but the 16 KiB row-tile plan, written only when used (as in dwconv.c) */
    fused_job job;
    memset(&job, 0, offsetof(fused_job, plan));
    job.a = a;
    dw_plane *s = &job.shape;
    dw_plane_geometry(s, cp, &a->in, &a->mid);
    job.multiplier = cp->out_channels / cp->in_channels;
    /* as in dwconv.c: the AVX2 lane masks index columns in 32 bits */
    job.avx2 = conv_cpu()->avx2_fma && s->iw < ((int64_t)1 << 30);
    /* the depthwise kernel's AVX-512 rows where it would take them */
    job.avx512 = job.avx2 && conv_cpu()->avx512 && dwconv_avx512_supports(s) && dwconv_avx512_preferred(s);
    job.blocked = job.avx2 && !job.avx512 && dwconv_blocked_preferred(cp->in_channels, s->oh, s->ow, s->sw) &&
                  dwconv_blocked_geometry(s, &job.bg);
    /* as in dwconv.c's run_phase: stride-2 rows narrower than a vector stay on the older tiles */
    job.phase = job.avx2 && !job.avx512 && !job.blocked && !(s->sw == 2 && s->ow < 8) && dwconv_phase_geometry(s, &job.g);
    if (job.avx2 && !job.avx512 && !job.blocked && !job.phase) dwconv_avx2_prepare(s, &job.plan);
    conv_run_args pw_args = {.params = a->pw, .packed = a->pw_packed};
    job.own_gemm = conv_cpu()->avx2_fma && conv_gemm_1x1_packed_usable(&pw_args);

    if (a->mid.n == 0 || a->mid.h == 0 || a->mid.w == 0) return;
    int64_t threads = conv_threadpool_size(a->pool);
    size_t bytes;
    conv_fused_separable_workspace(cp, &a->mid, (int)threads, &bytes); /* checked when the workspace was sized */
    job.tile_stride = bytes / (size_t)threads;
    job.rows = tile_rows(&a->mid, threads);
    job.tiles_per_image = (a->mid.h + job.rows - 1) / job.rows;
    int64_t tiles = a->mid.n * job.tiles_per_image, left = tiles % threads;
    job.whole = tiles, job.parts = 1, job.part_rows = a->out.c;
    /* The last round's tiles, when fewer than the threads, split by output
     * channels (their depthwise rows computed by each part): 1x256x28x28 ->
     * 256 on two threads is 7 tiles, 4 against 3 whole. */
    int64_t part_rows = (a->out.c + threads - 1) / threads;
    part_rows = (part_rows + PW_MR - 1) / PW_MR * PW_MR;
    if (threads > 1 && left > 0 && part_rows >= 4 * PW_MR) {
        job.whole = tiles - left, job.parts = threads, job.part_rows = part_rows;
    }
    size_t tasks = (size_t)(job.whole + (tiles - job.whole) * job.parts);
    conv_parallel_for(a->pool, tasks, fused_task, &job);
}

/* The table's entry: fused pairs span two convolutions, so no single
 * convolution is supported (a forced "fused_separable" on one is refused);
 * model.c calls conv_fused_separable_run for the pairs it compiles. */
static bool fused_single_supports(const conv_params *p)
{
    (void)p;
    return false;
}

static bool fused_single_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                   size_t *bytes)
{
    (void)p, (void)in, (void)out, (void)threads;
    *bytes = 0;
    return true;
}

static void fused_single_run(const conv_run_args *a) { (void)a; }

const conv_kernel conv_kernel_fused_separable = {
    .algorithm = CONV_ALGO_FUSED_SEPARABLE,
    .supports = fused_single_supports,
    .pack = NULL,
    .release = NULL,
    .workspace_size = fused_single_workspace,
    .run = fused_single_run,
};
