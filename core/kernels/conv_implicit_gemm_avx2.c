/* conv_implicit_gemm_avx2.c — stride-1 convolutions whose GEMM is too small or
 * too skinny for cblas_sgemm (few input channels, few outputs per group): an
 * AVX2/FMA register-blocked implicit GEMM that reads the zero-padded input in
 * place instead of unfolding it.
 *
 * The trick that makes it vectorise over any width: on a zero-padded plane of
 * width Wp, output (oh, ow) of a stride-1 convolution reads padded pixel
 * (oh + ky*dh) * Wp + (ow + kx*dw), so with j = oh*Wp + ow every tap is the
 * flattened plane shifted by one constant. We compute j over [0, (OH-1)*Wp +
 * OW) in runs of 8 lanes and drop the Wp - OW lanes per row that fall in the
 * padding; that range never reads past the plane. A block holds 2 output
 * channels x 6 vectors (12 accumulators): per tap 2 broadcasts and 6 loads
 * feed 12 FMAs, so the FMA ports, not the loads, set the pace. */
#include <immintrin.h>
#include <string.h>

#include "core/kernels/gemm_common.h"

#ifndef IG_ROWS
#define IG_ROWS 2
#endif
#define IG_ROWS_  /* output channels per register block */
#ifndef IG_VECS
#define IG_VECS 6
#endif
#define IG_VECS_  /* 8-lane vectors per register block */
#define IG_BLOCK (IG_VECS * 8)
#define IG_CHUNK_BLOCKS 4 /* register blocks per task: a task's input window stays in L1 */

typedef struct ig_geometry {
    int64_t hp, wp;  /* padded plane */
    int64_t span;    /* flattened output positions computed: (OH-1)*Wp + OW */
    int64_t chunk;   /* positions per task */
    int64_t chunks;  /* tasks per (image, group) */
    bool copy;       /* the input needs a zero-padded copy */
} ig_geometry;

static void ig_geometry_of(const conv_params *p, const conv_dims *in, const conv_dims *out, ig_geometry *g)
{
    g->hp = in->h + p->pad_top + p->pad_bottom;
    g->wp = in->w + p->pad_left + p->pad_right;
    g->span = (out->h - 1) * g->wp + out->w;
    g->chunk = IG_BLOCK * IG_CHUNK_BLOCKS;
    g->chunks = (g->span + g->chunk - 1) / g->chunk;
    g->copy = p->pad_top || p->pad_bottom || p->pad_left || p->pad_right;
}

bool conv_implicit_gemm_supports(const conv_params *p)
{
    return conv_cpu()->avx2_fma && p->stride_h == 1 && p->stride_w == 1;
}

bool conv_implicit_gemm_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, size_t *bytes)
{
    ig_geometry g;
    ig_geometry_of(p, in, out, &g);
    size_t taps, padded = 0;
    int64_t k_dims[3] = {p->in_channels / p->groups, p->kernel_h, p->kernel_w};
    if (!conv_dims_product(k_dims, 3, &taps) || !conv_size_mul(taps, sizeof(int64_t), &taps)) return false;
    taps = (taps + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1);
    if (g.copy) {
        int64_t dims[4] = {in->n, in->c, g.hp, g.wp};
        if (!conv_dims_product(dims, 4, &padded) || !conv_size_mul(padded, sizeof(float), &padded)) return false;
    }
    return conv_size_add(taps, padded, bytes);
}

typedef struct ig_job {
    const conv_run_args *a;
    ig_geometry g;
    const float *padded;   /* [n][c][hp][wp] */
    int64_t k;             /* taps per output: cin_g * kh * kw */
    const int64_t *offset; /* [k]: where tap t reads, relative to the output position */
} ig_job;

static void ig_pad_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const ig_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const float *src = a->input + plane * (size_t)(a->in.h * a->in.w);
    float *dst = (float *)job->padded + plane * (size_t)(job->g.hp * job->g.wp);
    int64_t wp = job->g.wp;
    memset(dst, 0, (size_t)(p->pad_top * wp) * sizeof(float));
    for (int64_t y = 0; y < a->in.h; y++) {
        float *row = dst + (p->pad_top + y) * wp;
        memset(row, 0, (size_t)p->pad_left * sizeof(float));
        memcpy(row + p->pad_left, src + y * a->in.w, (size_t)a->in.w * sizeof(float));
        memset(row + p->pad_left + a->in.w, 0, (size_t)p->pad_right * sizeof(float));
    }
    memset(dst + (p->pad_top + a->in.h) * wp, 0, (size_t)(p->pad_bottom * wp) * sizeof(float));
}

static inline __m256i ig_lane_mask(int64_t valid)
{
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(valid < 8 ? valid : 8)), lanes);
}

/* Adds bias, activates and writes one register block's `rows` x `valid`
 * flattened positions starting at j0 into the output planes. */
static void ig_store(const ig_job *job, float *out, const float *bias, int64_t oc0, int rows, __m256 acc[][IG_VECS],
                     int64_t j0, int64_t valid)
{
    const conv_params *p = job->a->params;
    int64_t ow_n = job->a->out.w, wp = job->g.wp, plane = job->a->out.h * ow_n;
    for (int r = 0; r < rows; r++) {
        float *dst = out + (oc0 + r) * plane;
        __m256 b = _mm256_set1_ps(bias ? bias[oc0 + r] : 0.0f);
        for (int v = 0; v < IG_VECS; v++) {
            int64_t j = j0 + v * 8, left = valid - v * 8;
            if (left <= 0) break;
            __m256 x = _mm256_add_ps(acc[r][v], b);
            if (p->activation != CONV_ACT_NONE) {
                /* max(x, 0) written as and-not of the sign test keeps NaN, as torch does */
                __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
                x = _mm256_andnot_ps(neg, x);
                if (p->activation == CONV_ACT_RELU6)
                    x = _mm256_blendv_ps(x, _mm256_set1_ps(6.0f), _mm256_cmp_ps(x, _mm256_set1_ps(6.0f), _CMP_GT_OQ));
            }
            int64_t oh = j / wp, ow = j % wp;
            if (wp == ow_n) {
                /* no horizontal padding: flattened positions are output positions */
                if (left >= 8) _mm256_storeu_ps(dst + j, x);
                else _mm256_maskstore_ps(dst + j, ig_lane_mask(left), x);
            } else if (left >= 8 && ow + 8 <= ow_n) {
                _mm256_storeu_ps(dst + oh * ow_n + ow, x);
            } else {
                float lane[8];
                _mm256_storeu_ps(lane, x);
                int64_t n = left < 8 ? left : 8;
                for (int64_t i = 0; i < n; i++) {
                    if (ow < ow_n) dst[oh * ow_n + ow] = lane[i];
                    if (++ow == wp) ow = 0, oh++;
                }
            }
        }
    }
}

/* One register block: `rows` (1 or IG_ROWS) output channels x IG_BLOCK
 * positions from j0, `valid` of them real (the rest masked). Inlined with
 * constant rows/full so each variant's loops unroll. */
static inline __attribute__((always_inline)) void ig_block(const ig_job *job, const float *in, const float *w,
                                                           int rows, bool full, int64_t j0, int64_t valid,
                                                           __m256 acc[][IG_VECS])
{
    int64_t k = job->k;
    __m256i mask[IG_VECS];
    _Pragma("GCC unroll 8")
    for (int v = 0; v < IG_VECS; v++) mask[v] = ig_lane_mask(full ? 8 : valid - v * 8);
    /* local accumulators stay in registers; `acc` escapes to ig_store */
    __m256 sum[IG_ROWS][IG_VECS];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++)
        _Pragma("GCC unroll 8")
        for (int v = 0; v < IG_VECS; v++) sum[r][v] = _mm256_setzero_ps();
    const float *base = in + j0;
    for (int64_t t = 0; t < k; t++) {
        const float *src = base + job->offset[t];
        __m256 wv[IG_ROWS];
        _Pragma("GCC unroll 8")
        for (int r = 0; r < rows; r++) wv[r] = _mm256_broadcast_ss(w + r * k + t);
        _Pragma("GCC unroll 8")
        for (int v = 0; v < IG_VECS; v++) {
            __m256 x = full ? _mm256_loadu_ps(src + v * 8) : _mm256_maskload_ps(src + v * 8, mask[v]);
            /* one load per vector: otherwise gcc folds it into every FMA */
            __asm__("" : "+x"(x));
            _Pragma("GCC unroll 8")
            for (int r = 0; r < rows; r++) sum[r][v] = _mm256_fmadd_ps(wv[r], x, sum[r][v]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++)
        _Pragma("GCC unroll 8")
        for (int v = 0; v < IG_VECS; v++) acc[r][v] = sum[r][v];
}

static void ig_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const ig_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    int64_t chunk = (int64_t)task % job->g.chunks;
    int64_t g = ((int64_t)task / job->g.chunks) % p->groups;
    int64_t n = (int64_t)task / job->g.chunks / p->groups;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    const float *in = job->padded + (n * p->in_channels + g * cin_g) * job->g.hp * job->g.wp;
    float *out = a->output + (n * p->out_channels + g * cout_g) * a->out.h * a->out.w;
    const float *w = a->weight + g * cout_g * job->k;
    const float *bias = a->bias ? a->bias + g * cout_g : NULL;
    int64_t j_end = (chunk + 1) * job->g.chunk < job->g.span ? (chunk + 1) * job->g.chunk : job->g.span;
    __m256 acc[IG_ROWS][IG_VECS];
    for (int64_t j0 = chunk * job->g.chunk; j0 < j_end; j0 += IG_BLOCK) {
        int64_t valid = j_end - j0;
        /* The first output channels of a block wait on every tap's input
         * row, one stream per input channel: more streams than the hardware
         * prefetcher follows. Fetch the next block's rows while this one runs. */
        if (valid > IG_BLOCK)
            for (int64_t t = 0; t < job->k; t++) {
                const char *next = (const char *)(in + job->offset[t] + j0 + IG_BLOCK);
                for (int line = 0; line <= IG_BLOCK * (int)sizeof(float) / 64; line++)
                    _mm_prefetch(next + 64 * line, _MM_HINT_T0);
            }
        bool full = valid >= IG_BLOCK;
        int64_t oc = 0;
        for (; oc + IG_ROWS <= cout_g; oc += IG_ROWS) {
            if (full) ig_block(job, in, w + oc * job->k, IG_ROWS, true, j0, IG_BLOCK, acc);
            else ig_block(job, in, w + oc * job->k, IG_ROWS, false, j0, valid, acc);
            ig_store(job, out, bias, oc, IG_ROWS, acc, j0, full ? IG_BLOCK : valid);
        }
        for (; oc < cout_g; oc++) {
            if (full) ig_block(job, in, w + oc * job->k, 1, true, j0, IG_BLOCK, acc);
            else ig_block(job, in, w + oc * job->k, 1, false, j0, valid, acc);
            ig_store(job, out, bias, oc, 1, acc, j0, full ? IG_BLOCK : valid);
        }
    }
}

void conv_implicit_gemm_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    ig_job job = {.a = a};
    ig_geometry_of(p, &a->in, &a->out, &job.g);
    job.k = (p->in_channels / p->groups) * p->kernel_h * p->kernel_w;
    int64_t *offset = a->workspace;
    int64_t t = 0, plane = job.g.hp * job.g.wp;
    for (int64_t c = 0; c < p->in_channels / p->groups; c++)
        for (int64_t ky = 0; ky < p->kernel_h; ky++)
            for (int64_t kx = 0; kx < p->kernel_w; kx++)
                offset[t++] = c * plane + ky * p->dilation_h * job.g.wp + kx * p->dilation_w;
    job.offset = offset;
    job.padded = a->input;
    if (job.g.copy) {
        size_t taps_bytes = ((size_t)job.k * sizeof(int64_t) + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1);
        job.padded = (const float *)((char *)a->workspace + taps_bytes);
        conv_parallel_for(a->pool, (size_t)(a->in.n * a->in.c), ig_pad_task, &job);
    }
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.g.chunks), ig_task, &job);
}
