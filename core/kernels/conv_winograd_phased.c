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
 * window straddles two phases are computed and dropped. */
#include <string.h>

#include "core/internal.h"

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
    return phased_layout_of(p, in, out, &l) &&
           conv_kernel_winograd.workspace_size(&l.inner, &l.in, &l.out, threads, &inner) &&
           conv_size_add(l.in_floats, l.out_floats, &mosaic) && conv_size_mul(mosaic, sizeof(float), &mosaic) &&
           conv_size_add(mosaic, inner, bytes);
}

typedef struct phased_job {
    const conv_run_args *a;
    const phased_layout *l;
    float *mosaic_in, *mosaic_out;
} phased_job;

/* The mosaic of one input plane: phase ey's row u holds padded row
 * dh*u + ey, phase ex's column v padded column dw*v + ex. */
static void gather_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const phased_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const phased_layout *l = job->l;
    float *dst = job->mosaic_in + plane * (size_t)l->mh * (size_t)l->mw;
    const float *src = a->input + plane * (size_t)a->in.h * (size_t)a->in.w;
    int64_t dh = p->dilation_h, dw = p->dilation_w;
    for (int64_t ey = 0; ey < dh; ey++) {
        int64_t rows = phase_outputs(a->out.h, dh, ey) + p->kernel_h - 1;
        for (int64_t u = 0; u < rows; u++, dst += l->mw) {
            int64_t ih = dh * u + ey - p->pad_top;
            if (ih < 0 || ih >= a->in.h) {
                memset(dst, 0, (size_t)l->mw * sizeof(float));
                continue;
            }
            const float *row = src + ih * a->in.w;
            int64_t c = 0;
            for (int64_t ex = 0; ex < dw; ex++) {
                int64_t cols = phase_outputs(a->out.w, dw, ex) + p->kernel_w - 1;
                for (int64_t v = 0; v < cols; v++, c++) {
                    int64_t iw = dw * v + ex - p->pad_left;
                    dst[c] = iw >= 0 && iw < a->in.w ? row[iw] : 0.0f;
                }
            }
        }
    }
}

/* One output plane from the mosaic's output. */
static void scatter_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const phased_job *job = ctx;
    const conv_run_args *a = job->a;
    const conv_params *p = a->params;
    const phased_layout *l = job->l;
    const float *src = job->mosaic_out + plane * (size_t)l->out.h * (size_t)l->out.w;
    float *out = a->output + plane * (size_t)a->out.h * (size_t)a->out.w;
    int64_t dh = p->dilation_h, dw = p->dilation_w;
    for (int64_t ey = 0; ey < dh; ey++) {
        int64_t rows = phase_outputs(a->out.h, dh, ey);
        for (int64_t u = 0; u < rows; u++, src += l->out.w) {
            float *dst = out + (dh * u + ey) * a->out.w;
            int64_t c = 0;
            for (int64_t ex = 0; ex < dw; ex++) {
                int64_t cols = phase_outputs(a->out.w, dw, ex);
                for (int64_t v = 0; v < cols; v++) dst[dw * v + ex] = src[c + v];
                c += cols + p->kernel_w - 1;
            }
        }
        src += (p->kernel_h - 1) * l->out.w; /* the rows straddling two phases */
    }
}

static void phased_run(const conv_run_args *a)
{
    const conv_params *p = a->params;
    if (!phased_dilated(p)) {
        conv_kernel_winograd.run(a);
        return;
    }
    phased_layout l;
    /* cannot fail: workspace_size succeeded with the same arguments */
    if (!phased_layout_of(p, &a->in, &a->out, &l)) return;
    phased_job job = {.a = a, .l = &l, .mosaic_in = a->workspace};
    job.mosaic_out = job.mosaic_in + l.in_floats;
    conv_parallel_for(a->pool, (size_t)(a->in.n * a->in.c), gather_task, &job);
    conv_run_args inner = *a;
    inner.params = &l.inner;
    inner.input = job.mosaic_in;
    inner.output = job.mosaic_out;
    inner.in = l.in;
    inner.out = l.out;
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
