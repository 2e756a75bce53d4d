/* test_server.c — `convd serve` end to end: starts the binary (CONVD_BIN,
 * default build/convd) on an ephemeral port and talks to it with libcurl;
 * results are compared bit for bit with the core run in-process. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cblas.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "core/conv.h"
#include "proto/json_tensor.h"
#include "proto/model_json.h"
#include "proto/model_dir.h"
#include "proto/npy.h"
#include "proto/random_init.h"
#include "tests/unit/server_harness.h"

/* ------------------------------------------------------------ replies */

static json_t *body_json(const http_reply *r)
{
    json_error_t e;
    json_t *doc = json_loadb(r->body, r->len, 0, &e);
    if (!doc) fprintf(stderr, "reply is not JSON (%s): %.300s\n", e.text, r->body);
    assert_non_null(doc);
    return doc;
}

/* the error code of a JSON error reply, checking its shape */
static void expect_error(http_reply *r, long status, const char *code)
{
    if (r->status != status) fprintf(stderr, "expected %ld, got %ld: %s\n", status, r->status, r->body);
    assert_int_equal(r->status, status);
    json_t *doc = body_json(r);
    json_t *err = json_object_get(doc, "error");
    assert_true(json_is_object(err));
    assert_true(json_is_string(json_object_get(err, "message")));
    assert_true(strlen(json_string_value(json_object_get(err, "message"))) > 0);
    if (code) assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    json_decref(doc);
    reply_free(r);
}

static bool has_header(const http_reply *r, const char *line_prefix)
{
    return strcasestr(r->headers, line_prefix) != NULL;
}

/* ------------------------------------------------------------ expected values from the core */

static void example_path(char *buf, size_t len, const char *model, const char *file)
{
    snprintf(buf, len, "%s/%s%s%s", examples_dir(), model, file ? "/" : "", file ? file : "");
}

/* Runs a model folder in-process on input (one thread, as the server's default). */
static void core_run_dir(const char *model, const conv_tensor *input, conv_tensor *output)
{
    char dir[512];
    example_path(dir, sizeof dir, model, NULL);
    model_dir md;
    conv_error err;
    assert_int_equal(model_dir_load(dir, NULL, &md, &err), CONV_OK);
    assert_int_equal(conv_model_run_alloc(md.model, input, output, NULL, NULL, &err), CONV_OK);
    model_dir_free(&md);
}

static void random_tensor(conv_tensor *t, int rank, const int64_t *dims, uint64_t seed)
{
    assert_int_equal(conv_tensor_alloc(t, rank, dims, NULL), CONV_OK);
    random_init_fill(seed, t->data, conv_tensor_numel(t));
}

static void expect_same_tensor(const conv_tensor *got, const conv_tensor *want)
{
    assert_int_equal(got->rank, want->rank);
    assert_memory_equal(got->dims, want->dims, sizeof want->dims[0] * (size_t)want->rank);
    assert_memory_equal(got->data, want->data, conv_tensor_numel(want) * sizeof(float));
}

/* the "output" of a JSON reply, checking the statistics keys on the way */
static void reply_output(const http_reply *r, conv_tensor *out, json_tensor_encoding want_enc)
{
    if (r->status != 200) fprintf(stderr, "reply %ld: %.500s\n", r->status, r->body);
    assert_int_equal(r->status, 200);
    json_t *doc = body_json(r);
    json_tensor_encoding enc;
    conv_error err;
    if (json_tensor_parse(json_object_get(doc, "output"), "output", NULL, 0, NULL, out, &enc, &err))
        fprintf(stderr, "%s\n", err.message);
    assert_int_equal(enc, want_enc);
    json_t *stats = json_object_get(doc, "stats");
    static const char *const keys[] = {"queue_ms", "compute_ms", "total_ms", "parse_ms", "serialize_ms", "flops",
                                       "macs", "params", "gflops_per_s", "threads", "layers"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!json_object_get(stats, keys[i])) fprintf(stderr, "stats lacks %s\n", keys[i]);
        assert_non_null(json_object_get(stats, keys[i]));
    }
    assert_true(json_is_array(json_object_get(stats, "layers")));
    assert_true(json_integer_value(json_object_get(stats, "flops")) > 0);
    assert_true(json_number_value(json_object_get(stats, "total_ms")) >= json_number_value(json_object_get(stats, "compute_ms")));
    json_decref(doc);
}

static char *tensor_json(const conv_tensor *t, json_tensor_encoding enc)
{
    char *text;
    size_t len;
    assert_int_equal(enc == JSON_TENSOR_B64 ? json_tensor_write_b64(t, &text, &len) : json_tensor_write_list(t, &text, &len),
                     CONV_OK);
    return text;
}

/* 3x3 Conv2d 32->32 layers on 1x32x128x128 (0.3 GFLOP each): small enough
 * for a 1 MiB body limit, slow enough to hold a worker */
static char *slow_request_with(int layers, const char *algorithm) { return slow_model_request(layers, 128, algorithm); }

static char *slow_body;

/* ------------------------------------------------------------ shared servers */

static server_proc *main_srv; /* --models examples, defaults */
static server_proc *small_srv; /* --workers 1 --queue-depth 1, 1 MB bodies, an API key */
static char key_file[] = "/tmp/convd-test-key-XXXXXX";

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    /* as convd's main() does: a multi-threaded BLAS sums in another order */
    openblas_set_num_threads(1);
    signal(SIGPIPE, SIG_IGN);
    int fd = mkstemp(key_file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret-key\n", 11), 11);
    close(fd);
    /* on the direct kernel (~80 ms a layer at 128x128): the queue tests poll
     * metrics while it runs, so it must stay slow however fast the tuned
     * kernels get (24 Winograd layers take ~40 ms now) */
    slow_body = slow_request_with(slow_layers(8), "direct");
    main_srv = server_start("--models", examples_dir(), NULL);
    char timeout_ms[32];
    snprintf(timeout_ms, sizeof timeout_ms, "%.0f", 20000 * timeout_scale());
    small_srv = server_start("--workers", "1", "--queue-depth", "1", "--max-body-mb", "1", "--api-key-file", key_file,
                             "--request-timeout-ms", timeout_ms, "--log-format", "json", NULL);
    wait_ready(main_srv, 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(server_stop(main_srv, SIGTERM), 0);
    assert_int_equal(server_stop(small_srv, SIGINT), 0);
    unlink(key_file);
    free(slow_body);
    curl_global_cleanup();
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_health_metrics_openapi(void **state)
{
    (void)state;
    http_reply r = get(main_srv, "/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = get(main_srv, "/readyz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = get(main_srv, "/metrics");
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: text/plain"));
    static const char *const names[] = {"convd_requests_total{route=\"/readyz\",status=\"200\"}",
                                        "# TYPE convd_queue_seconds histogram", "# TYPE convd_compute_seconds histogram",
                                        "convd_request_seconds_bucket{le=\"+Inf\"}", "convd_queue_depth 0",
                                        "convd_inflight_jobs 0", "convd_flops_total ",
                                        "# TYPE convd_model_requests_total counter"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strstr(r.body, names[i])) fprintf(stderr, "metrics lack %s\n", names[i]);
        assert_non_null(strstr(r.body, names[i]));
    }
    reply_free(&r);
    r = get(main_srv, "/openapi.json");
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    json_t *paths = json_object_get(doc, "paths");
    static const char *const routes[] = {"/v1/models/{name}/infer", "/v1/conv2d", "/v1/infer", "/v1/models",
                                         "/v1/models/{name}", "/v1/analyze", "/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) assert_non_null(json_object_get(paths, routes[i]));
    json_decref(doc);
    reply_free(&r);
    /* the access log has one line per request */
    assert_true(log_wait_for(main_srv, "GET /openapi.json 200", 2));
}

static void test_models_list_and_get(void **state)
{
    (void)state;
    http_reply r = get(main_srv, "/v1/models");
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    json_t *models = json_object_get(doc, "models");
    assert_int_equal(json_array_size(models), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(models, 0), "name")), "atrous");
    json_decref(doc);
    reply_free(&r);

    r = get(main_srv, "/v1/models/separable_classic");
    assert_int_equal(r.status, 200);
    doc = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(doc, "layers"), 0), "type")),
                        "SeparableConv2d");
    json_t *shape = json_object_get(doc, "input_shape");
    assert_int_equal(json_integer_value(json_array_get(shape, 3)), 128);
    /* 3x3 depthwise on 3 channels + 1x1 3->10, 128x128: (27 + 30) MACs per pixel... as the core counts */
    char dir[512];
    example_path(dir, sizeof dir, "separable_classic", NULL);
    model_dir md;
    assert_int_equal(model_dir_load(dir, NULL, &md, NULL), CONV_OK);
    conv_plan *plan;
    assert_int_equal(conv_plan_create(md.model, md.spec.input_shape, &plan, NULL), CONV_OK);
    assert_int_equal(json_integer_value(json_object_get(doc, "flops")), conv_plan_stats(plan)->flops);
    assert_int_equal(json_integer_value(json_object_get(doc, "params")), conv_plan_stats(plan)->params);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(doc, "receptive_field"), 0)), 3);
    conv_plan_destroy(plan);
    model_dir_free(&md);
    json_decref(doc);
    reply_free(&r);

    r = get(main_srv, "/v1/models/separable_classic?input_shape=1,3,32,40");
    assert_int_equal(r.status, 200);
    doc = body_json(&r);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(doc, "output_shape"), 3)), 40);
    json_decref(doc);
    reply_free(&r);

    r = get(main_srv, "/v1/models/nope");
    expect_error(&r, 404, "not_found");
    r = get(main_srv, "/v1/models/separable_classic?input_shape=1,4,32,32");
    expect_error(&r, 422, "invalid_spec");
}

/* npy in/out, JSON b64 and list in/out: all equal to the core's output */
static void test_infer_examples_bit_exact(void **state)
{
    (void)state;
    static const char *const models[] = {"separable_classic", "standard_classic"};
    for (size_t m = 0; m < 2; m++) {
        char path[512], url[256];
        example_path(path, sizeof path, models[m], "input.npy");
        conv_tensor input, want, got;
        assert_int_equal(npy_read_file(path, &input, NULL), CONV_OK);
        core_run_dir(models[m], &input, &want);
        snprintf(url, sizeof url, "/v1/models/%s/infer", models[m]);

        uint8_t *npy;
        size_t npy_len;
        assert_int_equal(npy_serialize(&input, &npy, &npy_len, NULL), CONV_OK);
        static const char *const npy_headers[] = {"Content-Type: application/x-npy", "Accept: application/x-npy", NULL};
        http_reply r = http("POST", url_of(main_srv, url), npy_headers, npy, npy_len, NULL);
        assert_int_equal(r.status, 200);
        assert_true(has_header(&r, "Content-Type: application/x-npy"));
        assert_true(has_header(&r, "Server-Timing: queue;dur="));
        assert_true(has_header(&r, "X-Convd-Stats: {"));
        char *flops = strcasestr(r.headers, "X-Convd-Flops: ");
        assert_non_null(flops);
        assert_true(atoll(flops + 15) == (long long)want.dims[1] * 0 + atoll(flops + 15) && atoll(flops + 15) > 0);
        assert_int_equal(npy_parse((uint8_t *)r.body, r.len, &got, NULL), CONV_OK);
        expect_same_tensor(&got, &want);
        conv_tensor_free(&got);
        reply_free(&r);

        /* .npy in, JSON out: b64 by default */
        static const char *const npy_in[] = {"Content-Type: application/x-npy", NULL};
        r = http("POST", url_of(main_srv, url), npy_in, npy, npy_len, NULL);
        reply_output(&r, &got, JSON_TENSOR_B64);
        expect_same_tensor(&got, &want);
        conv_tensor_free(&got);
        reply_free(&r);
        free(npy);

        for (int e = 0; e < 2; e++) {
            json_tensor_encoding enc = e ? JSON_TENSOR_LIST : JSON_TENSOR_B64;
            char *t = tensor_json(&input, enc);
            char *body = malloc(strlen(t) + 32);
            sprintf(body, "{\"input\": %s}", t);
            r = post_json(main_srv, url, body);
            reply_output(&r, &got, enc); /* same encoding as the input */
            expect_same_tensor(&got, &want);
            conv_tensor_free(&got);
            reply_free(&r);
            free(body);
            free(t);
        }
        conv_tensor_free(&input);
        conv_tensor_free(&want);
    }
}

/* `convd run` on the same input writes the same numbers the server returns */
static void test_infer_matches_cli(void **state)
{
    (void)state;
    char dir[512], in[512], cmd[2048];
    example_path(dir, sizeof dir, "standard_classic", NULL);
    example_path(in, sizeof in, "standard_classic", "input.npy");
    char out[] = "/tmp/convd-test-run-XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s run %s %s -o %s", convd_bin(), dir, in, out);
    assert_int_equal(system(cmd), 0);
    conv_tensor cli, input, got;
    assert_int_equal(npy_read_file(out, &cli, NULL), CONV_OK);
    unlink(out);
    assert_int_equal(npy_read_file(in, &input, NULL), CONV_OK);
    char *t = tensor_json(&input, JSON_TENSOR_B64);
    char *body = malloc(strlen(t) + 32);
    sprintf(body, "{\"input\": %s}", t);
    http_reply r = post_json(main_srv, "/v1/models/standard_classic/infer?encoding=list", body);
    reply_output(&r, &got, JSON_TENSOR_LIST);
    expect_same_tensor(&got, &cli);
    reply_free(&r);
    free(body);
    free(t);
    conv_tensor_free(&got);
    conv_tensor_free(&cli);
    conv_tensor_free(&input);
}

/* the deeper examples with seeded random inputs (and the declared shape) */
static void test_infer_random_inputs(void **state)
{
    (void)state;
    static const char *const models[] = {"mobilenet_v1", "atrous"};
    static const int64_t shapes[][4] = {{1, 3, 224, 224}, {1, 3, 64, 64}};
    for (size_t m = 0; m < 2; m++) {
        conv_tensor input, want, got;
        random_tensor(&input, 4, shapes[m], 42 + m);
        core_run_dir(models[m], &input, &want);
        char url[256], body[128];
        snprintf(url, sizeof url, "/v1/models/%s/infer?encoding=b64", models[m]);
        snprintf(body, sizeof body, "{\"input\": {\"init\": \"random\", \"seed\": %zu}}", 42 + m);
        http_reply r = post_json(main_srv, url, body);
        reply_output(&r, &got, JSON_TENSOR_B64);
        expect_same_tensor(&got, &want);
        reply_free(&r);
        conv_tensor_free(&got);
        conv_tensor_free(&want);
        conv_tensor_free(&input);
    }
    assert_true(metric(main_srv, "convd_model_requests_total{model=\"mobilenet_v1\"}") >= 1);
    assert_true(metric(main_srv, "convd_flops_total") > 0);
}

/* in-process result of one layer with seeded random weights */
static void core_layer(const char *layer_json, const int64_t in_shape[4], uint64_t in_seed, const uint64_t *w_seeds,
                       conv_tensor *out)
{
    char doc[1024];
    snprintf(doc, sizeof doc, "{\"layers\": [%s]}", layer_json);
    model_json mj;
    assert_int_equal(model_json_parse(doc, strlen(doc), &mj, NULL), CONV_OK);
    conv_param_desc d[CONV_MAX_LAYER_PARAMS];
    size_t n = conv_layer_param_descs(&mj.layers[0], d);
    conv_named_tensor w[CONV_MAX_LAYER_PARAMS];
    char names[CONV_MAX_LAYER_PARAMS][64];
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "0.%s", d[i].suffix);
        w[i] = (conv_named_tensor){.name = names[i], .is_float = true};
        random_tensor(&w[i].tensor, d[i].rank, d[i].dims, w_seeds[i]);
    }
    conv_model *model;
    conv_error err;
    assert_int_equal(conv_model_create(mj.layers, 1, w, n, NULL, &model, &err), CONV_OK);
    conv_tensor input;
    random_tensor(&input, 4, in_shape, in_seed);
    assert_int_equal(conv_model_run_alloc(model, &input, out, NULL, NULL, &err), CONV_OK);
    conv_tensor_free(&input);
    conv_model_destroy(model);
    for (size_t i = 0; i < n; i++) conv_tensor_free(&w[i].tensor);
    model_json_free(&mj);
}

static void test_conv2d_inline(void **state)
{
    (void)state;
    const char *layer = "{\"type\": \"Conv2d\", \"in_channels\": 4, \"out_channels\": 6, \"kernel_size\": 3, "
                        "\"stride\": 2, \"padding\": 1, \"groups\": 2}";
    const int64_t shape[4] = {2, 4, 17, 19};
    const uint64_t seeds[] = {7, 8};
    conv_tensor want, got;
    core_layer(layer, shape, 5, seeds, &want);
    char body[2048];
    snprintf(body, sizeof body,
             "{\"layer\": %s, \"weight\": {\"init\": \"random\", \"seed\": 7}, \"bias\": {\"init\": \"random\", "
             "\"seed\": 8}, \"input\": {\"shape\": [2, 4, 17, 19], \"init\": \"random\", \"seed\": 5}}",
             layer);
    http_reply r = post_json(main_srv, "/v1/conv2d", body);
    reply_output(&r, &got, JSON_TENSOR_LIST);
    expect_same_tensor(&got, &want);
    conv_tensor_free(&got);
    reply_free(&r);

    /* multipart: the request JSON without tensors, each tensor an .npy part */
    conv_tensor x, w, b;
    random_tensor(&x, 4, shape, 5);
    random_tensor(&w, 4, (int64_t[]){6, 2, 3, 3}, 7);
    random_tensor(&b, 1, (int64_t[]){6}, 8);
    uint8_t *xn, *wn, *bn;
    size_t xl, wl, bl;
    assert_int_equal(npy_serialize(&x, &xn, &xl, NULL), CONV_OK);
    assert_int_equal(npy_serialize(&w, &wn, &wl, NULL), CONV_OK);
    assert_int_equal(npy_serialize(&b, &bn, &bl, NULL), CONV_OK);
    char req_json[512];
    snprintf(req_json, sizeof req_json, "{\"layer\": %s}", layer);
    part_spec parts[] = {{"request", req_json, strlen(req_json)}, {"input", xn, xl}, {"weight", wn, wl},
                         {"bias", bn, bl}, {NULL, NULL, 0}};
    static const char *const accept_npy[] = {"Accept: application/x-npy", NULL};
    r = http("POST", url_of(main_srv, "/v1/conv2d"), accept_npy, NULL, 0, parts);
    assert_int_equal(r.status, 200);
    assert_int_equal(npy_parse((uint8_t *)r.body, r.len, &got, NULL), CONV_OK);
    expect_same_tensor(&got, &want);
    conv_tensor_free(&got);
    reply_free(&r);

    /* a weight of the wrong shape is 422 naming it */
    part_spec bad[] = {{"request", req_json, strlen(req_json)}, {"input", xn, xl}, {"weight", bn, bl},
                       {"bias", bn, bl}, {NULL, NULL, 0}};
    r = http("POST", url_of(main_srv, "/v1/conv2d"), NULL, NULL, 0, bad);
    assert_non_null(strstr(r.body, "weight"));
    expect_error(&r, 422, "invalid_spec");
    /* malformed multipart */
    static const char *const mp_ct[] = {"Content-Type: multipart/form-data; boundary=xyz", NULL};
    r = http("POST", url_of(main_srv, "/v1/conv2d"), mp_ct, "--xyz\r\nbogus\r\n", 14, NULL);
    expect_error(&r, 400, "invalid_multipart");
    free(xn);
    free(wn);
    free(bn);
    conv_tensor_free(&x);
    conv_tensor_free(&w);
    conv_tensor_free(&b);
    conv_tensor_free(&want);

    /* SeparableConv2d with its four state_dict tensors */
    const char *sep = "{\"type\": \"SeparableConv2d\", \"in_channels\": 3, \"out_channels\": 5, \"kernel_size\": 3, "
                      "\"padding\": 1}";
    const uint64_t sep_seeds[] = {11, 12, 13, 14};
    const int64_t sshape[4] = {1, 3, 16, 16};
    core_layer(sep, sshape, 3, sep_seeds, &want);
    conv_param_desc d[CONV_MAX_LAYER_PARAMS];
    conv_layer_spec spec;
    json_t *sep_json = json_loads(sep, 0, NULL);
    assert_int_equal(layer_spec_from_json(sep_json, "layer", &spec, NULL), CONV_OK);
    json_decref(sep_json);
    size_t n = conv_layer_param_descs(&spec, d);
    assert_int_equal(n, 4);
    char weights[512] = "";
    for (size_t i = 0; i < n; i++) {
        char one[128];
        snprintf(one, sizeof one, "%s\"%s\": {\"init\": \"random\", \"seed\": %llu}", i ? ", " : "", d[i].suffix,
                 (unsigned long long)sep_seeds[i]);
        strcat(weights, one);
    }
    snprintf(body, sizeof body,
             "{\"layer\": %s, \"weights\": {%s}, \"input\": {\"shape\": [1, 3, 16, 16], \"init\": \"random\", "
             "\"seed\": 3}}",
             sep, weights);
    r = post_json(main_srv, "/v1/conv2d?encoding=b64", body);
    reply_output(&r, &got, JSON_TENSOR_B64);
    expect_same_tensor(&got, &want);
    conv_tensor_free(&got);
    conv_tensor_free(&want);
    reply_free(&r);
}

static void test_infer_inline_model(void **state)
{
    (void)state;
    /* Conv2d 3->4 (seeds 1, 2), ReLU, MaxPool2d 2 */
    const char *model = "{\"layers\": [{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, "
                        "\"kernel_size\": 3}, {\"type\": \"ReLU\"}, {\"type\": \"MaxPool2d\", \"kernel_size\": 2}]}";
    model_json mj;
    assert_int_equal(model_json_parse(model, strlen(model), &mj, NULL), CONV_OK);
    conv_named_tensor w[2] = {{.name = "0.weight", .is_float = true}, {.name = "0.bias", .is_float = true}};
    random_tensor(&w[0].tensor, 4, (int64_t[]){4, 3, 3, 3}, 1);
    random_tensor(&w[1].tensor, 1, (int64_t[]){4}, 2);
    conv_model *m;
    assert_int_equal(conv_model_create(mj.layers, mj.n_layers, w, 2, NULL, &m, NULL), CONV_OK);
    conv_tensor input, want, got;
    random_tensor(&input, 4, (int64_t[]){1, 3, 12, 12}, 9);
    assert_int_equal(conv_model_run_alloc(m, &input, &want, NULL, NULL, NULL), CONV_OK);
    char *t = tensor_json(&input, JSON_TENSOR_LIST);
    char *body = malloc(strlen(t) + 1024);
    sprintf(body,
            "{\"model\": %s, \"weights\": {\"0.weight\": {\"init\": \"random\", \"seed\": 1}, \"0.bias\": {\"init\": "
            "\"random\", \"seed\": 2}}, \"input\": %s}",
            model, t);
    http_reply r = post_json(main_srv, "/v1/infer", body);
    reply_output(&r, &got, JSON_TENSOR_LIST);
    expect_same_tensor(&got, &want);
    conv_tensor_free(&got);
    reply_free(&r);
    /* a missing weight is the core's 422 */
    sprintf(body, "{\"model\": %s, \"weights\": {\"0.weight\": {\"init\": \"random\"}}, \"input\": %s}", model, t);
    r = post_json(main_srv, "/v1/infer", body);
    assert_non_null(strstr(r.body, "0.bias"));
    expect_error(&r, 400, "invalid_request");
    free(body);
    free(t);
    conv_tensor_free(&input);
    conv_tensor_free(&want);
    conv_tensor_free(&w[0].tensor);
    conv_tensor_free(&w[1].tensor);
    conv_model_destroy(m);
    model_json_free(&mj);
}

static void test_analyze(void **state)
{
    (void)state;
    http_reply r = post_json(main_srv, "/v1/analyze",
                             "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 10, "
                             "\"kernel_size\": 3, \"padding\": 1}, \"input_shape\": [1, 3, 128, 128]}");
    assert_int_equal(r.status, 200);
    json_t *doc = body_json(&r);
    /* MACs = N * C_out * H * W * C_in * k * k */
    assert_int_equal(json_integer_value(json_object_get(doc, "macs")), 1LL * 10 * 128 * 128 * 3 * 9);
    assert_int_equal(json_integer_value(json_object_get(doc, "flops")), 2LL * 10 * 128 * 128 * 3 * 9);
    json_decref(doc);
    reply_free(&r);
    r = post_json(main_srv, "/v1/analyze",
                  "{\"model\": {\"layers\": [{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 8, "
                  "\"kernel_size\": 3, \"dilation\": 2}, {\"type\": \"Conv2d\", \"in_channels\": 8, \"out_channels\": 8, "
                  "\"kernel_size\": 3}]}, \"input_shape\": [1, 3, 32, 32]}");
    assert_int_equal(r.status, 200);
    doc = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "layers")), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(doc, "receptive_field"), 0)), 7);
    json_decref(doc);
    reply_free(&r);
    r = post_json(main_srv, "/v1/analyze", "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 10, "
                                           "\"kernel_size\": 3}, \"input_shape\": [1, 4, 8, 8]}");
    expect_error(&r, 422, "invalid_spec");
    r = post_json(main_srv, "/v1/analyze", "{\"layer\": {\"type\": \"Conv2d\"}, \"input_shape\": [1, 3]}");
    assert_true(r.status == 400 || r.status == 422);
    reply_free(&r);
}

static void test_errors(void **state)
{
    (void)state;
    http_reply r = post_json(main_srv, "/v1/models/separable_classic/infer", "{\"input\": [1, 2,");
    assert_non_null(strstr(r.body, "line 1"));
    expect_error(&r, 400, "invalid_json");
    r = post_json(main_srv, "/v1/models/separable_classic/infer", "{\"input\": {\"shape\": [1, 3, 1, 1], \"data\": [1, \"x\", 2]}}");
    assert_non_null(strstr(r.body, "input"));
    expect_error(&r, 400, NULL);
    r = post_json(main_srv, "/v1/models/separable_classic/infer", "{\"inptu\": {}}");
    assert_non_null(strstr(r.body, "inptu"));
    expect_error(&r, 400, "invalid_request");
    static const char *const npy_ct[] = {"Content-Type: application/x-npy", NULL};
    r = http("POST", url_of(main_srv, "/v1/models/separable_classic/infer"), npy_ct, "\x93NUMPY garbage", 14, NULL);
    expect_error(&r, 400, "invalid_npy");
    static const char *const text_ct[] = {"Content-Type: text/plain", NULL};
    r = http("POST", url_of(main_srv, "/v1/models/separable_classic/infer"), text_ct, "hi", 2, NULL);
    expect_error(&r, 415, "unsupported_media_type");
    r = post_json(main_srv, "/v1/models/no_such_model/infer", "{}");
    expect_error(&r, 404, "not_found");
    r = get(main_srv, "/v3/nothing"); /* not /v2: the v2 protocol has its own error object */
    expect_error(&r, 404, "not_found");
    r = http("DELETE", url_of(main_srv, "/v1/conv2d"), NULL, NULL, 0, NULL);
    assert_true(has_header(&r, "Allow: POST"));
    expect_error(&r, 405, "method_not_allowed");
    r = http("POST", url_of(main_srv, "/v1/models"), json_ct, "{}", 2, NULL);
    assert_true(has_header(&r, "Allow: GET"));
    expect_error(&r, 405, "method_not_allowed");
    /* wrong channel count: valid syntax, invalid for the model */
    r = post_json(main_srv, "/v1/models/separable_classic/infer",
                  "{\"input\": {\"shape\": [1, 4, 8, 8], \"init\": \"random\"}}");
    expect_error(&r, 422, "invalid_spec");
    /* torch rule broken in an inline layer: the core's message */
    r = post_json(main_srv, "/v1/conv2d",
                  "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, "
                  "\"groups\": 2}, \"weight\": {\"init\": \"random\"}, \"input\": {\"shape\": [1, 3, 8, 8], \"init\": "
                  "\"random\"}}");
    assert_non_null(strstr(r.body, "groups"));
    expect_error(&r, 422, "invalid_spec");
    /* ~5e15 FLOPs: refused from the plan, before any tensor is allocated */
    r = post_json(main_srv, "/v1/conv2d",
                  "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 512, \"out_channels\": 512, \"kernel_size\": 3, "
                  "\"padding\": 1}, \"weight\": {\"init\": \"random\"}, \"bias\": {\"init\": \"random\"}, \"input\": "
                  "{\"shape\": [1, 512, 1024, 1024], \"init\": \"random\"}}");
    assert_non_null(strstr(r.body, "FLOPs"));
    expect_error(&r, 422, "limit_exceeded");
    /* a tensor over the size limit: 422 */
    r = post_json(main_srv, "/v1/models/separable_classic/infer",
                  "{\"input\": {\"shape\": [1, 3, 100000, 100000], \"init\": \"random\"}}");
    expect_error(&r, 422, "limit_exceeded");
    /* 413 from Content-Length (small_srv takes 1 MiB) and from a chunked body */
    size_t big = (size_t)2 << 20;
    char *blob = malloc(big);
    memset(blob, ' ', big);
    r = http("POST", url_of(small_srv, "/v1/infer"), json_ct, blob, big, NULL);
    expect_error(&r, 413, "body_too_large");
    static const char *const chunked[] = {"Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
    r = http("POST", url_of(small_srv, "/v1/infer"), chunked, blob, big, NULL);
    expect_error(&r, 413, "body_too_large");
    free(blob);
    /* the server is still well */
    r = get(main_srv, "/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_true(metric(main_srv, "convd_requests_total{route=\"/v1/conv2d\",status=\"422\"}") >= 2);
}

static void read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(*len + 1);
    assert_int_equal(fread(*data, 1, *len, f), *len);
    fclose(f);
}

static void test_put_delete_with_key(void **state)
{
    (void)state;
    char path[512], *mj, *st;
    size_t mj_len, st_len;
    example_path(path, sizeof path, "separable_classic", "model.json");
    read_file(path, &mj, &mj_len);
    example_path(path, sizeof path, "separable_classic", "weights.safetensors");
    read_file(path, &st, &st_len);
    part_spec parts[] = {{"model.json", mj, mj_len}, {"weights.safetensors", st, st_len}, {NULL, NULL, 0}};
    http_reply r = http("PUT", url_of(small_srv, "/v1/models/sep2"), NULL, NULL, 0, parts);
    expect_error(&r, 401, "unauthorized");
    static const char *const wrong[] = {"Authorization: Bearer s3cret-kez", NULL};
    r = http("PUT", url_of(small_srv, "/v1/models/sep2"), wrong, NULL, 0, parts);
    expect_error(&r, 401, "unauthorized");
    static const char *const auth[] = {"Authorization: Bearer s3cret-key", NULL};
    /* broken weights are refused and replace nothing */
    part_spec broken[] = {{"model.json", mj, mj_len}, {"weights.safetensors", st, st_len / 2}, {NULL, NULL, 0}};
    r = http("PUT", url_of(small_srv, "/v1/models/sep2"), auth, NULL, 0, broken);
    assert_true(r.status == 400 || r.status == 422);
    reply_free(&r);
    r = http("PUT", url_of(small_srv, "/v1/models/sep2"), auth, NULL, 0, parts);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    r = http("PUT", url_of(small_srv, "/v1/models/sep2"), auth, NULL, 0, parts);
    assert_int_equal(r.status, 200); /* replaced */
    reply_free(&r);
    r = http("PUT", url_of(small_srv, "/v1/models/.."), auth, NULL, 0, parts);
    assert_true(r.status == 400 || r.status == 404);
    reply_free(&r);
    r = post_json(small_srv, "/v1/models/sep2/infer", "{\"input\": {\"init\": \"random\", \"seed\": 1}}");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = http("DELETE", url_of(small_srv, "/v1/models/sep2"), NULL, NULL, 0, NULL);
    expect_error(&r, 401, "unauthorized");
    r = http("DELETE", url_of(small_srv, "/v1/models/sep2"), auth, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = post_json(small_srv, "/v1/models/sep2/infer", "{\"input\": {\"init\": \"random\", \"seed\": 1}}");
    expect_error(&r, 404, "not_found");
    free(mj);
    free(st);
}

/* ------------------------------------------------------------ concurrency */

typedef struct client_arg {
    const server_proc *srv;
    uint64_t seed;
    const char *path;
    const char *body;
    const conv_tensor *want;
    long status;
    bool ok;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    char body[256];
    const char *send = a->body;
    if (!send) {
        snprintf(body, sizeof body, "{\"input\": {\"init\": \"random\", \"seed\": %llu}}", (unsigned long long)a->seed);
        send = body;
    }
    http_reply r;
    a->status = http_try("POST", url_of(a->srv, a->path), json_ct, send, strlen(send), NULL, &r) == CURLE_OK ? r.status : 0;
    if (a->want && r.status == 200) {
        json_error_t e;
        json_t *doc = json_loadb(r.body, r.len, 0, &e);
        conv_tensor got;
        a->ok = doc && !json_tensor_parse(json_object_get(doc, "output"), "output", NULL, 0, NULL, &got, NULL, NULL) &&
                got.rank == 4 && !memcmp(got.dims, a->want->dims, sizeof got.dims) &&
                !memcmp(got.data, a->want->data, conv_tensor_numel(a->want) * sizeof(float));
        if (doc && got.data) conv_tensor_free(&got);
        json_decref(doc);
    }
    reply_free(&r);
    return NULL;
}

static void test_32_concurrent_clients(void **state)
{
    (void)state;
    enum { N = 32 };
    conv_tensor want[N];
    client_arg args[N];
    pthread_t th[N];
    const int64_t shape[4] = {1, 3, 128, 128};
    for (int i = 0; i < N; i++) {
        conv_tensor input;
        random_tensor(&input, 4, shape, 1000 + i);
        core_run_dir(i % 2 ? "separable_classic" : "standard_classic", &input, &want[i]);
        conv_tensor_free(&input);
        args[i] = (client_arg){main_srv, 1000 + i,
                               i % 2 ? "/v1/models/separable_classic/infer?encoding=b64"
                                     : "/v1/models/standard_classic/infer?encoding=b64",
                               NULL, &want[i], 0, false};
    }
    for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&th[i], NULL, client_main, &args[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].status, 200);
        assert_true(args[i].ok);
        conv_tensor_free(&want[i]);
    }
}

static void test_queue_full_then_recovers(void **state)
{
    (void)state;
    client_arg a = {small_srv, 0, "/v1/infer", slow_body, NULL, 0, false};
    client_arg b = a;
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, client_main, &a), 0);
    wait_metric_at_least(small_srv, "convd_inflight_jobs", 1, 10);
    assert_int_equal(pthread_create(&tb, NULL, client_main, &b), 0);
    wait_metric_at_least(small_srv, "convd_queue_depth", 1, 10);
    http_reply r = get(small_srv, "/readyz");
    assert_int_equal(r.status, 503); /* queue at its limit */
    reply_free(&r);
    r = post_json(small_srv, "/v1/infer", slow_body);
    assert_true(has_header(&r, "Retry-After: 1"));
    expect_error(&r, 503, "queue_full");
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    r = post_json(small_srv, "/v1/models/nothing/infer", "{}");
    reply_free(&r);
    r = get(small_srv, "/readyz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = post_json(small_srv, "/v1/analyze", "{\"layer\": {\"type\": \"ReLU\"}, \"input_shape\": [1, 1, 2, 2]}");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    r = post_json(small_srv, "/v1/conv2d",
                  "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 1}, "
                  "\"weight\": {\"data\": [2]}, \"bias\": {\"data\": [0.5]}, \"input\": {\"shape\": [1, 1, 1, 2], "
                  "\"data\": [1, -1]}}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"data\":[2.5,-1.5]"));
    reply_free(&r);
}

static void test_deadline_504(void **state)
{
    (void)state;
    /* under valgrind the slow job itself may wait 200 ms before it starts */
    char deadline_ms[32];
    snprintf(deadline_ms, sizeof deadline_ms, "%.0f", 200 * timeout_scale());
    server_proc *s = server_start("--workers", "1", "--request-timeout-ms", deadline_ms, NULL);
    /* the running job must outlast the deadline on any machine: 16 layers of
     * 0.3 GFLOP on the reference kernel take well over a second (under
     * valgrind, 2 layers well over 4 s) */
    char *slower = slow_request_with(slow_layers(16), "direct");
    client_arg a = {s, 0, "/v1/infer", slower, NULL, 0, false};
    pthread_t ta;
    assert_int_equal(pthread_create(&ta, NULL, client_main, &a), 0);
    wait_metric_at_least(s, "convd_inflight_jobs", 1, 10);
    http_reply r = post_json(s, "/v1/analyze", "{\"layer\": {\"type\": \"ReLU\"}, \"input_shape\": [1, 1, 2, 2]}");
    assert_int_equal(r.status, 200); /* not a job: answered at once */
    reply_free(&r);
    r = post_json(s, "/v1/conv2d",
                  "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 1}, "
                  "\"weight\": {\"data\": [2]}, \"bias\": {\"data\": [0]}, \"input\": {\"shape\": [1, 1, 1, 1], \"data\": [1]}}");
    expect_error(&r, 504, "timeout");
    pthread_join(ta, NULL);
    /* the slow one itself started before its deadline and completes */
    assert_int_equal(a.status, 200);
    free(slower);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static int raw_connect(const server_proc *s)
{
    int fd = raw_connect_from(s, NULL);
    assert_true(fd >= 0);
    return fd;
}

static void test_client_disconnects(void **state)
{
    (void)state;
    /* mid-upload: headers promise 100000 bytes, 1000 arrive, then the socket closes */
    int fd = raw_connect(small_srv);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /v1/models/separable_classic/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: 100000\r\n\r\n");
    assert_int_equal(write(fd, head, (size_t)n), n);
    char junk[1000];
    memset(junk, ' ', sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    sleep_ms(50);
    close(fd);
    wait_metric_at_least(small_srv, "convd_requests_total{route=\"/v1/models/{name}/infer\",status=\"0\"}", 1, 5);

    /* mid-queue: one slow job runs, ours waits behind it, then we hang up */
    double cancelled = metric(small_srv, "convd_jobs_cancelled_total");
    client_arg a = {small_srv, 0, "/v1/infer", slow_body, NULL, 0, false};
    pthread_t ta;
    assert_int_equal(pthread_create(&ta, NULL, client_main, &a), 0);
    wait_metric_at_least(small_srv, "convd_inflight_jobs", 1, 10);
    fd = raw_connect(small_srv);
    const char *body = "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 1}, "
                       "\"weight\": {\"data\": [2]}, \"bias\": {\"data\": [0]}, \"input\": {\"shape\": [1, 1, 1, 1], \"data\": [1]}}";
    char req[1024];
    n = snprintf(req, sizeof req,
                 "POST /v1/conv2d HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    wait_metric_at_least(small_srv, "convd_queue_depth", 1, 5);
    close(fd);
    /* dropped from the queue while the slow job is still computing */
    wait_metric_at_least(small_srv, "convd_jobs_cancelled_total", cancelled + 1, 5);
    assert_int_equal(metric(small_srv, "convd_queue_depth"), 0);
    assert_int_equal(metric(small_srv, "convd_inflight_jobs"), 1);
    pthread_join(ta, NULL);
    assert_int_equal(a.status, 200);
    assert_true(log_wait_for(small_srv, "\"path\":\"/v1/conv2d\",\"status\":200", 2));
}

static void test_sigterm_drains_in_flight(void **state)
{
    (void)state;
    /* a generous drain bound: on a loaded machine four of these jobs can
     * take longer than the 10 s default, and this test is about the drain
     * losing nothing, not about its timeout */
    char drain_ms[32];
    snprintf(drain_ms, sizeof drain_ms, "%.0f", 120000 * timeout_scale());
    server_proc *s = server_start("--workers", "1", "--drain-timeout-ms", drain_ms, "--models", examples_dir(), NULL);
    wait_ready(s, 60);
    enum { N = 4 };
    client_arg args[N];
    pthread_t th[N];
    const char *mid = "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 32, \"out_channels\": 32, \"kernel_size\": 3}, "
                      "\"weight\": {\"init\": \"random\"}, \"bias\": {\"init\": \"random\"}, "
                      "\"input\": {\"shape\": [1, 32, 160, 160], \"init\": \"random\"}}";
    for (int i = 0; i < N; i++) {
        args[i] = (client_arg){s, 0, "/v1/conv2d", mid, NULL, 0, false};
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &args[i]), 0);
    }
    wait_metric_at_least(s, "convd_queue_depth", N - 1, 10);
    kill(s->pid, SIGTERM);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].status, 200);
    }
    assert_int_equal(server_stop(s, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_metrics_openapi),
        cmocka_unit_test(test_models_list_and_get),
        cmocka_unit_test(test_infer_examples_bit_exact),
        cmocka_unit_test(test_infer_matches_cli),
        cmocka_unit_test(test_infer_random_inputs),
        cmocka_unit_test(test_conv2d_inline),
        cmocka_unit_test(test_infer_inline_model),
        cmocka_unit_test(test_analyze),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_put_delete_with_key),
        cmocka_unit_test(test_32_concurrent_clients),
        cmocka_unit_test(test_queue_full_then_recovers),
        cmocka_unit_test(test_deadline_504),
        cmocka_unit_test(test_client_disconnects),
        cmocka_unit_test(test_sigterm_drains_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
