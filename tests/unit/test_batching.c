/* test_batching.c — dynamic batching in `convd serve`: many concurrent
 * clients with different inputs to one repository model each get their own
 * rows, bit-equal to the core run alone, while replies show batch_size > 1;
 * batching stays off with --max-batch 1, for jobs whose data passes the
 * batch byte budget and for inline /v1/conv2d layers.
 * Starts the binary (CONVD_BIN, default build/convd) on an ephemeral port. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "core/conv.h"
#include "proto/model_dir.h"
#include "proto/npy.h"
#include "proto/random_init.h"

#define CLIENTS 16
#define ROUNDS 4

/* ------------------------------------------------------------ the server process */

typedef struct server_proc {
    pid_t pid;
    int port;
    int out_fd;
    pthread_t reader;
    pthread_mutex_t lock;
    char *log;
    size_t log_len;
} server_proc;

static const char *convd_bin(void)
{
    const char *b = getenv("CONVD_BIN");
    return b && *b ? b : "build/convd";
}

static const char *examples_dir(void)
{
    const char *d = getenv("CONVD_EXAMPLES");
    return d && *d ? d : "examples";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *drain_output(void *arg)
{
    server_proc *s = arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(s->out_fd, buf, sizeof buf)) > 0) {
        pthread_mutex_lock(&s->lock);
        char *p = realloc(s->log, s->log_len + (size_t)n + 1);
        if (p) {
            memcpy(p + s->log_len, buf, (size_t)n);
            s->log = p;
            s->log_len += (size_t)n;
            s->log[s->log_len] = 0;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

/* `convd serve --port 0 --models examples <args...>`, once it listens */
static server_proc *server_start(const char *first, ...)
{
    const char *argv[32] = {convd_bin(), "serve", "--port", "0", "--models", examples_dir()};
    int argc = 6;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 30; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    server_proc *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->lock, NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    s->out_fd = fds[0];
    assert_int_equal(pthread_create(&s->reader, NULL, drain_output, s), 0);
    double end = now_s() + 10;
    while (!s->port && now_s() < end) {
        pthread_mutex_lock(&s->lock);
        const char *p = s->log ? strstr(s->log, "listening on http://") : NULL;
        const char *colon = p ? strchr(p + strlen("listening on http://"), ':') : NULL;
        if (colon && strchr(colon, '\n')) s->port = atoi(colon + 1);
        pthread_mutex_unlock(&s->lock);
        int status;
        if (!s->port && waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "server exited early: %s\n", s->log ? s->log : "");
            fail();
        }
        if (!s->port) usleep(10000);
    }
    assert_true(s->port > 0);
    return s;
}

static void server_stop(server_proc *s)
{
    kill(s->pid, SIGTERM);
    int status;
    waitpid(s->pid, &status, 0);
    pthread_join(s->reader, NULL);
    close(s->out_fd);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(s->log);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------ HTTP */

typedef struct buffer {
    char *data;
    size_t len;
} buffer;

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
    buffer *b = userp;
    char *p = realloc(b->data, b->len + size * n + 1);
    if (!p) return 0;
    memcpy(p + b->len, data, size * n);
    b->data = p;
    b->len += size * n;
    b->data[b->len] = 0;
    return size * n;
}

/* POSTs body; fills the reply body and headers; returns the status. */
static long post(CURL *c, int port, const char *path, const char *const *headers, const void *body, size_t len,
                 buffer *reply, buffer *head)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; *h; h++) hl = curl_slist_append(hl, *h);
    hl = curl_slist_append(hl, "Expect:");
    memset(reply, 0, sizeof *reply);
    memset(head, 0, sizeof *head);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, head);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    return status;
}

/* batch_size from the X-Convd-Stats header, -1 when missing */
static int batch_size_of(const buffer *head)
{
    const char *h = head->data ? strcasestr(head->data, "\nX-Convd-Stats: ") : NULL;
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
    int port;
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
    CURL *c = curl_easy_init();
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
        buffer reply, head;
        long status = post(c, cl->port, path, headers, body, len, &reply, &head);
        if (status != 200 || !want_npy) cl->failures++;
        else if (reply.len != want_len || memcmp(reply.data, want_npy, want_len)) cl->mismatches++;
        int b = batch_size_of(&head);
        if (b < 1) cl->failures++;
        if (b > cl->max_batch_seen) cl->max_batch_seen = b;
        if (b < cl->min_batch_seen) cl->min_batch_seen = b;
        free(reply.data);
        free(head.data);
        free(want_npy);
        free(body);
        conv_tensor_free(&want);
        conv_tensor_free(&input);
    }
    curl_easy_cleanup(c);
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
        clients[i] = (client){.port = s->port, .model = model, .core_model = md.model, .index = i,
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

static double metric(const server_proc *s, const char *sample)
{
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", s->port);
    buffer b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    double v = -1;
    const char *p = b.data ? strstr(b.data, sample) : NULL;
    if (p && p[strlen(sample)] == ' ') v = strtod(p + strlen(sample), NULL);
    free(b.data);
    return v;
}

/* ------------------------------------------------------------ tests */

static void test_batched_rows_equal_unbatched(void **state)
{
    (void)state;
    /* the delay lets batches fill even on a loaded machine */
    server_proc *s = server_start("--max-batch", "8", "--batch-delay-us", "20000", "--workers", "1", NULL);
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
    server_stop(s);
}

static void test_mixed_shapes_are_not_merged(void **state)
{
    (void)state;
    server_proc *s = server_start("--max-batch", "4", "--batch-delay-us", "20000", "--workers", "1", NULL);
    run_result r = run_clients(s, "separable_classic", true, 32);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_true(r.max_batch > 1);
    assert_true(r.max_batch <= 4);
    server_stop(s);
}

static void test_max_batch_1_is_off(void **state)
{
    (void)state;
    server_proc *s = server_start("--max-batch", "1", "--batch-delay-us", "20000", "--workers", "1", NULL);
    run_result r = run_clients(s, "standard_classic", false, 32);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.max_batch, 1);
    assert_int_equal(r.min_batch, 1);
    server_stop(s);
}

/* 128x128: input, output and im2col workspace of one job pass 1 MiB, so
 * such jobs run alone however many wait */
static void test_large_jobs_run_alone(void **state)
{
    (void)state;
    server_proc *s = server_start("--max-batch", "8", "--batch-delay-us", "20000", "--workers", "1", NULL);
    run_result r = run_clients(s, "standard_classic", false, 128);
    assert_int_equal(r.failures, 0);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.max_batch, 1);
    server_stop(s);
}

typedef struct inline_client {
    int port;
    int max_batch_seen;
    int failures;
} inline_client;

static void *inline_main(void *arg)
{
    inline_client *ic = arg;
    CURL *c = curl_easy_init();
    static const char body[] = "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 8, "
                               "\"kernel_size\": 3}, \"weight\": {\"init\": \"random\", \"seed\": 1}, "
                               "\"bias\": {\"init\": \"random\", \"seed\": 2}, "
                               "\"input\": {\"init\": \"random\", \"seed\": 3, \"shape\": [1, 3, 64, 64]}}";
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    for (int r = 0; r < ROUNDS; r++) {
        buffer reply, head;
        long status = post(c, ic->port, "/v1/conv2d", headers, body, strlen(body), &reply, &head);
        json_t *doc = status == 200 ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
        json_t *b = json_object_get(json_object_get(doc, "stats"), "batch_size");
        if (!json_is_integer(b)) ic->failures++;
        else if (json_integer_value(b) > ic->max_batch_seen) ic->max_batch_seen = (int)json_integer_value(b);
        json_decref(doc);
        free(reply.data);
        free(head.data);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void test_inline_layers_never_batch(void **state)
{
    (void)state;
    server_proc *s = server_start("--max-batch", "8", "--batch-delay-us", "20000", "--workers", "1", NULL);
    inline_client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (inline_client){.port = s->port};
        assert_int_equal(pthread_create(&threads[i], NULL, inline_main, &clients[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(clients[i].failures, 0);
        assert_int_equal(clients[i].max_batch_seen, 1);
    }
    server_stop(s);
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
