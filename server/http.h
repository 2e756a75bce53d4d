/* http.h — the libmicrohttpd front of `convd serve`.
 *
 * Design (threads, ownership):
 *   - One MHD thread (internal polling, epoll) runs every access handler: it
 *     accumulates the body (refusing with 413 from Content-Length before
 *     reading, or as soon as a chunked body passes the limit), then calls
 *     handlers_dispatch(), which parses the body and either fills the reply
 *     or returns a job. No convolution runs here.
 *   - With a job, the handler suspends the connection, then submits the job
 *     (in that order, so a quick answer can never resume a connection that
 *     is not suspended yet). The loop thread fills req->reply in the job's
 *     done() and calls http_resume(); MHD calls the handler again, which
 *     queues the reply.
 *   - A request (and its job) belongs to its connection: it is freed in the
 *     MHD "request completed" callback, which also writes the access log
 *     and the request metrics. A suspended connection is never completed,
 *     so the loop thread never sees a freed job.
 */
#ifndef CONVD_SERVER_HTTP_H
#define CONVD_SERVER_HTTP_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "core/conv.h"
#include "server/router.h"

typedef struct server server; /* handlers.h */

#define REPLY_MAX_HEADERS 8

typedef struct reply {
    int status;                /* 0 until set */
    const char *content_type;  /* static string */
    char *body;                /* malloc'ed; handed to MHD when queued */
    size_t len;
    char *header_names[REPLY_MAX_HEADERS];
    char *header_values[REPLY_MAX_HEADERS];
    int n_headers;
} reply;

/* Takes ownership of body (malloc'ed). */
void reply_set(reply *r, int status, const char *content_type, char *body, size_t len);
/* {"error": {"code": code, "message": ...}}; returns status */
int reply_error(reply *r, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Serialises and releases doc; 500 if doc is NULL or serialising fails. */
int reply_json(reply *r, int status, json_t *doc);
void reply_add_header(reply *r, const char *name, const char *value);
void reply_free(reply *r);

typedef struct request {
    server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char *path; /* without the query string */
    route_match route;
    double t_start; /* clock_seconds() when the headers arrived */
    uint8_t *body;
    size_t body_len, body_cap;
    size_t content_length; /* from the header when within the limit, else 0: the body's first allocation */
    bool body_too_large;
    reply reply;
    atomic_bool reply_ready; /* set by the loop thread before http_resume */
    /* a handler's job: freed with job_free when the request completes */
    void *job;
    void (*job_free)(void *job);
    /* for the access log */
    double queue_ms;
    char model[ROUTER_MAX_NAME + 1];
} request;

typedef struct http_server http_server;

/* Binds host:port (port 0: any free port) and starts the MHD thread. */
http_server *http_start(server *srv, const char *host, int port, conv_error *err);
int http_bound_port(const http_server *h);
/* loop thread: req->reply is complete; hand the connection back to MHD */
void http_resume(request *req);
/* stop accepting connections (the listening socket is closed) */
void http_quiesce(http_server *h);
/* waits until no request is being handled; false on timeout */
bool http_wait_requests_done(http_server *h, double timeout_s);
void http_stop(http_server *h);

#endif
