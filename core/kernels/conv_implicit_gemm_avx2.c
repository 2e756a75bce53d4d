/* conv_implicit_gemm_avx2.c — convolutions whose GEMM is too small or too
 * skinny for cblas_sgemm (few input channels, few outputs per group): an
 * AVX2/FMA register-blocked implicit GEMM that reads the zero-padded input in
 * place instead of unfolding it.
 *
 * The trick that makes it vectorise over any width: on a zero-padded plane of
 * width Wp, output (oh, ow) of a stride-1 convolution reads padded pixel
 * (oh + ky*dh) * Wp + (ow + kx*dw), so with j = oh*Wp + ow every tap is the
 * input shifted by one constant from j. A vector is 8 consecutive outputs of
 * one row, its input at j: every lane real, loaded and stored whole. A row
 * whose width is not a multiple of 8 ends on a vector moved left to end on
 * its last output, overlapping its neighbour (both store the same sums), so
 * no lane is masked, no output is written lane by lane and no lane computes
 * padding. Rows narrower than 8 ("flat" mode) take vectors over flattened
 * positions instead, dropping the Wp - OW lanes per row that fall in the
 * padding. A block holds 2 output channels x 6 vectors (12 accumulators):
 * per tap 2 broadcasts and 6 loads feed 12 FMAs, so the FMA ports, not the
 * loads, set the pace.
 *
 * Strides: with stride (sh, sw) the padded plane is split into its sh x sw
 * polyphase components, phase (py, px) holding padded pixels (r*sh + py,
 * q*sw + px) on a plane of ceil(Hp/sh) x ceil(Wp/sw). Tap (ky, kx) reads
 * phase ((ky*dh) % sh, (kx*dw) % sw) at row oh + (ky*dh)/sh, column ow +
 * (kx*dw)/sw: a stride-1 convolution again, so the same trick applies with
 * the phase width in place of Wp, and no tap is computed that the strided
 * convolution does not need. */
#include "core/kernels/gemm_common.h"

/* output channels x 8-lane vectors per register block: 12 of the 16 ymm
 * registers accumulate */
#ifndef IG_ROWS
#define IG_ROWS 2
#endif
#ifndef IG_VECS
#define IG_VECS 6
#endif
#define IG_LANES 8
#define IG_VEC __m256
#define IG_SET1(x) _mm256_set1_ps(x)
#define IG_LOADU(p) _mm256_loadu_ps(p)
#define IG_STOREU(p, x) _mm256_storeu_ps(p, x)
#define IG_FMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
/* max(x, 0) as and-not of the sign test, min(x, 6) as a blend: NaN kept */
#define IG_RELU(x) _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ), x)
#define IG_MIN6(x) _mm256_blendv_ps(x, _mm256_set1_ps(6.0f), _mm256_cmp_ps(x, _mm256_set1_ps(6.0f), _CMP_GT_OQ))
#include "core/kernels/implicit_gemm_impl.h"

bool conv_implicit_gemm_supports(const conv_params *p)
{
    /* larger strides would copy phases no tap reads */
    return conv_cpu()->avx2_fma && p->stride_h >= 1 && p->stride_h <= 4 && p->stride_w >= 1 && p->stride_w <= 4;
}

/* The AVX-512 build of the same loops where the CPU has it; the workspace
 * follows the build that will run (its rows are rounded to its vectors). */
bool conv_implicit_gemm_workspace(const conv_params *p, const conv_dims *in, const conv_dims *out, int threads,
                                  size_t *bytes)
{
    if (conv_cpu()->avx512) return conv_implicit_gemm_avx512_workspace(p, in, out, threads, bytes);
    return ig_workspace(p, in, out, threads, bytes);
}

void conv_implicit_gemm_run(const conv_run_args *a)
{
    if (conv_cpu()->avx512)
        conv_implicit_gemm_avx512_run(a);
    else
        ig_run(a);
}
