/* conv_im2col.c — im2col + cblas_sgemm, one GEMM per (image, group, column
 * tile): each task unfolds only its tile of output pixels, so the unfolded
 * operand stays in cache and no full-size im2col copy is ever made. */
#include <cblas.h>

#include "core/kernels/gemm_common.h"

static bool im2col_supports(const conv_params *p)
{
    (void)p;
    return true;
}

static bool im2col_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                             size_t *bytes)
{
    (void)in;
    size_t k = (size_t)(p->in_channels / p->groups) * (size_t)p->kernel_h * (size_t)p->kernel_w;
    size_t tile = (size_t)gemm_column_tile((int64_t)k, out->h * out->w);
    size_t per_thread;
    if (!conv_size_mul(k, tile, &per_thread) || !conv_size_mul(per_thread, sizeof(float), &per_thread)) return false;
    /* keep each thread's slice on its own cache lines */
    if (!conv_size_add(per_thread, CONV_ALIGNMENT, &per_thread)) return false;
    per_thread &= ~(size_t)(CONV_ALIGNMENT - 1);
    return conv_size_mul(per_thread, (size_t)threads, bytes);
}

typedef struct im2col_job {
    const conv_run_args *a;
    int64_t k, columns, tile, tiles;
    size_t slice_floats;
} im2col_job;

/* col[k][j] for the tile's pixels: k runs over (channel, ky, kx) of one group */
static void unfold_tile(const conv_params *p, const conv_run_args *a, const float *in, int64_t j0, int64_t cols,
                        float *col)
{
    int64_t cin_g = p->in_channels / p->groups, ow_n = a->out.w, ih_n = a->in.h, iw_n = a->in.w;
    for (int64_t c = 0; c < cin_g; c++) {
        const float *plane = in + c * ih_n * iw_n;
        for (int64_t ky = 0; ky < p->kernel_h; ky++) {
            for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                float *dst = col + ((c * p->kernel_h + ky) * p->kernel_w + kx) * cols;
                int64_t oh = j0 / ow_n, ow = j0 % ow_n;
                for (int64_t j = 0; j < cols; j++) {
                    int64_t ih = oh * p->stride_h - p->pad_top + ky * p->dilation_h;
                    int64_t iw = ow * p->stride_w - p->pad_left + kx * p->dilation_w;
                    dst[j] = (ih >= 0 && ih < ih_n && iw >= 0 && iw < iw_n) ? plane[ih * iw_n + iw] : 0.0f;
                    if (++ow == ow_n) {
                        ow = 0;
                        oh++;
                    }
                }
            }
        }
    }
}

static void im2col_task(void *ctx, size_t task, int thread)
{
    const im2col_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    int64_t t = (int64_t)task;
    int64_t tile_index = t % job->tiles;
    int64_t g = (t / job->tiles) % p->groups;
    int64_t n = t / job->tiles / p->groups;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t j0 = tile_index * job->tile;
    int64_t cols = job->columns - j0 < job->tile ? job->columns - j0 : job->tile;

    float *col = (float *)a->workspace + (size_t)thread * job->slice_floats;
    const float *in = a->input + (n * p->in_channels + g * cin_g) * a->in.h * a->in.w;
    unfold_tile(p, a, in, j0, cols, col);

    float *out = a->output + (n * p->out_channels + g * cout_g) * job->columns + j0;
    const float *w = a->weight + g * cout_g * job->k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)cols, (int)job->k, 1.0f, w,
                (int)job->k, col, (int)cols, 0.0f, out, (int)job->columns);
    gemm_epilogue(out, cout_g, cols, job->columns, a->bias ? a->bias + g * cout_g : NULL, p->activation);
}

static void im2col_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    im2col_job job = {.a = a};
    job.k = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    job.columns = a->out.h * a->out.w;
    job.tile = gemm_column_tile(job.k, job.columns);
    job.tiles = (job.columns + job.tile - 1) / job.tile;
    size_t slice = (size_t)job.k * (size_t)job.tile * sizeof(float) + CONV_ALIGNMENT;
    slice &= ~(size_t)(CONV_ALIGNMENT - 1);
    job.slice_floats = slice / sizeof(float);
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.tiles), im2col_task, &job);
}

const conv_kernel conv_kernel_im2col = {
    .algorithm = CONV_ALGO_IM2COL,
    .supports = im2col_supports,
    .pack = NULL,
    .release = NULL,
    .workspace_size = im2col_workspace,
    .run = im2col_run,
};
