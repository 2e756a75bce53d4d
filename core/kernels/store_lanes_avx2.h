/* store_lanes_avx2.h — a partial vector store shared by the AVX2 depthwise
 * kernels (include only from files built with -mavx2). */
#ifndef CONVD_CORE_KERNELS_STORE_LANES_AVX2_H
#define CONVD_CORE_KERNELS_STORE_LANES_AVX2_H

#include <immintrin.h>

/* the low `lanes` (< 8) lanes of v to dst, in 4-, 2- and 1-float pieces
 * (masked stores are microcoded and slow on AMD) */
static inline void store_lanes(float *dst, __m256 v, int lanes)
{
    __m128 x = _mm256_castps256_ps128(v);
    if (lanes & 4) {
        _mm_storeu_ps(dst, x);
        x = _mm256_extractf128_ps(v, 1);
        dst += 4;
    }
    if (lanes & 2) {
        _mm_storel_pi((__m64 *)(void *)dst, x);
        x = _mm_movehl_ps(x, x);
        dst += 2;
    }
    if (lanes & 1) _mm_store_ss(dst, x);
}

#endif
