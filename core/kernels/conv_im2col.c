/* conv_im2col.c — convolution as GEMM: out[n][g] (cout_g x OH*OW) =
 * W[g] (cout_g x K) * unfold(x[n][g]) (K x OH*OW), K = cin_g*kh*kw.
 *
 * Large GEMMs unfold a (K block x column tile) slice at a time and call
 * cblas_sgemm on it, accumulating over K blocks (beta = 1), so no full-size
 * im2col copy is ever made while each sgemm stays large enough that
 * OpenBLAS's packing of W is amortised. Small or skinny GEMMs (few taps or
 * few outputs per group, where sgemm's packing dominates; strides up to 4)
 * go to the AVX2 implicit GEMM, which reads the padded input (or its stride
 * phases) in place. */
#include <cblas.h>
#include <string.h>

#include "core/kernels/gemm_common.h"

static bool im2col_supports(const conv_params *p)
{
    (void)p;
    return true;
}

/* The unfolded slice: K blocks of whole input channels, column tiles sized
 * so a slice stays in L2 and there is at least one task per thread. */
typedef struct im2col_tiling {
    int64_t k, k_block, channels_per_block; /* taps */
    int64_t columns, tile, tiles;           /* output pixels */
} im2col_tiling;

#define IM2COL_SLICE_FLOATS (160 * 1024) /* 640 KiB of the 1 MiB L2 */
#define IM2COL_MIN_K_BLOCK 256
#define IM2COL_MAX_TILE 4096

static void im2col_tiling_of(const conv_params *p, const conv_dims *out, int threads, im2col_tiling *t)
{
    int64_t taps = p->kernel_h * p->kernel_w, cin_g = p->in_channels / p->groups;
    t->k = cin_g * taps;
    t->columns = out->h * out->w;
    int64_t tasks_outside = out->n * p->groups; /* independent GEMMs before tiling columns */
    int64_t min_tiles = tasks_outside >= threads ? 1 : (threads + tasks_outside - 1) / tasks_outside;
    int64_t tiles = (t->columns + IM2COL_MAX_TILE - 1) / IM2COL_MAX_TILE;
    if (tiles < min_tiles) tiles = min_tiles;
    int64_t tile = (t->columns + tiles - 1) / tiles;
    /* shrink the tile before the K block falls under IM2COL_MIN_K_BLOCK */
    int64_t min_k = t->k < IM2COL_MIN_K_BLOCK ? t->k : IM2COL_MIN_K_BLOCK;
    while (tile > 64 && min_k * tile > IM2COL_SLICE_FLOATS) tile = (tile + 1) / 2;
    if (tile > 16) tile = (tile + 15) / 16 * 16;
    if (tile > t->columns) tile = t->columns;
    t->tile = tile;
    t->tiles = (t->columns + tile - 1) / tile;
    int64_t channels = IM2COL_SLICE_FLOATS / (tile * taps);
    if (channels < 1) channels = 1;
    if (channels > cin_g) channels = cin_g;
    t->channels_per_block = channels;
    t->k_block = channels * taps;
}

/* The implicit GEMM wins where sgemm's packing costs as much as the
 * arithmetic: a handful of taps, or a handful of outputs per group. */
static bool im2col_use_implicit(const conv_params *p)
{
    int64_t k = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w, cout_g = p->out_channels / p->groups;
    return conv_implicit_gemm_supports(p) && (k <= 64 || cout_g <= 32);
}

static size_t slice_floats(const im2col_tiling *t)
{
    size_t slice = (size_t)t->k_block * (size_t)t->tile * sizeof(float) + CONV_ALIGNMENT;
    slice &= ~(size_t)(CONV_ALIGNMENT - 1);
    return slice / sizeof(float);
}

static bool im2col_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                             size_t *bytes)
{
    if (im2col_use_implicit(p)) return conv_implicit_gemm_workspace(p, in, out, threads, bytes);
    im2col_tiling t;
    im2col_tiling_of(p, out, threads, &t);
    return conv_size_mul(slice_floats(&t), sizeof(float), bytes) && conv_size_mul(*bytes, (size_t)threads, bytes);
}

typedef struct im2col_job {
    const conv_run_args *a;
    im2col_tiling t;
    size_t slice_floats;
} im2col_job;

/* col[k][j] for the tile's pixels: k runs over (channel, ky, kx) of
 * `channels` input channels from `in`. Rows are filled by runs of
 * consecutive output columns, so the inner loop is a strided copy. */
static void unfold_tile(const conv_params *p, const conv_run_args *a, const float *in, int64_t channels, int64_t j0,
                        int64_t cols, float *col)
{
    int64_t ow_n = a->out.w, ih_n = a->in.h, iw_n = a->in.w, sw = p->stride_w;
    for (int64_t c = 0; c < channels; c++) {
        const float *plane = in + c * ih_n * iw_n;
        for (int64_t ky = 0; ky < p->kernel_h; ky++) {
            for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                float *dst = col + ((c * p->kernel_h + ky) * p->kernel_w + kx) * cols;
                int64_t j = 0, oh = j0 / ow_n, ow = j0 % ow_n;
                while (j < cols) {
                    int64_t run = ow_n - ow < cols - j ? ow_n - ow : cols - j;
                    int64_t ih = oh * p->stride_h - p->pad_top + ky * p->dilation_h;
                    int64_t iw0 = ow * sw - p->pad_left + kx * p->dilation_w;
                    if (ih < 0 || ih >= ih_n) {
                        memset(dst + j, 0, (size_t)run * sizeof(float));
                    } else {
                        const float *row = plane + ih * iw_n;
                        /* the columns whose input lands inside the row */
                        int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                        int64_t hi = iw0 >= iw_n ? 0 : (iw_n - 1 - iw0) / sw + 1;
                        if (lo > run) lo = run;
                        if (hi > run) hi = run;
                        if (hi < lo) hi = lo;
                        memset(dst + j, 0, (size_t)lo * sizeof(float));
                        if (sw == 1) {
                            memcpy(dst + j + lo, row + iw0 + lo, (size_t)(hi - lo) * sizeof(float));
                        } else {
                            for (int64_t i = lo; i < hi; i++) dst[j + i] = row[iw0 + i * sw];
                        }
                        memset(dst + j + hi, 0, (size_t)(run - hi) * sizeof(float));
                    }
                    j += run;
                    ow = 0;
                    oh++;
                }
            }
        }
    }
}

static void im2col_task(void *ctx, size_t task, int thread)
{
    const im2col_job *job = ctx;
    const im2col_tiling *t = &job->t;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    int64_t tile_index = (int64_t)task % t->tiles;
    int64_t g = ((int64_t)task / t->tiles) % p->groups;
    int64_t n = (int64_t)task / t->tiles / p->groups;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t taps = p->kernel_h * p->kernel_w;
    int64_t j0 = tile_index * t->tile;
    int64_t cols = t->columns - j0 < t->tile ? t->columns - j0 : t->tile;

    float *col = (float *)a->workspace + (size_t)thread * job->slice_floats;
    const float *in = a->input + (n * p->in_channels + g * cin_g) * a->in.h * a->in.w;
    float *out = a->output + (n * p->out_channels + g * cout_g) * t->columns + j0;
    const float *w = a->weight + g * cout_g * t->k;
    for (int64_t c0 = 0; c0 < cin_g; c0 += t->channels_per_block) {
        int64_t channels = cin_g - c0 < t->channels_per_block ? cin_g - c0 : t->channels_per_block;
        int64_t kb = channels * taps;
        unfold_tile(p, a, in + c0 * a->in.h * a->in.w, channels, j0, cols, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)cols, (int)kb, 1.0f, w + c0 * taps,
                    (int)t->k, col, (int)cols, c0 == 0 ? 0.0f : 1.0f, out, (int)t->columns);
    }
    gemm_epilogue(out, cout_g, cols, t->columns, a->bias ? a->bias + g * cout_g : NULL, p->activation);
}

static void im2col_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    if (im2col_use_implicit(p)) {
        conv_implicit_gemm_run(a);
        return;
    }
    im2col_job job = {.a = a};
    im2col_tiling_of(p, &a->out, conv_threadpool_size(a->pool), &job.t);
    job.slice_floats = slice_floats(&job.t);
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.t.tiles), im2col_task, &job);
}

const conv_kernel conv_kernel_im2col = {
    .algorithm = CONV_ALGO_IM2COL,
    .supports = im2col_supports,
    .pack = NULL,
    .release = NULL,
    .workspace_size = im2col_workspace,
    .run = im2col_run,
};
