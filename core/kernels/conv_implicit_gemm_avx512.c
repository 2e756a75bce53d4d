/* conv_implicit_gemm_avx512.c — the implicit GEMM (implicit_gemm_impl.h)
 * on AVX-512: 16-lane vectors, 4 output channels x 6 vectors a register
 * block (24 of the 32 zmm registers accumulate; per tap 4 broadcasts and 6
 * loads feed 24 FMAs). Called through conv_implicit_gemm_run where
 * conv_cpu()->avx512. */
#include "core/kernels/gemm_common.h"

#ifndef IG_ROWS
#define IG_ROWS 4
#endif
#ifndef IG_VECS
#define IG_VECS 6
#endif
#define IG_LANES 16
#define IG_VEC __m512
#define IG_SET1(x) _mm512_set1_ps(x)
#define IG_LOADU(p) _mm512_loadu_ps(p)
#define IG_STOREU(p, x) _mm512_storeu_ps(p, x)
#define IG_FMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
/* vmaxps/vminps return their second operand when either is NaN */
#define IG_RELU(x) _mm512_max_ps(_mm512_setzero_ps(), x)
#define IG_MIN6(x) _mm512_min_ps(_mm512_set1_ps(6.0f), x)
#include "core/kernels/implicit_gemm_impl.h"

bool conv_implicit_gemm_avx512_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                         size_t *bytes)
{
    return ig_workspace(p, in, out, threads, bytes);
}

void conv_implicit_gemm_avx512_run(const conv_run_args *a) { ig_run(a); }
