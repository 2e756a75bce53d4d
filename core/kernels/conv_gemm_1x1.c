/* conv_gemm_1x1.c — 1x1 stride-1 unpadded convolutions are a plain GEMM on
 * NCHW data: out[n][g] = W[g] (cout_g x cin_g) * X[n][g] (cin_g x H*W), with
 * no unfolding. Few columns tiles, as large as possible (OpenBLAS repacks W on
 * every call), just enough for every thread to get one; tiny or skinny GEMMs
 * (few input or output channels) go to the AVX2 implicit GEMM instead. */
#include <cblas.h>

#include "core/kernels/gemm_common.h"

static bool gemm_1x1_supports(const conv_params *p)
{
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0;
}

/* as in conv_im2col.c: sgemm's packing costs as much as the arithmetic here */
static bool gemm_1x1_use_implicit(const conv_params *p)
{
    return conv_implicit_gemm_supports(p) &&
           (p->in_channels / p->groups <= 64 || p->out_channels / p->groups <= 32);
}

static bool gemm_1x1_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                               size_t *bytes)
{
    (void)threads;
    if (gemm_1x1_use_implicit(p)) return conv_implicit_gemm_workspace(p, in, out, bytes);
    *bytes = 0;
    return true;
}

#define GEMM_1X1_MAX_TILE 8192

typedef struct gemm_1x1_job {
    const conv_run_args *a;
    int64_t columns, tile, tiles;
} gemm_1x1_job;

static void gemm_1x1_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const gemm_1x1_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    int64_t t = (int64_t)task;
    int64_t tile_index = t % job->tiles;
    int64_t g = (t / job->tiles) % p->groups;
    int64_t n = t / job->tiles / p->groups;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t j0 = tile_index * job->tile;
    int64_t cols = job->columns - j0 < job->tile ? job->columns - j0 : job->tile;

    const float *x = a->input + (n * p->in_channels + g * cin_g) * job->columns + j0;
    float *out = a->output + (n * p->out_channels + g * cout_g) * job->columns + j0;
    const float *w = a->weight + g * cout_g * cin_g;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)cols, (int)cin_g, 1.0f, w,
                (int)cin_g, x, (int)job->columns, 0.0f, out, (int)job->columns);
    gemm_epilogue(out, cout_g, cols, job->columns, a->bias ? a->bias + g * cout_g : NULL, p->activation);
}

static void gemm_1x1_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    if (gemm_1x1_use_implicit(p)) {
        conv_implicit_gemm_run(a);
        return;
    }
    gemm_1x1_job job = {.a = a};
    job.columns = a->out.h * a->out.w;
    int64_t threads = conv_threadpool_size(a->pool), outside = a->in.n * p->groups;
    int64_t tiles = (job.columns + GEMM_1X1_MAX_TILE - 1) / GEMM_1X1_MAX_TILE;
    if (outside < threads && tiles < (threads + outside - 1) / outside) tiles = (threads + outside - 1) / outside;
    job.tile = (job.columns + tiles - 1) / tiles;
    if (job.tile < job.columns) job.tile = (job.tile + 15) / 16 * 16;
    if (job.tile > job.columns) job.tile = job.columns;
    job.tiles = (job.columns + job.tile - 1) / job.tile;
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.tiles), gemm_1x1_task, &job);
}

const conv_kernel conv_kernel_gemm_1x1 = {
    .algorithm = CONV_ALGO_GEMM_1X1,
    .supports = gemm_1x1_supports,
    .pack = NULL,
    .release = NULL,
    .workspace_size = gemm_1x1_workspace,
    .run = gemm_1x1_run,
};
