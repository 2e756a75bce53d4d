/* pw_gemm_avx2.c — the pointwise GEMM's AVX2/FMA loops (built with -mavx2
 * -mfma; callers check conv_cpu()->avx2_fma): 6x16 register blocks, 12
 * accumulators, two B vectors and six broadcast weights per depth step.
 *
 * A is packed once at load (pw_pack), so unlike cblas_sgemm nothing of it is
 * repacked per call. B passes in blocks of 16-column panels, PW_KC rows deep,
 * that stay in L1 while every weight panel of a chunk held in L2 (all of a
 * 256-row A) passes over them. Deep GEMMs with many weight rows copy each
 * block into a contiguous buffer first: the depth loop then reads B at fixed
 * offsets, one pointer step per 8 depth steps (the loop in asm: gcc spills
 * accumulators when it unrolls the intrinsics), the strided rows of NCHW B
 * are prefetched a block ahead and C's rows for writing a weight panel ahead.
 * 256->256 on 28x28, 1 thread, medians of 300-500 interleaved calls on a
 * busy machine: 0.87-0.93 of the in-place loop with 120-row chunks; 96
 * rows about even (0.98-1.0, and the fused separable layer's two channel
 * halves then run the same loop); with B shallower than 128 or fewer rows,
 * copying cost more than it saved (64 deep 1.03-1.05, 48 rows 1.05-1.07),
 * so those read B in place. Bias and
 * activation are applied in registers at the store. Blocks of several panels
 * for shallow GEMMs (1 thread, min of interleaved runs, against one panel a
 * block): 3->10 on 128x128 0.025-0.028 ms vs 0.039, 32->64 on 112x112 0.62
 * vs 0.64; 256 deep stays one panel. */
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

/* One depth step s of the 6x16 block, at offsets from %[a] (6 floats a
 * step) and %[b] (16 floats a step); ymm13-15 are scratch. */
#define STEP(s)                                                                                                        \
    "vmovaps " #s "*64(%[b]), %%ymm13\n\t"                                                                             \
    "vmovaps " #s "*64+32(%[b]), %%ymm14\n\t"                                                                          \
    "vbroadcastss " #s "*24(%[a]), %%ymm15\n\t"                                                                        \
    "vfmadd231ps %%ymm13, %%ymm15, %[c00]\n\t"                                                                         \
    "vfmadd231ps %%ymm14, %%ymm15, %[c01]\n\t"                                                                         \
    "vbroadcastss " #s "*24+4(%[a]), %%ymm15\n\t"                                                                      \
    "vfmadd231ps %%ymm13, %%ymm15, %[c10]\n\t"                                                                         \
    "vfmadd231ps %%ymm14, %%ymm15, %[c11]\n\t"                                                                         \
    "vbroadcastss " #s "*24+8(%[a]), %%ymm15\n\t"                                                                      \
    "vfmadd231ps %%ymm13, %%ymm15, %[c20]\n\t"                                                                         \
    "vfmadd231ps %%ymm14, %%ymm15, %[c21]\n\t"                                                                         \
    "vbroadcastss " #s "*24+12(%[a]), %%ymm15\n\t"                                                                     \
    "vfmadd231ps %%ymm13, %%ymm15, %[c30]\n\t"                                                                         \
    "vfmadd231ps %%ymm14, %%ymm15, %[c31]\n\t"                                                                         \
    "vbroadcastss " #s "*24+16(%[a]), %%ymm15\n\t"                                                                     \
    "vfmadd231ps %%ymm13, %%ymm15, %[c40]\n\t"                                                                         \
    "vfmadd231ps %%ymm14, %%ymm15, %[c41]\n\t"                                                                         \
    "vbroadcastss " #s "*24+20(%[a]), %%ymm15\n\t"                                                                     \
    "vfmadd231ps %%ymm13, %%ymm15, %[c50]\n\t"                                                                         \
    "vfmadd231ps %%ymm14, %%ymm15, %[c51]\n\t"

#define STEP_OPERANDS                                                                                                  \
    [a] "+r"(a), [b] "+r"(b), [n] "+r"(steps), [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),     \
        [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41),          \
        [c50] "+x"(c50), [c51] "+x"(c51)

#define FMA_ROW(r)                                                                                                     \
    do {                                                                                                               \
        __m256 ar = _mm256_broadcast_ss(a + r);                                                                        \
        c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);                                                                    \
        c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);                                                                    \
    } while (0)

/* One 6x16 block over kc depth steps: of a packed B panel (16 floats a row,
 * 32-byte aligned) if packed, else of B in place, rows ldb apart. Rows past
 * mr are computed (on the packed zero rows) but neither loaded nor stored; a
 * block narrower than 16 columns goes through a local copy of C so no store
 * leaves it. */
static inline __attribute__((always_inline)) void block_6x16(const float *a, const float *b, int64_t ldb, int64_t kc,
                                                              bool packed, float *c, int64_t ldc, int mr, int nr,
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
    int64_t steps = packed ? kc / 8 : 0;
    if (!packed)
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
    if (steps > 0)
        __asm__ volatile("1:\n\t" STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
                         "add $8*24, %[a]\n\t"
                         "add $8*64, %[b]\n\t"
                         "dec %[n]\n\t"
                         "jnz 1b\n\t"
                         : STEP_OPERANDS
                         :
                         : "ymm13", "ymm14", "ymm15", "memory", "cc");
    steps = packed ? kc % 8 : 0;
    if (steps > 0)
        __asm__ volatile("1:\n\t" STEP(0)
                         "add $24, %[a]\n\t"
                         "add $64, %[b]\n\t"
                         "dec %[n]\n\t"
                         "jnz 1b\n\t"
                         : STEP_OPERANDS
                         :
                         : "ymm13", "ymm14", "ymm15", "memory", "cc");
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

/* Copies columns j0..j1 of kc rows of B into panels of 16 columns, each kc x
 * 16 floats, the last one zero-padded. */
static void pack_b(const float *b, int64_t ldb, int64_t kc, int64_t j0, int64_t j1, float *dst)
{
    for (int64_t j = j0; j < j1; j += PW_NR, dst += kc * PW_NR) {
        if (j1 - j >= PW_NR) {
            for (int64_t p = 0; p < kc; p++) {
                __m256 x0 = _mm256_loadu_ps(b + p * ldb + j), x1 = _mm256_loadu_ps(b + p * ldb + j + 8);
                _mm256_store_ps(dst + p * PW_NR, x0);
                _mm256_store_ps(dst + p * PW_NR + 8, x1);
            }
        } else {
            memset(dst, 0, (size_t)(kc * PW_NR) * sizeof(float));
            for (int64_t p = 0; p < kc; p++)
                memcpy(dst + p * PW_NR, b + p * ldb + j, (size_t)(j1 - j) * sizeof(float));
        }
    }
}

/* B read in place: for shallow GEMMs (and few weight panels), where
 * copying B costs more than the packed loop saves */
static __attribute__((noinline)) void gemm_in_place(const pw_packed *pk, const float *b, int64_t ldb, int64_t n,
                                                    float *c, int64_t ldc, const float *bias, conv_activation act)
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
                if (nr_tail > 0) pack_b(b + k0 * ldb, ldb, kc, full_end, jb1, tail);
                for (int64_t i0 = m0; i0 < m1; i0 += PW_MR) {
                    int mr = m - i0 < PW_MR ? (int)(m - i0) : PW_MR;
                    const float *ap = pk->a + i0 * k + k0 * PW_MR;
                    const float *bi = bias ? bias + i0 : NULL;
                    for (int64_t j0 = jb; j0 < full_end; j0 += PW_NR)
                        block_6x16(ap, b + k0 * ldb + j0, ldb, kc, false, c + i0 * ldc + j0, ldc, mr, PW_NR, bi, act,
                                   first, last);
                    if (nr_tail > 0)
                        block_6x16(ap, tail, PW_NR, kc, false, c + i0 * ldc + full_end, ldc, mr, nr_tail, bi, act,
                                   first, last);
                }
            }
        }
    }
}

/* B copied per call, a panel at a time at full depth */
static __attribute__((noinline)) void gemm_packed(const pw_packed *pk, const float *b, int64_t ldb, int64_t n,
                                                  float *c, int64_t ldc, const float *bias, conv_activation act)
{
    int64_t m = pk->m, k = pk->k;
    _Alignas(64) float bp[PW_KC * PW_NR]; /* one block of packed B panels */
    for (int64_t k0 = 0; k0 < k; k0 += PW_KC) {
        int64_t kc = k - k0 < PW_KC ? k - k0 : PW_KC;
        bool first = k0 == 0, last = k0 + kc == k;
        const float *bk = b + k0 * ldb;
        /* as many panels a block as fill half of L1 (one at full depth) */
        int64_t nb = PW_L1_FLOATS / (kc * PW_NR);
        nb = (nb < 1 ? 1 : nb > PW_MAX_NB ? PW_MAX_NB : nb) * PW_NR;
        /* weights in chunks of PW_MC rows, so the chunk stays in L2 while
         * every B block passes over it */
        for (int64_t m0 = 0; m0 < m; m0 += PW_MC) {
            int64_t m1 = m - m0 < PW_MC ? m : m0 + PW_MC;
            int64_t panels_m = (m1 - m0 + PW_MR - 1) / PW_MR;
            for (int64_t jb = 0; jb < n; jb += nb) {
                int64_t jb1 = n - jb < nb ? n : jb + nb;
                pack_b(bk, ldb, kc, jb, jb1, bp);
                /* the next block's rows, a share per weight panel, into L2:
                 * read from L3 while this block computes */
                int64_t pf_j = jb1, pf_end = n - pf_j < nb ? n : pf_j + nb;
                int64_t pf_row = pf_j < n ? 0 : kc, pf_per = (kc + panels_m - 1) / panels_m;
                for (int64_t i0 = m0; i0 < m1; i0 += PW_MR) {
                    for (int64_t stop = pf_row + pf_per < kc ? pf_row + pf_per : kc; pf_row < stop; pf_row++) {
                        const float *row = bk + pf_row * ldb;
                        for (int64_t j = pf_j; j < pf_end; j += 16) _mm_prefetch((const char *)(row + j), _MM_HINT_T2);
                        _mm_prefetch((const char *)(row + pf_end - 1), _MM_HINT_T2);
                    }
                    /* the next weight panel's rows of C, for writing: their
                     * reads for ownership overlap this panel's arithmetic */
                    for (int64_t r = i0 + PW_MR; r < i0 + 2 * PW_MR && r < m1; r++)
                        for (int64_t j = jb; j < jb1; j += 16) __asm__ volatile("prefetchw %0" ::"m"(c[r * ldc + j]));
                    int mr = m - i0 < PW_MR ? (int)(m - i0) : PW_MR;
                    const float *ap = pk->a + i0 * k + k0 * PW_MR;
                    const float *bi = bias ? bias + i0 : NULL;
                    const float *panel = bp;
                    for (int64_t j0 = jb; j0 < jb1; j0 += PW_NR, panel += kc * PW_NR) {
                        int nr = jb1 - j0 < PW_NR ? (int)(jb1 - j0) : PW_NR;
                        block_6x16(ap, panel, PW_NR, kc, true, c + i0 * ldc + j0, ldc, mr, nr, bi, act, first, last);
                    }
                }
            }
        }
    }
}

void pw_gemm_avx2(const pw_packed *pk, const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
                  const float *bias, conv_activation act)
{
    if (pk->k >= PW_PACK_DEPTH && pk->m >= PW_PACK_ROWS)
        gemm_packed(pk, b, ldb, n, c, ldc, bias, act);
    else
        gemm_in_place(pk, b, ldb, n, c, ldc, bias, act);
}
