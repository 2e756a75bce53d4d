/* winograd_avx512.c — the Winograd F(4x4, 3x3) GEMMs on AVX-512 (16 tiles a
 * zmm register), and winograd.h's transforms compiled for it; called only
 * when conv_cpu()->avx512. Sums run in channel order, as in the AVX2 loops. */
#pragma GCC optimize("fp-contract=fast")

#include "core/kernels/winograd.h"

#define W512_LANES 16

void wino_input_avx512(const float *const rows[WINO_IN], int64_t x0, int64_t width, int64_t tiles, float *v,
                       size_t xi_stride)
{
    wino_input_impl(rows, x0, width, tiles, v, xi_stride);
}

void wino_output_avx512(const float *m, size_t xi_stride, int64_t tiles, float bias, conv_activation act,
                        float *const out_rows[WINO_OUT], int64_t x0, int64_t out_width)
{
    wino_output_impl(m, xi_stride, tiles, bias, act, out_rows, x0, out_width);
}

/* R rows of U (row stride cin) x NV zmm of V per channel (channel stride
 * vs), the last vector through `last` (eight lanes where the columns end at
 * an odd multiple of 8); 8 x 3 accumulators, three loads and a broadcast. */
static inline __attribute__((always_inline)) void gemm_tile(int R, int NV, const float *u, int64_t cin,
                                                            const float *v, size_t vs, __mmask16 last, float *m,
                                                            size_t ms)
{
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) acc[r][j] = _mm512_setzero_ps();
    for (int64_t c = 0; c < cin; c++) {
        __m512 b[3];
        const float *vc = v + (size_t)c * vs;
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++)
            b[j] = j == NV - 1 ? _mm512_maskz_loadu_ps(last, vc + W512_LANES * j) : _mm512_loadu_ps(vc + W512_LANES * j);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(u[r * cin + c]);
#pragma GCC unroll 3
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_fmadd_ps(a, b[j], acc[r][j]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) {
            float *dst = m + (size_t)r * ms + (size_t)(W512_LANES * j);
            if (j == NV - 1)
                _mm512_mask_storeu_ps(dst, last, acc[r][j]);
            else
                _mm512_storeu_ps(dst, acc[r][j]);
        }
}

void wino_gemm_avx512(const float *u, size_t u_xi_stride, int64_t rows, int64_t cin, const float *v, size_t ld,
                      int64_t tiles, float *m)
{
    const size_t stride = WINO_POINTS * ld; /* between channels, in V and in M */
    int64_t cols = (tiles + WINO_LANES - 1) / WINO_LANES * WINO_LANES;
    for (size_t xi = 0; xi < WINO_POINTS; xi++) {
        const float *u_xi = u + xi * u_xi_stride;
        for (int64_t t = 0; t < cols; t += 3 * W512_LANES) {
            int64_t width = cols - t < 3 * W512_LANES ? cols - t : 3 * W512_LANES;
            int nv = (int)((width + W512_LANES - 1) / W512_LANES);
            __mmask16 last = width % W512_LANES ? 0x00FF : 0xFFFF;
            const float *vt = v + xi * ld + (size_t)t;
            for (int64_t r = 0; r < rows; r += 8) {
                int64_t rr = rows - r < 8 ? rows - r : 8;
                const float *ur = u_xi + r * cin;
                float *mt = m + (size_t)r * stride + xi * ld + (size_t)t;
                switch (rr * 4 + nv) {
#define W512_GEMM_CASE(R)                                                                                       \
    case (R) * 4 + 1: gemm_tile(R, 1, ur, cin, vt, stride, last, mt, stride); break;                           \
    case (R) * 4 + 2: gemm_tile(R, 2, ur, cin, vt, stride, last, mt, stride); break;                           \
    case (R) * 4 + 3: gemm_tile(R, 3, ur, cin, vt, stride, last, mt, stride); break;
                    W512_GEMM_CASE(1) W512_GEMM_CASE(2) W512_GEMM_CASE(3) W512_GEMM_CASE(4)
                    W512_GEMM_CASE(5) W512_GEMM_CASE(6) W512_GEMM_CASE(7) W512_GEMM_CASE(8)
#undef W512_GEMM_CASE
                default: break;
                }
            }
        }
    }
}

/* NP U panels (4 NP rows) x NZ zmm of one V panel (rows of `width` floats,
 * the last zmm through `last`), kc channels: up to 12 x 2 accumulators. */
static inline __attribute__((always_inline)) void ptile(int NP, int NZ, const float *u, size_t ups, const float *v,
                                                        int64_t width, int64_t kc, __mmask16 last, bool accumulate,
                                                        float *m, size_t ms)
{
    __m512 acc[12][2];
#pragma GCC unroll 12
    for (int r = 0; r < 4 * NP; r++)
#pragma GCC unroll 2
        for (int j = 0; j < NZ; j++) {
            const float *src = m + (size_t)r * ms + (size_t)(W512_LANES * j);
            if (!accumulate)
                acc[r][j] = _mm512_setzero_ps();
            else if (j == NZ - 1)
                acc[r][j] = _mm512_maskz_loadu_ps(last, src);
            else
                acc[r][j] = _mm512_loadu_ps(src);
        }
    for (int64_t c = 0; c < kc; c++) {
        __m512 b[2];
        const float *vc = v + (size_t)c * (size_t)width;
#pragma GCC unroll 2
        for (int j = 0; j < NZ; j++)
            b[j] = j == NZ - 1 ? _mm512_maskz_loadu_ps(last, vc + W512_LANES * j) : _mm512_loadu_ps(vc + W512_LANES * j);
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
            for (int r = 0; r < WINO_PU; r++) {
                __m512 a = _mm512_set1_ps(u[(size_t)p * ups + (size_t)c * WINO_PU + (size_t)r]);
#pragma GCC unroll 2
                for (int j = 0; j < NZ; j++) acc[p * WINO_PU + r][j] = _mm512_fmadd_ps(a, b[j], acc[p * WINO_PU + r][j]);
            }
    }
#pragma GCC unroll 12
    for (int r = 0; r < 4 * NP; r++)
#pragma GCC unroll 2
        for (int j = 0; j < NZ; j++) {
            float *dst = m + (size_t)r * ms + (size_t)(W512_LANES * j);
            if (j == NZ - 1)
                _mm512_mask_storeu_ps(dst, last, acc[r][j]);
            else
                _mm512_storeu_ps(dst, acc[r][j]);
        }
}

void wino_pgemm_avx512(const float *u, size_t u_panel_stride, int64_t panels, const float *v, int64_t cin, int64_t k0,
                       int64_t kc, int64_t vecs, bool accumulate, float *m, size_t ms)
{
    const float *uk = u + (size_t)k0 * WINO_PU;
    for (int64_t q = 0; q * WINO_PV512 < vecs; q++) {
        int64_t nv = vecs - q * WINO_PV512 < WINO_PV512 ? vecs - q * WINO_PV512 : WINO_PV512;
        int64_t width = WINO_LANES * nv;
        int nz = (int)((nv + 1) / 2);
        __mmask16 last = nv % 2 ? 0x00FF : 0xFFFF;
        /* the V panel stays in L1 while every U panel passes over it */
        const float *vq = v + (size_t)q * (size_t)cin * (WINO_LANES * WINO_PV512) + (size_t)(k0 * width);
        float *mq = m + (size_t)q * (WINO_LANES * WINO_PV512);
        int64_t p = 0;
        for (; p + 3 <= panels; p += 3) {
            const float *up = uk + (size_t)p * u_panel_stride;
            float *mp = mq + (size_t)p * WINO_PU * ms;
            if (nz == 2)
                ptile(3, 2, up, u_panel_stride, vq, width, kc, last, accumulate, mp, ms);
            else
                ptile(3, 1, up, u_panel_stride, vq, width, kc, last, accumulate, mp, ms);
        }
        if (panels - p == 2) {
            const float *up = uk + (size_t)p * u_panel_stride;
            float *mp = mq + (size_t)p * WINO_PU * ms;
            if (nz == 2)
                ptile(2, 2, up, u_panel_stride, vq, width, kc, last, accumulate, mp, ms);
            else
                ptile(2, 1, up, u_panel_stride, vq, width, kc, last, accumulate, mp, ms);
        } else if (panels - p == 1) {
            const float *up = uk + (size_t)p * u_panel_stride;
            float *mp = mq + (size_t)p * WINO_PU * ms;
            if (nz == 2)
                ptile(1, 2, up, u_panel_stride, vq, width, kc, last, accumulate, mp, ms);
            else
                ptile(1, 1, up, u_panel_stride, vq, width, kc, last, accumulate, mp, ms);
        }
    }
}
