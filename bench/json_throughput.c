/* json_throughput.c — times tensor JSON text both ways (list and base64
 * forms) on typical activation shapes, in MB of JSON text per second on one
 * core (thread CPU time): the writers, json_loadb + json_tensor_parse (the old reading path)
 * and json_fast_loadb + json_tensor_parse (what the server uses).
 * Standalone, not a test; build by hand:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -I. -o json_throughput bench/json_throughput.c proto/json_fast.c \
 *       proto/json_tensor.c proto/base64.c proto/random_init.c core/status.c core/tensor.c -ljansson -lm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/conv.h"
#include "proto/json_fast.h"
#include "proto/json_tensor.h"
#include "proto/random_init.h"

/* CPU time of this thread: on a shared machine wall time mostly measures the
 * other processes; on an idle one the two agree */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* the fastest of several runs, which is what the code can do on an idle core */
#define RUNS 5

static double time_write(const conv_tensor *t, json_tensor_encoding encoding, size_t *text_len)
{
    double best = 1e9;
    for (int r = 0; r < RUNS; r++) {
        char *text;
        double start = now_seconds();
        conv_status st = encoding == JSON_TENSOR_LIST ? json_tensor_write_list(t, &text, text_len)
                                                      : json_tensor_write_b64(t, &text, text_len);
        double elapsed = now_seconds() - start;
        if (st != CONV_OK) {
            fprintf(stderr, "write failed: %s\n", conv_status_name(st));
            exit(1);
        }
        free(text);
        if (elapsed < best) best = elapsed;
    }
    return best;
}

/* jansson's own writer on the json_t tree, for comparison */
static double time_jansson_dump(const conv_tensor *t, size_t *text_len)
{
    double best = 1e9;
    for (int r = 0; r < RUNS; r++) {
        double start = now_seconds();
        json_t *v = json_tensor_to_json(t, JSON_TENSOR_LIST);
        char *text = json_dumps(v, JSON_COMPACT);
        double elapsed = now_seconds() - start;
        *text_len = strlen(text);
        free(text);
        json_decref(v);
        if (elapsed < best) best = elapsed;
    }
    return best;
}

typedef json_t *(*load_fn)(const char *text, size_t len, size_t flags, json_error_t *error);

/* load (json_loadb or json_fast_loadb) + json_tensor_parse, separately timed */
static void time_parse(load_fn load, const char *text, size_t len, double *load_best, double *total_best)
{
    *load_best = *total_best = 1e9;
    for (int r = 0; r < RUNS; r++) {
        json_error_t jerr;
        double start = now_seconds();
        json_t *v = load(text, len, JSON_REJECT_DUPLICATES, &jerr);
        double loaded = now_seconds();
        conv_tensor t;
        conv_error err;
        if (!v || json_tensor_parse(v, "input", NULL, 0, NULL, &t, NULL, &err) != CONV_OK) {
            fprintf(stderr, "parse failed: %s\n", v ? err.message : jerr.text);
            exit(1);
        }
        double parsed = now_seconds();
        json_decref(v);
        conv_tensor_free(&t);
        if (loaded - start < *load_best) *load_best = loaded - start;
        if (parsed - start < *total_best) *total_best = parsed - start;
    }
}

static void bench_shape(const int64_t dims[4])
{
    conv_tensor t;
    conv_error err;
    if (conv_tensor_alloc(&t, 4, dims, &err) != CONV_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    random_init_fill(1, t.data, conv_tensor_numel(&t));
    char shape[64];
    conv_shape_format(dims, 4, shape, sizeof shape);

    json_tensor_encoding encodings[2] = {JSON_TENSOR_LIST, JSON_TENSOR_B64};
    for (int e = 0; e < 2; e++) {
        size_t len;
        double write = time_write(&t, encodings[e], &len);
        char *text;
        if (e == 0)
            json_tensor_write_list(&t, &text, &len);
        else
            json_tensor_write_b64(&t, &text, &len);
        double load, total, fast_load, fast_total;
        time_parse(json_loadb, text, len, &load, &total);
        time_parse(json_fast_loadb, text, len, &fast_load, &fast_total);
        free(text);
        double mb = (double)len / 1e6;
        printf("%-18s %-5s %7.2f MB text | write %7.1f MB/s | parse: json_fast %6.1f MB/s (load alone %6.1f), "
               "jansson %6.1f MB/s (json_loadb alone %6.1f)\n",
               shape, e == 0 ? "list" : "b64", mb, mb / write, mb / fast_total, mb / fast_load, mb / total, mb / load);
    }
    size_t len;
    double dump = time_jansson_dump(&t, &len);
    printf("%-18s %-5s %7.2f MB text | write %7.1f MB/s (json_tensor_to_json + json_dumps, for comparison)\n", shape,
           "list", (double)len / 1e6, (double)len / 1e6 / dump);
    conv_tensor_free(&t);
}

int main(void)
{
    const int64_t small[4] = {1, 3, 128, 128};
    const int64_t large[4] = {1, 64, 112, 112};
    bench_shape(small);
    bench_shape(large);
    return 0;
}
