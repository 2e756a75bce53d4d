/* handlers.c — endpoint logic of `convd serve` (see handlers.h for the design). */
#include "server/handlers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/json_fast.h"
#include "proto/json_tensor.h"
#include "proto/model_dir.h"
#include "proto/model_json.h"
#include "proto/multipart.h"
#include "proto/npy.h"
#include "proto/stats_json.h"
#include "server/cli.h"
#include "server/v2.h"

#define MAX_MULTIPART_PARTS 256

/* ------------------------------------------------------------ statuses */

/* The core's statuses as HTTP: a spec that breaks a rule or a limit is 422. */
static int spec_http_status(conv_status s)
{
    if (s == CONV_OUT_OF_MEMORY) return 503;
    if (s == CONV_INVALID_STATE) return 500;
    return 422;
}

static const char *spec_code(conv_status s)
{
    switch (s) {
    case CONV_LIMIT_EXCEEDED: return "limit_exceeded";
    case CONV_OUT_OF_MEMORY: return "out_of_memory";
    case CONV_INVALID_STATE: return "internal";
    default: return "invalid_spec";
    }
}

/* A tensor value or .npy file: malformed syntax is 400, a wrong shape or a
 * size over the limits 422. */
static int tensor_http_status(conv_status s)
{
    return s == CONV_INVALID_PARAMETER ? 400 : spec_http_status(s);
}

static const char *tensor_code(conv_status s, bool npy)
{
    if (s == CONV_INVALID_PARAMETER) return npy ? "invalid_npy" : "invalid_tensor";
    return spec_code(s);
}

static double ms_since(double t0)
{
    return (clock_seconds() - t0) * 1e3;
}

/* ------------------------------------------------------------ bodies */

typedef enum body_kind { BODY_JSON, BODY_NPY, BODY_MULTIPART, BODY_UNSUPPORTED } body_kind;

static const char *header(request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static bool media_type_is(const char *value, const char *type)
{
    size_t n = strlen(type);
    return !strncasecmp(value, type, n) && (value[n] == 0 || value[n] == ';' || value[n] == ' ');
}

static body_kind classify_body(request *req, const char **content_type)
{
    const char *ct = header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    *content_type = ct;
    if (!ct || media_type_is(ct, "application/json")) return BODY_JSON;
    if (media_type_is(ct, "application/x-npy")) return BODY_NPY;
    if (media_type_is(ct, "multipart/form-data")) return BODY_MULTIPART;
    return BODY_UNSUPPORTED;
}

static int unsupported_media(request *req, const char *ct, const char *accepted)
{
    return reply_error(&req->reply, 415, "unsupported_media_type", "Content-Type \"%s\" is not accepted here; use %s",
                       ct ? ct : "", accepted);
}

/* Parses text as a JSON object; on failure fills the 400 reply naming where. */
static json_t *parse_json_object(request *req, const char *what, const uint8_t *text, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_fast_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        reply_error(&req->reply, 400, "invalid_json", "%s: invalid JSON at line %d, column %d (byte %d): %s", what,
                    jerr.line, jerr.column, jerr.position, jerr.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        reply_error(&req->reply, 400, "invalid_json", "%s: must be a JSON object", what);
        return NULL;
    }
    return doc;
}

/* 400 naming the first key of obj that is not in allowed (NULL-terminated) */
static bool only_keys(request *req, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, key);
        if (!ok) {
            reply_error(&req->reply, 400, "invalid_request", "unknown field \"%s\"", key);
            return false;
        }
    }
    return true;
}

/* The shape of a tensor value when it states 4 positive integers, so a plan
 * (and its limits) can be checked before the tensor is allocated. */
static bool peek_shape(const json_t *value, int64_t shape[4])
{
    const json_t *s = json_is_object(value) ? json_object_get(value, "shape") : NULL;
    if (!json_is_array(s) || json_array_size(s) != 4) return false;
    for (size_t i = 0; i < 4; i++) {
        const json_t *d = json_array_get(s, i);
        if (!json_is_integer(d) || json_integer_value(d) <= 0) return false;
        shape[i] = json_integer_value(d);
    }
    return true;
}

/* A request's parsed body: the JSON document and, for multipart, the .npy
 * parts that carry its tensors. */
typedef struct parsed_body {
    json_t *doc;
    multipart_body mp;
    bool is_multipart;
} parsed_body;

static void parsed_body_free(parsed_body *b)
{
    json_decref(b->doc);
    multipart_free(&b->mp);
}

/* JSON or multipart (a "request" JSON part plus .npy parts) into b. */
static bool parse_structured_body(request *req, parsed_body *b)
{
    memset(b, 0, sizeof *b);
    const char *ct;
    body_kind kind = classify_body(req, &ct);
    if (kind == BODY_JSON) {
        b->doc = parse_json_object(req, "body", req->body ? req->body : (const uint8_t *)"", req->body_len);
        return b->doc != NULL;
    }
    if (kind != BODY_MULTIPART) {
        unsupported_media(req, ct, "application/json or multipart/form-data");
        return false;
    }
    conv_error err;
    conv_status s = multipart_parse(ct, req->body ? req->body : (const uint8_t *)"", req->body_len,
                                    MAX_MULTIPART_PARTS, &b->mp, &err);
    if (s) {
        reply_error(&req->reply, s == CONV_OUT_OF_MEMORY ? 503 : 400, "invalid_multipart", "%s", err.message);
        return false;
    }
    b->is_multipart = true;
    const multipart_part *p = multipart_find(&b->mp, "request");
    if (!p) {
        reply_error(&req->reply, 400, "invalid_multipart", "multipart: no part named \"request\" (the JSON request)");
        multipart_free(&b->mp);
        return false;
    }
    b->doc = parse_json_object(req, "multipart part \"request\"", p->data, p->len);
    if (!b->doc) multipart_free(&b->mp);
    return b->doc != NULL;
}

/* The tensor called key: a multipart .npy part of that name, else the JSON
 * value (may be NULL). Fills the reply and returns false on failure. */
static bool load_tensor(request *req, const parsed_body *b, const json_t *value, const char *key, const char *path,
                        const int64_t *expected, int expected_rank, conv_tensor *out, json_tensor_encoding *enc)
{
    server *srv = req->srv;
    conv_error err;
    const multipart_part *part = b && b->is_multipart ? multipart_find(&b->mp, key) : NULL;
    if (part) {
        conv_status s = npy_parse_limited(part->data, part->len, srv->max_elements, out, &err);
        if (s) {
            reply_error(&req->reply, tensor_http_status(s), tensor_code(s, true), "multipart part \"%s\": %s", key,
                        err.message);
            return false;
        }
        if (expected && (out->rank != expected_rank || memcmp(out->dims, expected, sizeof *expected * expected_rank))) {
            char want[96], got[96];
            conv_shape_format(expected, expected_rank, want, sizeof want);
            conv_shape_format(out->dims, out->rank, got, sizeof got);
            conv_tensor_free(out);
            reply_error(&req->reply, 422, "invalid_spec", "multipart part \"%s\": expected shape %s, got %s", key, want,
                        got);
            return false;
        }
        if (enc) *enc = JSON_TENSOR_B64;
        return true;
    }
    if (!value) {
        reply_error(&req->reply, 400, "invalid_request", "%s: missing%s", path,
                    b && b->is_multipart ? " (neither a JSON field nor a multipart part)" : "");
        return false;
    }
    json_tensor_limits limits = {.max_elements = srv->max_elements};
    conv_status s = json_tensor_parse(value, path, expected, expected_rank, &limits, out, enc, &err);
    if (s) {
        reply_error(&req->reply, tensor_http_status(s), tensor_code(s, false), "%s", err.message);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ inference jobs */

typedef struct infer_job {
    job base; /* first: the pool hands back job pointers */
    server *srv;
    request *req; /* NULL for a warm-up run */
    repo_model *ref;
    conv_model *owned;
    const conv_model *model;
    conv_plan *plan;
    conv_tensor input;
    bool reply_npy;
    json_tensor_encoding encoding;
    double parse_ms;
    bool ran_ok;
    double compute_ms;
} infer_job;

static void infer_job_free(void *p)
{
    infer_job *j = p;
    if (!j) return;
    conv_plan_destroy(j->plan);
    conv_model_destroy(j->owned);
    repo_model_release(j->ref);
    conv_tensor_free(&j->input);
    free(j);
}

/* The statistics object of a reply: timings first, then the plan's counts
 * and per-layer statistics. */
static json_t *reply_stats(const infer_job *j, const conv_model_stats *stats, double queue_ms, double serialize_ms,
                           double total_ms)
{
    json_t *core = stats_to_json(stats);
    if (!core) return NULL;
    double gflops = j->compute_ms > 0 ? (double)stats->flops / (j->compute_ms * 1e6) : 0;
    json_t *s = json_pack("{s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f, s:i, s:i}", "queue_ms", queue_ms,
                          "compute_ms", j->compute_ms, "total_ms", total_ms, "parse_ms", j->parse_ms, "serialize_ms",
                          serialize_ms, "flops", (json_int_t)stats->flops, "macs", (json_int_t)stats->macs, "params",
                          (json_int_t)stats->params, "gflops_per_s", gflops * j->base.batch_size, "threads",
                          j->base.threads, "batch_size", j->base.batch_size);
    if (!s || json_object_update_missing(s, core)) {
        json_decref(s);
        s = NULL;
    }
    json_decref(core);
    return s;
}

/* Statistics text per worker. Writing a reply's statistics through
 * jansson (a DOM of every layer, then printf for each number) costs more
 * than a small model's whole run, yet only the timings change between
 * requests of one repository model and input shape. So each worker keeps,
 * per (model, shape), the plan's part as text with every layer's
 * compute_ms as a placeholder, and a reply writes its request-level fields
 * and patches the layer times in. The same keys in the same order as
 * reply_stats; times with 6 decimals. Only the worker owning the cache
 * touches it, so it needs no lock; an entry holds a model reference, so the
 * address cannot be reused while cached (at most STATS_CACHE_SLOTS models
 * per worker outlive their deletion until evicted). */
#define STATS_CACHE_SLOTS 8
#define STATS_PLACEHOLDER 123456789.0

typedef struct stats_template {
    repo_model *model; /* NULL: empty slot */
    int64_t shape[4];
    char *text;        /* the plan's keys after the request-level ones, up to the closing brace */
    size_t len;
    size_t *slots;     /* offset in text of each layer's placeholder */
    size_t n_slots, slot_len;
    uint64_t last_used;
} stats_template;

typedef struct stats_cache {
    stats_template entries[STATS_CACHE_SLOTS];
    uint64_t clock;
} stats_cache;

static void stats_template_clear(stats_template *t)
{
    repo_model_release(t->model);
    free(t->text);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static void stats_cache_free(void *p)
{
    stats_cache *c = p;
    if (!c) return;
    for (int i = 0; i < STATS_CACHE_SLOTS; i++) stats_template_clear(&c->entries[i]);
    free(c);
}

static bool stats_template_build(stats_template *t, const conv_model_stats *plan_stats)
{
    size_t n = plan_stats->n_layers;
    conv_model_stats marked = *plan_stats;
    conv_layer_stats *layers = malloc((n ? n : 1) * sizeof *layers);
    if (!layers) return false;
    memcpy(layers, plan_stats->layers, n * sizeof *layers);
    for (size_t i = 0; i < n; i++) layers[i].compute_ms = STATS_PLACEHOLDER;
    marked.layers = layers;
    json_t *core = stats_to_json(&marked);
    free(layers);
    json_t *mark = json_real(STATS_PLACEHOLDER);
    char *text = NULL, *mark_text = mark ? json_dumps(mark, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(mark);
    if (core) {
        /* written by the request-level part */
        static const char *const request_keys[] = {"params", "macs", "flops", "compute_ms"};
        for (size_t k = 0; k < sizeof request_keys / sizeof *request_keys; k++) json_object_del(core, request_keys[k]);
        text = json_dumps(core, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(core);
    }
    char needle[64];
    bool ok = text && mark_text && text[0] == '{' &&
              (size_t)snprintf(needle, sizeof needle, "\"compute_ms\":%s", mark_text) < sizeof needle;
    size_t *slots = ok ? malloc((n ? n : 1) * sizeof *slots) : NULL;
    size_t found = 0;
    for (const char *p = slots ? strstr(text, needle) : NULL; p; p = strstr(p + 1, needle)) {
        if (found == n) {
            found++; /* more placeholders than layers: cannot patch safely */
            break;
        }
        slots[found++] = (size_t)(p - text) + strlen("\"compute_ms\":");
    }
    if (!slots || found != n) {
        free(slots);
        free(text);
        free(mark_text);
        return false;
    }
    t->slot_len = strlen(mark_text);
    free(mark_text);
    /* keep everything after the opening brace; offsets shift by one */
    t->len = strlen(text) - 1;
    memmove(text, text + 1, t->len + 1);
    for (size_t i = 0; i < n; i++) slots[i]--;
    t->text = text;
    t->slots = slots;
    t->n_slots = n;
    return true;
}

/* The cached template for the job's model and shape, built on a miss;
 * NULL for inline models or when it cannot be built. */
static const stats_template *stats_template_for(const infer_job *j, worker_ctx *ctx)
{
    if (!j->ref) return NULL;
    if (!ctx->user) {
        ctx->user = calloc(1, sizeof(stats_cache));
        if (!ctx->user) return NULL;
        ctx->user_free = stats_cache_free;
    }
    stats_cache *c = ctx->user;
    const conv_model_stats *ps = conv_plan_stats(j->plan);
    stats_template *victim = &c->entries[0];
    c->clock++;
    for (int i = 0; i < STATS_CACHE_SLOTS; i++) {
        stats_template *t = &c->entries[i];
        if (t->model == j->ref && !memcmp(t->shape, ps->input_shape, sizeof t->shape)) {
            t->last_used = c->clock;
            return t;
        }
        if (!t->model || (victim->model && t->last_used < victim->last_used)) victim = t;
    }
    stats_template_clear(victim);
    if (!stats_template_build(victim, ps)) return NULL;
    repo_model_retain(j->ref);
    victim->model = j->ref;
    memcpy(victim->shape, ps->input_shape, sizeof victim->shape);
    victim->last_used = c->clock;
    return victim;
}

/* v >= 0 with 3 or 6 decimals without printf (it showed in profiles), "null"
 * when not finite (as stats_to_json); at most 32 bytes */
static size_t put_fixed(char *out, double v, int decimals)
{
    if (!isfinite(v)) {
        memcpy(out, "null", 4);
        return 4;
    }
    if (v < 0 || v >= 1e12) return (size_t)sprintf(out, "%.9g", v);
    uint64_t scale = decimals == 3 ? 1000 : 1000000;
    uint64_t u = (uint64_t)(v * (double)scale + 0.5), ip = u / scale, fp = u % scale;
    char digits[24];
    int nd = 0;
    do digits[nd++] = (char)('0' + ip % 10);
    while (ip /= 10);
    size_t k = 0;
    while (nd) out[k++] = digits[--nd];
    out[k++] = '.';
    for (uint64_t d = scale / 10; d; d /= 10) out[k++] = (char)('0' + fp / d % 10);
    return k;
}

static size_t put_fixed6(char *out, double v)
{
    return put_fixed(out, v, 6);
}

static size_t put_int(char *out, long long v)
{
    char digits[24];
    int nd = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do digits[nd++] = (char)('0' + u % 10);
    while (u /= 10);
    size_t k = 0;
    if (v < 0) out[k++] = '-';
    while (nd) out[k++] = digits[--nd];
    return k;
}

static size_t put_str(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

/* The reply's statistics as JSON text (malloc'ed), through the template
 * when there is one, else through jansson. NULL when out of memory. */
static char *stats_text(const infer_job *j, worker_ctx *ctx, const conv_model_stats *stats, double queue_ms,
                        double serialize_ms, double total_ms)
{
    const stats_template *t = stats_template_for(j, ctx);
    if (!t || t->n_slots != stats->n_layers) {
        json_t *s = reply_stats(j, stats, queue_ms, serialize_ms, total_ms);
        char *text = s ? json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
        json_decref(s);
        return text;
    }
    double gflops = j->compute_ms > 0 ? (double)stats->flops / (j->compute_ms * 1e6) : 0;
    /* 32 bytes per number is more than put_fixed6/put_int/%.9g write */
    char *out = malloc(t->len + 512 + t->n_slots * 32);
    if (!out) return NULL;
    size_t k = put_str(out, "{\"queue_ms\":");
    k += put_fixed6(out + k, queue_ms);
    k += put_str(out + k, ",\"compute_ms\":");
    k += put_fixed6(out + k, j->compute_ms);
    k += put_str(out + k, ",\"total_ms\":");
    k += put_fixed6(out + k, total_ms);
    k += put_str(out + k, ",\"parse_ms\":");
    k += put_fixed6(out + k, j->parse_ms);
    k += put_str(out + k, ",\"serialize_ms\":");
    k += put_fixed6(out + k, serialize_ms);
    k += put_str(out + k, ",\"flops\":");
    k += put_int(out + k, (long long)stats->flops);
    k += put_str(out + k, ",\"macs\":");
    k += put_int(out + k, (long long)stats->macs);
    k += put_str(out + k, ",\"params\":");
    k += put_int(out + k, (long long)stats->params);
    k += put_str(out + k, ",\"gflops_per_s\":");
    k += put_fixed6(out + k, gflops * j->base.batch_size);
    k += put_str(out + k, ",\"threads\":");
    k += put_int(out + k, j->base.threads);
    k += put_str(out + k, ",\"batch_size\":");
    k += put_int(out + k, j->base.batch_size);
    out[k++] = ',';
    size_t from = 0;
    for (size_t i = 0; i < t->n_slots; i++) {
        memcpy(out + k, t->text + from, t->slots[i] - from);
        k += t->slots[i] - from;
        k += put_fixed6(out + k, stats->layers[i].compute_ms);
        from = t->slots[i] + t->slot_len;
    }
    memcpy(out + k, t->text + from, t->len - from);
    k += t->len - from;
    out[k] = 0;
    return out;
}

static char *concat3(const char *a, const char *b, size_t b_len, const char *c, const char *d, size_t *len)
{
    size_t la = strlen(a), lc = strlen(c), ld = strlen(d);
    char *out = malloc(la + b_len + lc + ld + 2);
    if (!out) return NULL;
    memcpy(out, a, la);
    memcpy(out + la, b, b_len);
    memcpy(out + la + b_len, c, lc);
    memcpy(out + la + b_len + lc, d, ld);
    *len = la + b_len + lc + ld;
    out[*len] = 0;
    return out;
}

static void build_reply(infer_job *j, worker_ctx *ctx, const conv_tensor *output, conv_model_stats *stats)
{
    reply *r = &j->req->reply;
    double queue_ms = (j->base.t_started - j->base.t_submitted) * 1e3;
    double t0 = clock_seconds();
    conv_error err;
    if (j->reply_npy) {
        uint8_t *npy;
        size_t len;
        if (npy_serialize(output, &npy, &len, &err)) {
            reply_error(r, 503, "out_of_memory", "%s", err.message);
            return;
        }
        double serialize_ms = ms_since(t0);
        double total_ms = ms_since(j->req->t_start);
        char *text = stats_text(j, ctx, stats, queue_ms, serialize_ms, total_ms);
        if (!text) {
            free(npy);
            reply_error(r, 503, "out_of_memory", "out of memory writing statistics");
            return;
        }
        char timing[160], flops[32];
        size_t k = put_str(timing, "queue;dur=");
        k += put_fixed(timing + k, queue_ms, 3);
        k += put_str(timing + k, ", compute;dur=");
        k += put_fixed(timing + k, j->compute_ms, 3);
        k += put_str(timing + k, ", total;dur=");
        k += put_fixed(timing + k, total_ms, 3);
        timing[k] = 0;
        flops[put_int(flops, (long long)stats->flops)] = 0;
        reply_set(r, 200, "application/x-npy", (char *)npy, len);
        reply_add_header(r, "Server-Timing", timing);
        reply_add_header(r, "X-Convd-Flops", flops);
        reply_add_header(r, "X-Convd-Stats", text);
        free(text);
        return;
    }
    char *tensor_text;
    size_t tensor_len;
    conv_status st = j->encoding == JSON_TENSOR_B64 ? json_tensor_write_b64(output, &tensor_text, &tensor_len)
                                                    : json_tensor_write_list(output, &tensor_text, &tensor_len);
    if (st) {
        reply_error(r, spec_http_status(st), spec_code(st), "cannot write the output tensor");
        return;
    }
    double serialize_ms = ms_since(t0);
    char *stats_json_text = stats_text(j, ctx, stats, queue_ms, serialize_ms, ms_since(j->req->t_start));
    size_t len = 0;
    char *body =
        stats_json_text ? concat3("{\"output\":", tensor_text, tensor_len, ",\"stats\":", stats_json_text, &len) : NULL;
    free(tensor_text);
    if (body) {
        /* concat3 leaves room for the closing brace */
        body[len++] = '}';
        body[len] = 0;
        reply_set(r, 200, "application/json", body, len);
    } else {
        reply_error(r, 503, "out_of_memory", "out of memory writing the reply");
    }
    free(stats_json_text);
}

/* worker thread: one job alone. The output lives in the context's
 * grow-only buffer, so a steady load allocates (and faults in) nothing. */
static void infer_run_one(infer_job *j, worker_ctx *ctx)
{
    conv_error err;
    conv_tensor output;
    conv_model_stats stats = {0};
    void *workspace, *out_data = NULL;
    int64_t out_shape[4];
    size_t out_elems = 0;
    const conv_model_stats *plan_stats = conv_plan_stats(j->plan);
    conv_status s = worker_ctx_workspace(ctx, conv_plan_workspace_size(j->plan, ctx->threads), &workspace, &err);
    conv_plan_output_shape(j->plan, out_shape);
    conv_dims_product(out_shape, 4, &out_elems); /* within the limits: checked when planned */
    if (!s) s = worker_ctx_buffer(ctx, WORKER_BUF_OUTPUT, out_elems * sizeof(float), &out_data, &err);
    conv_tensor_wrap(&output, 4, out_shape, out_data);
    if (!s && !(stats.layers = calloc(plan_stats->n_layers ? plan_stats->n_layers : 1, sizeof *stats.layers)))
        s = conv_fail(&err, CONV_OUT_OF_MEMORY, "out of memory for statistics");
    if (!s) {
        double t0 = clock_seconds();
        s = conv_model_run(j->model, j->plan, j->input.data, output.data, workspace, ctx->pool, &stats, &err);
        j->compute_ms = ms_since(t0);
    }
    j->ran_ok = !s;
    if (j->req) {
        if (s) reply_error(&j->req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
        else build_reply(j, ctx, &output, &stats);
    }
    free(stats.layers);
}

/* worker thread: the jobs of a batch (head and its batch_next chain; the
 * pool batches only equal models and input shapes) as one run with their
 * inputs joined along N; each reply gets its own rows of the output and its
 * own request's statistics, with the batch's compute times. If the batched
 * run cannot be set up, every job runs alone instead. */
static void infer_run_batch(infer_job *head, worker_ctx *ctx)
{
    const int n = head->base.batch_size;
    conv_error err;
    int64_t shape[4], out_shape[4], row_out_shape[4];
    memcpy(shape, head->input.dims, sizeof shape);
    size_t in_elems = 0, out_elems = 0, n_rows;
    conv_plan *plan = NULL;
    conv_model_stats stats = {0};
    conv_layer_stats *own_layers = NULL;
    void *workspace, *in_data, *out_data;
    conv_status s = CONV_OK;
    conv_plan_output_shape(head->plan, row_out_shape);
    if (!conv_size_mul((size_t)shape[0], (size_t)n, &n_rows) || !conv_dims_product(head->input.dims, 4, &in_elems) ||
        !conv_dims_product(row_out_shape, 4, &out_elems) || !conv_size_mul(in_elems, (size_t)n * sizeof(float), &in_elems) ||
        !conv_size_mul(out_elems, (size_t)n * sizeof(float), &out_elems))
        s = conv_fail(&err, CONV_LIMIT_EXCEEDED, "batch size overflows");
    shape[0] = (int64_t)n_rows;
    if (!s) s = conv_plan_create(head->model, shape, &plan, &err);
    const conv_model_stats *plan_stats = plan ? conv_plan_stats(plan) : NULL;
    if (!s) s = worker_ctx_workspace(ctx, conv_plan_workspace_size(plan, ctx->threads), &workspace, &err);
    if (!s) s = worker_ctx_buffer(ctx, WORKER_BUF_INPUT, in_elems, &in_data, &err);
    if (!s) s = worker_ctx_buffer(ctx, WORKER_BUF_OUTPUT, out_elems, &out_data, &err);
    size_t layers = plan_stats && plan_stats->n_layers ? plan_stats->n_layers : 1;
    if (!s && (!(stats.layers = calloc(layers, sizeof *stats.layers)) ||
               !(own_layers = calloc(layers, sizeof *own_layers))))
        s = conv_fail(&err, CONV_OUT_OF_MEMORY, "out of memory for statistics");
    if (s) {
        conv_plan_destroy(plan);
        free(stats.layers);
        free(own_layers);
        for (job *m = &head->base; m; m = m->batch_next) infer_run_one((infer_job *)m, ctx);
        return;
    }
    size_t row_in = in_elems / (size_t)n, row_out = out_elems / (size_t)n; /* bytes per job */
    int k = 0;
    for (job *m = &head->base; m; m = m->batch_next, k++)
        memcpy((char *)in_data + (size_t)k * row_in, ((infer_job *)m)->input.data, row_in);
    double t0 = clock_seconds();
    s = conv_model_run(head->model, plan, in_data, out_data, workspace, ctx->pool, &stats, &err);
    double compute_ms = ms_since(t0);
    conv_plan_output_shape(plan, out_shape);
    k = 0;
    for (job *m = &head->base; m; m = m->batch_next, k++) {
        infer_job *j = (infer_job *)m;
        j->compute_ms = compute_ms;
        j->ran_ok = !s;
        if (!j->req) continue;
        if (s) {
            reply_error(&j->req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
            continue;
        }
        /* the request's own counts; times are the batch's */
        conv_model_stats own = *conv_plan_stats(j->plan);
        memcpy(own_layers, own.layers, own.n_layers * sizeof *own_layers);
        for (size_t l = 0; l < own.n_layers && l < stats.n_layers; l++) own_layers[l].compute_ms = stats.layers[l].compute_ms;
        own.layers = own_layers;
        own.compute_ms = stats.compute_ms;
        conv_tensor rows;
        conv_tensor_wrap(&rows, 4, row_out_shape, (float *)((char *)out_data + (size_t)k * row_out));
        build_reply(j, ctx, &rows, &own);
    }
    free(stats.layers);
    free(own_layers);
    conv_plan_destroy(plan);
}

/* worker thread */
static void infer_run(job *base, worker_ctx *ctx)
{
    if (base->batch_next) infer_run_batch((infer_job *)base, ctx);
    else infer_run_one((infer_job *)base, ctx);
}

/* loop thread */
static void infer_done(job *base)
{
    infer_job *j = (infer_job *)base;
    server *srv = j->srv;
    if (!j->req) { /* warm-up */
        if (j->ran_ok) atomic_store(&j->ref->warmed, true);
        else log_message(srv->cfg->log_format, "warn", "warm-up run of model %s did not complete", j->ref->name);
        infer_job_free(j);
        return;
    }
    request *req = j->req;
    double queued_until = base->outcome == JOB_RAN ? base->t_started : clock_seconds();
    req->queue_ms = (queued_until - base->t_submitted) * 1e3;
    switch (base->outcome) {
    case JOB_RAN:
        if (base->batch_index == 0) metrics_observe_batch(srv->metrics, base->batch_size);
        if (j->ran_ok)
            metrics_observe_job(srv->metrics, j->ref ? j->ref->name : NULL, base->t_started - base->t_submitted,
                                j->compute_ms * 1e-3, conv_plan_stats(j->plan)->flops);
        break;
    case JOB_QUEUE_FULL:
        reply_error(&req->reply, 503, "queue_full", "the job queue is full (%d waiting); retry shortly",
                    workers_queue_limit(srv->workers));
        reply_add_header(&req->reply, "Retry-After", "1");
        break;
    case JOB_EXPIRED:
        reply_error(&req->reply, 504, "timeout", "the job waited %.0f ms in the queue, past the request timeout of %ld ms",
                    req->queue_ms, srv->cfg->request_timeout_ms);
        break;
    case JOB_CANCELLED:
        metrics_count_cancelled(srv->metrics);
        reply_error(&req->reply, 499, "client_closed", "the client closed the connection while the job was queued");
        break;
    default:
        reply_error(&req->reply, 503, "shutting_down", "the server is shutting down");
        reply_add_header(&req->reply, "Retry-After", "1");
        break;
    }
    http_resume(req);
}

static infer_job *infer_job_new(request *req)
{
    infer_job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_error(&req->reply, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    j->srv = req->srv;
    j->req = req;
    j->base.run = infer_run;
    j->base.done = infer_done;
    j->base.watch_fd = -1;
    j->base.deadline = req->t_start + (double)req->srv->cfg->request_timeout_ms * 1e-3;
    j->encoding = JSON_TENSOR_LIST;
    return j;
}

/* Plans model for shape and checks the FLOP, workspace and output limits
 * before anything large is allocated. */
static bool plan_within_limits(request *req, const conv_model *model, const int64_t shape[4], conv_plan **out)
{
    server *srv = req->srv;
    conv_error err;
    conv_status s = conv_plan_create(model, shape, out, &err);
    if (s) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
        return false;
    }
    const conv_model_stats *st = conv_plan_stats(*out);
    int64_t out_shape[4];
    conv_plan_output_shape(*out, out_shape);
    size_t out_elems = 0, ws = conv_plan_workspace_size(*out, (int)srv->cfg->threads_per_job);
    const char *why = NULL;
    char detail[160] = "";
    if ((double)st->flops > srv->cfg->max_flops) {
        why = "flops";
        snprintf(detail, sizeof detail, "%lld FLOPs, over the limit of %g per request", (long long)st->flops,
                 srv->cfg->max_flops);
    } else if (!conv_dims_product(out_shape, 4, &out_elems) || out_elems > srv->max_elements) {
        why = "output";
        snprintf(detail, sizeof detail, "an output of %zu elements, over the limit of %zu", out_elems,
                 srv->max_elements);
    } else if (ws > srv->max_workspace_bytes) {
        why = "workspace";
        snprintf(detail, sizeof detail, "a workspace of %zu bytes, over the limit of %zu", ws, srv->max_workspace_bytes);
    }
    if (why) {
        conv_plan_destroy(*out);
        *out = NULL;
        reply_error(&req->reply, 422, "limit_exceeded", "the request needs %s", detail);
        return false;
    }
    return true;
}

/* ?encoding= and Accept decide the reply's form; input_enc is the default. */
static bool choose_output(request *req, infer_job *j, json_tensor_encoding input_enc)
{
    const char *accept = header(req, MHD_HTTP_HEADER_ACCEPT);
    j->reply_npy = accept && strstr(accept, "application/x-npy") != NULL;
    j->encoding = input_enc == JSON_TENSOR_B64 ? JSON_TENSOR_B64 : JSON_TENSOR_LIST;
    const char *enc = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "encoding");
    if (enc) {
        if (!strcmp(enc, "b64")) j->encoding = JSON_TENSOR_B64;
        else if (!strcmp(enc, "list")) j->encoding = JSON_TENSOR_LIST;
        else {
            reply_error(&req->reply, 400, "invalid_request", "query parameter encoding must be list or b64, got \"%s\"",
                        enc);
            return false;
        }
    }
    return true;
}

/* The input tensor of an inference: an .npy part/body or the "input"
 * field; plans the model for its shape (limits checked first when the shape
 * is known without allocating). declared may be NULL. */
static bool load_input_and_plan(request *req, infer_job *j, const parsed_body *b, const json_t *input_value,
                                const conv_tensor *npy_input, const int64_t *declared)
{
    int64_t shape[4];
    json_tensor_encoding enc = JSON_TENSOR_B64;
    if (npy_input) {
        j->input = *npy_input;
    } else {
        const multipart_part *part = b && b->is_multipart ? multipart_find(&b->mp, "input") : NULL;
        bool known = !part && input_value && peek_shape(input_value, shape);
        if (!known && !part && declared && json_is_object(input_value) && !json_object_get(input_value, "shape")) {
            memcpy(shape, declared, sizeof shape);
            known = true;
        }
        if (known && !plan_within_limits(req, j->model, shape, &j->plan)) return false;
        if (!load_tensor(req, b, input_value, "input", "input", known ? shape : NULL, known ? 4 : 0, &j->input, &enc))
            return false;
    }
    if (j->input.rank != 4) {
        char got[96];
        conv_shape_format(j->input.dims, j->input.rank, got, sizeof got);
        reply_error(&req->reply, 422, "invalid_spec", "input: must be a rank-4 NCHW tensor, got shape %s", got);
        return false;
    }
    if (!j->plan && !plan_within_limits(req, j->model, j->input.dims, &j->plan)) return false;
    return choose_output(req, j, enc);
}

static void attach(request *req, infer_job *j, double t0)
{
    j->parse_ms = ms_since(t0);
    req->job = j;
    req->job_free = infer_job_free;
}

/* What one run of the job touches: input, output and workspace (sizes
 * within the limits checked when it was planned). */
static size_t job_bytes(const infer_job *j, int threads)
{
    int64_t out_shape[4];
    size_t in_elems = 0, out_elems = 0;
    conv_plan_output_shape(j->plan, out_shape);
    conv_dims_product(j->input.dims, 4, &in_elems);
    conv_dims_product(out_shape, 4, &out_elems);
    return (in_elems + out_elems) * sizeof(float) + conv_plan_workspace_size(j->plan, threads);
}

/* POST /v1/models/{name}/infer */
static job *handle_model_infer(request *req)
{
    double t0 = clock_seconds();
    server *srv = req->srv;
    if (!req->route.name_valid) {
        reply_error(&req->reply, 404, "not_found", "no such model (invalid model name)");
        return NULL;
    }
    snprintf(req->model, sizeof req->model, "%s", req->route.name);
    repo_model *m = repo_get(srv->repo, req->route.name);
    if (!m) {
        reply_error(&req->reply, 404, "not_found", "no model named \"%s\"", req->route.name);
        return NULL;
    }
    infer_job *j = infer_job_new(req);
    if (!j) {
        repo_model_release(m);
        return NULL;
    }
    j->ref = m;
    j->model = m->md.model;
    j->base.batch_key = m; /* held until the request completes, so never reused while queued */
    const int64_t *declared = m->md.spec.has_input_shape ? m->md.spec.input_shape : NULL;
    const char *ct;
    body_kind kind = classify_body(req, &ct);
    bool ok = false;
    if (kind == BODY_NPY) {
        conv_tensor t;
        conv_error err;
        conv_status s = npy_parse_limited(req->body ? req->body : (const uint8_t *)"", req->body_len, srv->max_elements,
                                          &t, &err);
        if (s) reply_error(&req->reply, tensor_http_status(s), tensor_code(s, true), "body: %s", err.message);
        else ok = load_input_and_plan(req, j, NULL, NULL, &t, declared);
    } else if (kind == BODY_JSON) {
        json_t *doc = parse_json_object(req, "body", req->body ? req->body : (const uint8_t *)"", req->body_len);
        static const char *const keys[] = {"input", NULL};
        if (doc && only_keys(req, doc, keys))
            ok = load_input_and_plan(req, j, NULL, json_object_get(doc, "input"), NULL, declared);
        json_decref(doc);
    } else {
        unsupported_media(req, ct, "application/json or application/x-npy");
    }
    if (!ok) {
        infer_job_free(j);
        return NULL;
    }
    memcpy(j->base.batch_dims, j->input.dims, sizeof j->base.batch_dims);
    j->base.batch_bytes = job_bytes(j, (int)srv->cfg->threads_per_job);
    attach(req, j, t0);
    return &j->base;
}

/* The weights a list of layers needs, by state_dict key, from "weights"
 * (and, for a single layer, top-level "weight"/"bias"). */
typedef struct weight_set {
    conv_named_tensor *items;
    char (*names)[96];
    size_t n;
} weight_set;

static void weight_set_free(weight_set *w)
{
    for (size_t i = 0; i < w->n; i++) conv_tensor_free(&w->items[i].tensor);
    free(w->items);
    free(w->names);
}

static bool load_weights(request *req, const parsed_body *b, const conv_layer_spec *layers, size_t n_layers,
                         bool single_layer, weight_set *out)
{
    server *srv = req->srv;
    memset(out, 0, sizeof *out);
    const json_t *weights = json_object_get(b->doc, "weights");
    if (weights && !json_is_object(weights)) {
        reply_error(&req->reply, 400, "invalid_request", "weights: must be an object of state_dict key -> tensor");
        return false;
    }
    size_t total = 0, count = 0;
    for (size_t l = 0; l < n_layers; l++) {
        conv_param_desc d[CONV_MAX_LAYER_PARAMS];
        size_t n = conv_layer_param_descs(&layers[l], d);
        for (size_t k = 0; k < n; k++) {
            size_t e;
            if (!conv_dims_product(d[k].dims, d[k].rank, &e) || !conv_size_add(total, e, &total)) total = SIZE_MAX;
        }
        count += n;
    }
    if (total > srv->max_elements) {
        reply_error(&req->reply, 422, "limit_exceeded", "the weights hold %zu elements, over the limit of %zu", total,
                    srv->max_elements);
        return false;
    }
    out->items = calloc(count ? count : 1, sizeof *out->items);
    out->names = calloc(count ? count : 1, sizeof *out->names);
    if (!out->items || !out->names) {
        weight_set_free(out);
        reply_error(&req->reply, 503, "out_of_memory", "out of memory");
        return false;
    }
    /* every key given must be used: the core refuses unexpected ones, but
     * single-layer keys are checked here since they map to "0.<suffix>" */
    for (size_t l = 0; l < n_layers; l++) {
        conv_param_desc d[CONV_MAX_LAYER_PARAMS];
        size_t n = conv_layer_param_descs(&layers[l], d);
        for (size_t k = 0; k < n; k++) {
            char key[96], path[128];
            if (single_layer) snprintf(key, sizeof key, "%s", d[k].suffix);
            else snprintf(key, sizeof key, "%zu.%s", l, d[k].suffix);
            const json_t *v = weights ? json_object_get(weights, key) : NULL;
            snprintf(path, sizeof path, "weights[\"%s\"]", key);
            if (!v && single_layer && !strchr(key, '.') && json_object_get(b->doc, key)) {
                v = json_object_get(b->doc, key); /* "weight", "bias" at the top level */
                snprintf(path, sizeof path, "%s", key);
            }
            conv_named_tensor *nt = &out->items[out->n];
            snprintf(out->names[out->n], sizeof out->names[out->n], "%zu.%s", l, d[k].suffix);
            nt->name = out->names[out->n];
            nt->is_float = true;
            nt->dtype = "F32";
            if (!load_tensor(req, b, v, key, path, d[k].dims, d[k].rank, &nt->tensor, NULL)) {
                weight_set_free(out);
                return false;
            }
            out->n++;
        }
    }
    if (weights && json_object_size(weights) > out->n) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)weights, key, v) {
            bool used = false;
            for (size_t i = 0; i < out->n && !used; i++)
                used = !strcmp(out->names[i], key) || (single_layer && !strcmp(strchr(out->names[i], '.') + 1, key));
            if (!used) {
                weight_set_free(out);
                reply_error(&req->reply, 422, "invalid_spec", "weights[\"%s\"]: the model has no such tensor", key);
                return false;
            }
        }
    }
    return true;
}

/* Creates the model for layers (weights from the body), after planning a
 * weightless copy so limits are checked before any weight is allocated. */
static bool build_inline_model(request *req, infer_job *j, const parsed_body *b, const conv_layer_spec *layers,
                               size_t n_layers, bool single_layer)
{
    conv_error err;
    conv_model_options opts;
    conv_model_options_init(&opts);
    const json_t *input_value = json_object_get(b->doc, "input");
    int64_t shape[4];
    bool multipart_input = b->is_multipart && multipart_find(&b->mp, "input");
    if (!multipart_input && peek_shape(input_value, shape)) {
        conv_model_options sopts = opts;
        sopts.structure_only = true;
        conv_model *skeleton;
        conv_status s = conv_model_create(layers, n_layers, NULL, 0, &sopts, &skeleton, &err);
        if (s) {
            reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
            return false;
        }
        conv_plan *plan;
        bool ok = plan_within_limits(req, skeleton, shape, &plan);
        conv_plan_destroy(plan);
        conv_model_destroy(skeleton);
        if (!ok) return false;
    }
    weight_set w;
    if (!load_weights(req, b, layers, n_layers, single_layer, &w)) return false;
    conv_status s = conv_model_create(layers, n_layers, w.items, w.n, &opts, &j->owned, &err);
    weight_set_free(&w);
    if (s) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
        return false;
    }
    j->model = j->owned;
    return load_input_and_plan(req, j, b, input_value, NULL, NULL);
}

/* POST /v1/conv2d */
static job *handle_conv2d(request *req)
{
    double t0 = clock_seconds();
    parsed_body b;
    if (!parse_structured_body(req, &b)) return NULL;
    static const char *const keys[] = {"layer", "input", "weight", "bias", "weights", NULL};
    infer_job *j = NULL;
    conv_layer_spec spec;
    conv_error err;
    const json_t *layer = json_object_get(b.doc, "layer");
    if (!only_keys(req, b.doc, keys)) goto fail;
    if (!json_is_object(layer)) {
        reply_error(&req->reply, 400, "invalid_request", "layer: missing or not an object");
        goto fail;
    }
    conv_status s = layer_spec_from_json(layer, "layer", &spec, &err);
    if (s) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
        goto fail;
    }
    if (spec.type != CONV_LAYER_CONV2D && spec.type != CONV_LAYER_SEPARABLE_CONV2D) {
        reply_error(&req->reply, 422, "invalid_spec", "layer.type: must be Conv2d or SeparableConv2d, got %s",
                    conv_layer_type_name(spec.type));
        goto fail;
    }
    if (!(j = infer_job_new(req)) || !build_inline_model(req, j, &b, &spec, 1, true)) goto fail;
    parsed_body_free(&b);
    attach(req, j, t0);
    return &j->base;
fail:
    infer_job_free(j);
    parsed_body_free(&b);
    return NULL;
}

/* POST /v1/infer */
static job *handle_inline_infer(request *req)
{
    double t0 = clock_seconds();
    parsed_body b;
    if (!parse_structured_body(req, &b)) return NULL;
    static const char *const keys[] = {"model", "input", "weights", NULL};
    infer_job *j = NULL;
    model_json mj = {0};
    conv_error err;
    const json_t *model = json_object_get(b.doc, "model");
    if (!only_keys(req, b.doc, keys)) goto fail;
    if (!json_is_object(model)) {
        reply_error(&req->reply, 400, "invalid_request", "model: missing or not an object");
        goto fail;
    }
    conv_status s = model_json_from_value(model, &mj, &err);
    if (s) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "model: %s", err.message);
        goto fail;
    }
    if (!(j = infer_job_new(req)) || !build_inline_model(req, j, &b, mj.layers, mj.n_layers, false)) goto fail;
    model_json_free(&mj);
    parsed_body_free(&b);
    attach(req, j, t0);
    return &j->base;
fail:
    infer_job_free(j);
    model_json_free(&mj);
    parsed_body_free(&b);
    return NULL;
}

/* ------------------------------------------------------------ immediate routes */

static json_t *shape_json(const int64_t *dims, int rank)
{
    json_t *a = json_array();
    for (int i = 0; a && i < rank; i++) json_array_append_new(a, json_integer(dims[i]));
    return a;
}

/* POST /v1/analyze */
static void handle_analyze(request *req)
{
    parsed_body b;
    if (!parse_structured_body(req, &b)) return;
    static const char *const keys[] = {"model", "layer", "input_shape", NULL};
    model_json mj = {0};
    conv_layer_spec spec;
    conv_model *m = NULL;
    conv_plan *plan = NULL;
    conv_error err;
    int64_t shape[4];
    const json_t *model = json_object_get(b.doc, "model"), *layer = json_object_get(b.doc, "layer");
    const json_t *shape_v = json_object_get(b.doc, "input_shape");
    if (!only_keys(req, b.doc, keys)) goto done;
    if (!model == !layer) {
        reply_error(&req->reply, 400, "invalid_request", "give exactly one of \"model\" and \"layer\"");
        goto done;
    }
    json_t *wrapped = json_pack("{s:O}", "shape", shape_v ? (json_t *)shape_v : json_null());
    bool shape_ok = wrapped && peek_shape(wrapped, shape);
    json_decref(wrapped);
    conv_status s = CONV_OK;
    const conv_layer_spec *layers = &spec;
    size_t n_layers = 1;
    if (model) {
        s = model_json_from_value(model, &mj, &err);
        layers = mj.layers;
        n_layers = mj.n_layers;
        if (!s && !shape_v && mj.has_input_shape) {
            memcpy(shape, mj.input_shape, sizeof shape);
            shape_ok = true;
        }
    } else {
        s = layer_spec_from_json(layer, "layer", &spec, &err);
    }
    if (s) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s%s", model ? "model: " : "", err.message);
        goto done;
    }
    if (!shape_ok) {
        reply_error(&req->reply, 400, "invalid_request", "input_shape: must be a list of 4 positive integers [N, C, H, W]");
        goto done;
    }
    conv_model_options opts;
    conv_model_options_init(&opts);
    opts.structure_only = true;
    if ((s = conv_model_create(layers, n_layers, NULL, 0, &opts, &m, &err)) ||
        (s = conv_plan_create(m, shape, &plan, &err))) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
        goto done;
    }
    reply_json(&req->reply, 200, stats_to_json(conv_plan_stats(plan)));
done:
    conv_plan_destroy(plan);
    conv_model_destroy(m);
    model_json_free(&mj);
    parsed_body_free(&b);
}

static json_t *model_summary(const repo_model *m, bool detailed, const int64_t *shape)
{
    const model_json *spec = &m->md.spec;
    json_t *o = json_pack("{s:s, s:b, s:I}", "name", m->name, "warmed", atomic_load(&m->warmed), "n_layers",
                          (json_int_t)spec->n_layers);
    if (!o) return NULL;
    json_object_set_new(o, "input_shape", spec->has_input_shape ? shape_json(spec->input_shape, 4) : json_null());
    if (detailed) {
        json_t *layers = json_array();
        for (size_t i = 0; layers && i < spec->n_layers; i++)
            json_array_append_new(layers, layer_spec_to_json(&spec->layers[i]));
        json_object_set_new(o, "layers", layers);
    }
    conv_plan *plan = NULL;
    if (shape && !conv_plan_create(m->md.model, shape, &plan, NULL)) {
        const conv_model_stats *st = conv_plan_stats(plan);
        json_object_set_new(o, "params", json_integer(st->params));
        json_object_set_new(o, "flops", json_integer(st->flops));
        json_object_set_new(o, "macs", json_integer(st->macs));
        json_object_set_new(o, "output_shape", shape_json(st->output_shape, 4));
        json_object_set_new(o, "receptive_field", shape_json(st->receptive_field, 2));
        if (detailed) json_object_set_new(o, "stats", stats_to_json(st));
        conv_plan_destroy(plan);
    }
    return o;
}

static void handle_models_list(request *req)
{
    repo_model **list;
    int n = repo_list(req->srv->repo, &list);
    if (n < 0) {
        reply_error(&req->reply, 503, "out_of_memory", "out of memory");
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        const model_json *s = &list[i]->md.spec;
        json_array_append_new(arr, model_summary(list[i], false, s->has_input_shape ? s->input_shape : NULL));
    }
    repo_release_all(list, n);
    reply_json(&req->reply, 200, arr ? json_pack("{s:o}", "models", arr) : NULL);
}

static void handle_model_get(request *req)
{
    repo_model *m = req->route.name_valid ? repo_get(req->srv->repo, req->route.name) : NULL;
    if (!m) {
        reply_error(&req->reply, 404, "not_found", "no model named \"%s\"", req->route.name_valid ? req->route.name : "");
        return;
    }
    int64_t shape[4];
    const int64_t *use = m->md.spec.has_input_shape ? m->md.spec.input_shape : NULL;
    const char *q = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "input_shape");
    if (q) {
        if (!cli_parse_shape(q, shape)) {
            repo_model_release(m);
            reply_error(&req->reply, 400, "invalid_request", "input_shape: must be N,C,H,W, got \"%s\"", q);
            return;
        }
        use = shape;
        conv_plan *plan;
        conv_error err;
        conv_status s = conv_plan_create(m->md.model, shape, &plan, &err);
        if (s) {
            repo_model_release(m);
            reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
            return;
        }
        conv_plan_destroy(plan);
    }
    reply_json(&req->reply, 200, model_summary(m, true, use));
    repo_model_release(m);
}

/* Constant time in the key's contents: no early exit on the first difference. */
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
        reply_error(&req->reply, 401, "unauthorized", "this route needs Authorization: Bearer <api key>");
        reply_add_header(&req->reply, "WWW-Authenticate", "Bearer");
    }
    return !diff;
}

static void submit_warm_up(server *srv, repo_model *m)
{
    if (!m->md.spec.has_input_shape) return;
    infer_job *j = calloc(1, sizeof *j);
    conv_error err;
    if (!j) return;
    j->srv = srv;
    j->ref = m;
    repo_model_retain(m);
    j->model = m->md.model;
    j->base.run = infer_run;
    j->base.done = infer_done;
    j->base.watch_fd = -1;
    j->base.internal = true;
    if (conv_plan_create(j->model, m->md.spec.input_shape, &j->plan, &err) ||
        conv_tensor_alloc(&j->input, 4, m->md.spec.input_shape, &err)) {
        log_message(srv->cfg->log_format, "warn", "cannot warm up model %s: %s", m->name, err.message);
        infer_job_free(j);
        return;
    }
    workers_submit(srv->workers, &j->base);
}

void handlers_warm_up_model(server *srv, repo_model *m)
{
    submit_warm_up(srv, m);
}

void handlers_warm_up(server *srv)
{
    repo_model **list;
    int n = repo_list(srv->repo, &list);
    for (int i = 0; i < n; i++) submit_warm_up(srv, list[i]);
    if (n >= 0) repo_release_all(list, n);
}

/* PUT /v1/models/{name}: multipart parts model.json and weights.safetensors */
static void handle_model_put(request *req)
{
    if (!authorized(req)) return;
    if (!req->route.name_valid) {
        reply_error(&req->reply, 400, "invalid_request", "model names are 1 to 64 of [A-Za-z0-9._-], not . or ..");
        return;
    }
    const char *ct;
    if (classify_body(req, &ct) != BODY_MULTIPART || !ct) {
        unsupported_media(req, ct, "multipart/form-data with parts model.json and weights.safetensors");
        return;
    }
    multipart_body mp;
    conv_error err;
    conv_status s = multipart_parse(ct, req->body ? req->body : (const uint8_t *)"", req->body_len,
                                    MAX_MULTIPART_PARTS, &mp, &err);
    if (s) {
        reply_error(&req->reply, s == CONV_OUT_OF_MEMORY ? 503 : 400, "invalid_multipart", "%s", err.message);
        return;
    }
    const multipart_part *mj = multipart_find(&mp, "model.json"), *st = multipart_find(&mp, "weights.safetensors");
    if (!mj || !st) {
        multipart_free(&mp);
        reply_error(&req->reply, 400, "invalid_multipart", "multipart: needs parts named model.json and weights.safetensors");
        return;
    }
    model_dir md;
    s = model_dir_load_buffers((const char *)mj->data, mj->len, st->data, st->len, NULL, &md, &err);
    multipart_free(&mp);
    if (s) {
        reply_error(&req->reply, spec_http_status(s), spec_code(s), "%s", err.message);
        return;
    }
    bool replaced = false;
    repo_model *m = repo_put(req->srv->repo, req->route.name, &md, &replaced);
    if (!m) {
        model_dir_free(&md);
        reply_error(&req->reply, 503, "out_of_memory", "out of memory");
        return;
    }
    submit_warm_up(req->srv, m);
    const int64_t *shape = m->md.spec.has_input_shape ? m->md.spec.input_shape : NULL;
    reply_json(&req->reply, replaced ? 200 : 201, model_summary(m, false, shape));
    repo_model_release(m);
}

static void handle_model_delete(request *req)
{
    if (!authorized(req)) return;
    if (!req->route.name_valid || !repo_delete(req->srv->repo, req->route.name)) {
        reply_error(&req->reply, 404, "not_found", "no model named \"%s\"", req->route.name_valid ? req->route.name : "");
        return;
    }
    reply_json(&req->reply, 200, json_pack("{s:s}", "deleted", req->route.name));
}

static void handle_readyz(request *req)
{
    server *srv = req->srv;
    const char *reason = NULL;
    if (atomic_load(&srv->shutting_down)) reason = "shutting down";
    else if (!repo_all_warmed(srv->repo)) reason = "models are still warming up";
    else if (workers_queued(srv->workers) >= workers_queue_limit(srv->workers)) reason = "the job queue is full";
    if (reason) reply_json(&req->reply, 503, json_pack("{s:s, s:s}", "status", "not_ready", "reason", reason));
    else reply_json(&req->reply, 200, json_pack("{s:s}", "status", "ready"));
}

static void handle_metrics(request *req)
{
    server *srv = req->srv;
    size_t len;
    char *text = metrics_render(srv->metrics, workers_queued(srv->workers), workers_running(srv->workers), &len);
    if (!text) reply_error(&req->reply, 503, "out_of_memory", "out of memory");
    else reply_set(&req->reply, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

job *handlers_dispatch(request *req)
{
    if (v2_owns_path(req->path)) return v2_dispatch(req); /* its own error format */
    const route_match *rm = &req->route;
    if (rm->status == 404) {
        reply_error(&req->reply, 404, "not_found", "no route %s %s", req->method, req->path);
        return NULL;
    }
    if (rm->status == 405) {
        reply_error(&req->reply, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", req->method,
                    req->path, rm->allow);
        reply_add_header(&req->reply, "Allow", rm->allow);
        return NULL;
    }
    switch (rm->id) {
    case ROUTE_HEALTHZ: reply_json(&req->reply, 200, json_pack("{s:s}", "status", "ok")); return NULL;
    case ROUTE_READYZ: handle_readyz(req); return NULL;
    case ROUTE_METRICS: handle_metrics(req); return NULL;
    case ROUTE_OPENAPI: {
        char *doc = strdup(openapi_json);
        if (!doc) reply_error(&req->reply, 503, "out_of_memory", "out of memory");
        else reply_set(&req->reply, 200, "application/json", doc, strlen(doc));
        return NULL;
    }
    case ROUTE_MODELS_LIST: handle_models_list(req); return NULL;
    case ROUTE_MODEL_GET: handle_model_get(req); return NULL;
    case ROUTE_MODEL_PUT: handle_model_put(req); return NULL;
    case ROUTE_MODEL_DELETE: handle_model_delete(req); return NULL;
    case ROUTE_ANALYZE: handle_analyze(req); return NULL;
    case ROUTE_MODEL_INFER: return handle_model_infer(req);
    case ROUTE_CONV2D: return handle_conv2d(req);
    case ROUTE_INFER: return handle_inline_infer(req);
    default: reply_error(&req->reply, 404, "not_found", "no route %s %s", req->method, req->path); return NULL;
    }
}
