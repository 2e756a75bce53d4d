/* random_init.c — splitmix64 as a counter-based generator: element i depends
 * only on (seed, i), which keeps the documented formula short. */
#include "proto/random_init.h"

static const uint64_t GOLDEN_GAMMA = 0x9E3779B97F4A7C15u;

static float value_from_state(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    /* both steps are exact in float32: a 24-bit integer, then a power of two */
    return (float)((int32_t)(z >> 40) - (1 << 23)) * 0x1p-23f;
}

float random_init_value(uint64_t seed, size_t index)
{
    return value_from_state(seed + ((uint64_t)index + 1) * GOLDEN_GAMMA);
}

void random_init_fill(uint64_t seed, float *out, size_t n)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) {
        state += GOLDEN_GAMMA;
        out[i] = value_from_state(state);
    }
}
