/* dwconv.h — what the depthwise kernel's entry (dwconv.c) shares with its
 * instruction-set implementations (dwconv_avx2.c, dwconv_phase_avx2.c,
 * dwconv_blocked_avx2.c): one plane's geometry and the routines that compute
 * its rows or a block of 8 channels, plus a hook that lets tests force a path. */
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

/* Fills s's geometry, activation and interior block from a depthwise
 * convolution's parameters and its input and output dims (data pointers,
 * taps and bias stay for the caller). */
void dw_plane_geometry(dw_plane *s, const conv_params *cp, const conv_dims *in, const conv_dims *out);

/* Whether the channel-blocked path suits a depthwise convolution of this
 * many channels, output plane and column stride (the measured rule in
 * dwconv.c; the fused separable kernel follows it too). */
bool dwconv_blocked_preferred(int64_t channels, int64_t oh, int64_t ow, int64_t stride_w);

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

/* The main AVX2 path (dwconv_phase_avx2.c): blocks of input rows copied into
 * a zero-padded buffer of DW_PHASE_FLOATS floats, split by column phase for
 * stride 2, so every tap is a plain load. Geometry shared by every plane. */
#define DW_PHASE_FLOATS 8192
#define DW_PHASE_MAX_KW 16
#define DW_PHASE_MAX_TAPS 64
typedef struct dw_phase_geom {
    int64_t s;        /* column phases: the width stride, 1 or 2 */
    int64_t lr, rs;   /* floats per phase row, per buffer row (s * lr) */
    int64_t need;     /* phase-row indices the taps read */
    int64_t max_rows; /* output rows whose input rows fit the buffer */
    /* a row's last partial vector, from the 8 inputs ending the row: lane j
     * takes lane tail_idx[j], kept where tail_keep[j] (rows of >= 8 only) */
    int64_t tail_lanes;
    int32_t tail_idx[8], tail_keep[8];
} dw_phase_geom;
/* false when the path cannot run this geometry (stride > 2 along the width,
 * kernels wider than DW_PHASE_MAX_KW, rows too wide for the buffer) */
bool dwconv_phase_geometry(const dw_plane *shape, dw_phase_geom *g);
/* Output rows [y0, y1) of the nouts planes that read input plane in_plane
 * (their out, wb and bias; wb must be set), through buf (DW_PHASE_FLOATS
 * floats, 32-byte aligned). shape gives the geometry. layout ({-1, -1} with
 * a fresh buffer) records which rows buf is laid out for, so the next plane
 * of the same rows skips writing the zero padding again. */
void dwconv_phase_rows(const dw_plane *shape, const dw_phase_geom *g, const float *in_plane, const dw_plane *outs,
                       int64_t nouts, int64_t y0, int64_t y1, float *buf, int64_t layout[2]);

/* The channel-blocked AVX2 path (dwconv_blocked_avx2.c) for small maps and
 * stride 2: 8 input planes at a time transposed into a zero-padded
 * [rows][cols][8] scratch of DW_BLOCKED_FLOATS floats, one FMA per tap on 8
 * channels. */
/* 64 KB: with 32 KB, rows over about 200 wide at 5x5 (140 at 7x7) did not
 * fit and went plane by plane, 1.6-1.9x the time (16x224x224 5x5, 8x224x224 7x7) */
#define DW_BLOCKED_FLOATS 16384
#define DW_BLOCKED_MAX_TAPS 49
typedef struct dw_blocked_geom {
    int64_t cols;       /* scratch pixels per row (input column -pl is pixel 0) */
    int64_t strip_rows; /* output rows whose input rows fit the scratch */
    int32_t tap_off[DW_BLOCKED_MAX_TAPS]; /* each tap's float offset from its output's first pixel */
} dw_blocked_geom;
/* false when the path cannot run this geometry (stride > 2 along the width,
 * more than DW_BLOCKED_MAX_TAPS taps, rows too wide for the scratch) */
bool dwconv_blocked_geometry(const dw_plane *shape, dw_blocked_geom *g);
/* Scratch rows for input rows [iy0, iy0 + rows) of the planes in[0..7]
 * (all 8 readable: repeat one for a tail block). pads_ready: buf already
 * holds these rows of other planes, its zero padding is in place. */
void dwconv_blocked_fill(const dw_plane *shape, const dw_blocked_geom *g, const float *const in[8], int64_t iy0,
                         int64_t rows, float *buf, bool pads_ready);
/* Output rows [y0, y1) of out[0..nch-1] from buf filled from input row
 * y0*sh - pt; w: [kh*kw][8] taps by channel (32-byte aligned), bias8: [8]. */
void dwconv_blocked_rows(const dw_plane *shape, const dw_blocked_geom *g, const float *buf, const float *w,
                         const float *bias8, float *const out[8], int nch, int64_t y0, int64_t y1);

/* The AVX2 path for 3x3 planes at stride 1 or 2 (dwconv_3x3_avx2.c), in
 * place on NCHW rows: 8 outputs of a row a vector (a chunk). Geometry
 * shared by every plane: the row's chunks, those reading only inside the
 * row, and lane masks for the rest. */
#define DW_3X3_MAX_EDGE_CHUNKS 4
#define DW_3X3_LOADS 4 /* loads per input row of a chunk: 3 at stride 1, 4 at stride 2 */
typedef struct dw_3x3_geom {
    int64_t chunks;                   /* 8-output chunks a row (the last may overlap the one before) */
    int64_t first_inside, end_inside; /* chunks [first_inside, end_inside) read only inside the row */
    /* the other chunks, in order, per load: lanes inside the row (row_masks);
     * the same but on for lanes no stored output reads (keep_masks); and a
     * bit per load whose keep mask has a lane off */
    _Alignas(32) int32_t row_masks[DW_3X3_MAX_EDGE_CHUNKS][DW_3X3_LOADS][8];
    _Alignas(32) int32_t keep_masks[DW_3X3_MAX_EDGE_CHUNKS][DW_3X3_LOADS][8];
    unsigned masked_loads[DW_3X3_MAX_EDGE_CHUNKS];
} dw_3x3_geom;
/* false unless 3x3, the same stride 1 or 2 both ways, dilation 1 (and the
 * row's ends fit the masks) */
bool dwconv_3x3_geometry(const dw_plane *shape, dw_3x3_geom *g);
/* The tensors a run of the path reads and writes: output plane
 * (image n, channel oc) reads input plane (n, oc / multiplier), the taps
 * wb + oc * wb_stride ([9][8], each tap broadcast; 32-byte aligned) and
 * bias[oc] (bias may be NULL). */
typedef struct dw_3x3_planes {
    const float *input, *wb, *bias;
    float *output;
    int64_t images, in_channels, out_channels, multiplier, wb_stride;
} dw_3x3_planes;
/* Output rows [y0, y1) of output planes [plane0, plane1) (counted over
 * images and channels); shape gives the geometry and activation. */
void dwconv_3x3_planes(const dw_plane *shape, const dw_3x3_geom *g, const dw_3x3_planes *t, int64_t plane0,
                       int64_t plane1, int64_t y0, int64_t y1);

/* The AVX-512 path (dwconv_avx512.c; only where conv_cpu()->avx512): square
 * 3x3 and 5x5 kernels at stride 1 or 2, dilation 1, output rows [y0, y1) of
 * one plane in place, the padding as lane masks. */
bool dwconv_avx512_supports(const dw_plane *shape);
/* the measured rule (dwconv.c) for shapes it supports: rows of 9+ outputs */
bool dwconv_avx512_preferred(const dw_plane *shape);
void dwconv_rows_avx512(const dw_plane *p, int64_t y0, int64_t y1);

/* taps[i*8 .. i*8+7] = w[i], for the AVX2 tiles' weight operands */
void dwconv_broadcast_taps(const float *w, int64_t n, float *taps);

/* conv_kernel_depthwise.run, with the AVX2 path allowed or not (tests run
 * the scalar path on machines that have AVX2 through this). */
void conv_dwconv_run_isa(const conv_run_args *a, bool allow_avx2);
/* The same with the path forced, for tests and measurements: DW_PATH_AUTO
 * is run_isa(true); a forced AVX2 path the geometry cannot take falls back
 * to the per-plane ones, a forced AVX-512 one (on a CPU without it, or a
 * shape it does not take) to the AVX2 choice. */
typedef enum dw_path { DW_PATH_AUTO, DW_PATH_SCALAR, DW_PATH_PLANES, DW_PATH_BLOCKED, DW_PATH_3X3, DW_PATH_AVX512 } dw_path;
void conv_dwconv_run_path(const conv_run_args *a, dw_path path);

#endif
