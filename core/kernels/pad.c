/* pad.c — builds the padded copy of an input for the reflect, replicate and
 * circular padding modes (and zeros), so kernels only ever see zero padding. */
#include "core/internal.h"

static int64_t map_index(int64_t i, int64_t n, conv_padding_mode mode)
{
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case CONV_PAD_REFLECT: return i < 0 ? -i : 2 * (n - 1) - i; /* edge not repeated; pad < n */
    case CONV_PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    case CONV_PAD_CIRCULAR: return ((i % n) + n) % n; /* pad <= n, so one wrap */
    case CONV_PAD_ZEROS: break;
    }
    return -1;
}

void conv_pad_plane(const float *src, float *dst, int64_t channels, int64_t h, int64_t w, const int64_t pads[4],
                    conv_padding_mode mode)
{
    int64_t ph = h + pads[0] + pads[1], pw = w + pads[2] + pads[3];
    for (int64_t c = 0; c < channels; c++) {
        const float *s = src + c * h * w;
        float *d = dst + c * ph * pw;
        for (int64_t y = 0; y < ph; y++) {
            int64_t sy = map_index(y - pads[0], h, mode);
            float *row = d + y * pw;
            if (sy < 0) {
                for (int64_t x = 0; x < pw; x++) row[x] = 0.0f;
                continue;
            }
            const float *srow = s + sy * w;
            for (int64_t x = 0; x < pads[2]; x++) {
                int64_t sx = map_index(x - pads[2], w, mode);
                row[x] = sx < 0 ? 0.0f : srow[sx];
            }
            for (int64_t x = 0; x < w; x++) row[pads[2] + x] = srow[x];
            for (int64_t x = pads[2] + w; x < pw; x++) {
                int64_t sx = map_index(x - pads[2], w, mode);
                row[x] = sx < 0 ? 0.0f : srow[sx];
            }
        }
    }
}
