/* pointwise.c — per-element layers: standalone BatchNorm2d (y = x*scale + shift
 * per channel) and the ReLU/ReLU6 activations. */
#include "core/internal.h"

void conv_apply_activation(float *data, size_t n, conv_activation act)
{
    for (size_t i = 0; i < n; i++) data[i] = conv_activate(data[i], act);
}

void conv_activation_run(const float *in, float *out, size_t n, conv_activation act)
{
    for (size_t i = 0; i < n; i++) out[i] = conv_activate(in[i], act);
}

typedef struct batchnorm_job {
    const float *in;
    float *out;
    const conv_dims *d;
    const float *scale, *shift;
} batchnorm_job;

static void batchnorm_task(void *ctx, size_t plane, int thread)
{
    (void)thread;
    const batchnorm_job *job = ctx;
    int64_t c = (int64_t)plane % job->d->c;
    size_t hw = (size_t)(job->d->h * job->d->w);
    const float *in = job->in + plane * hw;
    float *out = job->out + plane * hw;
    float scale = job->scale[c], shift = job->shift[c];
    for (size_t i = 0; i < hw; i++) out[i] = in[i] * scale + shift;
}

void conv_batchnorm_run(const float *in, float *out, const conv_dims *d, const float *scale, const float *shift,
                        conv_threadpool *pool)
{
    batchnorm_job job = {in, out, d, scale, shift};
    conv_parallel_for(pool, (size_t)(d->n * d->c), batchnorm_task, &job);
}
