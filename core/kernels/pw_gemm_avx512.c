/* pw_gemm_avx512.c — the pointwise GEMM's AVX-512 loops (built with
 * -mavx512f; callers check conv_cpu()->avx512): the same packed weights as
 * pw_gemm_avx2.c (panels of PW_MR = 6 rows), against 64-column blocks of B,
 * 6 x 4 zmm accumulators, four B vectors and six broadcasts a depth step.
 *
 * B is read in place: a block of PW512_KC rows x 64 columns (32 KiB) stays
 * in the 48 KiB L1 of the Xeons that have AVX-512 while every weight panel
 * of the chunk passes over it, and the last block of a row range, narrower
 * than 64 columns, loads and stores through lane masks instead of a copy.
 * Bias and activation are applied in registers at the store. In one process
 * on the Emerald Rapids Xeon (1 thread, medians of 31 minimums; against
 * pw_gemm_avx2 and OpenBLAS 0.3.21 SkylakeX sgemm): 256x256x784 0.67 ms vs
 * 1.18 and 0.67, 64x32x12544 0.48 vs 0.68 and 0.58, 1024x1024x49 0.86 vs
 * 1.60 and 0.99, 512x512x196 0.68 vs 1.28 and 0.70, 10x3x16384 0.035 vs
 * 0.044 and 0.032; results bit-equal to the AVX2 loops (same order). */
#include <immintrin.h>

#include "core/kernels/pw_gemm.h"

#define PW512_LANES 16
#define PW512_NV 4    /* vectors per block row: 64 columns */
#define PW512_KC 128  /* depth per pass: the B block within L1 */

/* One 6 x (16 NV) block over kc depth steps; the last vector of each row
 * loads and stores through `tail` when MASKED. Rows past mr are computed on
 * the packed zero rows but neither loaded nor stored. */
static inline __attribute__((always_inline)) void block_6xv(int NV, bool MASKED, const float *a, const float *b,
                                                             int64_t ldb, int64_t kc, float *c, int64_t ldc, int mr,
                                                             __mmask16 tail, const float *bias, conv_activation act,
                                                             bool first, bool last)
{
    __m512 acc[PW_MR][PW512_NV];
#pragma GCC unroll 6
    for (int r = 0; r < PW_MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const float *cr = c + r * ldc + v * PW512_LANES;
            if (first)
                acc[r][v] = _mm512_set1_ps(r < mr && bias ? bias[r] : 0.0f);
            else if (r >= mr)
                acc[r][v] = _mm512_setzero_ps();
            else if (MASKED && v == NV - 1)
                acc[r][v] = _mm512_maskz_loadu_ps(tail, cr);
            else
                acc[r][v] = _mm512_loadu_ps(cr);
        }
    for (int64_t p = 0; p < kc; p++) {
        __m512 bv[PW512_NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = MASKED && v == NV - 1 ? _mm512_maskz_loadu_ps(tail, b + v * PW512_LANES)
                                          : _mm512_loadu_ps(b + v * PW512_LANES);
#pragma GCC unroll 6
        for (int r = 0; r < PW_MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
        a += PW_MR;
        b += ldb;
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
#pragma GCC unroll 6
    for (int r = 0; r < PW_MR; r++) {
        if (r >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 x = acc[r][v];
            if (last && act != CONV_ACT_NONE) {
                /* max(0, v) keeps a NaN v, as conv_activate does */
                x = _mm512_max_ps(zero, x);
                if (act == CONV_ACT_RELU6) x = _mm512_min_ps(six, x);
            }
            float *cr = c + r * ldc + v * PW512_LANES;
            if (MASKED && v == NV - 1)
                _mm512_mask_storeu_ps(cr, tail, x);
            else
                _mm512_storeu_ps(cr, x);
        }
    }
}

void pw_gemm_avx512(const pw_packed *pk, const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
                    const float *bias, conv_activation act)
{
    int64_t m = pk->m, k = pk->k;
    for (int64_t k0 = 0; k0 < k; k0 += PW512_KC) {
        int64_t kc = k - k0 < PW512_KC ? k - k0 : PW512_KC;
        bool first = k0 == 0, last = k0 + kc == k;
        const float *bk = b + k0 * ldb;
        /* weights in chunks of PW_MC rows, held in L2 while the B blocks pass */
        for (int64_t m0 = 0; m0 < m; m0 += PW_MC) {
            int64_t m1 = m - m0 < PW_MC ? m : m0 + PW_MC;
            for (int64_t j0 = 0; j0 < n; j0 += PW512_NV * PW512_LANES) {
                int64_t cols = n - j0 < PW512_NV * PW512_LANES ? n - j0 : PW512_NV * PW512_LANES;
                int nv = (int)((cols + PW512_LANES - 1) / PW512_LANES);
                int rem = (int)(cols - (nv - 1) * PW512_LANES);
                bool masked = rem < PW512_LANES;
                __mmask16 tail = (__mmask16)((1u << rem) - 1u);
                for (int64_t i0 = m0; i0 < m1; i0 += PW_MR) {
                    int mr = m - i0 < PW_MR ? (int)(m - i0) : PW_MR;
                    const float *ap = pk->a + i0 * k + k0 * PW_MR;
                    const float *bi = bias ? bias + i0 : NULL;
                    float *ci = c + i0 * ldc + j0;
                    const float *bj = bk + j0;
                    switch (nv * 2 + masked) {
#define PW512_CASE(NV, MASKED)                                                                                 \
    case (NV) * 2 + (MASKED):                                                                                  \
        block_6xv(NV, MASKED, ap, bj, ldb, kc, ci, ldc, mr, tail, bi, act, first, last);                        \
        break;
                        PW512_CASE(4, false) PW512_CASE(4, true) PW512_CASE(3, false) PW512_CASE(3, true)
                        PW512_CASE(2, false) PW512_CASE(2, true) PW512_CASE(1, false) PW512_CASE(1, true)
#undef PW512_CASE
                    default: break;
                    }
                }
            }
        }
    }
}
