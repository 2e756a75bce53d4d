/* winograd_avx2.c — the Winograd F(4x4, 3x3) transforms of winograd.h compiled
 * for AVX2/FMA (eight tiles per ymm register); called only when the CPU has them. */
/* the transforms are chains of multiply-adds by constants; fusing them is
 * both faster and at least as accurate */
#pragma GCC optimize("fp-contract=fast")

#include "core/kernels/winograd.h"

void wino_input_avx2(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                     size_t xi_stride)
{
    wino_input_impl(rows, x0, width, tiles, v, xi_stride);
}

void wino_output_avx2(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                      float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width)
{
    wino_output_impl(m, xi_stride, tiles, bias, act, out_rows, x0, out_width);
}

void wino_gemm_avx2(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                    int64_t tiles, float *m)
{
    wino_gemm_impl(u, u_xi_stride, rows, cin, v, ld, tiles, m);
}

void wino_pgemm_avx2(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin, int64_t k0,
                     int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms)
{
    wino_pgemm_impl(u, u_panel_stride, panels, v, cin, k0, kc, vecs, accumulate, m, ms);
}
