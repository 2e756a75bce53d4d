/* test_load_hdr.c — the load generator's latency histogram: percentiles
 * against exact sorted percentiles of random data, exact min/max/mean,
 * merging, clamping of out-of-range values, and the bucket layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/load_hdr.h"

/* splitmix64: a deterministic generator, so a failure reproduces */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* log-uniform over [lo, hi]: latencies spread over many decades */
static uint64_t log_uniform(uint64_t *state, double lo, double hi)
{
    double u = (double)(next_random(state) >> 11) / 9007199254740992.0;
    return (uint64_t)(lo * __builtin_pow(hi / lo, u));
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* the exact percentile by the histogram's definition: sorted[ceil(q n) - 1] */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double q)
{
    if (q <= 0) return sorted[0];
    size_t rank = (size_t)__builtin_ceil(q / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static load_hdr *new_hdr(void)
{
    load_hdr *h = malloc(sizeof *h);
    assert_non_null(h);
    load_hdr_init(h);
    return h;
}

static const double quantiles[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

static void check_against_exact(const load_hdr *h, uint64_t *values, size_t n)
{
    qsort(values, n, sizeof *values, compare_u64);
    for (size_t i = 0; i < sizeof quantiles / sizeof quantiles[0]; i++) {
        double want = (double)exact_percentile(values, n, quantiles[i]);
        double got = (double)load_hdr_percentile(h, quantiles[i]);
        double rel = __builtin_fabs(got - want) / want;
        if (rel > LOAD_HDR_MAX_RELATIVE_ERROR + 1e-12)
            fail_msg("p%g: histogram %.0f, exact %.0f (relative error %.5f)", quantiles[i], got, want,
                     rel);
    }
}

static void test_percentiles_match_sorted_within_precision(void **state)
{
    (void)state;
    uint64_t rng = 42;
    const size_t sizes[] = {1, 2, 7, 100, 1000, 100000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint64_t *values = malloc(n * sizeof *values);
        assert_non_null(values);
        load_hdr *h = new_hdr();
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            values[i] = log_uniform(&rng, 1e3, 1e11); /* 1 µs .. 100 s */
            load_hdr_record(h, values[i]);
            sum += (double)values[i];
        }
        assert_int_equal(h->total, n);
        assert_int_equal(h->clamped_low + h->clamped_high, 0);
        check_against_exact(h, values, n);
        /* min and max are kept exactly, not rounded to a bucket */
        assert_int_equal(load_hdr_percentile(h, 0), values[0]);
        assert_int_equal(load_hdr_percentile(h, 100), values[n - 1]);
        assert_int_equal(h->min_ns, values[0]);
        assert_int_equal(h->max_ns, values[n - 1]);
        assert_true(__builtin_fabs(load_hdr_mean_ms(h) - sum / (double)n * 1e-6) <=
                    1e-9 * sum / (double)n);
        free(values);
        free(h);
    }
}

/* narrow, realistic latencies: most values share a few buckets */
static void test_percentiles_of_clustered_latencies(void **state)
{
    (void)state;
    uint64_t rng = 7;
    enum { N = 50000 };
    uint64_t *values = malloc(N * sizeof *values);
    assert_non_null(values);
    load_hdr *h = new_hdr();
    for (size_t i = 0; i < N; i++) {
        /* 2 ms +- 50 µs, and a 1% tail around 40 ms */
        values[i] = (next_random(&rng) % 100 == 0) ? 40000000 + next_random(&rng) % 5000000
                                                    : 1950000 + next_random(&rng) % 100000;
        load_hdr_record(h, values[i]);
    }
    check_against_exact(h, values, N);
    free(values);
    free(h);
}

static void test_merge_equals_recording_everything(void **state)
{
    (void)state;
    uint64_t rng = 3;
    enum { N = 20000 };
    uint64_t *values = malloc(N * sizeof *values);
    assert_non_null(values);
    load_hdr *a = new_hdr(), *b = new_hdr(), *all = new_hdr();
    for (size_t i = 0; i < N; i++) {
        /* the halves come from different ranges, so the merge moves min and max */
        values[i] = i < N / 2 ? log_uniform(&rng, 5e3, 1e6) : log_uniform(&rng, 1e5, 3e9);
        load_hdr_record(i < N / 2 ? a : b, values[i]);
        load_hdr_record(all, values[i]);
    }
    load_hdr_merge(a, b);
    assert_int_equal(a->total, N);
    assert_memory_equal(a->counts, all->counts, sizeof a->counts);
    assert_int_equal(a->min_ns, all->min_ns);
    assert_int_equal(a->max_ns, all->max_ns);
    assert_true(__builtin_fabs(a->sum_ns - all->sum_ns) <= 1e-9 * all->sum_ns);
    for (size_t i = 0; i < sizeof quantiles / sizeof quantiles[0]; i++)
        assert_int_equal(load_hdr_percentile(a, quantiles[i]), load_hdr_percentile(all, quantiles[i]));
    check_against_exact(a, values, N);

    /* merging an empty histogram changes nothing, and into an empty one copies */
    load_hdr *empty = new_hdr();
    load_hdr_merge(a, empty);
    assert_int_equal(a->min_ns, all->min_ns);
    assert_int_equal(a->total, N);
    load_hdr_merge(empty, all);
    assert_int_equal(load_hdr_percentile(empty, 50), load_hdr_percentile(all, 50));
    assert_int_equal(empty->min_ns, all->min_ns);
    free(values);
    free(a);
    free(b);
    free(all);
    free(empty);
}

static void test_extreme_values_clamp(void **state)
{
    (void)state;
    load_hdr *h = new_hdr();
    load_hdr_record(h, 0);
    load_hdr_record(h, 17);
    load_hdr_record(h, UINT64_MAX);
    load_hdr_record(h, LOAD_HDR_HIGHEST_NS + 1);
    load_hdr_record_ms(h, -3.0);
    load_hdr_record_ms(h, __builtin_nan(""));
    load_hdr_record_ms(h, 1e300);
    assert_int_equal(h->total, 7);
    assert_int_equal(h->clamped_low, 4);
    assert_int_equal(h->clamped_high, 3);
    assert_int_equal(h->min_ns, LOAD_HDR_LOWEST_NS);
    assert_int_equal(h->max_ns, LOAD_HDR_HIGHEST_NS);
    /* 4 of 7 values sit at the low end, 3 at the high end */
    assert_true(load_hdr_percentile(h, 50) <=
                (uint64_t)(LOAD_HDR_LOWEST_NS * (1 + LOAD_HDR_MAX_RELATIVE_ERROR)));
    assert_true(load_hdr_percentile(h, 60) >=
                (uint64_t)(LOAD_HDR_HIGHEST_NS * (1 - LOAD_HDR_MAX_RELATIVE_ERROR)));
    /* the ends themselves are in range, not clamped */
    load_hdr_record(h, LOAD_HDR_LOWEST_NS);
    load_hdr_record(h, LOAD_HDR_HIGHEST_NS);
    assert_int_equal(h->clamped_low + h->clamped_high, 7);
    free(h);
}

static void test_empty_histogram(void **state)
{
    (void)state;
    load_hdr *h = new_hdr();
    assert_int_equal(load_hdr_percentile(h, 50), 0);
    assert_int_equal(load_hdr_percentile(h, 100), 0);
    assert_true(load_hdr_mean_ms(h) == 0.0);
    free(h);
}

/* every bucket's range is contiguous with the next, holds the values that map
 * to it, and is exact (one value) or at most 1/128 of its values wide */
static void test_bucket_layout(void **state)
{
    (void)state;
    uint64_t expect_lo = 0;
    unsigned last = load_hdr_bucket_of(LOAD_HDR_HIGHEST_NS);
    assert_true(last < LOAD_HDR_BUCKETS);
    for (unsigned b = 0; b <= last; b++) {
        uint64_t lo, hi;
        load_hdr_bucket_range(b, &lo, &hi);
        assert_int_equal(lo, expect_lo);
        assert_true(hi >= lo);
        assert_int_equal(load_hdr_bucket_of(lo), b);
        assert_int_equal(load_hdr_bucket_of(hi), b);
        if (hi > lo) assert_true((double)(hi - lo + 1) / (double)lo <= 1.0 / 128 + 1e-12);
        expect_lo = hi + 1;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_match_sorted_within_precision),
        cmocka_unit_test(test_percentiles_of_clustered_latencies),
        cmocka_unit_test(test_merge_equals_recording_everything),
        cmocka_unit_test(test_extreme_values_clamp),
        cmocka_unit_test(test_empty_histogram),
        cmocka_unit_test(test_bucket_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
