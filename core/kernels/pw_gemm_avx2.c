/* pw_gemm_avx2.c — the pointwise GEMM's AVX2/FMA loops (built with -mavx2
 * -mfma; callers check conv_cpu()->avx2_fma): 6x16 register blocks, 12
 * accumulators, two B vectors and six broadcast weights per depth step.
 *
 * A is packed once at load (pw_pack), so unlike cblas_sgemm nothing is
 * repacked per call; B is read in place in blocks of 16-column panels, PW_KC
 * rows deep, that stay in L1 while every weight panel of a chunk held in L2
 * passes over them. Bias and activation are applied in registers at the store.
 * Blocks of several panels for shallow GEMMs (1 thread, min of interleaved
 * runs, against one panel a block): 3->10 on 128x128 0.025-0.028 ms vs 0.039,
 * 32->64 on 112x112 0.62 vs 0.64; 256 deep stays one panel. */
#include <immintrin.h>
#include <string.h>

#include "core/kernels/pw_gemm.h"

#define ACC_ROW(r)                                                                                                     \
    __m256 c##r##0, c##r##1;                                                                                           \
    if (first) {                                                                                                       \
        c##r##0 = _mm256_set1_ps(r < mr && bias ? bias[r] : 0.0f);                                                     \
        c##r##1 = c##r##0;                                                                                             \
    } else if (r < mr) {                                                                                               \
        c##r##0 = _mm256_loadu_ps(cs + r * ldcs);                                                                      \
        c##r##1 = _mm256_loadu_ps(cs + r * ldcs + 8);                                                                  \
    } else {                                                                                                           \
        c##r##0 = c##r##1 = _mm256_setzero_ps();                                                                       \
    }

#define FMA_ROW(r)                                                                                                     \
    do {                                                                                                               \
        __m256 ar = _mm256_broadcast_ss(a + r);                                                                        \
        c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);                                                                    \
        c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);                                                                    \
    } while (0)

#define STORE_ROW(r)                                                                                                   \
    do {                                                                                                               \
        if (last && act != CONV_ACT_NONE) {                                                                            \
            /* max(0, v) keeps a NaN v, as conv_activate does */                                                       \
            c##r##0 = _mm256_max_ps(zero, c##r##0);                                                                    \
            c##r##1 = _mm256_max_ps(zero, c##r##1);                                                                    \
            if (act == CONV_ACT_RELU6) {                                                                               \
                c##r##0 = _mm256_min_ps(six, c##r##0);                                                                 \
                c##r##1 = _mm256_min_ps(six, c##r##1);                                                                 \
            }                                                                                                          \
        }                                                                                                              \
        if (r < mr) {                                                                                                  \
            _mm256_storeu_ps(cs + r * ldcs, c##r##0);                                                                  \
            _mm256_storeu_ps(cs + r * ldcs + 8, c##r##1);                                                              \
        }                                                                                                              \
    } while (0)

/* One 6x16 block over kc depth steps. Rows past mr are computed (on the
 * packed zero rows) but neither loaded nor stored; a block narrower than 16
 * columns goes through a local copy of C so no store leaves it. */
static inline __attribute__((always_inline)) void block_6x16(const float *a, const float *b, int64_t ldb, int64_t kc,
                                                              float *c, int64_t ldc, int mr, int nr,
                                                              const float *bias, conv_activation act, bool first,
                                                              bool last)
{
    _Alignas(32) float tmp[PW_MR * PW_NR];
    bool full = nr == PW_NR;
    float *cs = c;
    int64_t ldcs = ldc;
    if (!full) {
        cs = tmp, ldcs = PW_NR;
        if (!first)
            for (int r = 0; r < mr; r++) memcpy(tmp + r * PW_NR, c + r * ldc, (size_t)nr * sizeof(float));
    }
    ACC_ROW(0) ACC_ROW(1) ACC_ROW(2) ACC_ROW(3) ACC_ROW(4) ACC_ROW(5)
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
        FMA_ROW(4);
        FMA_ROW(5);
        a += PW_MR;
        b += ldb;
    }
    __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    STORE_ROW(0);
    STORE_ROW(1);
    STORE_ROW(2);
    STORE_ROW(3);
    STORE_ROW(4);
    STORE_ROW(5);
    if (!full)
        for (int r = 0; r < mr; r++) memcpy(c + r * ldc, tmp + r * PW_NR, (size_t)nr * sizeof(float));
}

void pw_gemm_avx2(const pw_packed *pk, const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
                  const float *bias, conv_activation act)
{
    int64_t m = pk->m, k = pk->k;
    _Alignas(32) float tail[PW_KC * PW_NR]; /* the last, narrower B panel, zero-padded to 16 columns */
    for (int64_t k0 = 0; k0 < k; k0 += PW_KC) {
        int64_t kc = k - k0 < PW_KC ? k - k0 : PW_KC;
        bool first = k0 == 0, last = k0 + kc == k;
        /* B in blocks of whole panels that fill about half of L1 (one panel
         * at full depth, more for shallow GEMMs), each block passed over by
         * every weight panel of the chunk: C is then written and B read in
         * runs of several cache lines per row, which the prefetchers follow,
         * instead of one line per row of 64+ rows per panel */
        int64_t nb = PW_L1_FLOATS / (kc * PW_NR);
        nb = (nb < 1 ? 1 : nb > PW_MAX_NB ? PW_MAX_NB : nb) * PW_NR;
        /* weights in chunks of PW_MC rows, so the chunk stays in L2 while
         * every B block passes over it */
        for (int64_t m0 = 0; m0 < m; m0 += PW_MC) {
            int64_t m1 = m - m0 < PW_MC ? m : m0 + PW_MC;
            for (int64_t jb = 0; jb < n; jb += nb) {
                int64_t jb1 = n - jb < nb ? n : jb + nb;
                int64_t full_end = jb + (jb1 - jb) / PW_NR * PW_NR; /* past it: the last, narrower panel */
                int nr_tail = (int)(jb1 - full_end);
                if (nr_tail > 0) {
                    memset(tail, 0, (size_t)kc * PW_NR * sizeof(float));
                    for (int64_t p = 0; p < kc; p++)
                        memcpy(tail + p * PW_NR, b + (k0 + p) * ldb + full_end, (size_t)nr_tail * sizeof(float));
                }
                for (int64_t i0 = m0; i0 < m1; i0 += PW_MR) {
                    int mr = m - i0 < PW_MR ? (int)(m - i0) : PW_MR;
                    const float *ap = pk->a + i0 * k + k0 * PW_MR;
                    const float *bi = bias ? bias + i0 : NULL;
                    for (int64_t j0 = jb; j0 < full_end; j0 += PW_NR)
                        block_6x16(ap, b + k0 * ldb + j0, ldb, kc, c + i0 * ldc + j0, ldc, mr, PW_NR, bi, act, first,
                                   last);
                    if (nr_tail > 0)
                        block_6x16(ap, tail, PW_NR, kc, c + i0 * ldc + full_end, ldc, mr, nr_tail, bi, act, first,
                                   last);
                }
            }
        }
    }
}
