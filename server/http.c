/* http.c — libmicrohttpd daemon, body accumulation, suspend/resume and reply
 * queueing (see http.h for the design). */
#include "server/http.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/fileio.h"
#include "server/handlers.h"
#include "server/log.h"
#include "server/v2.h"
#include "server/metrics.h"
#include "server/workers.h"

#define CONNECTION_LIMIT 1024
/* Per connection, MHD's pool holds the request line and headers, the read
 * buffer and the reply's headers: larger requests are answered 414/431 and
 * closed. MHD zeroes the whole pool after every request of a keep-alive
 * connection, so its size is paid per request: at 64 KiB that memset was
 * the largest user-space cost of a tiny request (17% of the HTTP thread);
 * 32 KiB (MHD's default) still holds an X-Convd-Stats header of ~100 layers
 * (about 280 bytes a layer: 7.4 KB for MobileNet v1). */
#define CONNECTION_MEMORY_LIMIT (32 * 1024)

struct http_server {
    struct MHD_Daemon *daemon;
    server *srv;
    atomic_int active_requests;
    int port;
};

void reply_set(reply *r, int status, const char *content_type, char *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->content_type = content_type;
    r->body = body;
    r->len = len;
}

static const char oom_body[] = "{\"error\": {\"code\": \"out_of_memory\", \"message\": \"out of memory\"}}";

static void reply_oom(reply *r)
{
    char *b = strdup(oom_body);
    reply_set(r, 503, "application/json", b, b ? strlen(b) : 0);
}

int reply_json(reply *r, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    if (!text) {
        reply_oom(r);
        return r->status;
    }
    reply_set(r, status, "application/json", text, strlen(text));
    return status;
}

int reply_error(reply *r, int status, const char *code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    reply_json(r, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
    return status;
}

void reply_add_header(reply *r, const char *name, const char *value)
{
    if (r->n_headers == REPLY_MAX_HEADERS) return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    r->header_names[r->n_headers] = n;
    r->header_values[r->n_headers++] = v;
}

void reply_free(reply *r)
{
    free(r->body);
    for (int i = 0; i < r->n_headers; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    memset(r, 0, sizeof *r);
}

static enum MHD_Result queue_reply(request *req)
{
    reply *r = &req->reply;
    if (!r->status) reply_error(r, 500, "internal", "no reply was produced");
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->body = NULL; /* MHD frees it with the response */
    if (r->content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    for (int i = 0; i < r->n_headers; i++) MHD_add_response_header(resp, r->header_names[i], r->header_values[i]);
    if (atomic_load(&req->srv->shutting_down)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

void http_resume(request *req)
{
    atomic_store(&req->reply_ready, true);
    MHD_resume_connection(req->conn);
}

static request *request_create(http_server *h, struct MHD_Connection *conn, const char *url, const char *method)
{
    request *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    req->srv = h->srv;
    req->conn = conn;
    req->t_start = clock_seconds();
    size_t method_len = strnlen(method, sizeof req->method - 1); /* longer methods are cut, as before */
    memcpy(req->method, method, method_len);
    req->path = strdup(url);
    if (!req->path) {
        free(req);
        return NULL;
    }
    char *q = strchr(req->path, '?'); /* MHD strips it already; kept for safety */
    if (q) *q = 0;
    router_match(req->method, req->path, &req->route);
    atomic_fetch_add(&h->active_requests, 1);
    return req;
}

/* Appends upload data; past the limit the rest is read and dropped so the
 * client still gets its 413. */
static void accumulate(request *req, const char *data, size_t size)
{
    size_t limit = req->srv->max_body_bytes;
    if (req->body_too_large) return;
    if (size > limit - req->body_len) {
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    if (req->body_len + size > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : req->content_length ? req->content_length : 64 * 1024;
        while (cap < req->body_len + size) cap = cap > limit / 2 ? limit : cap * 2;
        uint8_t *p = realloc(req->body, cap + 1); /* +1: room for a NUL */
        if (!p) {
            req->body_too_large = true; /* answered as 413; the message says why */
            free(req->body);
            req->body = NULL;
            req->body_len = req->body_cap = 0;
            return;
        }
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
}

/* 413 in the error format of the protocol the path belongs to: v2 clients
 * parse {"error": "..."}, v1 clients {"error": {"code", "message"}}. */
static void reply_body_too_large(request *req, const char *message)
{
    if (v2_owns_path(req->path)) reply_json(&req->reply, 413, json_pack("{s:s}", "error", message));
    else reply_error(&req->reply, 413, "body_too_large", "%s", message);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server *h = cls;
    request *req = *con_cls;
    if (!req) {
        req = request_create(h, conn, url, method);
        if (!req) return MHD_NO;
        *con_cls = req;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && n > h->srv->max_body_bytes) {
                char message[160];
                snprintf(message, sizeof message, "the body (%llu bytes) is over the limit of %zu bytes", n,
                         h->srv->max_body_bytes);
                reply_body_too_large(req, message);
                /* With Expect: 100-continue nothing was sent yet: answer now.
                 * Otherwise the client is already sending; a reply queued now
                 * goes out while it still sends, and closing on unread data
                 * resets the connection before the client reads it. So drop
                 * the body and answer at its end (bounded below). */
                const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
                if (expect && !strcasecmp(expect, "100-continue")) return queue_reply(req);
                req->body_too_large = true;
                return MHD_YES;
            }
            if (end != cl) req->content_length = (size_t)n; /* one allocation, no regrowth copies */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (req->reply.status) { /* already refused with 413: drop what still arrives */
            req->body_len += *upload_data_size;
            *upload_data_size = 0;
            /* a client that keeps sending far past the limit is cut off */
            return req->body_len > 4 * h->srv->max_body_bytes ? MHD_NO : MHD_YES;
        }
        accumulate(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (atomic_load(&req->reply_ready)) return queue_reply(req);
    if (req->reply.status) /* 413: queued on the first call, or now that the body was dropped */
        return req->body_too_large ? queue_reply(req) : MHD_YES;
    if (req->body_too_large) {
        char message[160];
        snprintf(message, sizeof message, "the body is over the limit of %zu bytes", h->srv->max_body_bytes);
        reply_body_too_large(req, message);
        return queue_reply(req);
    }
    if (req->body) req->body[req->body_len] = 0;
    job *j = handlers_dispatch(req);
    if (!j) return queue_reply(req);
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->watch_fd = info ? info->connect_fd : -1;
    MHD_suspend_connection(conn);
    workers_submit(h->srv->workers, j);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *h = cls;
    request *req = *con_cls;
    if (!req) return;
    *con_cls = NULL;
    /* a reply that never left means the client went away first */
    int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? req->reply.status : 0;
    double seconds = clock_seconds() - req->t_start;
    metrics_observe_request(h->srv->metrics, req->route.pattern, status, seconds);
    access_entry e = {
        .method = req->method,
        .path = req->path,
        .status = status,
        .bytes_in = req->body_len,
        .bytes_out = req->reply.len,
        .queue_ms = req->queue_ms,
        .total_ms = seconds * 1e3,
        .model = req->model[0] ? req->model : NULL,
    };
    log_access(h->srv->cfg->log_format, &e);
    if (req->job && req->job_free) req->job_free(req->job);
    reply_free(&req->reply);
    free(req->body);
    free(req->path);
    free(req);
    atomic_fetch_sub(&h->active_requests, 1);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    http_server *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    log_message(h->srv->cfg->log_format, "warn", "http: %s", msg);
}

http_server *http_start(server *srv, const char *host, int port, conv_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc) {
        conv_fail(err, CONV_INVALID_PARAMETER, "--host %s: %s", host, gai_strerror(rc));
        return NULL;
    }
    http_server *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    h->srv = srv;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    const serve_config *cfg = srv->cfg;
    uint8_t *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    /* MHD_OPTION_ARRAY lets the TLS options be present or absent */
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (cfg->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            conv_fail(err, CONV_UNSUPPORTED_ALGORITHM, "--tls-cert: this libmicrohttpd was built without TLS");
            goto fail;
        }
        /* a NUL-terminated PEM text each; MHD copies them at start */
        if (fileio_read_all(cfg->tls_cert, 1 << 20, &cert, &cert_len, err) ||
            fileio_read_all(cfg->tls_key, 1 << 20, &key, &key_len, err))
            goto fail;
        uint8_t *c = realloc(cert, cert_len + 1), *k = c ? realloc(key, key_len + 1) : NULL;
        if (c) cert = c;
        if (k) key = k;
        if (!c || !k) {
            conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory");
            goto fail;
        }
        cert[cert_len] = 0;
        key[key_len] = 0;
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
    }
    h->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, h, /* first, so it gets every message */
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_conns_per_ip,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY_LIMIT,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                 MHD_OPTION_ARRAY, tls,
                                 MHD_OPTION_END);
    /* the key must not linger in our heap once MHD holds its copy */
    if (key) explicit_bzero(key, key_len);
    free(cert);
    free(key);
    cert = key = NULL;
    freeaddrinfo(ai);
    ai = NULL;
    if (!h->daemon) {
        conv_fail(err, CONV_INVALID_PARAMETER, "cannot listen on %s:%d (address in use or not permitted%s)", host, port,
                  cfg->tls_cert ? ", or the TLS certificate and key do not load" : "");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
fail:
    if (key) explicit_bzero(key, key_len);
    free(cert);
    free(key);
    freeaddrinfo(ai);
    free(h);
    return NULL;
}

int http_bound_port(const http_server *h)
{
    return h->port;
}

void http_quiesce(http_server *h)
{
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

bool http_wait_requests_done(http_server *h, double timeout_s)
{
    double end = clock_seconds() + timeout_s;
    while (atomic_load(&h->active_requests)) {
        if (clock_seconds() >= end) return false;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void http_stop(http_server *h)
{
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
