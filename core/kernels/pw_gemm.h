/* pw_gemm.h — the pointwise (1x1) GEMM with weights packed at load: C = act(A*B + bias)
 * for A = weights [m x k], B = activations [k x n] read in place, C written NCHW. */
#ifndef CONVD_CORE_KERNELS_PW_GEMM_H
#define CONVD_CORE_KERNELS_PW_GEMM_H

#include "core/internal.h"

#define PW_MR 6   /* output channels per register block */
#define PW_NR 16  /* columns per register block (two AVX vectors) */
#define PW_KC 256 /* depth per pass, so a B panel (16 x 256 floats) stays in L1 */
#define PW_MC 264 /* weight rows per pass (a multiple of PW_MR): 264 KiB of A at PW_KC, held in L2 */
#define PW_PACK_DEPTH 128 /* B copied into panels per call in GEMMs this deep ... */
#define PW_PACK_ROWS 96   /* ... with this many weight rows; read in place otherwise */
#define PW_L1_FLOATS 4096 /* B floats per block of panels: 16 KiB, half of L1 */
#define PW_MAX_NB 64      /* panels per B block at most: runs of 4 KiB per row of C */

/* The weights of one group packed in panels of PW_MR rows (zero-padded),
 * each panel k-major: panel[p * PW_MR + r] = A[panel_row + r][p]. */
typedef struct pw_packed {
    float *a; /* NULL without AVX2/FMA or for grouped convolutions */
    int64_t m, k;
} pw_packed;

/* Packs A [m x k] (row-major) for pw_gemm_avx2; NULL packed->a when the
 * AVX2 path cannot run. */
conv_status pw_pack(const float *a, int64_t m, int64_t k, pw_packed *packed, conv_error *err);
void pw_packed_free(pw_packed *packed);

/* C[m x n] (leading dimension ldc) = act(A * B + bias), B [k x n] with
 * leading dimension ldb; bias may be NULL. AVX2/FMA only. */
void pw_gemm_avx2(const pw_packed *a, const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
                  const float *bias, conv_activation act);
/* The same on AVX-512 (pw_gemm_avx512.c); only where conv_cpu()->avx512. */
void pw_gemm_avx512(const pw_packed *a, const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
                    const float *bias, conv_activation act);

/* pw_gemm_avx512 where the CPU has it, else pw_gemm_avx2 */
static inline void pw_gemm(const pw_packed *a, const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
                           const float *bias, conv_activation act)
{
    if (conv_cpu()->avx512)
        pw_gemm_avx512(a, b, ldb, n, c, ldc, bias, act);
    else
        pw_gemm_avx2(a, b, ldb, n, c, ldc, bias, act);
}

/* true when a->packed (conv_kernel_gemm_1x1's pack) holds A for pw_gemm_avx2 */
bool conv_gemm_1x1_packed_usable(const conv_run_args *a);

#endif
