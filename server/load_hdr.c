/* load_hdr.c — the log-linear histogram behind `convd load`'s latency and
 * server-time percentiles (see load_hdr.h for the bucket layout). */
#include "server/load_hdr.h"

#include <math.h>
#include <string.h>

enum {
    SUB_COUNT = 1 << LOAD_HDR_SUB_BITS, /* values below this are exact */
    HALF_COUNT = SUB_COUNT / 2,         /* buckets per power of two above it */
};

static unsigned floor_log2(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v);
}

unsigned load_hdr_bucket_of(uint64_t v)
{
    if (v < SUB_COUNT) return (unsigned)v;
    /* keep the top LOAD_HDR_SUB_BITS bits: v >> shift lies in [HALF, SUB) */
    unsigned shift = floor_log2(v) - (LOAD_HDR_SUB_BITS - 1);
    return SUB_COUNT + (shift - 1) * HALF_COUNT + (unsigned)((v >> shift) - HALF_COUNT);
}

void load_hdr_bucket_range(unsigned bucket, uint64_t *lo, uint64_t *hi)
{
    if (bucket < SUB_COUNT) {
        *lo = *hi = bucket;
        return;
    }
    unsigned shift = (bucket - SUB_COUNT) / HALF_COUNT + 1;
    uint64_t top = (bucket - SUB_COUNT) % HALF_COUNT + HALF_COUNT;
    *lo = top << shift;
    *hi = ((top + 1) << shift) - 1;
}

_Static_assert((SUB_COUNT + (36 - LOAD_HDR_SUB_BITS + 1) * HALF_COUNT) <= LOAD_HDR_BUCKETS,
               "LOAD_HDR_BUCKETS must cover LOAD_HDR_HIGHEST_NS (< 2^37)");

void load_hdr_init(load_hdr *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

void load_hdr_record(load_hdr *h, uint64_t v)
{
    if (v < LOAD_HDR_LOWEST_NS) {
        v = LOAD_HDR_LOWEST_NS;
        h->clamped_low++;
    } else if (v > LOAD_HDR_HIGHEST_NS) {
        v = LOAD_HDR_HIGHEST_NS;
        h->clamped_high++;
    }
    h->counts[load_hdr_bucket_of(v)]++;
    h->total++;
    h->sum_ns += (double)v;
    if (v < h->min_ns) h->min_ns = v;
    if (v > h->max_ns) h->max_ns = v;
}

void load_hdr_record_ms(load_hdr *h, double ms)
{
    double ns = ms * 1e6;
    if (!(ns > 0)) ns = 0; /* also NaN */
    if (ns > (double)LOAD_HDR_HIGHEST_NS * 2) ns = (double)LOAD_HDR_HIGHEST_NS * 2;
    load_hdr_record(h, (uint64_t)llround(ns));
}

uint64_t load_hdr_percentile(const load_hdr *h, double q)
{
    if (!h->total) return 0;
    if (!(q > 0)) return h->min_ns;
    if (q >= 100) return h->max_ns;
    /* the rank (1-based) of the wanted value among the sorted values */
    uint64_t rank = (uint64_t)ceil(q / 100.0 * (double)h->total);
    if (rank < 1) rank = 1;
    if (rank > h->total) rank = h->total;
    uint64_t seen = 0;
    for (unsigned b = 0; b < LOAD_HDR_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t lo, hi;
            load_hdr_bucket_range(b, &lo, &hi);
            uint64_t v = lo + (hi - lo) / 2;
            if (v < h->min_ns) v = h->min_ns;
            if (v > h->max_ns) v = h->max_ns;
            return v;
        }
    }
    return h->max_ns;
}

double load_hdr_percentile_ms(const load_hdr *h, double q)
{
    return (double)load_hdr_percentile(h, q) * 1e-6;
}

double load_hdr_mean_ms(const load_hdr *h)
{
    return h->total ? h->sum_ns / (double)h->total * 1e-6 : 0.0;
}

void load_hdr_merge(load_hdr *dst, const load_hdr *src)
{
    for (unsigned b = 0; b < LOAD_HDR_BUCKETS; b++) dst->counts[b] += src->counts[b];
    dst->total += src->total;
    dst->sum_ns += src->sum_ns;
    dst->clamped_low += src->clamped_low;
    dst->clamped_high += src->clamped_high;
    if (src->min_ns < dst->min_ns) dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns) dst->max_ns = src->max_ns;
}
