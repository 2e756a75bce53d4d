/* v2.c — Open Inference Protocol endpoints (see v2.h for the design). */
#include "server/v2.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <zlib.h>

#include "proto/model_json.h"
#include "proto/stats_json.h"
#include "proto/v2_json.h"
#include "server/handlers.h"

#define V2_MODEL_VERSION "1"
#define INPUT_NAME "input"
#define OUTPUT_NAME "output"
#define HEADER_LENGTH "Inference-Header-Content-Length"

bool v2_owns_path(const char *path)
{
    return !strncmp(path, "/v2", 3) && (path[3] == 0 || path[3] == '/');
}

/* ------------------------------------------------------------ replies */

__attribute__((format(printf, 3, 4))) static int v2_error(reply *r, int status, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return reply_json(r, status, json_pack("{s:s}", "error", message));
}

/* health and readiness: the status code is the answer */
static void empty_reply(reply *r, int status)
{
    char *b = strdup("");
    reply_set(r, status, NULL, b, 0);
    if (!b) r->status = 503;
}

static const char *header(request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static uint64_t ns_between(double t0, double t1)
{
    return t1 > t0 ? (uint64_t)((t1 - t0) * 1e9) : 0;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ models */

/* The model of the route, with a reference; fills a 404 otherwise. Versions
 * other than "1" do not exist: convd models have one version. */
static repo_model *route_model(request *req)
{
    const route_match *rm = &req->route;
    if (!rm->name_valid) {
        v2_error(&req->reply, 404, "unknown model: model names are 1 to 64 of [A-Za-z0-9._-]");
        return NULL;
    }
    snprintf(req->model, sizeof req->model, "%s", rm->name);
    repo_model *m = repo_get(req->srv->repo, rm->name);
    if (!m) {
        v2_error(&req->reply, 404, "Request for unknown model: '%s' is not found", rm->name);
        return NULL;
    }
    if (rm->has_version && strcmp(rm->version, V2_MODEL_VERSION)) {
        v2_error(&req->reply, 404, "Request for unknown model: '%s' version %s is not found (convd models have version 1)",
                 rm->name, rm->version);
        repo_model_release(m);
        return NULL;
    }
    return m;
}

/* Input and output shapes as the metadata states them: -1 for the batch,
 * and for every dimension the model does not fix. */
static void io_shapes(const repo_model *m, int64_t in[4], int64_t out[4])
{
    const model_json *spec = &m->md.spec;
    for (int i = 0; i < 4; i++) in[i] = out[i] = -1;
    if (spec->has_input_shape) {
        conv_plan *plan;
        memcpy(in, spec->input_shape, 4 * sizeof *in);
        if (!conv_plan_create(m->md.model, spec->input_shape, &plan, NULL)) {
            conv_plan_output_shape(plan, out);
            conv_plan_destroy(plan);
        }
        in[0] = out[0] = -1;
        return;
    }
    for (size_t i = 0; i < spec->n_layers; i++) {
        const conv_layer_spec *l = &spec->layers[i];
        int64_t c_in = -1, c_out = -1;
        if (l->type == CONV_LAYER_CONV2D || l->type == CONV_LAYER_SEPARABLE_CONV2D) {
            c_in = l->in_channels;
            c_out = l->out_channels;
        } else if (l->type == CONV_LAYER_BATCHNORM2D) {
            c_in = c_out = l->num_features;
        }
        if (in[1] < 0 && c_in > 0) in[1] = c_in;
        if (c_out > 0) out[1] = c_out;
    }
    if (out[1] < 0) out[1] = in[1]; /* only shape-keeping layers */
}

static json_t *dims_json(const int64_t *dims, int rank)
{
    json_t *a = json_array();
    for (int i = 0; a && i < rank; i++) json_array_append_new(a, json_integer(dims[i]));
    return a;
}

static void handle_model_metadata(request *req)
{
    repo_model *m = route_model(req);
    if (!m) return;
    int64_t in[4], out[4];
    io_shapes(m, in, out);
    json_t *doc = json_pack("{s:s, s:[s], s:s, s:[{s:s, s:s, s:o}], s:[{s:s, s:s, s:o}]}", "name", m->name,
                            "versions", V2_MODEL_VERSION, "platform", "convd", "inputs", "name", INPUT_NAME,
                            "datatype", "FP32", "shape", dims_json(in, 4), "outputs", "name", OUTPUT_NAME, "datatype",
                            "FP32", "shape", dims_json(out, 4));
    repo_model_release(m);
    reply_json(&req->reply, 200, doc);
}

/* Triton's model configuration, plus the model's layers as in model.json. */
static void handle_model_config(request *req)
{
    repo_model *m = route_model(req);
    if (!m) return;
    int64_t in[4], out[4];
    io_shapes(m, in, out);
    json_t *layers = json_array();
    for (size_t i = 0; layers && i < m->md.spec.n_layers; i++)
        json_array_append_new(layers, layer_spec_to_json(&m->md.spec.layers[i]));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:i, s:[{s:s, s:s, s:s, s:o}], s:[{s:s, s:s, s:o}], s:o}", "name",
                            m->name, "platform", "convd", "backend", "convd", "max_batch_size", 0, "input", "name",
                            INPUT_NAME, "data_type", "TYPE_FP32", "format", "FORMAT_NCHW", "dims", dims_json(in, 4),
                            "output", "name", OUTPUT_NAME, "data_type", "TYPE_FP32", "dims", dims_json(out, 4),
                            "layers", layers);
    repo_model_release(m);
    reply_json(&req->reply, 200, doc);
}

static void handle_model_ready(request *req)
{
    repo_model *m = req->route.name_valid ? repo_get(req->srv->repo, req->route.name) : NULL;
    bool version_ok = !req->route.has_version || !strcmp(req->route.version, V2_MODEL_VERSION);
    if (!m || !version_ok) empty_reply(&req->reply, 404);
    else empty_reply(&req->reply, atomic_load(&m->warmed) && !atomic_load(&req->srv->shutting_down) ? 200 : 400);
    repo_model_release(m);
}

static void handle_server_ready(request *req)
{
    server *srv = req->srv;
    bool ready = !atomic_load(&srv->shutting_down) && repo_all_warmed(srv->repo);
    empty_reply(&req->reply, ready ? 200 : 400);
}

/* Only the extensions implemented here. */
static void handle_server_metadata(request *req)
{
    reply_json(&req->reply, 200,
               json_pack("{s:s, s:s, s:[s, s, s, s]}", "name", "convd", "version", CONVD_VERSION, "extensions",
                         "binary_tensor_data", "model_configuration", "model_repository", "statistics"));
}

/* ------------------------------------------------------------ statistics */

static json_t *duration(atomic_uint_fast64_t *count, atomic_uint_fast64_t *ns)
{
    return json_pack("{s:I, s:I}", "count", (json_int_t)atomic_load(count), "ns", (json_int_t)atomic_load(ns));
}

static json_t *model_stats_json(repo_model *m)
{
    repo_model_stats *s = &m->stats;
    atomic_uint_fast64_t zero = 0;
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}, s:[]}", "name", m->name,
                     "version", V2_MODEL_VERSION, "last_inference", (json_int_t)atomic_load(&s->last_inference_ms),
                     "inference_count", (json_int_t)atomic_load(&s->inference_count), "execution_count",
                     (json_int_t)atomic_load(&s->execution_count), "inference_stats", "success",
                     duration(&s->success_count, &s->success_ns), "fail", duration(&s->fail_count, &s->fail_ns),
                     "queue", duration(&s->success_count, &s->queue_ns), "compute_input",
                     duration(&s->success_count, &s->compute_input_ns), "compute_infer",
                     duration(&s->success_count, &s->compute_infer_ns), "compute_output",
                     duration(&s->success_count, &s->compute_output_ns), "cache_hit", duration(&zero, &zero),
                     "cache_miss", duration(&zero, &zero), "batch_stats");
}

static void handle_stats(request *req, bool one)
{
    json_t *list = json_array();
    if (one) {
        repo_model *m = route_model(req);
        if (!m) {
            json_decref(list);
            return;
        }
        json_array_append_new(list, model_stats_json(m));
        repo_model_release(m);
    } else {
        repo_model **models;
        int n = repo_list(req->srv->repo, &models);
        if (n < 0) {
            json_decref(list);
            v2_error(&req->reply, 503, "out of memory");
            return;
        }
        for (int i = 0; list && i < n; i++) json_array_append_new(list, model_stats_json(models[i]));
        repo_release_all(models, n);
    }
    reply_json(&req->reply, 200, list ? json_pack("{s:o}", "model_stats", list) : NULL);
}

/* ------------------------------------------------------------ repository */

/* Constant time in the key's contents. */
static bool authorized(request *req)
{
    const char *key = req->srv->api_key;
    if (!key) return true;
    const char *auth = header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *given = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : "";
    size_t lk = strlen(key), lg = strlen(given);
    unsigned diff = lk != lg;
    for (size_t i = 0; i < lk; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < lg ? given[i] : 0);
    if (diff) {
        v2_error(&req->reply, 401, "this route needs Authorization: Bearer <api key>");
        reply_add_header(&req->reply, "WWW-Authenticate", "Bearer");
    }
    return !diff;
}

/* An optional JSON object body; NULL with a 400 filled when malformed, and
 * an empty object for an empty body. */
static json_t *optional_object(request *req)
{
    if (!req->body_len) return json_object();
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        v2_error(&req->reply, 400, "the body must be a JSON object (%s)", doc ? "got another JSON value" : jerr.text);
        return NULL;
    }
    return doc;
}

static bool has_model_json(const char *dir, const char *name)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/model.json", dir, name);
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

static int append_index_entry(json_t *list, const char *name, const char *state, const char *reason)
{
    return json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "name", name, "version", V2_MODEL_VERSION,
                                                  "state", state, "reason", reason));
}

/* Loaded models (READY, or LOADING while warming up) and the folders of
 * --models that hold a model.json but are not loaded (UNAVAILABLE). */
static void handle_repo_index(request *req)
{
    json_t *body = optional_object(req);
    if (!body) return;
    const json_t *ready_v = json_object_get(body, "ready");
    bool ready_only = json_is_true(ready_v);
    json_decref(body);
    repo_model **models;
    int n = repo_list(req->srv->repo, &models);
    json_t *list = json_array();
    if (n < 0 || !list) {
        if (n >= 0) repo_release_all(models, n);
        json_decref(list);
        v2_error(&req->reply, 503, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        bool warm = atomic_load(&models[i]->warmed);
        if (!ready_only || warm) append_index_entry(list, models[i]->name, warm ? "READY" : "LOADING", "");
    }
    const char *dir = req->srv->cfg->models;
    DIR *d = dir && !ready_only ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || !router_valid_model_name(e->d_name, len) || !has_model_json(dir, e->d_name))
            continue;
        bool loaded = false;
        for (int i = 0; i < n && !loaded; i++) loaded = !strcmp(models[i]->name, e->d_name);
        if (!loaded) append_index_entry(list, e->d_name, "UNAVAILABLE", "unloaded");
    }
    if (d) closedir(d);
    repo_release_all(models, n);
    reply_json(&req->reply, 200, list);
}

static void handle_repo_load(request *req)
{
    if (!authorized(req)) return;
    json_t *body = optional_object(req);
    if (!body) return;
    bool overrides = json_object_get(json_object_get(body, "parameters"), "config") != NULL ||
                     json_object_size(json_object_get(body, "parameters")) > 0;
    json_decref(body);
    const char *dir = req->srv->cfg->models;
    const route_match *rm = &req->route;
    if (!rm->name_valid) {
        v2_error(&req->reply, 400, "failed to load: model names are 1 to 64 of [A-Za-z0-9._-], not . or ..");
        return;
    }
    snprintf(req->model, sizeof req->model, "%s", rm->name);
    if (overrides) {
        v2_error(&req->reply, 400, "failed to load '%s': load parameters (config, files) are not supported; "
                                   "models load from their folder under --models",
                 rm->name);
        return;
    }
    if (!dir) {
        v2_error(&req->reply, 400, "failed to load '%s': the server has no model repository (start it with --models DIR)",
                 rm->name);
        return;
    }
    if (!has_model_json(dir, rm->name)) {
        v2_error(&req->reply, 400, "failed to load '%s': no folder %s/%s with a model.json", rm->name, dir, rm->name);
        return;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, rm->name);
    model_dir md;
    conv_error err;
    if (model_dir_load(path, NULL, &md, &err)) {
        v2_error(&req->reply, 400, "failed to load '%s': %s", rm->name, err.message);
        return;
    }
    repo_model *m = repo_put(req->srv->repo, rm->name, &md, NULL);
    if (!m) {
        model_dir_free(&md);
        v2_error(&req->reply, 503, "out of memory");
        return;
    }
    handlers_warm_up_model(req->srv, m);
    repo_model_release(m);
    log_message(req->srv->cfg->log_format, "info", "loaded model %s from %s (v2 repository load)", rm->name, path);
    empty_reply(&req->reply, 200);
}

static void handle_repo_unload(request *req)
{
    if (!authorized(req)) return;
    json_t *body = optional_object(req);
    if (!body) return;
    json_decref(body);
    const route_match *rm = &req->route;
    if (!rm->name_valid || !repo_delete(req->srv->repo, rm->name)) {
        v2_error(&req->reply, 404, "failed to unload '%s': no such model is loaded", rm->name_valid ? rm->name : "");
        return;
    }
    snprintf(req->model, sizeof req->model, "%s", rm->name);
    log_message(req->srv->cfg->log_format, "info", "unloaded model %s (v2 repository unload)", rm->name);
    empty_reply(&req->reply, 200);
}

/* ------------------------------------------------------------ inference */

typedef struct v2_job {
    job base; /* first: the pool hands back job pointers */
    server *srv;
    request *req;
    repo_model *ref;
    conv_plan *plan;
    v2_request vr;
    const conv_tensor *input;
    bool output_binary;
    double parse_s, compute_s, serialize_s;
    bool ran_ok;
} v2_job;

static void v2_job_free(void *p)
{
    v2_job *j = p;
    if (!j) return;
    conv_plan_destroy(j->plan);
    v2_request_free(&j->vr);
    repo_model_release(j->ref);
    free(j);
}

static void count_failure(repo_model *m, double t_start)
{
    atomic_fetch_add(&m->stats.fail_count, 1);
    atomic_fetch_add(&m->stats.fail_ns, ns_between(t_start, clock_seconds()));
}

/* convd's own statistics, as protocol parameters (scalars only); the full
 * per-layer statistics travel as one JSON string. */
static json_t *reply_parameters(const v2_job *j, const conv_model_stats *stats)
{
    double queue_ms = (j->base.t_started - j->base.t_submitted) * 1e3;
    json_t *p = json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:i}", "convd_flops", (json_int_t)stats->flops,
                          "convd_macs", (json_int_t)stats->macs, "convd_params", (json_int_t)stats->params,
                          "convd_queue_ms", queue_ms, "convd_parse_ms", j->parse_s * 1e3, "convd_compute_ms",
                          j->compute_s * 1e3, "convd_receptive_field_h", (json_int_t)stats->receptive_field[0],
                          "convd_receptive_field_w", (json_int_t)stats->receptive_field[1], "convd_threads",
                          j->base.threads);
    json_t *full = stats_to_json(stats);
    char *text = full ? json_dumps(full, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(full);
    if (p && text) json_object_set_new(p, "convd_stats", json_string(text));
    free(text);
    return p;
}

/* worker thread */
static void v2_run(job *base, worker_ctx *ctx)
{
    v2_job *j = (v2_job *)base;
    conv_error err;
    conv_tensor output = {0};
    conv_model_stats stats = {0};
    void *workspace;
    int64_t out_shape[4];
    const conv_model_stats *plan_stats = conv_plan_stats(j->plan);
    conv_status s = worker_ctx_workspace(ctx, conv_plan_workspace_size(j->plan, ctx->threads), &workspace, &err);
    conv_plan_output_shape(j->plan, out_shape);
    if (!s) s = conv_tensor_alloc(&output, 4, out_shape, &err);
    if (!s && !(stats.layers = calloc(plan_stats->n_layers ? plan_stats->n_layers : 1, sizeof *stats.layers)))
        s = conv_fail(&err, CONV_OUT_OF_MEMORY, "out of memory for statistics");
    if (!s) {
        double t0 = clock_seconds();
        s = conv_model_run(j->ref->md.model, j->plan, j->input->data, output.data, workspace, ctx->pool, &stats, &err);
        j->compute_s = clock_seconds() - t0;
    }
    reply *r = &j->req->reply;
    if (s) {
        v2_error(r, s == CONV_OUT_OF_MEMORY ? 503 : 500, "inference failed: %s", err.message);
    } else {
        double t0 = clock_seconds();
        v2_output o = {.name = OUTPUT_NAME, .rank = 4, .dims = out_shape, .data = output.data, .binary = j->output_binary};
        uint8_t *body;
        size_t len, json_len;
        s = v2_response_build(j->ref->name, V2_MODEL_VERSION, j->vr.id, reply_parameters(j, &stats), &o, 1, &body,
                              &len, &json_len, &err);
        if (s) {
            v2_error(r, 503, "%s", err.message);
        } else {
            bool binary = json_len != len;
            reply_set(r, 200, binary ? "application/octet-stream" : "application/json", (char *)body, len);
            if (binary) {
                char n[32];
                snprintf(n, sizeof n, "%zu", json_len);
                reply_add_header(r, HEADER_LENGTH, n);
            }
            j->ran_ok = true;
        }
        j->serialize_s = clock_seconds() - t0;
    }
    free(stats.layers);
    conv_tensor_free(&output);
}

/* loop thread */
static void v2_done(job *base)
{
    v2_job *j = (v2_job *)base;
    server *srv = j->srv;
    request *req = j->req;
    repo_model_stats *st = &j->ref->stats;
    double queued_until = base->outcome == JOB_RAN ? base->t_started : clock_seconds();
    req->queue_ms = (queued_until - base->t_submitted) * 1e3;
    switch (base->outcome) {
    case JOB_RAN:
        if (!j->ran_ok) break;
        metrics_observe_job(srv->metrics, j->ref->name, base->t_started - base->t_submitted, j->compute_s,
                            conv_plan_stats(j->plan)->flops);
        atomic_fetch_add(&st->success_count, 1);
        atomic_fetch_add(&st->success_ns, ns_between(req->t_start, clock_seconds()));
        atomic_fetch_add(&st->queue_ns, ns_between(base->t_submitted, base->t_started));
        atomic_fetch_add(&st->compute_input_ns, (uint64_t)(j->parse_s * 1e9));
        atomic_fetch_add(&st->compute_infer_ns, (uint64_t)(j->compute_s * 1e9));
        atomic_fetch_add(&st->compute_output_ns, (uint64_t)(j->serialize_s * 1e9));
        atomic_fetch_add(&st->inference_count, (uint64_t)j->input->dims[0]);
        atomic_fetch_add(&st->execution_count, 1);
        atomic_store(&st->last_inference_ms, wall_ms());
        break;
    case JOB_QUEUE_FULL:
        v2_error(&req->reply, 503, "the job queue is full (%d waiting); retry shortly", workers_queue_limit(srv->workers));
        reply_add_header(&req->reply, "Retry-After", "1");
        break;
    case JOB_EXPIRED:
        v2_error(&req->reply, 504, "the request waited %.0f ms in the queue, past the request timeout of %ld ms",
                 req->queue_ms, srv->cfg->request_timeout_ms);
        break;
    case JOB_CANCELLED:
        metrics_count_cancelled(srv->metrics);
        v2_error(&req->reply, 499, "the client closed the connection while the request was queued");
        break;
    default:
        v2_error(&req->reply, 503, "the server is shutting down");
        reply_add_header(&req->reply, "Retry-After", "1");
        break;
    }
    if (!j->ran_ok) count_failure(j->ref, req->t_start);
    http_resume(req);
}

/* Inflates a gzip or deflate (zlib, or raw as some clients send) body into
 * *out, at most limit bytes. Returns an HTTP status (0 on success) with the
 * reply filled. */
static int inflate_body(request *req, const char *encoding, uint8_t **out, size_t *out_len)
{
    size_t limit = req->srv->max_body_bytes;
    bool gzip = !strcasecmp(encoding, "gzip") || !strcasecmp(encoding, "x-gzip");
    for (int attempt = 0; attempt < 2; attempt++) {
        z_stream zs = {0};
        int window = gzip ? 15 + 16 : attempt == 0 ? 15 : -15;
        if (inflateInit2(&zs, window) != Z_OK) return v2_error(&req->reply, 503, "out of memory");
        size_t cap = req->body_len * 4 + 1024, len = 0;
        if (cap > limit) cap = limit;
        uint8_t *buf = malloc(cap + 1);
        int rc = buf ? Z_OK : Z_MEM_ERROR;
        zs.next_in = req->body;
        zs.avail_in = (uInt)req->body_len;
        while (rc == Z_OK) {
            if (len == cap) {
                if (cap == limit) {
                    inflateEnd(&zs);
                    free(buf);
                    return v2_error(&req->reply, 413, "the %s body inflates to more than the limit of %zu bytes",
                                    encoding, limit);
                }
                cap = cap > limit / 2 ? limit : cap * 2;
                uint8_t *p = realloc(buf, cap + 1);
                if (!p) {
                    rc = Z_MEM_ERROR;
                    break;
                }
                buf = p;
            }
            zs.next_out = buf + len;
            zs.avail_out = (uInt)(cap - len);
            rc = inflate(&zs, Z_NO_FLUSH);
            len = cap - zs.avail_out;
            if (rc == Z_BUF_ERROR && zs.avail_out) break; /* truncated input */
            if (rc == Z_BUF_ERROR) rc = Z_OK;
        }
        inflateEnd(&zs);
        if (rc == Z_STREAM_END && zs.avail_in == 0) {
            *out = buf;
            *out_len = len;
            return 0;
        }
        free(buf);
        if (rc == Z_MEM_ERROR) return v2_error(&req->reply, 503, "out of memory");
        if (gzip) break;
    }
    return v2_error(&req->reply, 400, "Content-Encoding %s: the body is not valid %s data", encoding, encoding);
}

/* FLOP, output and workspace limits, as v1 applies them */
static bool within_limits(request *req, const conv_plan *plan)
{
    server *srv = req->srv;
    const conv_model_stats *st = conv_plan_stats(plan);
    int64_t out_shape[4];
    conv_plan_output_shape(plan, out_shape);
    size_t out_elems = 0, ws = conv_plan_workspace_size(plan, (int)srv->cfg->threads_per_job);
    if ((double)st->flops > srv->cfg->max_flops)
        v2_error(&req->reply, 400, "the request needs %lld FLOPs, over the limit of %g per request",
                 (long long)st->flops, srv->cfg->max_flops);
    else if (!conv_dims_product(out_shape, 4, &out_elems) || out_elems > srv->max_elements)
        v2_error(&req->reply, 400, "the request needs an output of %zu elements, over the limit of %zu", out_elems,
                 srv->max_elements);
    else if (ws > srv->max_workspace_bytes)
        v2_error(&req->reply, 400, "the request needs a workspace of %zu bytes, over the limit of %zu", ws,
                 srv->max_workspace_bytes);
    else return true;
    return false;
}

/* The single input "input", rank 4 and of the declared shape when there is
 * one; the requested outputs; a plan within the limits. */
static bool check_request(request *req, v2_job *j)
{
    v2_request *vr = &j->vr;
    const model_json *spec = &j->ref->md.spec;
    if (vr->n_inputs != 1 || strcmp(vr->inputs[0].name, INPUT_NAME)) {
        const char *bad = vr->n_inputs ? vr->inputs[vr->n_inputs > 1 && !strcmp(vr->inputs[0].name, INPUT_NAME)].name : "";
        v2_error(&req->reply, 400, "unexpected inference input '%s' for model '%s': it has one input, named '%s'", bad,
                 j->ref->name, INPUT_NAME);
        return false;
    }
    const conv_tensor *t = &vr->inputs[0].tensor;
    char got[96], want[96];
    conv_shape_format(t->dims, t->rank, got, sizeof got);
    int64_t in[4], out[4];
    io_shapes(j->ref, in, out);
    bool fits = t->rank == 4 && t->dims[0] > 0;
    for (int d = 1; fits && d < 4; d++) fits = in[d] < 0 || t->dims[d] == in[d];
    if (!fits) {
        conv_shape_format(in, 4, want, sizeof want);
        v2_error(&req->reply, 400, "unexpected shape for input '%s' for model '%s'. Expected %s, got %s%s", INPUT_NAME,
                 j->ref->name, want, got, spec->has_input_shape ? "" : " (-1: any size)");
        return false;
    }
    j->input = t;
    j->output_binary = vr->binary_data_output;
    if (vr->outputs_named) {
        for (size_t i = 0; i < vr->n_outputs; i++)
            if (strcmp(vr->outputs[i].name, OUTPUT_NAME)) {
                v2_error(&req->reply, 400, "unexpected inference output '%s' for model '%s': it has one output, named '%s'",
                         vr->outputs[i].name, j->ref->name, OUTPUT_NAME);
                return false;
            }
        if (vr->n_outputs) j->output_binary = vr->outputs[vr->n_outputs - 1].binary;
    }
    conv_error err;
    conv_status s = conv_plan_create(j->ref->md.model, t->dims, &j->plan, &err);
    if (s) {
        v2_error(&req->reply, s == CONV_OUT_OF_MEMORY ? 503 : 400, "input '%s' of shape %s: %s", INPUT_NAME, got,
                 err.message);
        return false;
    }
    return within_limits(req, j->plan);
}

static job *handle_infer(request *req)
{
    double t0 = clock_seconds();
    server *srv = req->srv;
    repo_model *m = route_model(req);
    if (!m) return NULL;
    v2_job *j = calloc(1, sizeof *j);
    if (!j) {
        repo_model_release(m);
        v2_error(&req->reply, 503, "out of memory");
        return NULL;
    }
    j->srv = srv;
    j->req = req;
    j->ref = m;
    j->base.run = v2_run;
    j->base.done = v2_done;
    j->base.watch_fd = -1;
    j->base.deadline = req->t_start + (double)srv->cfg->request_timeout_ms * 1e-3;

    const uint8_t *body = req->body ? req->body : (const uint8_t *)"";
    size_t body_len = req->body_len;
    uint8_t *inflated = NULL;
    const char *encoding = header(req, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (encoding && strcasecmp(encoding, "identity")) {
        if (strcasecmp(encoding, "gzip") && strcasecmp(encoding, "x-gzip") && strcasecmp(encoding, "deflate")) {
            v2_error(&req->reply, 415, "Content-Encoding %s is not supported (use gzip or deflate)", encoding);
            goto fail;
        }
        if (inflate_body(req, encoding, &inflated, &body_len)) goto fail;
        body = inflated;
    }
    conv_error err;
    size_t json_len;
    conv_status s = v2_header_length(header(req, HEADER_LENGTH), body_len, &json_len, &err);
    if (!s) s = v2_request_parse(body, body_len, json_len, srv->max_elements, &j->vr, &err);
    free(inflated);
    if (s) {
        v2_error(&req->reply, s == CONV_OUT_OF_MEMORY ? 503 : 400, "%s", err.message);
        goto fail;
    }
    if (!check_request(req, j)) goto fail;
    j->parse_s = clock_seconds() - t0;
    req->job = j;
    req->job_free = v2_job_free;
    return &j->base;
fail:
    count_failure(m, req->t_start);
    v2_job_free(j);
    return NULL;
}

/* ------------------------------------------------------------ dispatch */

job *v2_dispatch(request *req)
{
    const route_match *rm = &req->route;
    if (rm->status == 404) {
        v2_error(&req->reply, 404, "no route %s %s", req->method, req->path);
        return NULL;
    }
    if (rm->status == 405) {
        v2_error(&req->reply, 405, "%s is not allowed on %s (allowed: %s)", req->method, req->path, rm->allow);
        reply_add_header(&req->reply, "Allow", rm->allow);
        return NULL;
    }
    switch (rm->id) {
    case ROUTE_V2_SERVER_META: handle_server_metadata(req); return NULL;
    case ROUTE_V2_LIVE: empty_reply(&req->reply, 200); return NULL;
    case ROUTE_V2_READY: handle_server_ready(req); return NULL;
    case ROUTE_V2_STATS_ALL: handle_stats(req, false); return NULL;
    case ROUTE_V2_MODEL_META: handle_model_metadata(req); return NULL;
    case ROUTE_V2_MODEL_READY: handle_model_ready(req); return NULL;
    case ROUTE_V2_MODEL_CONFIG: handle_model_config(req); return NULL;
    case ROUTE_V2_MODEL_STATS: handle_stats(req, true); return NULL;
    case ROUTE_V2_REPO_INDEX: handle_repo_index(req); return NULL;
    case ROUTE_V2_REPO_LOAD: handle_repo_load(req); return NULL;
    case ROUTE_V2_REPO_UNLOAD: handle_repo_unload(req); return NULL;
    case ROUTE_V2_MODEL_INFER: return handle_infer(req);
    default: v2_error(&req->reply, 404, "no route %s %s", req->method, req->path); return NULL;
    }
}
