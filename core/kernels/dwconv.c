/* dwconv.c — the depthwise convolution kernel (groups == in_channels, any
 * depth multiplier): splits each output plane into its interior, computed
 * without bounds checks by the AVX2 or scalar routine chosen at run time,
 * and the border rows/columns, computed here one output at a time with checks.
 *
 * pack() stores each tap broadcast to 8 lanes ([out_channels][kh*kw][8],
 * on AVX2 machines only), so the AVX2 tiles take weights as FMA memory
 * operands instead of a broadcast per use. Work is split over (image,
 * channel) planes, and over row blocks of each plane when there are too few
 * planes to feed every thread.
 *
 * Small output planes and stride 2 go instead through the channel-blocked
 * path (dwconv_blocked_avx2.c), 8 channels a vector, over blocks of 8
 * channels, and 3x3 layers on small maps (or at stride 2 with few
 * channels) through the in-place 3x3 path (dwconv_3x3_avx2.c); the choice
 * is made per run from the geometry and the channel count
 * (dwconv_3x3_preferred, dwconv_blocked_preferred). */
#include <stddef.h>
#include <string.h>

#include "core/kernels/dwconv.h"

static bool dw_supports(const conv_params *p)
{
    return p->groups >= 1 && p->groups == p->in_channels && p->out_channels % p->groups == 0 &&
           p->out_channels >= p->groups && p->kernel_h >= 1 && p->kernel_w >= 1 && p->stride_h >= 1 &&
           p->stride_w >= 1 && p->dilation_h >= 1 && p->dilation_w >= 1 && p->pad_top >= 0 && p->pad_bottom >= 0 &&
           p->pad_left >= 0 && p->pad_right >= 0;
}

void dwconv_broadcast_taps(const float *w, int64_t n, float *taps)
{
    for (int64_t i = 0; i < n; i++)
        for (int lane = 0; lane < 8; lane++) taps[i * 8 + lane] = w[i];
}

/* w8[t*8 + l] = tap t of output channel (c0 + l) * multiplier + j, zero past the last channel */
static void dw_block_taps(const conv_params *p, const float *weight, int64_t c0, int64_t j, float *w8)
{
    int64_t taps = p->kernel_h * p->kernel_w, mult = p->out_channels / p->in_channels;
    for (int64_t l = 0; l < 8; l++) {
        int64_t oc = (c0 + l) * mult + j;
        for (int64_t t = 0; t < taps; t++) w8[t * 8 + l] = c0 + l < p->in_channels ? weight[oc * taps + t] : 0.0f;
    }
}

/* Packed weights, AVX2 machines only: each tap broadcast to 8 lanes
 * ([out_channels][kh*kw][8], what the per-plane tiles and the fused separable
 * kernel read), then the channel-blocked path's taps: [ceil(in/8)][multiplier]
 * [kh*kw][8], lane l of block b, multiplier index j holding output channel
 * (8b + l) * multiplier + j (zero past the last channel). */
static conv_status dw_pack(const conv_params *p, const float *weight, const float *bias, void **packed,
                           conv_error *err)
{
    (void)bias;
    *packed = NULL;
    if (!conv_cpu()->avx2_fma) return CONV_OK; /* only the AVX2 path reads them */
    size_t taps, blocked, floats, bytes;
    size_t cblocks = ((size_t)p->in_channels + 7) / 8, mult = (size_t)(p->out_channels / p->in_channels);
    if (!conv_size_mul((size_t)p->out_channels, (size_t)p->kernel_h, &taps) ||
        !conv_size_mul(taps, (size_t)p->kernel_w, &taps) || !conv_size_mul(taps, 8, &floats) ||
        !conv_size_mul(cblocks * 8, mult, &blocked) ||
        !conv_size_mul(blocked, (size_t)(p->kernel_h * p->kernel_w), &blocked) || floats + blocked < floats ||
        !conv_size_mul(floats + blocked, sizeof(float), &bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "depthwise weights of %lld x %lld x %lld overflow when packed",
                         (long long)p->out_channels, (long long)p->kernel_h, (long long)p->kernel_w);
    float *taps8 = conv_aligned_alloc(bytes);
    if (!taps8) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory packing %zu bytes of depthwise weights", bytes);
    dwconv_broadcast_taps(weight, (int64_t)taps, taps8);
    int64_t ntaps = p->kernel_h * p->kernel_w;
    for (int64_t b = 0; b < (int64_t)cblocks; b++)
        for (int64_t j = 0; j < (int64_t)mult; j++)
            dw_block_taps(p, weight, b * 8, j, taps8 + floats + (b * (int64_t)mult + j) * ntaps * 8);
    *packed = taps8;
    return CONV_OK;
}

static void dw_release(void *packed) { conv_aligned_free(packed); }

static bool dw_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads, size_t *bytes)
{
    (void)p, (void)in, (void)out, (void)threads;
    *bytes = 0;
    return true;
}

/* Outputs [lo, hi) along one axis whose whole window
 * o*stride - pad + [0, (k-1)*dilation] lies in [0, in_size). */
static void interior_range(int64_t out_size, int64_t in_size, int64_t k, int64_t stride, int64_t dilation,
                           int64_t pad, int64_t *lo, int64_t *hi)
{
    int64_t first = (pad + stride - 1) / stride;
    int64_t last_num = in_size - 1 + pad - (k - 1) * dilation; /* o*stride <= last_num */
    int64_t end = last_num < 0 ? 0 : last_num / stride + 1;
    if (end > out_size) end = out_size;
    if (first > end) first = end;
    *lo = first;
    *hi = end;
}

/* Outputs o in [o0, o1) whose input index o*stride + offset lies in [0, size). */
static void clip(int64_t o0, int64_t o1, int64_t size, int64_t stride, int64_t offset, int64_t *lo, int64_t *hi)
{
    int64_t first = offset >= 0 ? 0 : (stride - 1 - offset) / stride;
    int64_t last_num = size - 1 - offset;
    int64_t end = last_num < 0 ? 0 : last_num / stride + 1;
    *lo = first > o0 ? first : o0;
    *hi = end < o1 ? end : o1;
    if (*hi < *lo) *hi = *lo;
}

/* Outputs [y0, y1) x [x0, x1) next to the border: each tap adds into the
 * block over the outputs where it lands inside the input, so taps on the
 * padding cost nothing and no output waits on a chain of its own sums (the
 * inner loop runs along the longer side). Same rounding as the reference. */
static void border_block(const dw_plane *p, int64_t y0, int64_t y1, int64_t x0, int64_t x1)
{
    if (y0 >= y1 || x0 >= x1) return;
    for (int64_t oy = y0; oy < y1; oy++)
        for (int64_t ox = x0; ox < x1; ox++) p->out[oy * p->ow + ox] = p->bias;
    bool rows_inner = y1 - y0 > x1 - x0;
    for (int64_t ky = 0; ky < p->kh; ky++) {
        int64_t ylo, yhi, yoff = ky * p->dh - p->pt;
        clip(y0, y1, p->ih, p->sh, yoff, &ylo, &yhi);
        for (int64_t kx = 0; kx < p->kw; kx++) {
            int64_t xlo, xhi, xoff = kx * p->dw - p->pl;
            clip(x0, x1, p->iw, p->sw, xoff, &xlo, &xhi);
            float w = p->w[ky * p->kw + kx];
            int64_t base = yoff * p->iw + xoff; /* input index = base + oy*sh*iw + ox*sw */
            if (rows_inner) {
                for (int64_t ox = xlo; ox < xhi; ox++)
                    for (int64_t oy = ylo; oy < yhi; oy++)
                        p->out[oy * p->ow + ox] += w * p->in[base + oy * p->sh * p->iw + ox * p->sw];
            } else {
                for (int64_t oy = ylo; oy < yhi; oy++)
                    for (int64_t ox = xlo; ox < xhi; ox++)
                        p->out[oy * p->ow + ox] += w * p->in[base + oy * p->sh * p->iw + ox * p->sw];
            }
        }
    }
    if (p->act != CONV_ACT_NONE)
        for (int64_t oy = y0; oy < y1; oy++)
            for (int64_t ox = x0; ox < x1; ox++)
                p->out[oy * p->ow + ox] = conv_activate(p->out[oy * p->ow + ox], p->act);
}

/* Row-wise like the reference (bias, then each tap over the whole row), so
 * it rounds exactly as the reference does, and the compiler can vectorise
 * the stride-1 inner loop for whatever SIMD the baseline target has. */
static void interior_scalar(const dw_plane *p, int64_t y0, int64_t y1)
{
    int64_t n = p->ow_hi - p->ow_lo;
    for (int64_t oy = y0; oy < y1; oy++) {
        float *out = p->out + oy * p->ow + p->ow_lo;
        const float *x = p->in + (oy * p->sh - p->pt) * p->iw + p->ow_lo * p->sw - p->pl;
        for (int64_t i = 0; i < n; i++) out[i] = p->bias;
        for (int64_t ky = 0; ky < p->kh; ky++) {
            for (int64_t kx = 0; kx < p->kw; kx++) {
                float w = p->w[ky * p->kw + kx];
                const float *src = x + ky * p->dh * p->iw + kx * p->dw;
                if (p->sw == 1) {
                    for (int64_t i = 0; i < n; i++) out[i] += w * src[i];
                } else {
                    for (int64_t i = 0; i < n; i++) out[i] += w * src[i * p->sw];
                }
            }
        }
        if (p->act != CONV_ACT_NONE)
            for (int64_t i = 0; i < n; i++) out[i] = conv_activate(out[i], p->act);
    }
}

void dwconv_rows_scalar(const dw_plane *p, int64_t y0, int64_t y1)
{
    int64_t in0 = y0 > p->oh_lo ? y0 : p->oh_lo, in1 = y1 < p->oh_hi ? y1 : p->oh_hi;
    if (in0 >= in1) in0 = in1 = y1; /* no interior rows here */
    border_block(p, y0, in0, 0, p->ow);
    border_block(p, in0, in1, 0, p->ow_lo);
    border_block(p, in0, in1, p->ow_hi, p->ow);
    if (in0 < in1) interior_scalar(p, in0, in1);
    border_block(p, in1, y1, 0, p->ow);
}

typedef struct dw_job {
    const conv_run_args *a;
    dw_plane shape; /* geometry shared by every plane; pointers filled per task */
    int64_t multiplier, blocks, block_rows;
    bool avx2;
    dw_avx2_plan plan;
} dw_job;

static void dw_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const dw_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *cp = a->params;
    int64_t plane = (int64_t)task / job->blocks, block = (int64_t)task % job->blocks;
    int64_t n = plane / cp->out_channels, oc = plane % cp->out_channels;
    dw_plane p = job->shape;
    p.in = a->input + (n * cp->in_channels + oc / job->multiplier) * p.ih * p.iw;
    p.out = a->output + plane * p.oh * p.ow;
    p.w = a->weight + oc * p.kh * p.kw;
    p.wb = a->packed ? (const float *)a->packed + oc * p.kh * p.kw * 8 : NULL;
    p.bias = a->bias ? a->bias[oc] : 0.0f;
    int64_t y0 = block * job->block_rows, y1 = y0 + job->block_rows < p.oh ? y0 + job->block_rows : p.oh;
    if (job->avx2)
        dwconv_rows_avx2(&p, &job->plan, y0, y1);
    else
        dwconv_rows_scalar(&p, y0, y1);
}

/* The phase-buffer path's work: tasks of `group` consecutive input planes
 * (image, channel) times one row block each; every output channel reading
 * an input plane is computed from the same copy of it. */
/* How a path's units (planes or channel blocks) become tasks: `group`
 * units a task, or with fewer units than tasks wanted one unit a task in
 * `blocks` blocks of `block_rows` output rows (see split_tasks). */
typedef struct dw_tasks {
    int64_t units, group, blocks, block_rows, rows;
} dw_tasks;

/* units [*u0, *u1) and output rows [*y0, *y1) of task `task` */
static void task_range(const dw_tasks *t, size_t task, int64_t *u0, int64_t *u1, int64_t *y0, int64_t *y1)
{
    int64_t gi = (int64_t)task / t->blocks, bi = (int64_t)task % t->blocks;
    *u0 = gi * t->group, *u1 = *u0 + t->group < t->units ? *u0 + t->group : t->units;
    *y0 = bi * t->block_rows, *y1 = *y0 + t->block_rows < t->rows ? *y0 + t->block_rows : t->rows;
}

typedef struct dw_phase_job {
    const conv_run_args *a;
    dw_plane shape;
    dw_phase_geom g;
    int64_t multiplier;
    dw_tasks tasks; /* units are planes */
} dw_phase_job;

/* output channels computed from one copy of their input block: bounds the unpacked taps on the stack */
#define DW_PHASE_OUTS 4

static void dw_phase_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const dw_phase_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *cp = a->params;
    const dw_plane *s = &job->shape;
    int64_t p0, p1, y0, y1;
    task_range(&job->tasks, task, &p0, &p1, &y0, &y1);
    int64_t taps = s->kh * s->kw, mult = job->multiplier;
    _Alignas(32) float buf[DW_PHASE_FLOATS];
    _Alignas(32) float unpacked[DW_PHASE_OUTS][DW_PHASE_MAX_TAPS * 8];
    dw_plane outs[DW_PHASE_OUTS];
    int64_t layout[2] = {-1, -1};
    for (int64_t plane = p0; plane < p1; plane++) {
        int64_t n = plane / cp->in_channels, c = plane % cp->in_channels;
        const float *in = a->input + plane * s->ih * s->iw;
        for (int64_t m0 = 0; m0 < mult; m0 += DW_PHASE_OUTS) {
            int64_t nouts = mult - m0 < DW_PHASE_OUTS ? mult - m0 : DW_PHASE_OUTS;
            for (int64_t j = 0; j < nouts; j++) {
                int64_t oc = c * mult + m0 + j;
                outs[j] = *s;
                outs[j].out = a->output + (n * cp->out_channels + oc) * s->oh * s->ow;
                outs[j].w = a->weight + oc * taps;
                if (a->packed) {
                    outs[j].wb = (const float *)a->packed + oc * taps * 8;
                } else {
                    dwconv_broadcast_taps(outs[j].w, taps, unpacked[j]);
                    outs[j].wb = unpacked[j];
                }
                outs[j].bias = a->bias ? a->bias[oc] : 0.0f;
            }
            dwconv_phase_rows(s, &job->g, in, outs, nouts, y0, y1, buf, layout);
        }
    }
}

/* Below this many multiply-adds a second thread costs more to wake than it saves. */
#define DW_PARALLEL_MIN_MACS 200000
/* output planes up to this many pixels go through the channel-blocked path (and stride 2) */
#define DW_BLOCKED_MAX_PLANE 1024

/* Splits `units` into about 4 tasks a thread (claimed dynamically), by
 * units or, when there are fewer, by rows; small convolutions run as one
 * task. Returns the task count. */
static size_t split_tasks(dw_tasks *t, const conv_run_args *a, const dw_plane *s, int64_t units)
{
    const conv_params *cp = a->params;
    int64_t threads = conv_threadpool_size(a->pool);
    int64_t macs = a->out.n * cp->out_channels * s->oh * s->ow * s->kh * s->kw;
    *t = (dw_tasks){.units = units, .group = units, .blocks = 1, .block_rows = s->oh, .rows = s->oh};
    if (threads > 1 && macs >= DW_PARALLEL_MIN_MACS) {
        int64_t want = 4 * threads;
        if (units >= want) {
            t->group = (units + want - 1) / want;
        } else {
            t->group = 1;
            int64_t per_unit = (want + units - 1) / units;
            t->block_rows = (s->oh + per_unit - 1) / per_unit;
            t->blocks = (s->oh + t->block_rows - 1) / t->block_rows;
        }
    }
    return (size_t)((units + t->group - 1) / t->group * t->blocks);
}

static bool run_phase(const conv_run_args *a, const dw_plane *s)
{
    const conv_params *cp = a->params;
    dw_phase_job job = {.a = a, .shape = *s};
    /* Stride-2 rows of one vector: the older tiles on the raw input ran
     * 1x512x14x14 in 0.093-0.097 ms against this path's 0.101-0.107 (the
     * copy costs more than the 63 FMAs of such a plane). */
    if (s->sw == 2 && s->ow < 8) return false;
    if (!dwconv_phase_geometry(s, &job.g)) return false;
    job.multiplier = cp->out_channels / cp->in_channels;
    size_t tasks = split_tasks(&job.tasks, a, s, a->in.n * cp->in_channels);
    conv_parallel_for(a->pool, tasks, dw_phase_task, &job);
    return true;
}

/* The in-place 3x3 path's work: tasks of `group` output planes times one
 * row block each. */
typedef struct dw_3x3_job {
    const conv_run_args *a;
    dw_plane shape;
    dw_3x3_geom g;
    int64_t multiplier;
    dw_tasks tasks; /* units are output planes */
} dw_3x3_job;

static void dw_3x3_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const dw_3x3_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *cp = a->params;
    int64_t p0, p1, y0, y1;
    task_range(&job->tasks, task, &p0, &p1, &y0, &y1);
    dw_3x3_planes t = {.input = a->input, .output = a->output, .bias = a->bias, .images = a->in.n,
                      .in_channels = cp->in_channels, .out_channels = cp->out_channels,
                      .multiplier = job->multiplier, .wb = (const float *)a->packed, .wb_stride = 9 * 8};
    if (a->packed) {
        dwconv_3x3_planes(&job->shape, &job->g, &t, p0, p1, y0, y1);
        return;
    }
    /* unpacked weights (tests): one plane at a time with its taps broadcast here */
    _Alignas(32) float unpacked[9 * 8];
    t.wb = unpacked, t.wb_stride = 0;
    for (int64_t plane = p0; plane < p1; plane++) {
        dwconv_broadcast_taps(a->weight + plane % cp->out_channels * 9, 9, unpacked);
        dwconv_3x3_planes(&job->shape, &job->g, &t, plane, plane + 1, y0, y1);
    }
}

static bool run_3x3(const conv_run_args *a, const dw_plane *s)
{
    const conv_params *cp = a->params;
    dw_3x3_job job = {.a = a, .shape = *s};
    if (!dwconv_3x3_geometry(s, &job.g)) return false;
    job.multiplier = cp->out_channels / cp->in_channels;
    size_t tasks = split_tasks(&job.tasks, a, s, a->out.n * cp->out_channels);
    conv_parallel_for(a->pool, tasks, dw_3x3_task, &job);
    return true;
}

/* The AVX-512 path's work: tasks of `group` output planes times one row
 * block each (one plane a task cost a shared claim per ~0.3 us of work:
 * 1x512x14x14 on two threads ran 3x slower than on one). */
typedef struct dw_avx512_job {
    const conv_run_args *a;
    dw_plane shape;
    int64_t multiplier;
    dw_tasks tasks; /* units are output planes */
} dw_avx512_job;

static void dw_avx512_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const dw_avx512_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *cp = a->params;
    int64_t p0, p1, y0, y1;
    task_range(&job->tasks, task, &p0, &p1, &y0, &y1);
    dw_plane p = job->shape;
    /* (image, channel) stepped, not divided out per plane: a 7x7 plane is
     * ~100 cycles of work */
    int64_t n = p0 / cp->out_channels, oc = p0 % cp->out_channels;
    for (int64_t plane = p0; plane < p1; plane++) {
        p.in = a->input + (n * cp->in_channels + oc / job->multiplier) * p.ih * p.iw;
        p.out = a->output + plane * p.oh * p.ow;
        p.w = a->weight + oc * p.kh * p.kw;
        p.bias = a->bias ? a->bias[oc] : 0.0f;
        dwconv_rows_avx512(&p, y0, y1);
        if (++oc == cp->out_channels) oc = 0, n++;
    }
}

static void run_avx512(const conv_run_args *a, const dw_plane *s)
{
    const conv_params *cp = a->params;
    dw_avx512_job job = {.a = a, .shape = *s, .multiplier = cp->out_channels / cp->in_channels};
    size_t tasks = split_tasks(&job.tasks, a, s, a->out.n * cp->out_channels);
    conv_parallel_for(a->pool, tasks, dw_avx512_task, &job);
}

void dw_plane_geometry(dw_plane *s, const conv_params *cp, const conv_dims *in, const conv_dims *out)
{
    s->act = cp->activation;
    s->ih = in->h, s->iw = in->w, s->oh = out->h, s->ow = out->w;
    s->kh = cp->kernel_h, s->kw = cp->kernel_w, s->sh = cp->stride_h, s->sw = cp->stride_w;
    s->dh = cp->dilation_h, s->dw = cp->dilation_w, s->pt = cp->pad_top, s->pl = cp->pad_left, s->pr = cp->pad_right;
    interior_range(s->oh, s->ih, s->kh, s->sh, s->dh, s->pt, &s->oh_lo, &s->oh_hi);
    interior_range(s->ow, s->iw, s->kw, s->sw, s->dw, s->pl, &s->ow_lo, &s->ow_hi);
    if (s->oh_lo == s->oh_hi || s->ow_lo == s->ow_hi) s->oh_lo = s->oh_hi = s->ow_lo = s->ow_hi = 0;
}

/* The channel-blocked path's work: units of 8 input channels of one image
 * (the last of an image may have fewer), in tasks of `group` units times
 * one row block; each unit's scratch rows serve every output channel that
 * reads its planes. */
typedef struct dw_blocked_job {
    const conv_run_args *a;
    dw_plane shape;
    dw_blocked_geom g;
    int64_t multiplier, cblocks;
    dw_tasks tasks; /* units are (image, block of 8 channels) */
} dw_blocked_job;

/* Asks for input rows [iy0, iy0 + rows) of nch consecutive planes from
 * first: the next strip's, fetched while this one is computed (a block of
 * small planes is too short a stream for the hardware prefetcher, and the
 * transposes waited on these loads). */
static void prefetch_rows(const dw_plane *s, const float *first, int nch, int64_t iy0, int64_t rows)
{
    int64_t lo = iy0 < 0 ? 0 : iy0, hi = iy0 + rows < s->ih ? iy0 + rows : s->ih;
    if (lo >= hi) return;
    size_t bytes = (size_t)((hi - lo) * s->iw) * sizeof(float);
    for (int ch = 0; ch < nch; ch++) {
        const char *p = (const char *)(first + ch * s->ih * s->iw + lo * s->iw);
        for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
        __builtin_prefetch(p + bytes - 1);
    }
}

static void dw_blocked_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const dw_blocked_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *cp = a->params;
    const dw_plane *s = &job->shape;
    int64_t u0, u1, y0, y1;
    task_range(&job->tasks, task, &u0, &u1, &y0, &y1);
    int64_t taps = s->kh * s->kw, mult = job->multiplier, span = (s->kh - 1) * s->dh + 1;
    int64_t in_plane = s->ih * s->iw, out_plane = s->oh * s->ow;
    _Alignas(32) float buf[DW_BLOCKED_FLOATS];
    _Alignas(32) float wtmp[DW_BLOCKED_MAX_TAPS * 8];
    float bias8[8];
    int64_t layout_iy0 = 0, layout_rows = -1; /* the rows buf's zero padding is laid out for */
    for (int64_t u = u0; u < u1; u++) {
        int64_t n = u / job->cblocks, cb = u % job->cblocks, c0 = cb * 8;
        int nch = cp->in_channels - c0 < 8 ? (int)(cp->in_channels - c0) : 8;
        const float *in[8];
        for (int ch = 0; ch < 8; ch++) in[ch] = a->input + (n * cp->in_channels + c0 + (ch < nch ? ch : 0)) * in_plane;
        for (int64_t sy = y0; sy < y1; sy += job->g.strip_rows) {
            int64_t sy1 = sy + job->g.strip_rows < y1 ? sy + job->g.strip_rows : y1;
            int64_t iy0 = sy * s->sh - s->pt, rows = (sy1 - 1 - sy) * s->sh + span;
            if (sy1 < y1) {
                int64_t ny1 = sy1 + job->g.strip_rows < y1 ? sy1 + job->g.strip_rows : y1;
                prefetch_rows(s, in[0], nch, sy1 * s->sh - s->pt, (ny1 - 1 - sy1) * s->sh + span);
            } else if (u + 1 < u1) {
                int64_t nn = (u + 1) / job->cblocks, nc0 = (u + 1) % job->cblocks * 8;
                int nnch = cp->in_channels - nc0 < 8 ? (int)(cp->in_channels - nc0) : 8;
                int64_t ny1 = y0 + job->g.strip_rows < y1 ? y0 + job->g.strip_rows : y1;
                prefetch_rows(s, a->input + (nn * cp->in_channels + nc0) * in_plane, nnch, y0 * s->sh - s->pt,
                              (ny1 - 1 - y0) * s->sh + span);
            }
            dwconv_blocked_fill(s, &job->g, in, iy0, rows, buf, iy0 == layout_iy0 && rows == layout_rows);
            layout_iy0 = iy0, layout_rows = rows;
            for (int64_t j = 0; j < mult; j++) {
                float *out[8];
                for (int ch = 0; ch < nch; ch++)
                    out[ch] = a->output + (n * cp->out_channels + (c0 + ch) * mult + j) * out_plane;
                for (int ch = nch; ch < 8; ch++) out[ch] = NULL;
                const float *w;
                if (a->packed) {
                    w = (const float *)a->packed + cp->out_channels * taps * 8 + (cb * mult + j) * taps * 8;
                } else {
                    dw_block_taps(cp, a->weight, c0, j, wtmp);
                    w = wtmp;
                }
                for (int l = 0; l < 8; l++) bias8[l] = a->bias && l < nch ? a->bias[(c0 + l) * mult + j] : 0.0f;
                dwconv_blocked_rows(s, &job->g, buf, w, bias8, out, nch, sy, sy1);
            }
        }
    }
}

static bool run_blocked(const conv_run_args *a, const dw_plane *s)
{
    const conv_params *cp = a->params;
    dw_blocked_job job = {.a = a, .shape = *s};
    if (!dwconv_blocked_geometry(s, &job.g)) return false;
    job.multiplier = cp->out_channels / cp->in_channels;
    job.cblocks = (cp->in_channels + 7) / 8;
    size_t tasks = split_tasks(&job.tasks, a, s, a->in.n * job.cblocks);
    conv_parallel_for(a->pool, tasks, dw_blocked_task, &job);
    return true;
}

/* Channel-blocked or per-plane: the blocked path pays two 8x8 transposes
 * per 8 pixels but no per-plane setup and no deinterleave, which wins on
 * small planes and at stride 2. Measured 1 thread, min of 400 runs on the
 * loaded 2-core EPYC, planes vs blocked (ms): 512x14x14 s2 0.091 vs 0.026,
 * 256x28x28 0.128 vs 0.095, 1024x7x7 0.183 vs 0.096, 32x112x112 s2 0.108
 * vs 0.080, 128x56x56 s2 0.123 vs 0.085; 3x3 stride 1 on 56x56 and larger
 * about even (64x56x56 0.090-0.121 vs 0.089-0.113). */
bool dwconv_blocked_preferred(int64_t channels, int64_t oh, int64_t ow, int64_t stride_w)
{
    /* with fewer than 8 channels most lanes would idle: 1x224x224 s2 ran
     * 0.016 ms per plane against 0.077 blocked, 3 channels 0.048 vs 0.089 */
    if (channels < 8) return false;
    return oh * ow <= DW_BLOCKED_MAX_PLANE || stride_w == 2;
}

/* The in-place 3x3 path (dwconv_3x3_avx2.c; its geometry check says 3x3)
 * or the others. In-process A/B, medians of 30 chunk medians, 1 thread
 * unless said, time / the channel-blocked path's:
 *   stride 2, in place: 512x14x14 0.83 (2 threads too), 1024x14x14 (2
 *   threads) 0.78, 256x28x28 0.94; since its chunks of wider rows start each
 *   output row's sum from the row above's bottom input row (15 rounds of 100
 *   runs, 1 / 2 threads): 32x64x64 0.73 / 0.55, 96x48x48 0.79 / 0.72,
 *   64x56x56 0.88 / 0.90, 128x56x56 0.90 / 0.86, 32x80x80 0.91 / 0.78,
 *   128x80x80 0.85 / 0.82, 48x88x88 1.10 / 0.81, 32x96x96 1.00 / 0.87,
 *   64x96x96 0.99 / 0.96, 64x112x112 1.07 / 1.07; with fewer than 8
 *   channels against the per-plane path: 4x28x28 0.0013 ms vs 0.0029,
 *   3x112x112 0.0067 vs 0.0102;
 *   stride 1, in place / per-plane strips: 1024x7x7 0.64 / 2.3, 256x28x28
 *   0.76-0.79 / 0.95, 128x28x28 0.76 / 0.89, 64x56x56 0.82-0.84 / 0.91-0.94,
 *   128x56x56 0.81 / 0.91 (2 threads 0.77 / 0.89), 32x112x112 0.87 / 0.90
 *   (2 threads 0.91 / 0.87), 16x224x224 0.81 / 0.79; with 3-8 channels the
 *   strips win (4x56x56 0.46 / 0.41, 8x112x112 0.92 / 0.86). Since the
 *   inner chunks load without AND masks (6a64fc1), in place / per-plane
 *   strips, 21 rounds of 50 runs, 1 / 2 threads: 64x80x80 0.86 / 0.90,
 *   32x96x96 0.91 / 0.95, 32x112x112 0.96-0.97 / 0.98-1.02, 32x128x128
 *   0.95 / 0.96, 24x160x160 0.96 / 1.04, 16x224x224 1.06 / 1.10,
 *   16x112x112 1.00 / 1.03, 8x112x112 1.06 / 1.14: from 32 channels the
 *   kernel also takes rows of up to 128 outputs. */
static bool dwconv_3x3_preferred(int64_t channels, int64_t ow, int64_t stride)
{
    if (stride == 1) return (channels >= 8 && ow <= 64) || (channels >= 32 && ow <= 128);
    return channels < 8 || ow <= 40;
}

/* Rows of up to 8 outputs stay on the AVX2 paths (one ymm a row there; a
 * zmm here would be half empty). One process, 1 thread, medians of 41
 * rounds, AVX-512 rows / the AVX2 in-place 3x3 path: 7x7 maps (1024
 * channels, stride 1; 512 at stride 2 from 14x14) 1.63-1.66 and 2.13-2.25,
 * 8x8 1.09-1.14 (s1) and 1.66-1.69 (s2); from 9 outputs a row AVX-512 is
 * ahead: 9x9 0.68-0.69, 10x10 0.71-0.75, 12x12 0.79-0.80, 14x14 0.77-0.78,
 * 9x9 s2 (from 18) 0.80-0.82, 14x14 s2 (from 28) 0.86, 256x28x28 0.77,
 * 32x112x112 0.81; 5x5 against the channel-blocked path: 240x14x14 0.69,
 * 96x28x28 0.69-0.70 (s1 and s2), 96x56x56 0.73-0.84. A plane of two rows
 * a zmm (lanes 0-7 and 8-15, the columns picked by vpermt2ps) was slower
 * still on 7x7 maps (1.4-1.7). */
bool dwconv_avx512_preferred(const dw_plane *s) { return s->ow > 8; }

void conv_dwconv_run_path(const conv_run_args *a, dw_path path)
{
    const conv_params *cp = a->params;
    /* everything but the 16 KiB plan, written only where it is used: zeroing
     * it too was ~2.6% of a 256x28x28 run (memset, and half of L1 evicted) */
    dw_job job;
    memset(&job, 0, offsetof(dw_job, plan));
    job.a = a;
    dw_plane *s = &job.shape;
    dw_plane_geometry(s, cp, &a->in, &a->out);
    job.multiplier = cp->out_channels / cp->in_channels;
    /* the AVX2 lane masks index columns in 32 bits */
    bool avx2 = path != DW_PATH_SCALAR && conv_cpu()->avx2_fma && s->iw < ((int64_t)1 << 30);
    job.avx2 = avx2;
    int64_t planes = a->out.n * cp->out_channels;
    if (planes == 0 || s->oh == 0 || s->ow == 0) return;
    /* Kernels 5 and more wide go channel-blocked at any map size (the fused
     * separable kernel keeps dwconv_blocked_preferred's rule, measured with
     * it). In-process A/B, 1 thread, per-plane time / blocked: 5x5 96x56x56
     * 1.11-1.12 (2 threads 1.13), 144x56x56 1.10, 32x112x112 1.11,
     * 16x112x112 1.09, 8x112x112 1.07, 240x28x28 1.57; 7x7 32x56x56 2.42,
     * 96x28x28 3.36, 16x112x112 2.05; with 3 channels the per-plane path
     * stays (5x5 3x128x128 0.42). */
    bool wide_kernel = cp->in_channels >= 8 && s->kw >= 5;
    bool blocked = path == DW_PATH_BLOCKED ||
                   (path == DW_PATH_AUTO &&
                    (wide_kernel || dwconv_blocked_preferred(cp->in_channels, s->oh, s->ow, s->sw)));
    bool in_place = path == DW_PATH_3X3 ||
                    (path == DW_PATH_AUTO && dwconv_3x3_preferred(cp->in_channels, s->ow, s->sw));
    /* AVX-512, where the CPU has it, on the shapes it supports and the
     * rule above prefers (rows of more than 8 outputs) */
    bool avx512 = avx2 && conv_cpu()->avx512 && dwconv_avx512_supports(s) &&
                  (path == DW_PATH_AVX512 || (path == DW_PATH_AUTO && dwconv_avx512_preferred(s)));
    if (avx512) {
        run_avx512(a, s);
        return;
    }
    if (avx2 && in_place && run_3x3(a, s)) return;
    if (avx2 && blocked && run_blocked(a, s)) return;
    if (avx2 && run_phase(a, s)) return;
    if (avx2) dwconv_avx2_prepare(s, &job.plan);

    /* With fewer planes than ~4 per thread, cut planes into row blocks
     * (of an even number of rows: the AVX2 path computes row pairs). */
    int64_t threads = conv_threadpool_size(a->pool), blocks = 1;
    if (threads > 1 && planes < 4 * threads) blocks = (4 * threads + planes - 1) / planes;
    int64_t rows = (s->oh + blocks - 1) / blocks;
    rows += rows & 1;
    job.block_rows = rows;
    job.blocks = (s->oh + rows - 1) / rows;
    conv_parallel_for(a->pool, (size_t)(planes * job.blocks), dw_task, &job);
}

void conv_dwconv_run_isa(const conv_run_args *a, bool allow_avx2)
{
    conv_dwconv_run_path(a, allow_avx2 ? DW_PATH_AUTO : DW_PATH_SCALAR);
}

static void dw_run(const conv_run_args *a) { conv_dwconv_run_isa(a, true); }

const conv_kernel conv_kernel_depthwise = {
    .algorithm = CONV_ALGO_DEPTHWISE,
    .supports = dw_supports,
    .pack = dw_pack,
    .release = dw_release,
    .workspace_size = dw_workspace,
    .run = dw_run,
};
