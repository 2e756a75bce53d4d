/* dwconv.h — what the depthwise kernel's entry (dwconv.c) shares with its
 * instruction-set implementations (dwconv_avx2.c): one plane's geometry and
 * the routines that compute its rows, plus a hook that lets tests force the scalar path. */
#ifndef CONVD_CORE_KERNELS_DWCONV_H
#define CONVD_CORE_KERNELS_DWCONV_H

#include "core/internal.h"

/* One output plane and the input plane it reads. The interior is the block
 * of outputs [oh_lo, oh_hi) x [ow_lo, ow_hi) whose every tap lands inside
 * the input, so it can be computed without bounds checks; it may be empty. */
typedef struct dw_plane {
    const float *in; /* [ih, iw] */
    float *out;      /* [oh, ow] */
    const float *w;  /* [kh, kw], this output channel's taps (OIHW) */
    const float *wb; /* [kh*kw][8], the taps broadcast (packed), 32-byte aligned; or NULL */
    float bias;
    conv_activation act;
    int64_t ih, iw, oh, ow;
    int64_t kh, kw, sh, sw, dh, dw, pt, pl, pr;
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
} dw_plane;

/* Output rows [y0, y1) of one plane, border included. */
void dwconv_rows_scalar(const dw_plane *p, int64_t y0, int64_t y1);
/* Same with AVX2/FMA; call only when conv_cpu()->avx2_fma. The plan (the
 * column split and edge tiles' load tables) is made once per run from the
 * geometry that every plane shares (any one plane's dw_plane). */
#define DWCONV_AVX2_PLAN_BYTES (16 * 1024)
typedef struct dw_avx2_plan {
    unsigned char bytes[DWCONV_AVX2_PLAN_BYTES];
} dw_avx2_plan;
void dwconv_avx2_prepare(const dw_plane *shape, dw_avx2_plan *plan);
void dwconv_rows_avx2(const dw_plane *p, const dw_avx2_plan *plan, int64_t y0, int64_t y1);

/* taps[i*8 .. i*8+7] = w[i], for the AVX2 tiles' weight operands */
void dwconv_broadcast_taps(const float *w, int64_t n, float *taps);

/* conv_kernel_depthwise.run, with the AVX2 path allowed or not (tests run
 * the scalar path on machines that have AVX2 through this). */
void conv_dwconv_run_isa(const conv_run_args *a, bool allow_avx2);

#endif
