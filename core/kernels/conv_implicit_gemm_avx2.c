/* conv_implicit_gemm_avx2.c — convolutions whose GEMM is too small or too
 * skinny for cblas_sgemm (few input channels, few outputs per group): an
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
 * feed 12 FMAs, so the FMA ports, not the loads, set the pace.
 *
 * Strides: with stride (sh, sw) the padded plane is split into its sh x sw
 * polyphase components, phase (py, px) holding padded pixels (r*sh + py,
 * q*sw + px) on a plane of ceil(Hp/sh) x ceil(Wp/sw). Tap (ky, kx) reads
 * phase ((ky*dh) % sh, (kx*dw) % sw) at row oh + (ky*dh)/sh, column ow +
 * (kx*dw)/sw: a stride-1 convolution again, so the same trick applies with
 * the phase width in place of Wp, and no tap is computed that the strided
 * convolution does not need. */
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
    int64_t hq, wq;  /* one polyphase component (the padded plane when stride 1) */
    int64_t phases;  /* components per input plane: sh * sw */
    int64_t span;    /* flattened output positions computed: (OH-1)*wq + OW */
    int64_t chunk;   /* positions per task */
    int64_t chunks;  /* tasks per (image, group) */
    bool copy;       /* the input needs a zero-padded copy */
} ig_geometry;

static void ig_geometry_of(const conv_params *p, const conv_dims *in, const conv_dims *out, ig_geometry *g)
{
    g->hp = in->h + p->pad_top + p->pad_bottom;
    g->wp = in->w + p->pad_left + p->pad_right;
    g->hq = (g->hp + p->stride_h - 1) / p->stride_h;
    g->wq = (g->wp + p->stride_w - 1) / p->stride_w;
    g->phases = p->stride_h * p->stride_w;
    g->span = (out->h - 1) * g->wq + out->w;
    g->chunk = IG_BLOCK * IG_CHUNK_BLOCKS;
    g->chunks = (g->span + g->chunk - 1) / g->chunk;
    g->copy = p->pad_top || p->pad_bottom || p->pad_left || p->pad_right || g->phases > 1;
}

bool conv_implicit_gemm_supports(const conv_params *p)
{
    /* larger strides would copy phases no tap reads */
    return conv_cpu()->avx2_fma && p->stride_h >= 1 && p->stride_h <= 4 && p->stride_w >= 1 && p->stride_w <= 4;
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
        int64_t dims[5] = {in->n, in->c, g.phases, g.hq, g.wq};
        if (!conv_dims_product(dims, 5, &padded) || !conv_size_mul(padded, sizeof(float), &padded)) return false;
    }
    return conv_size_add(taps, padded, bytes);
}

typedef struct ig_job {
    const conv_run_args *a;
    ig_geometry g;
    const float *padded;   /* [n][c][phases][hq][wq] */
    int64_t k;             /* taps per output: cin_g * kh * kw */
    const int64_t *offset; /* [k]: where tap t reads, relative to the output position */
} ig_job;

/* The rows of phase row py of one input plane, all its sw column phases
 * (the whole zero-padded plane when stride 1): task = plane * sh + py. */
static void ig_pad_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const ig_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const ig_geometry *g = &job->g;
    int64_t sh = p->stride_h, sw = p->stride_w;
    size_t plane = task / (size_t)sh;
    int64_t py = (int64_t)(task % (size_t)sh);
    int64_t ih_n = a->in.h, iw_n = a->in.w, wq = g->wq, pl = p->pad_left, phase_plane = g->hq * wq;
    const float *src = a->input + plane * (size_t)(ih_n * iw_n);
    float *dst = (float *)job->padded + (plane * (size_t)g->phases + (size_t)(py * sw)) * (size_t)phase_plane;
    for (int64_t r = 0; r < g->hq; r++) {
        int64_t ih = r * sh + py - p->pad_top;
        for (int64_t px = 0; px < sw; px++) memset(dst + px * phase_plane + r * wq, 0, (size_t)wq * sizeof(float));
        if (ih < 0 || ih >= ih_n) continue;
        const float *in_row = src + ih * iw_n;
        if (sw == 1) {
            memcpy(dst + r * wq + pl, in_row, (size_t)iw_n * sizeof(float));
        } else if (sw == 2) {
            /* input column 2m + e lands in phase (e + pl) % 2 at (e + pl) / 2 + m:
             * split the row into its even and odd columns in one pass */
            float *even = dst + (pl % 2) * phase_plane + r * wq + pl / 2;
            float *odd = dst + ((1 + pl) % 2) * phase_plane + r * wq + (1 + pl) / 2;
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
            for (int64_t c = 0; c < iw_n; c++)
                dst[((c + pl) % sw) * phase_plane + r * wq + (c + pl) / sw] = in_row[c];
        }
    }
}

static inline __m256i ig_lane_mask(int64_t valid)
{
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(valid < 8 ? valid : 8)), lanes);
}

/* Where one register block's vectors go in an output plane. Vector v covers
 * flattened positions j0 + 8v ..: its first n0 lanes are output pixels at
 * dst0; lanes from start1 on wrap into the next output row, n1 of them real,
 * written at dst1. Worked out once per block for all its output channels. */
typedef struct ig_lanes {
    int64_t dst0[IG_VECS], dst1[IG_VECS];
    int n0[IG_VECS], start1[IG_VECS], n1[IG_VECS];
    bool scalar; /* rows narrower than a vector: lane by lane */
} ig_lanes;

static void ig_lanes_of(const ig_job *job, int64_t j0, int64_t valid, ig_lanes *l)
{
    int64_t ow_n = job->a->out.w, wq = job->g.wq;
    l->scalar = wq < 8;
    int64_t oh = j0 / wq, ow = j0 % wq;
    for (int v = 0; v < IG_VECS; v++) {
        int64_t lanes = valid - v * 8 < 8 ? (valid - v * 8 > 0 ? valid - v * 8 : 0) : 8;
        int64_t n0 = ow_n - ow < lanes ? ow_n - ow : lanes, start1 = wq - ow;
        l->dst0[v] = oh * ow_n + ow;
        l->n0[v] = (int)(n0 > 0 ? n0 : 0);
        l->start1[v] = (int)(start1 < 8 ? start1 : 8);
        int64_t n1 = lanes - start1;
        if (n1 > ow_n) n1 = ow_n;
        l->n1[v] = (int)(n1 > 0 ? n1 : 0);
        l->dst1[v] = (oh + 1) * ow_n;
        ow += 8;
        if (ow >= wq && !l->scalar) ow -= wq, oh++;
    }
}

/* Adds bias, activates and writes one register block's `rows` x `valid`
 * flattened positions starting at j0 into the output planes. Inlined into
 * ig_block so the accumulators go from registers to memory once. Partial
 * vectors are written lane by lane: AVX2 masked stores are microcoded and
 * slow on AMD. */
static inline __attribute__((always_inline)) void ig_store(const ig_job *job, float *out, const float *bias,
                                                           int64_t oc0, int rows, __m256 acc[][IG_VECS],
                                                           int64_t j0, int64_t valid, const ig_lanes *l)
{
    const conv_params *p = job->a->params;
    int64_t ow_n = job->a->out.w, wp = job->g.wq, plane = job->a->out.h * ow_n;
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++) {
        float *dst = out + (oc0 + r) * plane;
        __m256 b = _mm256_set1_ps(bias ? bias[oc0 + r] : 0.0f);
        _Pragma("GCC unroll 8")
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
            if (wp == ow_n && left >= 8) {
                /* no horizontal padding: flattened positions are output positions */
                _mm256_storeu_ps(dst + j, x);
            } else if (wp != ow_n && !l->scalar && l->n0[v] == 8) {
                _mm256_storeu_ps(dst + l->dst0[v], x);
            } else if (wp != ow_n && !l->scalar) {
                float lane[8];
                _mm256_storeu_ps(lane, x);
                for (int i = 0; i < l->n0[v]; i++) dst[l->dst0[v] + i] = lane[i];
                for (int i = 0; i < l->n1[v]; i++) dst[l->dst1[v] + i] = lane[l->start1[v] + i];
            } else {
                float lane[8];
                _mm256_storeu_ps(lane, x);
                int64_t n = left < 8 ? left : 8, oh = j / wp, ow = j % wp;
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
                                                           float *out, const float *bias, int64_t oc0,
                                                           const ig_lanes *lanes)
{
    int64_t k = job->k;
    __m256i mask[IG_VECS];
    _Pragma("GCC unroll 8")
    for (int v = 0; v < IG_VECS; v++) mask[v] = ig_lane_mask(full ? 8 : valid - v * 8);
    __m256 sum[IG_ROWS][IG_VECS];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < rows; r++)
        _Pragma("GCC unroll 8")
        for (int v = 0; v < IG_VECS; v++) sum[r][v] = _mm256_setzero_ps();
    const float *base = in + j0;
    for (int64_t t = 0; t < k; t++) {
        const float *src = base + job->offset[t];
#if IG_ROWS * IG_VECS + IG_ROWS + 1 <= 16
        /* tall blocks: the row weights stay in registers, one input vector at a time */
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
#else
        /* wide blocks: the input vectors stay in registers, one weight at a time */
        __m256 x[IG_VECS];
        _Pragma("GCC unroll 8")
        for (int v = 0; v < IG_VECS; v++) {
            x[v] = full ? _mm256_loadu_ps(src + v * 8) : _mm256_maskload_ps(src + v * 8, mask[v]);
            __asm__("" : "+x"(x[v]));
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < rows; r++) {
            __m256 wr = _mm256_broadcast_ss(w + r * k + t);
            _Pragma("GCC unroll 8")
            for (int v = 0; v < IG_VECS; v++) sum[r][v] = _mm256_fmadd_ps(wr, x[v], sum[r][v]);
        }
#endif
    }
    ig_store(job, out, bias, oc0, rows, sum, j0, valid, lanes);
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
    const float *in = job->padded + (n * p->in_channels + g * cin_g) * job->g.phases * job->g.hq * job->g.wq;
    float *out = a->output + (n * p->out_channels + g * cout_g) * a->out.h * a->out.w;
    const float *w = a->weight + g * cout_g * job->k;
    const float *bias = a->bias ? a->bias + g * cout_g : NULL;
    int64_t j_end = (chunk + 1) * job->g.chunk < job->g.span ? (chunk + 1) * job->g.chunk : job->g.span;
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
        ig_lanes lanes = {.scalar = true};
        if (job->g.wq != a->out.w) ig_lanes_of(job, j0, full ? IG_BLOCK : valid, &lanes);
        int64_t oc = 0;
        for (; oc + IG_ROWS <= cout_g; oc += IG_ROWS) {
            if (full) ig_block(job, in, w + oc * job->k, IG_ROWS, true, j0, IG_BLOCK, out, bias, oc, &lanes);
            else ig_block(job, in, w + oc * job->k, IG_ROWS, false, j0, valid, out, bias, oc, &lanes);
        }
        for (; oc < cout_g; oc++) {
            if (full) ig_block(job, in, w + oc * job->k, 1, true, j0, IG_BLOCK, out, bias, oc, &lanes);
            else ig_block(job, in, w + oc * job->k, 1, false, j0, valid, out, bias, oc, &lanes);
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
    int64_t t = 0, phase_plane = job.g.hq * job.g.wq, sh = p->stride_h, sw = p->stride_w;
    for (int64_t c = 0; c < p->in_channels / p->groups; c++)
        for (int64_t ky = 0; ky < p->kernel_h; ky++)
            for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                int64_t y = ky * p->dilation_h, x = kx * p->dilation_w;
                int64_t phase = (y % sh) * sw + x % sw;
                offset[t++] = (c * job.g.phases + phase) * phase_plane + (y / sh) * job.g.wq + x / sw;
            }
    job.offset = offset;
    job.padded = a->input;
    if (job.g.copy) {
        size_t taps_bytes = ((size_t)job.k * sizeof(int64_t) + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1);
        job.padded = (const float *)((char *)a->workspace + taps_bytes);
        conv_parallel_for(a->pool, (size_t)(a->in.n * a->in.c * p->stride_h), ig_pad_task, &job);
    }
    conv_parallel_for(a->pool, (size_t)(a->in.n * p->groups * job.g.chunks), ig_task, &job);
}
