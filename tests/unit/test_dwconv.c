/* test_dwconv.c — the depthwise kernel against the direct reference kernel,
 * table-driven over kernel sizes, strides, dilations, asymmetric padding,
 * tiny maps, every output width up to 20, batches, depth multipliers, bias,
 * activations and thread counts; the per-plane and channel-blocked AVX2
 * paths (when the CPU has it, with and without packed weights) and the
 * scalar path; large maps (widths 12-1300, pads 0-10, row blocks, batches,
 * multipliers), whose 3x3 and 5x5 stride-1 planes at least 16 wide run in
 * column strips reading the input in place; the channel-blocked path's
 * row tails (widths 8-44, both strides, 1x1 to 7x7 taps). Then NaN
 * handling and the kernel as the model layer uses it (forced, heuristic,
 * rejected, every padding mode). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kernels/dwconv.h"

extern const conv_kernel conv_kernel_depthwise;

static uint32_t rng_state = 2024;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct dw_case {
    int64_t n, c, mult, h, w;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pb, pl, pr;
    bool bias;
    conv_activation act;
} dw_case;

#define NOACT CONV_ACT_NONE
#define RELU CONV_ACT_RELU
#define RELU6 CONV_ACT_RELU6

/* n c m h w | kh kw sh sw dh dw | pt pb pl pr | bias act */
static const dw_case fixed_cases[] = {
    /* the shapes the kernel is tuned for, shrunk */
    {1, 4, 1, 19, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 1, 23, 41, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 2, 1, 20, 45, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, RELU6},
    {1, 2, 1, 21, 47, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, false, NOACT},
    {1, 3, 1, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU6},
    /* kernel sizes 1, 2, 7, 3x5 and one wider than the edge tables (17) */
    {1, 3, 1, 9, 21, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, NOACT},
    {1, 3, 1, 9, 21, 1, 1, 2, 2, 1, 1, 1, 0, 0, 1, true, RELU},
    {1, 3, 1, 12, 27, 2, 2, 1, 1, 1, 1, 0, 1, 0, 1, true, NOACT},
    {1, 3, 1, 12, 27, 2, 2, 2, 2, 1, 1, 1, 0, 1, 0, false, RELU},
    {1, 2, 1, 15, 33, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, true, NOACT},
    {1, 2, 1, 15, 33, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, true, RELU6},
    {1, 2, 1, 13, 29, 3, 5, 1, 1, 1, 1, 1, 1, 2, 2, true, NOACT},
    {1, 2, 1, 13, 29, 3, 5, 2, 1, 1, 1, 0, 2, 1, 3, true, RELU},
    {1, 2, 1, 6, 40, 1, 17, 1, 1, 1, 1, 0, 0, 8, 8, true, NOACT},
    {1, 2, 1, 6, 40, 1, 17, 1, 2, 1, 1, 0, 0, 8, 8, true, NOACT},
    /* stride 3 and asymmetric strides */
    {1, 3, 1, 17, 31, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 1, 17, 31, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 3, 1, 17, 31, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 1, 17, 31, 3, 3, 1, 3, 1, 1, 1, 1, 1, 1, false, NOACT},
    {1, 3, 1, 17, 31, 5, 5, 3, 1, 1, 1, 2, 2, 2, 2, true, NOACT},
    /* dilation 2, 3 and mixed */
    {1, 3, 1, 21, 35, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, NOACT},
    {1, 3, 1, 21, 35, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, true, RELU},
    {1, 3, 1, 21, 35, 3, 3, 1, 1, 3, 3, 3, 3, 3, 3, true, NOACT},
    {1, 3, 1, 21, 35, 3, 3, 2, 2, 3, 3, 3, 3, 3, 3, false, RELU6},
    {1, 3, 1, 21, 35, 5, 3, 1, 1, 2, 3, 4, 4, 3, 3, true, NOACT},
    {1, 3, 1, 21, 35, 2, 2, 2, 2, 3, 2, 1, 2, 1, 0, true, NOACT},
    /* "same" with even kernels: the bottom/right pad is the larger one */
    {1, 3, 1, 10, 23, 4, 4, 1, 1, 1, 1, 1, 2, 1, 2, true, NOACT},
    {1, 3, 1, 10, 23, 2, 4, 1, 1, 1, 1, 0, 1, 1, 2, true, RELU},
    {1, 3, 1, 10, 23, 4, 2, 1, 1, 2, 1, 3, 3, 0, 1, true, NOACT},
    /* padding larger than the kernel, and lopsided */
    {1, 3, 1, 9, 19, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, true, RELU},
    {1, 3, 1, 9, 19, 3, 3, 2, 2, 1, 1, 5, 0, 0, 6, true, NOACT},
    {1, 3, 1, 9, 19, 5, 5, 1, 1, 1, 1, 0, 7, 9, 0, true, NOACT},
    {1, 2, 1, 6, 30, 3, 3, 1, 1, 1, 1, 1, 1, 35, 2, true, NOACT}, /* many left edge tiles */
    {1, 2, 1, 6, 30, 3, 3, 1, 2, 1, 1, 1, 1, 2, 37, true, NOACT}, /* many right edge tiles */
    /* rows too wide for the padded copy: the split path with edge tiles */
    {1, 2, 1, 4, 8300, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU6},
    {1, 2, 1, 5, 8301, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 7, 8299, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, false, NOACT},
    {1, 1, 2, 9, 8303, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, RELU},
    {1, 2, 1, 6, 8200, 3, 3, 1, 1, 2, 3, 2, 2, 40, 3, true, NOACT}, /* more edge tiles than the table */
    {1, 2, 1, 6, 8200, 3, 3, 1, 2, 2, 3, 2, 2, 3, 41, true, NOACT},
    {1, 2, 1, 6, 8200, 2, 7, 2, 1, 1, 2, 0, 1, 5, 6, true, NOACT},
    /* tiny maps: no interior at all */
    {1, 3, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, RELU},
    {1, 3, 1, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 1, 2, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU6},
    {1, 3, 1, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 1, 5, 1, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, false, NOACT},
    {1, 4, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 4, 1, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 4, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 3, 9, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, true, NOACT},
    /* narrow and tall: the padded copy of a narrow plane is made in blocks of rows */
    {1, 2, 1, 1500, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 1501, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 2, 1, 1000, 12, 5, 5, 1, 1, 2, 1, 4, 4, 2, 2, true, NOACT},
    /* many small planes through one buffer (its zero padding kept between planes) */
    {1, 9, 1, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 9, 1, 16, 17, 3, 3, 2, 2, 1, 1, 1, 0, 0, 1, true, NOACT},
    {2, 6, 2, 9, 12, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, RELU6},
    {1, 5, 1, 11, 13, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, true, NOACT},
    {1, 5, 1, 11, 13, 3, 3, 1, 2, 2, 3, 2, 2, 3, 3, true, NOACT},
    /* batches and depth multipliers */
    {2, 3, 1, 11, 25, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {3, 2, 2, 11, 25, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {2, 3, 3, 13, 18, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, RELU6},
    {1, 1, 3, 12, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {2, 2, 2, 9, 9, 3, 3, 1, 1, 2, 2, 0, 0, 0, 0, false, NOACT},
    /* the channel-blocked path's small maps: channel counts around blocks of 8 */
    {1, 16, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU6},
    {1, 13, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 7, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 17, 1, 10, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, NOACT},
    {1, 1, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 9, 1, 7, 7, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, RELU},
    {1, 24, 1, 28, 28, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, NOACT},
    {1, 11, 1, 27, 29, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, RELU6},
    /* rows narrower than a vector, input and output */
    {1, 10, 1, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 10, 1, 4, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 9, 1, 9, 9, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, true, NOACT},
    {1, 9, 1, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    /* dilation, asymmetric strides and lopsided padding on small maps */
    {1, 12, 1, 14, 14, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, NOACT},
    {1, 12, 1, 14, 15, 3, 3, 2, 2, 2, 3, 2, 2, 3, 3, true, RELU},
    {1, 12, 1, 15, 14, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 12, 1, 15, 14, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 12, 1, 15, 14, 3, 3, 1, 2, 1, 1, 0, 2, 3, 0, true, RELU6},
    {1, 12, 1, 9, 19, 3, 3, 2, 2, 1, 1, 5, 0, 0, 6, true, NOACT},
    {1, 10, 1, 12, 12, 4, 2, 1, 1, 2, 1, 3, 3, 0, 1, true, NOACT},
    {1, 10, 1, 12, 12, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, true, NOACT},
    /* batches and depth multipliers with channel tails */
    {3, 10, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, RELU},
    {2, 5, 2, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    {2, 12, 2, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, RELU6},
    {1, 9, 3, 11, 12, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, NOACT},
    /* taller than the scratch: strips of rows (and row blocks over threads) */
    {1, 9, 1, 60, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 3, 2, 90, 60, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, RELU},
    {1, 9, 1, 200, 20, 3, 3, 1, 1, 3, 1, 3, 3, 1, 1, true, NOACT},
};

/* Large maps, which the kernel runs per plane: 3x3 and 5x5 stride-1 planes
 * at least 16 wide in column strips that read the input in place, those
 * reaching past a row's ends through lane masks; narrower maps, other
 * kernels and strides in buffered tiles. */
static const dw_case large_cases[] = {
    /* the benchmark layer's planes, and odd widths around the edge strips */
    {1, 3, 1, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 57, 113, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU},
    {1, 2, 1, 40, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU6},
    {1, 2, 1, 41, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 30, 34, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, true, NOACT},
    {1, 2, 1, 30, 35, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, true, RELU},
    {1, 2, 1, 29, 47, 3, 3, 1, 1, 1, 1, 0, 2, 1, 0, true, NOACT},
    {1, 2, 1, 29, 61, 3, 3, 1, 1, 1, 1, 2, 0, 0, 1, true, RELU6},
    {1, 2, 1, 31, 100, 3, 3, 1, 1, 1, 1, 1, 1, 7, 8, true, NOACT},
    {1, 2, 1, 31, 100, 3, 3, 1, 1, 1, 1, 1, 1, 8, 7, true, RELU},
    {1, 2, 1, 31, 77, 3, 3, 1, 1, 1, 1, 3, 4, 5, 6, true, NOACT},
    {1, 2, 1, 31, 77, 3, 3, 1, 1, 1, 1, 1, 1, 9, 1, true, NOACT},  /* pads past 8: whole strips in the padding */
    {1, 2, 1, 31, 77, 3, 3, 1, 1, 1, 1, 1, 1, 1, 10, true, RELU6},
    {1, 2, 1, 23, 31, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 23, 15, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},  /* ow 15: the buffered tiles */
    {1, 2, 1, 6, 10, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5, true, RELU},    /* rows narrower than a vector, ow 18 */
    {1, 2, 1, 6, 9, 5, 5, 1, 1, 1, 1, 2, 2, 6, 6, true, NOACT},
    {1, 2, 1, 8, 3, 5, 5, 1, 1, 1, 1, 2, 2, 9, 9, true, RELU6},    /* every strip masked on both sides */
    {1, 2, 1, 1, 90, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},   /* one row: both its neighbours padding */
    {1, 2, 1, 3, 90, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, true, RELU},    /* one output row, no padding rows */
    {1, 2, 1, 5, 90, 3, 3, 1, 1, 1, 1, 6, 6, 1, 1, true, NOACT},   /* more padding rows than input rows */
    /* rows longer than the buffer holds in one block: several blocks a plane */
    {1, 2, 1, 150, 300, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 1, 1, 97, 1000, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU},
    /* batches, multipliers, many planes per task */
    {2, 5, 1, 45, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {2, 3, 2, 33, 50, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU6},
    {1, 1, 4, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 1, 5, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU},
    {3, 9, 1, 40, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, NOACT},
    /* 5x5 stride 1: the benchmark layer's planes, odd sizes, rows in blocks
     * of 4, of 2 (and a last one of 1) where the buffer holds few rows */
    {1, 3, 1, 56, 56, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, NOACT},
    {1, 2, 1, 57, 59, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, RELU6},
    {1, 1, 1, 97, 1000, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, RELU},
    {1, 1, 1, 13, 1300, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, NOACT},
    {1, 2, 1, 3, 40, 5, 5, 1, 1, 1, 1, 1, 1, 2, 2, true, NOACT}, /* one output row, two of its rows padding */
    {2, 2, 3, 30, 33, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, RELU6},
    {1, 1, 1, 110, 120, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, NOACT}, /* row blocks over threads */
    /* the other per-plane tiles on large maps */
    {2, 2, 2, 40, 45, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true, RELU},
    {1, 2, 1, 60, 67, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, NOACT},
    {1, 2, 1, 45, 80, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, NOACT},
    {1, 2, 1, 45, 81, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, true, RELU},
    {1, 2, 1, 40, 70, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, true, NOACT},
};

/* every width 1..20 for 3x3 at stride 1 and 2, to hit every vector tail */
static dw_case width_case(int64_t w, int64_t stride, conv_activation act)
{
    dw_case k = {1, 2, 1, 6, w, 3, 3, stride, stride, 1, 1, 1, 1, 1, 1, true, act};
    return k;
}

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1)
{
    return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

typedef struct dw_setup {
    conv_params p;
    conv_dims in, out;
    float *x, *w, *b, *ref, *got;
    size_t in_n, out_n;
    void *packed;
} dw_setup;

static void setup_case(const dw_case *k, dw_setup *s)
{
    memset(s, 0, sizeof *s);
    s->p = (conv_params){.in_channels = k->c,
                         .out_channels = k->c * k->mult,
                         .groups = k->c,
                         .kernel_h = k->kh,
                         .kernel_w = k->kw,
                         .stride_h = k->sh,
                         .stride_w = k->sw,
                         .dilation_h = k->dh,
                         .dilation_w = k->dw,
                         .pad_top = k->pt,
                         .pad_bottom = k->pb,
                         .pad_left = k->pl,
                         .pad_right = k->pr,
                         .activation = k->act};
    s->in = (conv_dims){k->n, k->c, k->h, k->w};
    s->out = (conv_dims){k->n, k->c * k->mult, out_size(k->h, k->kh, k->sh, k->dh, k->pt, k->pb),
                         out_size(k->w, k->kw, k->sw, k->dw, k->pl, k->pr)};
    assert_true(s->out.h >= 1 && s->out.w >= 1);
    assert_true(conv_kernel_depthwise.supports(&s->p));
    s->in_n = (size_t)(k->n * k->c * k->h * k->w);
    s->out_n = (size_t)(s->out.n * s->out.c * s->out.h * s->out.w);
    size_t wn = (size_t)(s->p.out_channels * k->kh * k->kw);
    s->x = malloc(s->in_n * sizeof(float));
    s->w = malloc(wn * sizeof(float));
    s->b = malloc((size_t)s->p.out_channels * sizeof(float));
    s->ref = malloc(s->out_n * sizeof(float));
    s->got = malloc(s->out_n * sizeof(float));
    assert_non_null(s->x), assert_non_null(s->w), assert_non_null(s->b);
    assert_non_null(s->ref), assert_non_null(s->got);
    /* inputs up to +-4 so ReLU6 clamps some outputs from above too */
    for (size_t i = 0; i < s->in_n; i++) s->x[i] = 4.0f * rnd();
    for (size_t i = 0; i < wn; i++) s->w[i] = rnd();
    for (int64_t i = 0; i < s->p.out_channels; i++) s->b[i] = rnd();
    assert_int_equal(conv_kernel_depthwise.pack(&s->p, s->w, k->bias ? s->b : NULL, &s->packed, NULL), CONV_OK);

    conv_run_args ra = {.params = &s->p, .weight = s->w, .bias = k->bias ? s->b : NULL, .input = s->x,
                        .output = s->ref, .in = s->in, .out = s->out};
    conv_kernel_direct.run(&ra);
}

static void free_case(dw_setup *s)
{
    conv_kernel_depthwise.release(s->packed);
    free(s->x), free(s->w), free(s->b), free(s->ref), free(s->got);
}

/* NaN where the reference has NaN, else within 1e-5 of the output's scale */
static void check_close(const dw_setup *s, const char *what)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < s->out_n; i++)
        if (!isnan(s->ref[i])) scale = fmax(scale, fabs(s->ref[i]));
    for (size_t i = 0; i < s->out_n; i++) {
        if (isnan(s->ref[i]) && isnan(s->got[i])) continue;
        double e = fabs((double)s->got[i] - s->ref[i]);
        if (!(e <= worst)) worst = e, at = i; /* NaN on one side only counts as the worst */
    }
    if (!(worst <= 1e-5 * (scale > 0 ? scale : 1)))
        fail_msg("%s: max error %g at %zu (got %g want %g) over scale %g", what, worst, at, s->got[at],
                 s->ref[at], scale);
}

/* The paths run_case tries: the kernel's own choice and each AVX2 path
 * forced (packed weights or not), then the scalar path. */
static const struct {
    dw_path path;
    bool packed;
    const char *name;
} run_paths[] = {
    {DW_PATH_AUTO, true, "auto packed"},       {DW_PATH_PLANES, true, "planes packed"},
    {DW_PATH_PLANES, false, "planes unpacked"}, {DW_PATH_BLOCKED, true, "blocked packed"},
    {DW_PATH_BLOCKED, false, "blocked unpacked"}, {DW_PATH_3X3, true, "3x3 packed"},
    {DW_PATH_3X3, false, "3x3 unpacked"},     {DW_PATH_SCALAR, false, "scalar"},
    {DW_PATH_AVX512, true, "avx512"},
};

/* Runs a set-up case through every path, each with pools of 1, 2 and 3. */
static void run_setup(dw_setup *s, const dw_case *k, conv_threadpool *const pools[3], const char *label)
{
    bool avx2 = conv_cpu()->avx2_fma;
    for (size_t path = 0; path < sizeof run_paths / sizeof *run_paths; path++) {
        if (run_paths[path].path != DW_PATH_SCALAR && !avx2) continue;
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < s->out_n; i++) s->got[i] = NAN; /* catch outputs never written */
            conv_run_args ra = {.params = &s->p, .packed = run_paths[path].packed ? s->packed : NULL,
                                .weight = s->w, .bias = k->bias ? s->b : NULL, .input = s->x, .output = s->got,
                                .in = s->in, .out = s->out, .pool = pools[t]};
            if (path == 0 && t == 0)
                conv_kernel_depthwise.run(&ra);
            else
                conv_dwconv_run_path(&ra, run_paths[path].path);
            char what[200];
            snprintf(what, sizeof what,
                     "%s [n%lld c%lld m%lld %lldx%lld k%lldx%lld s%lldx%lld d%lldx%lld pad %lld,%lld,%lld,%lld act %d] "
                     "%s, %d threads",
                     label, (long long)k->n, (long long)k->c, (long long)k->mult, (long long)k->h, (long long)k->w,
                     (long long)k->kh, (long long)k->kw, (long long)k->sh, (long long)k->sw, (long long)k->dh,
                     (long long)k->dw, (long long)k->pt, (long long)k->pb, (long long)k->pl, (long long)k->pr,
                     (int)k->act, run_paths[path].name, t + 1);
            check_close(s, what);
        }
    }
}

static void run_case(const dw_case *k, conv_threadpool *const pools[3], const char *label)
{
    dw_setup s;
    setup_case(k, &s);
    run_setup(&s, k, pools, label);
    free_case(&s);
}

typedef struct pools {
    conv_threadpool *p[3];
} pools;

static int pools_setup(void **state)
{
    pools *ps = calloc(1, sizeof *ps);
    if (!ps) return -1;
    ps->p[0] = NULL;
    if (conv_threadpool_create(2, &ps->p[1], NULL) || conv_threadpool_create(3, &ps->p[2], NULL)) return -1;
    *state = ps;
    return 0;
}

static int pools_teardown(void **state)
{
    pools *ps = *state;
    conv_threadpool_destroy(ps->p[1]);
    conv_threadpool_destroy(ps->p[2]);
    free(ps);
    return 0;
}

static void test_cases_match_direct(void **state)
{
    pools *ps = *state;
    for (size_t i = 0; i < sizeof fixed_cases / sizeof *fixed_cases; i++) {
        char label[32];
        snprintf(label, sizeof label, "case %zu", i);
        run_case(&fixed_cases[i], ps->p, label);
    }
}

static void test_large_cases_match_direct(void **state)
{
    pools *ps = *state;
    for (size_t i = 0; i < sizeof large_cases / sizeof *large_cases; i++) {
        char label[32];
        snprintf(label, sizeof label, "large case %zu", i);
        run_case(&large_cases[i], ps->p, label);
    }
}

static void test_every_width(void **state)
{
    pools *ps = *state;
    const conv_activation acts[] = {NOACT, RELU, RELU6};
    for (int64_t stride = 1; stride <= 2; stride++)
        for (int64_t w = 1; w <= 20; w++) {
            dw_case k = width_case(w, stride, acts[w % 3]);
            run_case(&k, ps->p, "width");
        }
}

/* every width 12..72 and every left pad 0..9 of 3x3 and 5x5 stride-1
 * maps: the in-place strips, the masked edge strips at both ends, 5x5's
 * pairs of vectors and single last vector, the overlapping last strip */
static void test_large_widths_and_pads(void **state)
{
    pools *ps = *state;
    const conv_activation acts[] = {NOACT, RELU, RELU6};
    for (int64_t k = 3; k <= 5; k += 2)
        for (int64_t w = 12; w <= 72; w++) {
            int64_t pad = k / 2;
            dw_case c = {1, 2, 1, 9, w, k, k, 1, 1, 1, 1, pad, pad, w % (pad + 2), (w / 3) % (pad + 2), true,
                         acts[w % 3]};
            run_case(&c, ps->p, "large width");
        }
    for (int64_t k = 3; k <= 5; k += 2)
        for (int64_t pl = 0; pl <= 9; pl++)
            for (int64_t pr = 0; pr <= 9; pr += 3) {
                dw_case c = {1, 1, 1, 7, 41, k, k, 1, 1, 1, 1, 1, 0, pl, pr, true, NOACT};
                run_case(&c, ps->p, "large pads");
            }
}

/* the channel-blocked path's row tails: every output width 8..44 at
 * stride 1 and 2 (1-4 pixels past the last 8 go as a 4-pixel tile, 5-7 as
 * an overlapping 8-pixel one; input rows likewise), through taps of 1, 3,
 * 5 and 7, dilation, padding on either side or none, a partial channel
 * block, multipliers and batches; then NaN in the tail columns */
static void test_blocked_row_tails(void **state)
{
    pools *ps = *state;
    const conv_activation acts[] = {NOACT, RELU, RELU6};
    const int64_t ks[] = {3, 1, 5, 7};
    for (int64_t stride = 1; stride <= 2; stride++)
        for (int64_t w = 8; w <= 44; w++) {
            int64_t k = ks[w % 4], half = k / 2, d = k == 3 && w % 5 == 0 ? 2 : 1;
            dw_case c = {1 + (w & 1),  w % 3 == 0 ? 16 : 9,   1 + (w % 7 == 0), 5, w,     k, k, stride, stride, d, d,
                         half * d,     half * d,             w % (half + 1),   (w / 2) % (half + 1) * d,
                         w % 2 == 0, acts[w % 3]};
            run_case(&c, ps->p, "blocked tail");
        }
    for (int64_t w = 12; w <= 28; w += 4) {
        dw_case k = {1, 9, 1, 6, w, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, RELU};
        dw_setup s;
        setup_case(&k, &s);
        s.x[8 * 6 * w + 2 * w + w - 1] = NAN; /* channel 8 (the partial block), a row's last column */
        s.x[3 * 6 * w + 4 * w + w - 3] = NAN; /* channel 3, in the 4-pixel tail */
        conv_run_args ra = {.params = &s.p, .weight = s.w, .bias = s.b, .input = s.x, .output = s.ref,
                            .in = s.in, .out = s.out};
        conv_kernel_direct.run(&ra);
        size_t nans = 0;
        for (size_t i = 0; i < s.out_n; i++) nans += isnan(s.ref[i]) != 0;
        assert_int_equal(nans, 6 + 9);
        run_setup(&s, &k, ps->p, "blocked tail nan");
        free_case(&s);
    }
}

/* the in-place 3x3 path at strides 1 and 2: every input width 1..40 (one
 * chunk with lanes to spare, whole chunks, an overlapping last chunk,
 * several edge chunks), pads of 0-2 on either side and 0-1 above and
 * below, heights 1-9, multipliers and batches; the tensor's first and last
 * planes read with masked loads (the buffers are exactly the tensor: the
 * sanitizer build sees any read past them); then NaN in every row's first
 * and last column, which must reach only the outputs that read it */
static void test_3x3_rows(void **state)
{
    pools *ps = *state;
    const conv_activation acts[] = {NOACT, RELU, RELU6};
    for (int64_t stride = 1; stride <= 2; stride++) {
        for (int64_t w = 1; w <= 40; w++) {
            int64_t h = 1 + w % 9, pt = w % 2, pl = w % 3;
            /* at least one output: pads to make 3 rows and columns where the map is smaller */
            int64_t pb = (w / 2) % 2 > 3 - h - pt ? (w / 2) % 2 : 3 - h - pt;
            int64_t pr = (w / 3) % 3 > 3 - w - pl ? (w / 3) % 3 : 3 - w - pl;
            dw_case c = {1 + (w % 4 == 0), 2 + w % 3 + (stride == 1 ? 8 : 0), 1 + (w % 5 == 0), h, w, 3, 3, stride,
                         stride, 1, 1, pt, pb, pl, pr, w % 2 == 0, acts[(w + stride) % 3]};
            run_case(&c, ps->p, "3x3 rows");
        }
        for (int64_t w = 5; w <= 37; w += 4) {
            dw_case k = {1, 3, 1, 7, w, 3, 3, stride, stride, 1, 1, 1, 1, 1, 1, true, RELU};
            dw_setup s;
            setup_case(&k, &s);
            for (int64_t plane = 0; plane < 3; plane++)
                for (int64_t y = 0; y < 7; y++) {
                    s.x[(plane * 7 + y) * w] = NAN;
                    s.x[(plane * 7 + y) * w + w - 1] = NAN;
                }
            conv_run_args ra = {.params = &s.p, .weight = s.w, .bias = s.b, .input = s.x, .output = s.ref,
                                .in = s.in, .out = s.out};
            conv_kernel_direct.run(&ra);
            run_setup(&s, &k, ps->p, "3x3 nan");
            free_case(&s);
        }
    }
}

static void test_every_activation(void **state)
{
    pools *ps = *state;
    const conv_activation acts[] = {NOACT, RELU, RELU6};
    for (int a = 0; a < 3; a++)
        for (int bias = 0; bias < 2; bias++) {
            dw_case k = {2, 3, 2, 13, 29, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, bias == 1, acts[a]};
            run_case(&k, ps->p, "activation");
            k.sh = k.sw = 2;
            run_case(&k, ps->p, "activation s2");
        }
}

/* NaN inputs stay NaN through ReLU/ReLU6, in the interior and on the border,
 * exactly where the reference has them; on a large map through every
 * activation, in the in-place strips and the edge strips. */
static void test_nan_passes_through(void **state)
{
    pools *ps = *state;
    for (int act = RELU; act <= RELU6; act++) {
        dw_case k = {1, 2, 1, 12, 26, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, (conv_activation)act};
        /* 2 channels: the blocked path's tail block, whose lanes past the channels read channel 0 */
        dw_setup s;
        setup_case(&k, &s);
        s.x[0] = NAN;                 /* a corner: border outputs */
        s.x[12 * 26 + 6 * 26 + 13] = NAN; /* channel 1, interior */
        conv_run_args ra = {.params = &s.p, .weight = s.w, .bias = s.b, .input = s.x, .output = s.ref,
                            .in = s.in, .out = s.out};
        conv_kernel_direct.run(&ra);
        size_t nans = 0;
        for (size_t i = 0; i < s.out_n; i++) nans += isnan(s.ref[i]);
        assert_int_equal(nans, 4 + 9);
        for (size_t path = 0; path < sizeof run_paths / sizeof *run_paths; path++) {
            if (run_paths[path].path != DW_PATH_SCALAR && !conv_cpu()->avx2_fma) continue;
            ra.output = s.got;
            ra.packed = run_paths[path].packed ? s.packed : NULL;
            conv_dwconv_run_path(&ra, run_paths[path].path);
            for (size_t i = 0; i < s.out_n; i++) {
                assert_int_equal(isnan(s.got[i]) != 0, isnan(s.ref[i]) != 0);
                if (!isnan(s.ref[i])) assert_true(fabsf(s.got[i] - s.ref[i]) <= 1e-4f);
            }
        }
        free_case(&s);
    }
    for (int act = NOACT; act <= RELU6; act++) {
        dw_case k = {1, 2, 1, 20, 50, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, (conv_activation)act};
        dw_setup s;
        setup_case(&k, &s);
        s.x[0] = NAN;                      /* a corner: an edge strip */
        s.x[20 * 50 + 9 * 50 + 24] = NAN;  /* channel 1, an in-place strip */
        s.x[20 * 50 + 15 * 50 + 49] = NAN; /* channel 1, the right edge */
        conv_run_args ra = {.params = &s.p, .weight = s.w, .bias = s.b, .input = s.x, .output = s.ref,
                            .in = s.in, .out = s.out};
        conv_kernel_direct.run(&ra);
        size_t nans = 0;
        for (size_t i = 0; i < s.out_n; i++) nans += isnan(s.ref[i]) != 0;
        assert_int_equal(nans, 4 + 9 + 6);
        run_setup(&s, &k, ps->p, "large nan");
        free_case(&s);
    }
    for (int act = NOACT; act <= RELU6; act++) { /* 5x5: two-vector strips, the last a single one */
        dw_case k = {1, 2, 1, 20, 50, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true, (conv_activation)act};
        dw_setup s;
        setup_case(&k, &s);
        s.x[0] = NAN;                      /* a corner: the masked left strip */
        s.x[20 * 50 + 9 * 50 + 24] = NAN;  /* channel 1, an in-place strip */
        s.x[20 * 50 + 15 * 50 + 49] = NAN; /* channel 1, the masked right strip */
        conv_run_args ra = {.params = &s.p, .weight = s.w, .bias = s.b, .input = s.x, .output = s.ref,
                            .in = s.in, .out = s.out};
        conv_kernel_direct.run(&ra);
        size_t nans = 0;
        for (size_t i = 0; i < s.out_n; i++) nans += isnan(s.ref[i]) != 0;
        assert_int_equal(nans, 9 + 25 + 15);
        run_setup(&s, &k, ps->p, "large nan 5x5");
        free_case(&s);
    }
}

static void test_supports_only_depthwise(void **state)
{
    (void)state;
    conv_params p = {.in_channels = 8, .out_channels = 16, .groups = 8, .kernel_h = 3, .kernel_w = 3,
                     .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1};
    assert_true(conv_kernel_depthwise.supports(&p));
    p.groups = 4; /* two input channels per group */
    assert_false(conv_kernel_depthwise.supports(&p));
    p.groups = 1;
    assert_false(conv_kernel_depthwise.supports(&p));
    p.in_channels = 1, p.out_channels = 3; /* one channel, multiplier 3: depthwise too */
    assert_true(conv_kernel_depthwise.supports(&p));
    assert_ptr_equal(conv_kernel_for(CONV_ALGO_DEPTHWISE), &conv_kernel_depthwise);
}

/* ------------------------------------------------ through the model API */

/* a one-layer model of s run on in; *algo (optional) gets the algorithm it ran */
static conv_status run_model(const conv_layer_spec *s, const conv_tensor *in, conv_tensor *out,
                             conv_algorithm *algo, conv_error *err)
{
    conv_param_desc d[CONV_MAX_LAYER_PARAMS];
    size_t nd = conv_layer_param_descs(s, d);
    conv_named_tensor w[CONV_MAX_LAYER_PARAMS];
    char names[CONV_MAX_LAYER_PARAMS][32];
    uint32_t saved = rng_state;
    rng_state = 77; /* the same weights on every call */
    for (size_t i = 0; i < nd; i++) {
        snprintf(names[i], sizeof names[i], "0.%s", d[i].suffix);
        w[i] = (conv_named_tensor){.name = names[i], .is_float = true};
        assert_int_equal(conv_tensor_alloc(&w[i].tensor, d[i].rank, d[i].dims, NULL), CONV_OK);
        for (size_t k = 0; k < conv_tensor_numel(&w[i].tensor); k++) w[i].tensor.data[k] = rnd();
    }
    rng_state = saved;
    conv_model *m = NULL;
    conv_status st = conv_model_create(s, 1, w, nd, NULL, &m, err);
    if (st == CONV_OK) {
        conv_model_stats stats;
        conv_layer_stats layer;
        stats.layers = &layer;
        st = conv_model_run_alloc(m, in, out, NULL, &stats, err);
        if (st == CONV_OK && algo) *algo = layer.algorithm;
    }
    conv_model_destroy(m);
    for (size_t i = 0; i < nd; i++) conv_tensor_free(&w[i].tensor);
    return st;
}

static void test_model_layer(void **state)
{
    (void)state;
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = 6, s.out_channels = 12, s.groups = 6;
    s.kernel_size[0] = 4, s.kernel_size[1] = 2;
    s.padding_kind = CONV_PADDING_SAME; /* even kernel: pads differ top/bottom */
    s.bias = true;
    int64_t dims[4] = {2, 6, 15, 21};
    conv_tensor in, ref, out;
    assert_int_equal(conv_tensor_alloc(&in, 4, dims, NULL), CONV_OK);
    for (size_t i = 0; i < conv_tensor_numel(&in); i++) in.data[i] = rnd();
    conv_error err;
    s.algorithm = CONV_ALGO_DIRECT;
    assert_int_equal(run_model(&s, &in, &ref, NULL, &err), CONV_OK);
    conv_algorithm algo;
    for (int forced = 0; forced < 2; forced++) {
        s.algorithm = forced ? CONV_ALGO_DEPTHWISE : CONV_ALGO_AUTO;
        algo = CONV_ALGO_AUTO;
        assert_int_equal(run_model(&s, &in, &out, &algo, &err), CONV_OK);
        assert_int_equal(algo, CONV_ALGO_DEPTHWISE); /* the heuristic picks it too */
        assert_int_equal(out.dims[2], 15), assert_int_equal(out.dims[3], 21);
        double scale = 0, worst = 0;
        for (size_t i = 0; i < conv_tensor_numel(&ref); i++) scale = fmax(scale, fabs(ref.data[i]));
        for (size_t i = 0; i < conv_tensor_numel(&ref); i++)
            worst = fmax(worst, fabs(out.data[i] - ref.data[i]));
        assert_true(worst <= 1e-5 * scale);
        conv_tensor_free(&out);
    }
    /* a grouped but not depthwise convolution cannot be forced onto it */
    s.groups = 3;
    s.algorithm = CONV_ALGO_DEPTHWISE;
    assert_int_equal(run_model(&s, &in, &out, NULL, &err), CONV_UNSUPPORTED_ALGORITHM);
    assert_non_null(strstr(err.message, "depthwise"));
    conv_tensor_free(&in);
    conv_tensor_free(&ref);
}

/* A depthwise layer with padding mode `mode` through the model layer,
 * against the direct kernel on the same random input. */
static void check_padding_mode(conv_padding_mode mode, int64_t c, int64_t mult, int64_t h, int64_t w, int k,
                               int stride)
{
    conv_layer_spec s;
    conv_layer_spec_init(&s, CONV_LAYER_CONV2D);
    s.in_channels = c, s.out_channels = c * mult, s.groups = c;
    s.kernel_size[0] = s.kernel_size[1] = k;
    s.stride[0] = s.stride[1] = stride;
    s.padding[0] = s.padding[1] = k / 2;
    s.padding_mode = mode;
    s.bias = true;
    int64_t dims[4] = {2, c, h, w};
    conv_tensor in, ref, out;
    assert_int_equal(conv_tensor_alloc(&in, 4, dims, NULL), CONV_OK);
    for (size_t i = 0; i < conv_tensor_numel(&in); i++) in.data[i] = rnd();
    conv_error err;
    s.algorithm = CONV_ALGO_DIRECT;
    assert_int_equal(run_model(&s, &in, &ref, NULL, &err), CONV_OK);
    s.algorithm = CONV_ALGO_DEPTHWISE;
    assert_int_equal(run_model(&s, &in, &out, NULL, &err), CONV_OK);
    assert_int_equal(conv_tensor_numel(&out), conv_tensor_numel(&ref));
    double scale = 0, worst = 0;
    for (size_t i = 0; i < conv_tensor_numel(&ref); i++) scale = fmax(scale, fabs(ref.data[i]));
    for (size_t i = 0; i < conv_tensor_numel(&ref); i++) worst = fmax(worst, fabs(out.data[i] - ref.data[i]));
    if (!(worst <= 1e-5 * scale))
        fail_msg("padding mode %s c%lld %lldx%lld k%d stride %d: max error %g over scale %g",
                 conv_padding_mode_name(mode), (long long)c, (long long)h, (long long)w, k, stride, worst, scale);
    conv_tensor_free(&in), conv_tensor_free(&ref), conv_tensor_free(&out);
}

/* Reflect, replicate and circular padding reach the kernel as a padded copy
 * with no zero padding left: a small map with channel tails (stride 1 and
 * 2, multiplier 2), and a 40x45 one whose every strip then reads in place
 * (3x3 and 5x5). */
static void test_every_padding_mode(void **state)
{
    (void)state;
    const conv_padding_mode modes[] = {CONV_PAD_ZEROS, CONV_PAD_REFLECT, CONV_PAD_REPLICATE, CONV_PAD_CIRCULAR};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        for (int stride = 1; stride <= 2; stride++) check_padding_mode(modes[m], 11, 2, 13, 14, 3, stride);
        for (int k = 3; k <= 5; k += 2) check_padding_mode(modes[m], 6, 1, 40, 45, k, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_match_direct),
        cmocka_unit_test(test_large_cases_match_direct),
        cmocka_unit_test(test_every_width),
        cmocka_unit_test(test_large_widths_and_pads),
        cmocka_unit_test(test_blocked_row_tails),
        cmocka_unit_test(test_3x3_rows),
        cmocka_unit_test(test_every_activation),
        cmocka_unit_test(test_nan_passes_through),
        cmocka_unit_test(test_supports_only_depthwise),
        cmocka_unit_test(test_model_layer),
        cmocka_unit_test(test_every_padding_mode),
    };
    return cmocka_run_group_tests(tests, pools_setup, pools_teardown);
}
