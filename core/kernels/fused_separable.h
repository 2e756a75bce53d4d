/* fused_separable.h — the fused depthwise-separable pair (a depthwise stage
 * feeding a 1x1 stride-1 stage), which model.c runs in place of two ops. */
#ifndef CONVD_CORE_KERNELS_FUSED_SEPARABLE_H
#define CONVD_CORE_KERNELS_FUSED_SEPARABLE_H

#include "core/internal.h"

typedef struct fused_sep_args {
    const conv_params *dw, *pw; /* depthwise (groups == in_channels), then 1x1 stride 1 unpadded, groups 1 */
    const float *dw_weight, *dw_bias;
    const void *dw_packed; /* conv_kernel_depthwise's pack (broadcast taps), or NULL */
    const float *pw_weight, *pw_bias;
    const void *pw_packed; /* conv_kernel_gemm_1x1's pack, or NULL */
    const float *input;    /* NCHW, dims `in` (already padded for non-zero padding modes) */
    float *output;         /* NCHW, dims `out` */
    conv_dims in, mid, out;
    void *workspace; /* >= conv_fused_separable_workspace(), CONV_ALIGNMENT-aligned */
    conv_threadpool *pool;
} fused_sep_args;

bool conv_fused_separable_supports(const conv_params *dw, const conv_params *pw);
/* The plan's rule for a supported pair whose algorithm is not forced: fused
 * (true) or its two stages, from the shape of the depthwise output `mid`. */
bool conv_fused_separable_pays(const conv_params *dw, const conv_params *pw, const conv_dims *mid);
/* one tile buffer per thread (false on overflow) */
bool conv_fused_separable_workspace(const conv_params *dw, const conv_dims *mid, int threads, size_t *bytes);
void conv_fused_separable_run(const fused_sep_args *a);

#endif
