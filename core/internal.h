/* internal.h — what core's modules share and the public API does not show:
 * resolved convolution parameters, the algorithm table and its kernel interface. */
#ifndef CONVD_CORE_INTERNAL_H
#define CONVD_CORE_INTERNAL_H

#include "core/conv.h"

/* pads = {top, bottom, left, right}, torch's rules for int/pair/"same"/"valid" */
void conv_resolve_padding(const conv_layer_spec *s, int64_t pads[4]);
/* a pool's stride, with torch's None resolved to the kernel size */
void conv_pool_stride(const conv_layer_spec *s, int64_t stride[2]);

typedef enum conv_activation {
    CONV_ACT_NONE = 0,
    CONV_ACT_RELU,
    CONV_ACT_RELU6,
} conv_activation;

/* One convolution as a kernel sees it: padding already resolved to four
 * zero-padding amounts (non-zero padding modes are applied by the caller
 * into a padded copy first, leaving these 0), activation fused as an epilogue. */
typedef struct conv_params {
    int64_t in_channels, out_channels, groups;
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t dilation_h, dilation_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    conv_activation activation;
} conv_params;

/* NCHW extents of one activation tensor */
typedef struct conv_dims {
    int64_t n, c, h, w;
} conv_dims;

typedef struct conv_run_args {
    const conv_params *params;
    const void *packed;  /* what the kernel's pack() made at load time, or NULL */
    const float *weight; /* OIHW, [out, in/groups, kh, kw] */
    const float *bias;   /* [out] or NULL */
    const float *input;  /* NCHW, dims `in` */
    float *output;       /* NCHW, dims `out` */
    conv_dims in, out;
    void *workspace; /* >= workspace_size(), CONV_ALIGNMENT-aligned */
    conv_threadpool *pool;
} conv_run_args;

/* The CPU features kernels may require, read once per process. */
typedef struct conv_cpu_features {
    bool avx2_fma;
    bool avx512; /* F, BW, DQ and VL, with AVX2 and FMA */
} conv_cpu_features;
const conv_cpu_features *conv_cpu(void);

/* One entry of the algorithm table. Adding a kernel is a new file that
 * defines one of these plus a line in algorithms.c. */
typedef struct conv_kernel {
    conv_algorithm algorithm;
    /* can this kernel compute this convolution (on this CPU)? */
    bool (*supports)(const conv_params *p);
    /* transform weights once at model load; NULL when the kernel reads OIHW */
    conv_status (*pack)(const conv_params *p, const float *weight, const float *bias, void **packed,
                        conv_error *err);
    void (*release)(void *packed);
    /* scratch bytes for one run with `threads` threads (false on overflow) */
    bool (*workspace_size)(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                           size_t *bytes);
    void (*run)(const conv_run_args *args);
} conv_kernel;

const conv_kernel *conv_kernel_for(conv_algorithm algo); /* NULL if none on this CPU */

/* The algorithm for a convolution at an input shape: the forced one if
 * given (UNSUPPORTED_ALGORITHM if it cannot run it), else the heuristic
 * in algorithms.c. Pure: depends only on its arguments and the CPU. */
conv_status conv_select_algorithm(const conv_params *p, const conv_dims *in, conv_algorithm forced,
                                  bool allow_winograd, conv_algorithm *chosen, conv_error *err);

/* kernels implemented in core/kernels/ */
extern const conv_kernel conv_kernel_direct;
extern const conv_kernel conv_kernel_im2col;
extern const conv_kernel conv_kernel_gemm_1x1;
extern const conv_kernel conv_kernel_winograd;
extern const conv_kernel conv_kernel_winograd_phased; /* the table's "winograd": also dilated */
extern const conv_kernel conv_kernel_depthwise;
extern const conv_kernel conv_kernel_fused_separable; /* pairs only: see fused_separable.h */

/* shared helpers for kernels */
void conv_apply_activation(float *data, size_t n, conv_activation act);
static inline float conv_activate(float v, conv_activation act)
{
    /* written so NaN passes through, as torch's relu/hardtanh do */
    if (act == CONV_ACT_NONE) return v;
    if (v < 0.0f) return 0.0f;
    if (act == CONV_ACT_RELU6 && v > 6.0f) return 6.0f;
    return v;
}

/* Copies src [c, h, w] into dst [c, h+top+bottom, w+left+right] with the
 * padding mode's border values (reflect, replicate, circular or zeros). */
void conv_pad_plane(const float *src, float *dst, int64_t channels, int64_t h, int64_t w, const int64_t pads[4],
                    conv_padding_mode mode);

/* BatchNorm, pooling and activations (core/kernels/pointwise.c, pool.c) */
void conv_batchnorm_run(const float *in, float *out, const conv_dims *d, const float *scale, const float *shift,
                        conv_threadpool *pool);
void conv_activation_run(const float *in, float *out, size_t n, conv_activation act);
void conv_maxpool_run(const conv_layer_spec *s, const float *in, float *out, const conv_dims *in_d,
                      const conv_dims *out_d, conv_threadpool *pool);
void conv_avgpool_run(const conv_layer_spec *s, const float *in, float *out, const conv_dims *in_d,
                      const conv_dims *out_d, conv_threadpool *pool);

#endif
