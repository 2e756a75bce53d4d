/* test_batching.c — dynamic batching in `convd serve`: many concurrent
 * clients with different inputs to one repository model each get their own
 * rows, bit-equal to the core run alone, while replies show batch_size > 1;
 * batching stays off with --max-batch 1, for jobs whose data passes the
 * batch byte budget and for inline /v1/conv2d layers.
 * Starts the binary (CONVD_BIN, default build/convd) on an ephemeral port. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "core/conv.h"
#include "proto/model_dir.h"
#include "proto/npy.h"
#include "proto/random_init.h"
#include "tests/unit/server_harness.h"

#define CLIENTS 16
#define ROUNDS 4

/* ------------------------------------------------------------ replies */

/* batch_size from the X-Convd-Stats header, -1 when missing */
static int batch_size_of(const http_reply *r)
{
    const char *h = strcasestr(r->headers, "\nX-Convd-Stats: ");
    if (!h) return -1;
    h += strlen("\nX-Convd-Stats: ");
    const char *end = strchr(h, '\r');
    json_t *doc = json_loadb(h, end ? (size_t)(end - h) : strlen(h), 0, NULL);
    json_t *v = doc ? json_object_get(doc, "batch_size") : NULL;
    int n = json_is_integer(v) ? (int)json_integer_value(v) : -1;
    json_decref(doc);
    return n;
}

/* ------------------------------------------------------------ clients */

typedef struct client {
    const server_proc *srv;
    const char *model;
    const conv_model *core_model; /* the same model, run in-process for the expected rows */
    int index;
    int n_rows;                   /* the batch dimension this client sends */
    int hw;                       /* its images' height and width */
    int mismatches, failures;
    int max_batch_seen, min_batch_seen;
} client;

static void *client_main(void *arg)
{
    client *cl = arg;
    cl->min_batch_seen = 1 << 30;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/infer", cl->model);
    static const char *const headers[] = {"Content-Type: application/x-npy", "Accept: application/x-npy", NULL};
    for (int r = 0; r < ROUNDS; r++) {
        int64_t shape[4] = {cl->n_rows, 3, cl->hw, cl->hw};
        conv_tensor input, want;
        uint8_t *body, *want_npy;
        size_t len, want_len;
        if (conv_tensor_alloc(&input, 4, shape, NULL)) {
            cl->failures++;
            continue;
        }
        random_init_fill((uint64_t)(1000 * cl->index + r + 1), input.data, (size_t)cl->n_rows * 3 * cl->hw * cl->hw);
        if (npy_serialize(&input, &body, &len, NULL) ||
            conv_model_run_alloc(cl->core_model, &input, &want, NULL, NULL, NULL)) {
            cl->failures++;
            conv_tensor_free(&input);
            continue;
        }
        if (npy_serialize(&want, &want_npy, &want_len, NULL)) want_npy = NULL;
        http_reply reply;
        http_try("POST", url_of(cl->srv, path), headers, body, len, NULL, &reply);
        if (reply.status != 200 || !want_npy) cl->failures++;
        else if (reply.len != want_len || memcmp(reply.body, want_npy, want_len)) cl->mismatches++;
        int b = batch_size_of(&reply);
        if (b < 1) cl->failures++;
        if (b > cl->max_batch_seen) cl->max_batch_seen = b;
        if (b < cl->min_batch_seen) cl->min_batch_seen = b;
        reply_free(&reply);
        free(want_npy);
        free(body);
        conv_tensor_free(&want);
        conv_tensor_free(&input);
    }
    return NULL;
}

typedef struct run_result {
    int mismatches, failures, max_batch, min_batch;
} run_result;

/* CLIENTS threads, ROUNDS requests each, to model with hw x hw images; with
 * mixed_rows every other client sends 2 rows instead of 1 */
static run_result run_clients(const server_proc *s, const char *model, bool mixed_rows, int hw)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", examples_dir(), model);
    model_dir md;
    conv_error err;
    assert_int_equal(model_dir_load(dir, NULL, &md, &err), CONV_OK);
    client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client){.srv = s, .model = model, .core_model = md.model, .index = i,
                              .n_rows = mixed_rows && i % 2 ? 2 : 1, .hw = hw};
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &clients[i]), 0);
    }
    run_result res = {.min_batch = 1 << 30};
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        res.mismatches += clients[i].mismatches;
        res.failures += clients[i].failures;
        if (clients[i].max_batch_seen > res.max_batch) res.max_batch = clients[i].max_batch_seen;
        if (clients[i].min_batch_seen < res.min_batch) res.min_batch = clients[i].min_batch_seen;
    }
    model_dir_free(&md);
    return res;
}

/* ------------------------------------------------------------ tests */

static void test_batched_rows_equal_unbatched(void **state)
{
    (void)state;
    /* the delay lets batches fill even on a loaded machine */
    server_proc *s = server_start("--models", examples_dir(), "--max-batch", "8", "--batch-delay-us", "20000", "--workers", "1", NULL);
    /* small images: the server batches only while a batch's data stays
     * within WORKERS_BATCH_MAX_BYTES (1 MiB) */
    run_result r = run_clients(s, "standard_classic", false, 32);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_true(r.max_batch > 1);
    assert_true(r.max_batch <= 8);
    double runs = metric(s, "convd_batch_size_count"), jobs = metric(s, "convd_batch_size_sum");
    double alone = metric(s, "convd_batch_size_bucket{le=\"1\"}");
    /* warm-up runs count too (alone) */
    assert_true(jobs >= CLIENTS * ROUNDS);
    assert_true(runs < jobs);
    assert_true(alone < runs);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_mixed_shapes_are_not_merged(void **state)
{
    (void)state;
    server_proc *s = server_start("--models", examples_dir(), "--max-batch", "4", "--batch-delay-us", "20000", "--workers", "1", NULL);
    run_result r = run_clients(s, "separable_classic", true, 32);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_true(r.max_batch > 1);
    assert_true(r.max_batch <= 4);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_max_batch_1_is_off(void **state)
{
    (void)state;
    server_proc *s = server_start("--models", examples_dir(), "--max-batch", "1", "--batch-delay-us", "20000", "--workers", "1", NULL);
    run_result r = run_clients(s, "standard_classic", false, 32);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.max_batch, 1);
    assert_int_equal(r.min_batch, 1);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* 128x128: input, output and im2col workspace of one job pass 1 MiB, so
 * such jobs run alone however many wait */
static void test_large_jobs_run_alone(void **state)
{
    (void)state;
    server_proc *s = server_start("--models", examples_dir(), "--max-batch", "8", "--batch-delay-us", "20000", "--workers", "1", NULL);
    run_result r = run_clients(s, "standard_classic", false, 128);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.max_batch, 1);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

typedef struct inline_client {
    const server_proc *srv;
    int max_batch_seen;
    int failures;
} inline_client;

static void *inline_main(void *arg)
{
    inline_client *ic = arg;
    static const char body[] = "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 8, "
                               "\"kernel_size\": 3}, \"weight\": {\"init\": \"random\", \"seed\": 1}, "
                               "\"bias\": {\"init\": \"random\", \"seed\": 2}, "
                               "\"input\": {\"init\": \"random\", \"seed\": 3, \"shape\": [1, 3, 64, 64]}}";
    for (int r = 0; r < ROUNDS; r++) {
        http_reply reply;
        http_try("POST", url_of(ic->srv, "/v1/conv2d"), json_ct, body, strlen(body), NULL, &reply);
        json_t *doc = reply.status == 200 ? json_loadb(reply.body, reply.len, 0, NULL) : NULL;
        json_t *b = json_object_get(json_object_get(doc, "stats"), "batch_size");
        if (!json_is_integer(b)) ic->failures++;
        else if (json_integer_value(b) > ic->max_batch_seen) ic->max_batch_seen = (int)json_integer_value(b);
        json_decref(doc);
        reply_free(&reply);
    }
    return NULL;
}

static void test_inline_layers_never_batch(void **state)
{
    (void)state;
    server_proc *s = server_start("--models", examples_dir(), "--max-batch", "8", "--batch-delay-us", "20000", "--workers", "1", NULL);
    inline_client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (inline_client){.srv = s};
        assert_int_equal(pthread_create(&threads[i], NULL, inline_main, &clients[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(clients[i].failures, 0);
        assert_int_equal(clients[i].max_batch_seen, 1);
    }
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    openblas_set_num_threads(1); /* as the server runs it, so sums add up in the same order */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_rows_equal_unbatched),
        cmocka_unit_test(test_mixed_shapes_are_not_merged),
        cmocka_unit_test(test_max_batch_1_is_off),
        cmocka_unit_test(test_large_jobs_run_alone),
        cmocka_unit_test(test_inline_layers_never_batch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
