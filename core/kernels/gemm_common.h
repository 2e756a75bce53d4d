/* gemm_common.h — what the GEMM-based kernels (im2col, 1x1) share: the AVX2
 * implicit GEMM they hand small GEMMs to, and the bias/activation epilogue. */
#ifndef CONVD_CORE_KERNELS_GEMM_COMMON_H
#define CONVD_CORE_KERNELS_GEMM_COMMON_H

#include "core/internal.h"

/* The AVX2 implicit GEMM (conv_implicit_gemm_avx2.c): convolutions with
 * strides up to 4 computed from the zero-padded input in place, for GEMMs too
 * small or skinny for cblas_sgemm. supports() is false without AVX2/FMA. The
 * workspace holds the tap offset tables and, per thread, one band of the
 * zero-padded input split into its stride phases (none for stride 1 without
 * padding); run() must get a pool of at most `threads` threads. */
bool conv_implicit_gemm_supports(const conv_params *p);
bool conv_implicit_gemm_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                  size_t *bytes);
void conv_implicit_gemm_run(const conv_run_args *a);
/* its AVX-512 build (conv_implicit_gemm_avx512.c), which the two above call
 * where conv_cpu()->avx512 */
bool conv_implicit_gemm_avx512_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                         size_t *bytes);
void conv_implicit_gemm_avx512_run(const conv_run_args *a);

/* rows x cols block of C with leading dimension ldc: add bias[row], activate */
static inline void gemm_epilogue(float *c, int64_t rows, int64_t cols, int64_t ldc, const float *bias,
                                 conv_activation act)
{
    if (!bias && act == CONV_ACT_NONE) return;
    for (int64_t r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        float b = bias ? bias[r] : 0.0f;
        if (act == CONV_ACT_NONE) {
            for (int64_t j = 0; j < cols; j++) row[j] += b;
        } else {
            for (int64_t j = 0; j < cols; j++) row[j] = conv_activate(row[j] + b, act);
        }
    }
}

#endif
