/* conv_direct.c — the reference convolution: a plain loop nest that handles
 * every case (groups, dilation, asymmetric zero padding, strides). Every fast
 * kernel is tested against it. Work is split over (image, output channel). */
#include <string.h>

#include "core/internal.h"

static bool direct_supports(const conv_params *p)
{
    (void)p;
    return true;
}

static bool direct_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                             size_t *bytes)
{
    (void)p, (void)in, (void)out, (void)threads;
    *bytes = 0;
    return true;
}

/* The first and one-past-last output column whose input column
 * ow*stride - pad + offset lands inside [0, width). */
static void valid_range(int64_t out_size, int64_t in_size, int64_t stride, int64_t pad, int64_t offset,
                        int64_t *lo, int64_t *hi)
{
    int64_t shift = pad - offset; /* input index = o*stride - shift */
    int64_t first = shift <= 0 ? 0 : (shift + stride - 1) / stride;
    int64_t last_num = in_size - 1 + shift; /* o*stride <= last_num */
    int64_t last = last_num < 0 ? -1 : last_num / stride;
    if (last > out_size - 1) last = out_size - 1;
    *lo = first;
    *hi = last + 1 > first ? last + 1 : first;
}

static void direct_task(void *ctx, size_t task, int thread)
{
    (void)thread;
    const conv_run_args *a = ctx;
    const conv_params *p = a->params;
    int64_t n = (int64_t)task / p->out_channels, oc = (int64_t)task % p->out_channels;
    int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
    int64_t g = oc / cout_g;
    int64_t oh_n = a->out.h, ow_n = a->out.w, ih_n = a->in.h, iw_n = a->in.w;
    float *out = a->output + (n * p->out_channels + oc) * oh_n * ow_n;
    float b = a->bias ? a->bias[oc] : 0.0f;
    for (int64_t i = 0; i < oh_n * ow_n; i++) out[i] = b;

    for (int64_t ic = 0; ic < cin_g; ic++) {
        const float *in = a->input + (n * p->in_channels + g * cin_g + ic) * ih_n * iw_n;
        const float *w = a->weight + ((oc * cin_g + ic) * p->kernel_h) * p->kernel_w;
        for (int64_t ky = 0; ky < p->kernel_h; ky++) {
            int64_t oh_lo, oh_hi;
            valid_range(oh_n, ih_n, p->stride_h, p->pad_top, ky * p->dilation_h, &oh_lo, &oh_hi);
            for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                float wv = w[ky * p->kernel_w + kx];
                int64_t ow_lo, ow_hi;
                valid_range(ow_n, iw_n, p->stride_w, p->pad_left, kx * p->dilation_w, &ow_lo, &ow_hi);
                for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
                    const float *irow = in + (oh * p->stride_h - p->pad_top + ky * p->dilation_h) * iw_n;
                    float *orow = out + oh * ow_n;
                    int64_t off = kx * p->dilation_w - p->pad_left;
                    for (int64_t ow = ow_lo; ow < ow_hi; ow++) orow[ow] += wv * irow[ow * p->stride_w + off];
                }
            }
        }
    }
    if (p->activation != CONV_ACT_NONE) conv_apply_activation(out, (size_t)(oh_n * ow_n), p->activation);
}

static void direct_run(const conv_run_args *a)
{
    conv_parallel_for(a->pool, (size_t)(a->in.n * a->params->out_channels), direct_task, (void *)a);
}

const conv_kernel conv_kernel_direct = {
    .algorithm = CONV_ALGO_DIRECT,
    .supports = direct_supports,
    .pack = NULL,
    .release = NULL,
    .workspace_size = direct_workspace,
    .run = direct_run,
};
