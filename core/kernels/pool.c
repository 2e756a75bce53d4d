/* pool.c — MaxPool2d and AvgPool2d exactly as torch computes them on CPU:
 * NaN wins a max window; average windows clipped at the padded border, with
 * count_include_pad and divisor_override deciding the divisor. */
#include <math.h>

#include "core/internal.h"

typedef struct pool_job {
    const conv_layer_spec *s;
    const float *in;
    float *out;
    const conv_dims *in_d, *out_d;
    int64_t stride[2];
} pool_job;

static void maxpool_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const conv_layer_spec *s = j->s;
    int64_t ih_n = j->in_d->h, iw_n = j->in_d->w, oh_n = j->out_d->h, ow_n = j->out_d->w;
    const float *in = j->in + plane * (size_t)(ih_n * iw_n);
    float *out = j->out + plane * (size_t)(oh_n * ow_n);
    for (int64_t oh = 0; oh < oh_n; oh++) {
        for (int64_t ow = 0; ow < ow_n; ow++) {
            float best = -INFINITY;
            int64_t h0 = oh * j->stride[0] - s->padding[0], w0 = ow * j->stride[1] - s->padding[1];
            for (int64_t ky = 0; ky < s->kernel_size[0]; ky++) {
                int64_t ih = h0 + ky * s->dilation[0];
                if (ih < 0 || ih >= ih_n) continue;
                for (int64_t kx = 0; kx < s->kernel_size[1]; kx++) {
                    int64_t iw = w0 + kx * s->dilation[1];
                    if (iw < 0 || iw >= iw_n) continue;
                    float v = in[ih * iw_n + iw];
                    if (v > best || isnan(v)) best = v;
                }
            }
            out[oh * ow_n + ow] = best;
        }
    }
}

static void avgpool_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    const conv_layer_spec *s = j->s;
    int64_t ih_n = j->in_d->h, iw_n = j->in_d->w, oh_n = j->out_d->h, ow_n = j->out_d->w;
    const float *in = j->in + plane * (size_t)(ih_n * iw_n);
    float *out = j->out + plane * (size_t)(oh_n * ow_n);
    for (int64_t oh = 0; oh < oh_n; oh++) {
        for (int64_t ow = 0; ow < ow_n; ow++) {
            int64_t h0 = oh * j->stride[0] - s->padding[0], w0 = ow * j->stride[1] - s->padding[1];
            int64_t h1 = h0 + s->kernel_size[0], w1 = w0 + s->kernel_size[1];
            if (h1 > ih_n + s->padding[0]) h1 = ih_n + s->padding[0];
            if (w1 > iw_n + s->padding[1]) w1 = iw_n + s->padding[1];
            int64_t pool_size = (h1 - h0) * (w1 - w0);
            if (h0 < 0) h0 = 0;
            if (w0 < 0) w0 = 0;
            if (h1 > ih_n) h1 = ih_n;
            if (w1 > iw_n) w1 = iw_n;
            if (h0 >= h1 || w0 >= w1) {
                out[oh * ow_n + ow] = 0.0f;
                continue;
            }
            float sum = 0.0f;
            for (int64_t ih = h0; ih < h1; ih++)
                for (int64_t iw = w0; iw < w1; iw++) sum += in[ih * iw_n + iw];
            int64_t divisor = s->divisor_override ? s->divisor_override
                              : s->count_include_pad ? pool_size
                                                     : (h1 - h0) * (w1 - w0);
            out[oh * ow_n + ow] = sum / (float)divisor;
        }
    }
}

static void run_pool(conv_task_fn fn, const conv_layer_spec *s, const float *in, float *out, const conv_dims *in_d,
                     const conv_dims *out_d, conv_threadpool *pool)
{
    pool_job job = {.s = s, .in = in, .out = out, .in_d = in_d, .out_d = out_d};
    conv_pool_stride(s, job.stride);
    conv_parallel_for(pool, (size_t)(in_d->n * in_d->c), fn, &job);
}

void conv_maxpool_run(const conv_layer_spec *s, const float *in, float *out, const conv_dims *in_d,
                      const conv_dims *out_d, conv_threadpool *pool)
{
    run_pool(maxpool_task, s, in, out, in_d, out_d, pool);
}

void conv_avgpool_run(const conv_layer_spec *s, const float *in, float *out, const conv_dims *in_d,
                      const conv_dims *out_d, conv_threadpool *pool)
{
    run_pool(avgpool_task, s, in, out, in_d, out_d, pool);
}
