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
 * Work is split over (image, row band) tiles, smaller bands when there are
 * too few for every thread. */
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

/* rows per tile before any split for threads: a multiple of 4 (the AVX2
 * depthwise tiles compute 4 rows at once) when more than 4 fit */
static int64_t base_tile_rows(const conv_dims *mid)
{
    int64_t row_bytes = mid->c * mid->w * (int64_t)sizeof(float);
    int64_t rows = row_bytes > 0 ? FUSED_TILE_BYTES / row_bytes : 1;
    if (rows > 4) rows &= ~(int64_t)3;
    if (rows < 1) rows = 1;
    if (rows > mid->h) rows = mid->h;
    return rows;
}

bool conv_fused_separable_workspace(const conv_params *dw, const conv_dims *mid, int threads, size_t *bytes)
{
    (void)dw;
    size_t per;
    if (!conv_size_mul((size_t)mid->c, (size_t)mid->w, &per) ||
        !conv_size_mul(per, (size_t)base_tile_rows(mid), &per) || !conv_size_mul(per, sizeof(float), &per))
        return false;
    per = (per + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1);
    return conv_size_mul(per, (size_t)(threads < 1 ? 1 : threads), bytes);
}

typedef struct fused_job {
    const fused_sep_args *a;
    dw_plane shape;
    int64_t multiplier, rows, tiles_per_image;
    size_t tile_stride; /* bytes between threads' tile buffers */
    bool avx2, own_gemm;
    dw_avx2_plan plan;
} fused_job;

static void fused_task(void *ctx, size_t task, int thread)
{
    const fused_job *job = ctx;
    const fused_sep_args *a = job->a;
    int64_t n = (int64_t)task / job->tiles_per_image, t = (int64_t)task % job->tiles_per_image;
    int64_t y0 = t * job->rows, y1 = y0 + job->rows < a->mid.h ? y0 + job->rows : a->mid.h;
    int64_t ow = a->mid.w, ld = (y1 - y0) * ow, mid_c = a->mid.c;
    float *tile = (float *)((char *)a->workspace + (size_t)thread * job->tile_stride);
    const float *taps = a->dw_packed;

    dw_plane p = job->shape;
    for (int64_t c = 0; c < mid_c; c++) {
        p.in = a->input + (n * a->in.c + c / job->multiplier) * p.ih * p.iw;
        /* the row routines write row oy at out + oy*ow: shift the base so
         * row y0 lands at the start of this channel's slice of the tile
         * (through uintptr_t, as the shifted pointer lies before the buffer) */
        p.out = (float *)((uintptr_t)(tile + c * ld) - (uintptr_t)(y0 * ow) * sizeof(float));
        p.w = a->dw_weight + c * p.kh * p.kw;
        p.wb = taps ? taps + c * p.kh * p.kw * 8 : NULL;
        p.bias = a->dw_bias ? a->dw_bias[c] : 0.0f;
        if (job->avx2)
            dwconv_rows_avx2(&p, &job->plan, y0, y1);
        else
            dwconv_rows_scalar(&p, y0, y1);
    }

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
    if (job.avx2) dwconv_avx2_prepare(s, &job.plan);
    conv_run_args pw_args = {.params = a->pw, .packed = a->pw_packed};
    job.own_gemm = conv_cpu()->avx2_fma && conv_gemm_1x1_packed_usable(&pw_args);

    if (a->mid.n == 0 || a->mid.h == 0 || a->mid.w == 0) return;
    size_t bytes;
    conv_fused_separable_workspace(cp, &a->mid, 1, &bytes); /* checked when the workspace was sized */
    job.tile_stride = bytes;
    int64_t threads = conv_threadpool_size(a->pool);
    job.rows = base_tile_rows(&a->mid);
    int64_t tiles = (a->mid.h + job.rows - 1) / job.rows;
    /* at least ~2 tiles per thread, so a slow thread does not hold the rest up */
    if (threads > 1 && a->mid.n * tiles < 2 * threads) {
        int64_t want = (2 * threads + a->mid.n - 1) / a->mid.n;
        int64_t rows = (a->mid.h + want - 1) / want;
        if (rows < job.rows) job.rows = rows < 1 ? 1 : rows;
    }
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
