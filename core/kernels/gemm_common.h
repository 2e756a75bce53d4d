/* gemm_common.h — what the GEMM-based kernels share: the column tiling that
 * keeps each thread's operand slice in cache, and the bias/activation epilogue. */
#ifndef CONVD_CORE_KERNELS_GEMM_COMMON_H
#define CONVD_CORE_KERNELS_GEMM_COMMON_H

#include "core/internal.h"

/* Output columns (pixels) per GEMM task: enough for an efficient GEMM, few
 * enough that a K x tile slice of the operand (~256 KiB) stays in L2, and
 * many tasks so threads balance. */
static inline int64_t gemm_column_tile(int64_t k, int64_t columns)
{
    int64_t tile = (64 * 1024) / (k > 0 ? k : 1);
    tile = tile / 16 * 16;
    if (tile < 64) tile = 64;
    if (tile > 2048) tile = 2048;
    if (tile > columns) tile = columns;
    return tile;
}

/* rows x cols block of C with leading dimension ldc: add bias[row], activate */
static inline void gemm_epilogue(float *c, int64_t rows, int64_t cols, int64_t ldc, const float *bias,
                                 conv_activation act)
{
    if (!bias && act == CONV_ACT_NONE) return;
    for (int64_t r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        float b = bias ? bias[r] : 0.0f;
        if (act == CONV_ACT_NONE) {
            for (int64_t j = 0; j < cols; j++) row[j] += b;
        } else {
            for (int64_t j = 0; j < cols; j++) row[j] = conv_activate(row[j] + b, act);
        }
    }
}

#endif
