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
 * thread count (tile_rows). The depthwise stage runs through the depthwise
 * kernel's phase-buffer rows where they apply (its main AVX2 path), else its
 * older AVX2 row tiles or the scalar rows. Whether a pair is fused at all is
 * the plan's choice (conv_fused_separable_pays, or autotune). */
#include <cblas.h>
#include <stdint.h>

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
 * 1.35-1.40, unfused 1.27-1.28; 1x32x112x112 -> 64 (896 columns) fused
 * 0.80-0.81, unfused 0.85-0.87; 1x3x128x128 -> 10 (two 8192-column tiles) fused
 * 0.048-0.064, unfused 0.047-0.063 ms. */
#define FUSED_MIN_COLUMNS 256

bool conv_fused_separable_pays(const conv_params *dw, const conv_params *pw, const conv_dims *mid)
{
    (void)dw, (void)pw;
    int64_t row_bytes = mid->c * mid->w * (int64_t)sizeof(float);
    int64_t rows = row_bytes > 0 ? FUSED_TILE_BYTES / row_bytes : mid->h;
    if (rows < 1) rows = 1;
    if (rows >= mid->h) return true; /* one tile holds the map: nothing to lose */
    return rows * mid->w >= FUSED_MIN_COLUMNS;
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
    size_t tile_stride; /* bytes between threads' tile buffers */
    bool avx2, phase, own_gemm;
    dw_phase_geom g; /* phase: the depthwise kernel's main AVX2 path */
    dw_avx2_plan plan; /* avx2 without phase: the older row tiles */
} fused_job;

/* output channels computed from one copy of their input rows (as in dwconv.c) */
#define FUSED_PHASE_OUTS 4

static void fused_task(void *ctx, size_t task, int thread)
{
    const fused_job *job = ctx;
    const fused_sep_args *a = job->a;
    int64_t n = (int64_t)task / job->tiles_per_image, t = (int64_t)task % job->tiles_per_image;
    int64_t y0 = t * job->rows, y1 = y0 + job->rows < a->mid.h ? y0 + job->rows : a->mid.h;
    int64_t ow = a->mid.w, ld = (y1 - y0) * ow, mid_c = a->mid.c;
    float *tile = (float *)((char *)a->workspace + (size_t)thread * job->tile_stride);
    const float *taps = a->dw_packed;

    /* the row routines write row oy at out + oy*ow: each channel's base is
     * shifted so row y0 lands at the start of its slice of the tile (through
     * uintptr_t, as the shifted pointer lies before the buffer) */
#define TILE_BASE(c) ((float *)((uintptr_t)(tile + (c) * ld) - (uintptr_t)(y0 * ow) * sizeof(float)))
    if (job->phase) {
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
            if (job->avx2)
                dwconv_rows_avx2(&p, &job->plan, y0, y1);
            else
                dwconv_rows_scalar(&p, y0, y1);
        }
    }
#undef TILE_BASE

    int64_t plane = a->out.h * a->out.w, cout = a->out.c;
    float *out = a->output + n * cout * plane + y0 * ow;
    if (job->own_gemm) {
        pw_gemm_avx2(a->pw_packed, tile, ld, ld, out, plane, a->pw_bias, a->pw->activation);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout, (int)ld, (int)mid_c, 1.0f, a->pw_weight,
                    (int)mid_c, tile, (int)ld, 0.0f, out, (int)plane);
        gemm_epilogue(out, cout, ld, plane, a->pw_bias, a->pw->activation);
    }
}

void conv_fused_separable_run(const fused_sep_args *a)
{
    const conv_params *cp = a->dw;
    fused_job job = {.a = a};
    dw_plane *s = &job.shape;
    dw_plane_geometry(s, cp, &a->in, &a->mid);
    job.multiplier = cp->out_channels / cp->in_channels;
    /* as in dwconv.c: the AVX2 lane masks index columns in 32 bits */
    job.avx2 = conv_cpu()->avx2_fma && s->iw < ((int64_t)1 << 30);
    /* as in dwconv.c's run_phase: stride-2 rows narrower than a vector stay on the older tiles */
    job.phase = job.avx2 && !(s->sw == 2 && s->ow < 8) && dwconv_phase_geometry(s, &job.g);
    if (job.avx2 && !job.phase) dwconv_avx2_prepare(s, &job.plan);
    conv_run_args pw_args = {.params = a->pw, .packed = a->pw_packed};
    job.own_gemm = conv_cpu()->avx2_fma && conv_gemm_1x1_packed_usable(&pw_args);

    if (a->mid.n == 0 || a->mid.h == 0 || a->mid.w == 0) return;
    int64_t threads = conv_threadpool_size(a->pool);
    size_t bytes;
    conv_fused_separable_workspace(cp, &a->mid, (int)threads, &bytes); /* checked when the workspace was sized */
    job.tile_stride = bytes / (size_t)threads;
    job.rows = tile_rows(&a->mid, threads);
    job.tiles_per_image = (a->mid.h + job.rows - 1) / job.rows;
    conv_parallel_for(a->pool, (size_t)(a->mid.n * job.tiles_per_image), fused_task, &job);
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
