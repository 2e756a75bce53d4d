/* algorithms.c — the algorithm table and the pure heuristic that picks an
 * entry for a convolution; CPU features are read once per process. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static conv_cpu_features cpu_features;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

/* Written once under pthread_once and read-only afterwards, so sharing it
 * between models and threads needs no lock. */
static void detect_cpu(void)
{
    __builtin_cpu_init();
    cpu_features.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    /* the subsets the _avx512.c files are compiled for (Makefile) */
    cpu_features.avx512 = cpu_features.avx2_fma && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl");
    /* CONVD_ISA caps the kernels used, as oneDNN's ONEDNN_MAX_CPU_ISA does:
     * "avx2" keeps the AVX-512 ones off, "scalar" every vector kernel; the
     * tests run each path on one machine this way. Read once, here. */
    const char *cap = getenv("CONVD_ISA");
    if (cap && (!strcmp(cap, "avx2") || !strcmp(cap, "scalar"))) cpu_features.avx512 = false;
    if (cap && !strcmp(cap, "scalar")) cpu_features.avx2_fma = false;
}

const conv_cpu_features *conv_cpu(void)
{
    pthread_once(&cpu_once, detect_cpu);
    return &cpu_features;
}

/* The table: one entry per algorithm; NULL where no kernel exists. */
static const conv_kernel *const kernel_table[CONV_ALGO_COUNT] = {
    [CONV_ALGO_DIRECT] = &conv_kernel_direct,
    [CONV_ALGO_IM2COL] = &conv_kernel_im2col,
    [CONV_ALGO_GEMM_1X1] = &conv_kernel_gemm_1x1,
    [CONV_ALGO_WINOGRAD] = &conv_kernel_winograd_phased, /* dilated: on the phase mosaic */
    [CONV_ALGO_DEPTHWISE] = &conv_kernel_depthwise,
    [CONV_ALGO_FUSED_SEPARABLE] = &conv_kernel_fused_separable,
};

const conv_kernel *conv_kernel_for(conv_algorithm algo)
{
    if ((unsigned)algo >= CONV_ALGO_COUNT) return NULL;
    return kernel_table[algo];
}

static bool usable(conv_algorithm algo, const conv_params *p)
{
    const conv_kernel *k = conv_kernel_for(algo);
    return k && k->supports(p);
}

conv_status conv_select_algorithm(const conv_params *p, const conv_dims *in, conv_algorithm forced,
                                  bool allow_winograd, conv_algorithm *chosen, conv_error *err)
{
    (void)in;
    if (forced != CONV_ALGO_AUTO) {
        if (!usable(forced, p) || (forced == CONV_ALGO_WINOGRAD && !allow_winograd))
            return conv_fail(err, CONV_UNSUPPORTED_ALGORITHM,
                             "algorithm \"%s\" cannot run this convolution (kernel %lldx%lld, stride %lldx%lld, "
                             "dilation %lldx%lld, groups %lld)",
                             conv_algorithm_name(forced), (long long)p->kernel_h, (long long)p->kernel_w,
                             (long long)p->stride_h, (long long)p->stride_w, (long long)p->dilation_h,
                             (long long)p->dilation_w, (long long)p->groups);
        *chosen = forced;
        return CONV_OK;
    }
    /* Heuristic, most specific first:
     *  - depthwise (one input channel per group): a dedicated kernel when
     *    present; GEMMs of one row are pointless there, so otherwise direct;
     *  - 1x1, stride 1, no padding: the input already is the GEMM operand;
     *  - 3x3 stride-1 with enough channels per group: Winograd when allowed
     *    (dilated ones on the mosaic of their dilation phases, from 64
     *    channels). Grouped layers too: from 16 channels in and out per
     *    group its wino_gemm beats the implicit GEMM (1x128x28x28 g8 at 1
     *    thread, min 0.35 vs 0.44 ms); narrower groups go to im2col's
     *    implicit GEMM below. With AVX-512 that GEMM is 16 lanes wide and
     *    takes 16-channel groups too (Emerald Rapids Xeon, medians, 1 / 2
     *    threads, Winograd vs implicit GEMM: 1x128x28x28 g8 0.34 / 0.17 vs
     *    0.27 / 0.17 ms, 1x128x56x56 g8 1.73 / 0.76 vs 1.52 / 0.67; with 32
     *    channels Winograd stays ahead: g4 0.38 / 0.20 vs 0.46 / 0.26);
     *  - everything else: im2col + GEMM (the im2col and 1x1 kernels hand
     *    GEMMs with few taps or few outputs per group to the implicit GEMM). */
    bool depthwise = p->groups > 1 && p->groups == p->in_channels;
    if (depthwise) {
        *chosen = usable(CONV_ALGO_DEPTHWISE, p) ? CONV_ALGO_DEPTHWISE : CONV_ALGO_DIRECT;
        return CONV_OK;
    }
    if (usable(CONV_ALGO_GEMM_1X1, p)) {
        *chosen = CONV_ALGO_GEMM_1X1;
        return CONV_OK;
    }
    /* dilated convolutions pay a gather and a scatter of their phases: only wide ones */
    int64_t wino_min = p->dilation_h > 1 || p->dilation_w > 1 ? 64 : conv_cpu()->avx512 ? 32 : 16;
    if (allow_winograd && usable(CONV_ALGO_WINOGRAD, p) && p->in_channels / p->groups >= wino_min &&
        p->out_channels / p->groups >= wino_min) {
        *chosen = CONV_ALGO_WINOGRAD;
        return CONV_OK;
    }
    *chosen = CONV_ALGO_IM2COL;
    return CONV_OK;
}
