/* load_hdr.h — an HDR-style latency histogram for `convd load`: log-linear
 * buckets over 1 µs .. 100 s with a bounded relative error, constant memory,
 * O(1) recording and percentiles without keeping or sorting samples. */
#ifndef CONVD_SERVER_LOAD_HDR_H
#define CONVD_SERVER_LOAD_HDR_H

#include <stdbool.h>
#include <stdint.h>

/* Values are nanoseconds. Below 2^LOAD_HDR_SUB_BITS every integer has its own
 * bucket; above, each power-of-two range [2^e, 2^(e+1)) is split into
 * 2^(LOAD_HDR_SUB_BITS-1) equal buckets, so a bucket is at most 1/128 of the
 * values in it wide and a reported percentile (the bucket's midpoint, clamped
 * to the exact min and max) is within 0.4% of a recorded value. */
#define LOAD_HDR_SUB_BITS 8
#define LOAD_HDR_LOWEST_NS 1000ULL               /* 1 µs */
#define LOAD_HDR_HIGHEST_NS 100000000000ULL      /* 100 s */
#define LOAD_HDR_MAX_RELATIVE_ERROR (1.0 / 256.0) /* half a bucket */
#define LOAD_HDR_BUCKETS 4096

typedef struct load_hdr {
    uint64_t total;        /* recorded values */
    uint64_t min_ns;       /* exact, after clamping; UINT64_MAX while empty */
    uint64_t max_ns;       /* exact, after clamping; 0 while empty */
    uint64_t clamped_low;  /* values below LOAD_HDR_LOWEST_NS, recorded as it */
    uint64_t clamped_high; /* values above LOAD_HDR_HIGHEST_NS, recorded as it */
    double sum_ns;         /* exact sum of the (clamped) values, for the mean */
    uint64_t counts[LOAD_HDR_BUCKETS];
} load_hdr;

void load_hdr_init(load_hdr *h);
/* Records one value; values outside [LOWEST, HIGHEST] are clamped to the
 * nearest end and counted in clamped_low/clamped_high. */
void load_hdr_record(load_hdr *h, uint64_t value_ns);
/* Records a time in milliseconds (a server's "compute_ms"); negative and NaN
 * values count as the lowest value. */
void load_hdr_record_ms(load_hdr *h, double ms);
/* The smallest recorded value v such that at least q percent of the values
 * are <= v, to within LOAD_HDR_MAX_RELATIVE_ERROR (q in [0, 100]; q = 0 gives
 * the min, q = 100 the max, both exact). 0 for an empty histogram. */
uint64_t load_hdr_percentile(const load_hdr *h, double q);
double load_hdr_percentile_ms(const load_hdr *h, double q);
/* exact mean of the recorded (clamped) values, 0 when empty */
double load_hdr_mean_ms(const load_hdr *h);
/* dst += src */
void load_hdr_merge(load_hdr *dst, const load_hdr *src);

/* bucket index of a value in [0, LOAD_HDR_HIGHEST_NS], and the range of values
 * [lo, hi] that bucket holds; exposed for the tests */
unsigned load_hdr_bucket_of(uint64_t value_ns);
void load_hdr_bucket_range(unsigned bucket, uint64_t *lo, uint64_t *hi);

#endif
