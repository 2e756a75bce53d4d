/* conv_winograd_phased.c — the "winograd" table entry: dilation-1 convolutions
 * go straight to conv_winograd.c; dilated ones (stride 1) are split into
 * their dilation phases and run through the same kernel as one dilation-1
 * convolution.
 *
 * With dilation (dh, dw), output (dh*u + ey, dw*v + ex) reads only padded
 * input pixels (dh*(u+ky) + ey, dw*(v+kx) + ex): the dh x dw phases of the
 * output are independent dilation-1 "valid" convolutions over the matching
 * phases of the zero-padded input, each about (H/dh) x (W/dw). Small
 * separate images would give Winograd GEMMs of a few dozen tiles, so the
 * phases are laid side by side in one mosaic image: phase (ey, ex) at rows
 * R[ey].., columns C[ex].., with no gap. A valid convolution of the mosaic
 * computes every phase's outputs; the kh-1 rows and kw-1 columns where a
 * window straddles two phases are computed and dropped. Where the kernel
 * can (wino_mosaic_io: wide layers, one block of tiles per image), it builds
 * each channel's mosaic plane in its own scratch as it transforms it and
 * hands each output plane back, so no mosaic tensor goes through memory. */
#include <string.h>

#include "core/kernels/winograd.h"

typedef struct phased_layout {
    int64_t hp, wp;                 /* zero-padded input */
    int64_t mh, mw;                 /* mosaic input; its valid output is (mh-kh+1) x (mw-kw+1) */
    size_t in_floats, out_floats;   /* mosaic input and output, all images, CONV_ALIGNMENT multiples */
    conv_params inner;              /* the dilation-1, unpadded convolution of the mosaic */
    conv_dims in, out;              /* its extents */
} phased_layout;

static bool phased_dilated(const conv_params *p) { return p->dilation_h > 1 || p->dilation_w > 1; }

static bool phased_supports(const conv_params *p)
{
    if (!phased_dilated(p)) return conv_kernel_winograd.supports(p);
    conv_params inner = *p;
    inner.dilation_h = inner.dilation_w = 1;
    inner.pad_top = inner.pad_bottom = inner.pad_left = inner.pad_right = 0;
    return conv_kernel_winograd.supports(&inner);
}

/* outputs of phase e of a dimension with `out` outputs and dilation d */
static int64_t phase_outputs(int64_t out, int64_t d, int64_t e) { return out > e ? (out - e + d - 1) / d : 0; }

static size_t align_floats(size_t floats)
{
    size_t per = CONV_ALIGNMENT / sizeof(float);
    return (floats + per - 1) / per * per;
}

static bool phased_layout_of(const conv_params *p, const conv_dims *in, const conv_dims *out, phased_layout *l)
{
    l->hp = in->h + p->pad_top + p->pad_bottom;
    l->wp = in->w + p->pad_left + p->pad_right;
    l->mh = l->mw = 0;
    for (int64_t e = 0; e < p->dilation_h; e++) l->mh += phase_outputs(out->h, p->dilation_h, e) + p->kernel_h - 1;
    for (int64_t e = 0; e < p->dilation_w; e++) l->mw += phase_outputs(out->w, p->dilation_w, e) + p->kernel_w - 1;
    l->inner = *p;
    l->inner.dilation_h = l->inner.dilation_w = 1;
    l->inner.pad_top = l->inner.pad_bottom = l->inner.pad_left = l->inner.pad_right = 0;
    l->in = (conv_dims){in->n, in->c, l->mh, l->mw};
    l->out = (conv_dims){out->n, out->c, l->mh - p->kernel_h + 1, l->mw - p->kernel_w + 1};
    int64_t in_dims[4] = {l->in.n, l->in.c, l->in.h, l->in.w}, out_dims[4] = {l->out.n, l->out.c, l->out.h, l->out.w};
    if (!conv_dims_product(in_dims, 4, &l->in_floats) || !conv_dims_product(out_dims, 4, &l->out_floats)) return false;
    if (l->in_floats > SIZE_MAX / 2 || l->out_floats > SIZE_MAX / 2) return false;
    l->in_floats = align_floats(l->in_floats);
    l->out_floats = align_floats(l->out_floats);
    return true;
}

static conv_status phased_pack(const conv_params *p, const float *weight, const float *bias, void **packed,
                               conv_error *err)
{
    /* the transformed weights do not depend on dilation or padding */
    return conv_kernel_winograd.pack(p, weight, bias, packed, err);
}

static void phased_release(void *packed) { conv_kernel_winograd.release(packed); }

static bool phased_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                             size_t *bytes)
{
    if (!phased_dilated(p)) return conv_kernel_winograd.workspace_size(p, in, out, threads, bytes);
    phased_layout l;
    size_t inner, mosaic;
    bool per_channel;
    if (!phased_layout_of(p, in, out, &l) ||
        !conv_winograd_mosaic_workspace(&l.inner, &l.in, &l.out, threads, &per_channel, &inner))
        return false;
    if (per_channel) {
        *bytes = inner;
        return true;
    }
    return conv_kernel_winograd.workspace_size(&l.inner, &l.in, &l.out, threads, &inner) &&
           conv_size_add(l.in_floats, l.out_floats, &mosaic) && conv_size_mul(mosaic, sizeof(float), &mosaic) &&
           conv_size_add(mosaic, inner, bytes);
}

typedef struct phased_job {
    const conv_run_args *a;
    const phased_layout *l;
    float *mosaic_in, *mosaic_out;
} phased_job;

/* Four floats: shuffles of two of them map onto single SSE instructions
 * (eight-float shuffles without -mavx2 went element by element through
 * the stack). */
typedef float phased_v4 __attribute__((vector_size(16)));
typedef int32_t phased_i4 __attribute__((vector_size(16)));
typedef float phased_v4u __attribute__((vector_size(16), aligned(4), may_alias));
#define PHASED_LOAD(v, p) ((v) = *(const phased_v4u *)(const void *)(p))
#define PHASED_STORE(p, v) (*(phased_v4u *)(void *)(p) = (v))

/* dst[v] = row[dw * v + off] for v < cols, 0 where that lies outside the
 * row ([lo, hi) lies inside); without a branch, and for dilation 2 four at
 * a time (the branchy scalar loop was 5% of a 256-channel layer) */
static void gather_phase_row(const float *row, int64_t width, int64_t off, int64_t dw, int64_t lo, int64_t hi,
                             int64_t cols, float *dst)
{
    for (int64_t v = 0; v < lo; v++) dst[v] = 0.0f;
    int64_t v = lo;
    if (dw == 2) {
        const phased_i4 even = {0, 2, 4, 6};
        for (; v + 4 <= hi && 2 * v + off + 8 <= width; v += 4) {
            phased_v4 x0, x1;
            PHASED_LOAD(x0, row + 2 * v + off);
            PHASED_LOAD(x1, row + 2 * v + off + 4);
            PHASED_STORE(dst + v, __builtin_shuffle(x0, x1, even));
        }
    }
    for (; v < hi; v++) dst[v] = row[dw * v + off];
    for (; v < cols; v++) dst[v] = 0.0f;
}

/* The mosaic of one input plane: phase ey's row u holds padded row
 * dh*u + ey, phase ex's column v padded column dw*v + ex. One column phase
 * at a time, so its extents are worked out once, not per row. */
static void gather_plane(const phased_job *job, size_t plane, float *dst)
{
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const phased_layout *l = job->l;
    const float *src = a->input + plane * (size_t)a->in.h * (size_t)a->in.w;
    int64_t dh = p->dilation_h, dw = p->dilation_w, width = a->in.w;
    int64_t c = 0;
    for (int64_t ex = 0; ex < dw; ex++) {
        int64_t cols = phase_outputs(a->out.w, dw, ex) + p->kernel_w - 1, off = ex - p->pad_left;
        int64_t lo = off < 0 ? (-off + dw - 1) / dw : 0; /* first v inside the row */
        int64_t hi = (width - off + dw - 1) / dw;        /* first v past it */
        if (hi > cols) hi = cols;
        if (hi < 0) hi = 0;
        if (lo > hi) lo = hi;
        float *d = dst + c;
        for (int64_t ey = 0; ey < dh; ey++) {
            int64_t rows = phase_outputs(a->out.h, dh, ey) + p->kernel_h - 1;
            for (int64_t u = 0; u < rows; u++, d += l->mw) {
                int64_t ih = dh * u + ey - p->pad_top;
                if (ih < 0 || ih >= a->in.h)
                    memset(d, 0, (size_t)cols * sizeof(float));
                else
                    gather_phase_row(src + ih * width, width, off, dw, lo, hi, cols, d);
            }
        }
        c += cols;
    }
}

static void gather_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const phased_job *job = ctx;
    gather_plane(job, plane, job->mosaic_in + plane * (size_t)job->l->mh * (size_t)job->l->mw);
}

/* One output plane from its mosaic; for dilation 2 the two column phases
 * of a row at once, interleaved four at a time. */
static void scatter_plane(const phased_job *job, size_t plane, const float *src)
{
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const phased_layout *l = job->l;
    float *out = a->output + plane * (size_t)a->out.h * (size_t)a->out.w;
    int64_t dh = p->dilation_h, dw = p->dilation_w, kw = p->kernel_w;
    int64_t cols0 = phase_outputs(a->out.w, dw, 0), cols1 = phase_outputs(a->out.w, dw, 1);
    for (int64_t ey = 0; ey < dh; ey++) {
        int64_t rows = phase_outputs(a->out.h, dh, ey);
        for (int64_t u = 0; u < rows; u++, src += l->out.w) {
            float *dst = out + (dh * u + ey) * a->out.w;
            if (dw == 2) {
                const phased_i4 lo = {0, 4, 1, 5}, hi = {2, 6, 3, 7};
                const float *s0 = src, *s1 = src + cols0 + kw - 1;
                int64_t v = 0;
                for (; v + 4 <= cols1; v += 4) {
                    phased_v4 x0, x1;
                    PHASED_LOAD(x0, s0 + v);
                    PHASED_LOAD(x1, s1 + v);
                    PHASED_STORE(dst + 2 * v, __builtin_shuffle(x0, x1, lo));
                    PHASED_STORE(dst + 2 * v + 4, __builtin_shuffle(x0, x1, hi));
                }
                for (int64_t w = v; w < cols0; w++) dst[2 * w] = s0[w];
                for (int64_t w = v; w < cols1; w++) dst[2 * w + 1] = s1[w];
                continue;
            }
            int64_t c = 0;
            for (int64_t ex = 0; ex < dw; ex++) {
                int64_t cols = phase_outputs(a->out.w, dw, ex);
                for (int64_t v = 0; v < cols; v++) dst[dw * v + ex] = src[c + v];
                c += cols + kw - 1;
            }
        }
        src += (p->kernel_h - 1) * l->out.w; /* the rows straddling two phases */
    }
}

static void scatter_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const phased_job *job = ctx;
    scatter_plane(job, plane, job->mosaic_out + plane * (size_t)job->l->out.h * (size_t)job->l->out.w);
}

static void gather_channel(const void *ctx, int64_t n, int64_t c, float *plane)
{
    const phased_job *job = ctx;
    const conv_run_args *a = job->a;
    size_t index = (size_t)(n * a->in.c + c), floats = (size_t)a->in.h * (size_t)a->in.w;
    /* the kernel gathers channels in order: the next plane comes in from
     * L3 while this one is transformed (the gather's loads waited on it) */
    if (c + 1 < a->in.c) {
        const char *next = (const char *)(a->input + (index + 1) * floats);
        size_t bytes = floats * sizeof(float) < 16384 ? floats * sizeof(float) : 16384;
        for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(next + off);
    }
    gather_plane(job, index, plane);
}

static void scatter_channel(const void *ctx, int64_t n, int64_t c, const float *plane)
{
    const phased_job *job = ctx;
    scatter_plane(job, (size_t)(n * job->a->out.c + c), plane);
}

static void phased_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    if (!phased_dilated(p)) {
        conv_kernel_winograd.run(a);
        return;
    }
    phased_layout l;
    size_t bytes;
    bool per_channel;
    /* cannot fail: workspace_size succeeded with the same arguments */
    if (!phased_layout_of(p, &a->in, &a->out, &l) ||
        !conv_winograd_mosaic_workspace(&l.inner, &l.in, &l.out, conv_threadpool_size(a->pool), &per_channel, &bytes))
        return;
    phased_job job = {.a = a, .l = &l};
    conv_run_args inner = *a;
    inner.params = &l.inner;
    inner.in = l.in;
    inner.out = l.out;
    if (per_channel) {
        wino_mosaic_io io = {.gather = gather_channel, .scatter = scatter_channel, .ctx = &job};
        inner.input = NULL;
        inner.output = NULL;
        conv_winograd_run_mosaic(&inner, &io);
        return;
    }
    job.mosaic_in = a->workspace;
    job.mosaic_out = job.mosaic_in + l.in_floats;
    conv_parallel_for(a->pool, (size_t)(a->in.n * a->in.c), gather_task, &job);
    inner.input = job.mosaic_in;
    inner.output = job.mosaic_out;
    inner.workspace = job.mosaic_out + l.out_floats;
    conv_kernel_winograd.run(&inner);
    conv_parallel_for(a->pool, (size_t)(a->out.n * a->out.c), scatter_task, &job);
}

const conv_kernel conv_kernel_winograd_phased = {
    .algorithm = CONV_ALGO_WINOGRAD,
    .supports = phased_supports,
    .pack = phased_pack,
    .release = phased_release,
    .workspace_size = phased_workspace,
    .run = phased_run,
};
