/* random_init.h — the documented pseudo-random tensor contents behind
 * {"init": "random", "seed": S}, so load tests need not ship data and any
 * client can recompute the values the service used. */
#ifndef CONVD_PROTO_RANDOM_INIT_H
#define CONVD_PROTO_RANDOM_INIT_H

#include <stddef.h>
#include <stdint.h>

/* Element i (row-major, from 0) of a tensor initialised with seed S is
 *
 *     z = S + (i + 1) * 0x9E3779B97F4A7C15            (mod 2^64)
 *     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9        (mod 2^64)
 *     z = (z ^ (z >> 27)) * 0x94D049BB133111EB        (mod 2^64)
 *     z =  z ^ (z >> 31)
 *     value = ((z >> 40) - 2^23) / 2^23
 *
 * i.e. the i-th output of splitmix64 seeded with S, its top 24 bits mapped
 * onto [-1, 1) in steps of 2^-23. Every value is exact in float32, so any
 * language reproduces it bit for bit. In Python:
 *
 *     M = 2**64 - 1
 *     def value(seed, i):
 *         z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & M
 *         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
 *         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
 *         z ^= z >> 31
 *         return ((z >> 40) - 2**23) / 2**23
 */
float random_init_value(uint64_t seed, size_t index);

/* out[k] = random_init_value(seed, k) for k in [0, n). */
void random_init_fill(uint64_t seed, float *out, size_t n);

#endif
