/* conv_gemm_1x1.c — 1x1 stride-1 unpadded convolutions are a plain GEMM on
 * NCHW data: out[n][g] = W[g] (cout_g x cin_g) * X[n][g] (cin_g x H*W), with
 * no unfolding. With AVX2, ungrouped layers on maps of 256+ pixels (49+
 * unless the implicit GEMM takes them) run the GEMM of pw_gemm_avx2.c (or
 * pw_gemm_avx512.c where the CPU has AVX-512) on weights packed at load. Otherwise few column
 * tiles, as large as possible (OpenBLAS repacks W on every call), just enough
 * for every thread to get one; tiny or skinny GEMMs (few input or output
 * channels) go to the AVX2 implicit GEMM instead. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels/gemm_common.h"
#include "core/kernels/pw_gemm.h"

conv_status pw_pack(const float *a, int64_t m, int64_t k, pw_packed *packed, conv_error *err)
{
    packed->a = NULL;
    packed->m = m;
    packed->k = k;
    if (!conv_cpu()->avx2_fma) return CONV_OK;
    size_t panels = (size_t)((m + PW_MR - 1) / PW_MR), floats, bytes;
    if (!conv_size_mul(panels, PW_MR, &floats) || !conv_size_mul(floats, (size_t)k, &floats) ||
        !conv_size_mul(floats, sizeof(float), &bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "pointwise weights of %lld x %lld overflow when packed",
                         (long long)m, (long long)k);
    float *dst = conv_aligned_alloc(bytes);
    if (!dst) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory packing %zu bytes of pointwise weights", bytes);
    memset(dst, 0, bytes);
    for (int64_t row = 0; row < m; row++) {
        float *panel = dst + row / PW_MR * PW_MR * k;
        for (int64_t p = 0; p < k; p++) panel[p * PW_MR + row % PW_MR] = a[row * k + p];
    }
    packed->a = dst;
    return CONV_OK;
}

void pw_packed_free(pw_packed *packed)
{
    if (packed) conv_aligned_free(packed->a);
}

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
    if (gemm_1x1_use_implicit(p)) return conv_implicit_gemm_workspace(p, in, out, threads, bytes);
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

static conv_status gemm_1x1_pack(const conv_params *p, const float *weight, const float *bias, void **packed,
                                 conv_error *err)
{
    (void)bias;
    pw_packed *pk = calloc(1, sizeof *pk);
    if (!pk) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory packing pointwise weights");
    *packed = pk;
    if (p->groups != 1) return CONV_OK; /* the packed GEMM serves ungrouped layers only */
    return pw_pack(weight, p->out_channels, p->in_channels, pk, err);
}

static void gemm_1x1_release(void *packed)
{
    pw_packed_free(packed);
    free(packed);
}

/* the packed AVX2 GEMM: runs of 16-column panels over the images' maps laid
 * end to end, claimed dynamically in guided order (long runs first, each
 * 1/(2 x threads) of what is left but at least min_run panels): few claims
 * while both threads are busy, short runs at the end to even out their finish */
#define PW_MAX_RUNS 256 /* more threads than about 32 lengthen the shortest run */

typedef struct pw_job {
    const conv_run_args *a;
    int64_t columns, panels, total; /* panels per image, in all images */
    int64_t start[PW_MAX_RUNS + 1]; /* run r is panels start[r] .. start[r + 1] - 1 */
} pw_job;

/* FLOPs of the shortest run (~16 us here): the end's runs are this short so
 * one thread waits at most about this long for the other */
#define PW_TASK_FLOPS 1500000.0

/* the guided runs into job->start; their count, or 0 if over PW_MAX_RUNS */
static int64_t pw_split(pw_job *job, int64_t divisor, int64_t min_run)
{
    int64_t runs = 0;
    for (int64_t g = 0; g < job->total; runs++) {
        if (runs == PW_MAX_RUNS) return 0;
        int64_t run = (job->total - g + divisor - 1) / divisor;
        if (run < min_run) run = min_run;
        job->start[runs] = g;
        g = job->total - g < run ? job->total : g + run;
    }
    job->start[runs] = job->total;
    return runs;
}

static void pw_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const pw_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    int64_t g0 = job->start[task], g1 = job->start[task + 1];
    while (g0 < g1) {
        int64_t n = g0 / job->panels, first = g0 % job->panels;
        int64_t last = g1 - n * job->panels < job->panels ? g1 - n * job->panels : job->panels;
        int64_t j0 = first * PW_NR, j1 = last * PW_NR < job->columns ? last * PW_NR : job->columns;
        pw_gemm(a->packed, a->input + n * p->in_channels * job->columns + j0, job->columns, j1 - j0,
                     a->output + n * p->out_channels * job->columns + j0, job->columns, a->bias, p->activation);
        g0 = n * job->panels + last;
    }
}

bool conv_gemm_1x1_packed_usable(const conv_run_args *a)
{
    const pw_packed *pk = a->packed;
    return pk && pk->a && a->params->groups == 1;
}

static void gemm_1x1_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    /* The packed GEMM beat both cblas_sgemm and the implicit GEMM on every
     * map of 256+ pixels measured (3->10 at 128x128: 0.04 against 0.06-0.09
     * ms; 32->64 at 112x112: 0.65-0.86 against 1.0-1.9; 256->256 at 28x28:
     * 1.11-1.16 against 1.30-1.37, minimums). With B packed per block
     * (fd48aa6) it also beats sgemm on MobileNet's 14x14 and 7x7 maps,
     * though 7x7's 16-column panels waste 12 of 64 columns: medians of 5
     * interleaved runs, own / sgemm, 1 and 2 threads: 256->512 at 14x14
     * 0.75 and 0.60, 512->512 at 14x14 0.84 and 0.77, 512->1024 at 7x7 0.91
     * and 0.70, 1024->1024 at 7x7 0.96 and 0.75. So from 49 pixels on it
     * takes what went to sgemm; the implicit GEMM keeps its shallow or narrow
     * layers below 256 pixels, and smaller maps keep sgemm. */
    int64_t pixels = a->out.h * a->out.w;
    if (conv_gemm_1x1_packed_usable(a) && conv_cpu()->avx2_fma &&
        (pixels >= 256 || (pixels >= 49 && !gemm_1x1_use_implicit(p)))) {
        pw_job job = {.a = a, .columns = a->out.h * a->out.w};
        job.panels = (job.columns + PW_NR - 1) / PW_NR;
        job.total = a->in.n * job.panels;
        /* 1x256x28x28 -> 256 on two threads: runs of 13, 9, 7, 5, 4, 3, 2,
         * 2 and four of 1 panel (~23 us each). Its GEMM alone, interleaved,
         * median of 40-60 minimums of 10 runs: 0.674-0.687 ms in these runs
         * against 0.707 for 16 equal runs of 3-4 panels (the older split),
         * 0.715-0.720 for 49 single panels and 0.710 for two halves. A
         * shallow GEMM's runs stay long enough to cover a claim (3->10 at
         * 128x128: 4 runs of 256 panels). */
        int64_t threads = conv_threadpool_size(a->pool), divisor = 2 * threads;
        double panel_flops = 2.0 * (double)p->out_channels * (double)p->in_channels * PW_NR;
        double min_flops = PW_TASK_FLOPS / panel_flops;
        int64_t min_run = min_flops >= (double)job.total ? job.total : (int64_t)min_flops + 1;
        if (min_run > job.total / divisor) min_run = job.total / divisor;
        if (min_run < 1) min_run = 1;
        if (threads == 1) divisor = 1, min_run = job.total;
        int64_t tasks;
        while ((tasks = pw_split(&job, divisor, min_run)) == 0) min_run *= 2;
        conv_parallel_for(a->pool, (size_t)tasks, pw_task, &job);
        return;
    }
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
    .pack = gemm_1x1_pack,
    .release = gemm_1x1_release,
    .workspace_size = gemm_1x1_workspace,
    .run = gemm_1x1_run,
};
