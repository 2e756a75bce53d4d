/* load_http.h — the HTTP/1.1 client side of `convd load`: an incremental
 * response parser (pure, no I/O, unit-tested byte by byte) and a keep-alive
 * connection on libuv that sends one pre-serialised request at a time and
 * parses each reply in place, keeping nothing of its body. */
#ifndef CONVD_SERVER_LOAD_HTTP_H
#define CONVD_SERVER_LOAD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/conv.h"

/* ------------------------------------------------------------ the parser */

/* longest status, header, chunk-size or trailer line accepted */
#define LOAD_HTTP_LINE_MAX 8192

/* Called for every header of a final (non-1xx) reply; name and value are
 * not NUL-terminated, the value has no surrounding whitespace. */
typedef void (*load_http_header_fn)(void *user, const char *name, size_t name_len, const char *value,
                                    size_t value_len);
/* Called with each piece of the body as it arrives (chunk framing removed). */
typedef void (*load_http_body_fn)(void *user, const char *data, size_t len);

typedef struct load_http_parser {
    bool head_request; /* a reply to HEAD has no body whatever its headers say */
    load_http_header_fn on_header;
    load_http_body_fn on_body;
    void *user;

    /* the reply so far */
    int status;            /* 0 until the status line is in */
    int minor_version;     /* HTTP/1.x */
    bool keep_alive;       /* false: the server closes after this reply */
    bool chunked;          /* Transfer-Encoding ends in chunked */
    bool other_encoding;   /* a Transfer-Encoding without chunked: body until close */
    bool has_length;
    uint64_t content_length;
    uint64_t remaining;    /* body or chunk bytes still to come */
    uint64_t header_bytes; /* status line and headers, 1xx replies included */
    uint64_t body_bytes;   /* body payload without chunk framing */
    bool started;          /* a byte of this reply has been seen */
    int state;
    size_t line_len; /* bytes of a line split across reads, kept in line */
    char line[LOAD_HTTP_LINE_MAX];
} load_http_parser;

void load_http_parser_init(load_http_parser *p, bool head_request, load_http_header_fn on_header,
                           load_http_body_fn on_body, void *user);
/* Forgets the reply, ready for the next one on the same connection. */
void load_http_parser_reset(load_http_parser *p);

/* Feeds data[0..len) of the reply. Sets *consumed to the bytes used and
 * *complete when the reply ended inside them (data after *consumed belongs to
 * whatever follows: a pipelined reply, or nothing). Once complete, further
 * calls consume nothing until load_http_parser_reset. A reply that is not
 * HTTP/1.x (bad status line or header, bad chunk size, a Content-Length that
 * is not a number or overflows 64 bits, two different Content-Lengths, a line
 * over LOAD_HTTP_LINE_MAX) returns CONV_INVALID_PARAMETER or
 * CONV_LIMIT_EXCEEDED with the rule in err, and keeps returning it. */
conv_status load_http_parse(load_http_parser *p, const char *data, size_t len, size_t *consumed,
                            bool *complete, conv_error *err);
/* The server closed the connection: completes a reply whose body runs to the
 * close, is an error for any other unfinished reply. */
conv_status load_http_parse_eof(load_http_parser *p, bool *complete, conv_error *err);

/* ------------------------------------------------------------ requests */

typedef struct load_http_url {
    char host[256];      /* without IPv6 brackets, for getaddrinfo */
    char port[8];        /* "80" when the URL has none */
    char authority[272]; /* host[:port] as written, for the Host header */
    const char *target;  /* path and query, pointing into the URL ("/" when empty: static) */
} load_http_url;

/* http://host[:port][/path][?query]; https:// and anything else is refused. */
conv_status load_http_parse_url(const char *url, load_http_url *out, conv_error *err);
/* the first address of host:port (blocking getaddrinfo, once per run) */
conv_status load_http_resolve(const load_http_url *u, struct sockaddr_storage *addr, conv_error *err);

/* "METHOD target HTTP/1.1", Host, the extra headers ("Name: value", each
 * checked: a name, no CR/LF, no Content-Length or Transfer-Encoding, which
 * the body sets), Content-Type and Content-Length when there is a body, then
 * the body: one malloc'ed buffer that every request of a run reuses. A Host
 * or Content-Type among the headers replaces the default one. */
conv_status load_http_build_request(const char *method, const load_http_url *u,
                                    const char *const *headers, size_t n_headers,
                                    const char *content_type, const char *body, size_t body_len,
                                    char **out, size_t *out_len, conv_error *err);

/* ------------------------------------------------------------ connections */

/* why a request got no reply */
typedef enum load_http_failure {
    LOAD_HTTP_OK = 0,
    LOAD_HTTP_CONNECT,   /* the connection could not be opened */
    LOAD_HTTP_SEND,      /* writing the request failed */
    LOAD_HTTP_RECEIVE,   /* reading failed (reset) */
    LOAD_HTTP_CLOSED,    /* the server closed before the reply was complete */
    LOAD_HTTP_TIMEOUT,   /* no complete reply within the timeout */
    LOAD_HTTP_MALFORMED, /* the reply is not HTTP/1.x */
    LOAD_HTTP_FAILURE_COUNT
} load_http_failure;

const char *load_http_failure_name(load_http_failure f);

typedef struct load_http_conn load_http_conn;

/* status is the reply's HTTP status when failure is LOAD_HTTP_OK; detail
 * (NULL on success) is one line on what failed. The connection is idle when
 * this runs, so the callback may send its next request or close it. */
typedef void (*load_http_done_fn)(void *user, load_http_conn *conn, load_http_failure failure,
                                  int status, const char *detail);

/* What every connection of a run shares; the caller fills the fields above
 * the counters and keeps the struct (and the request bytes) alive until the
 * last connection is closed and the loop has run its close callbacks. */
typedef struct load_http_client {
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    const char *request; /* one request's bytes, written as they are */
    size_t request_len;
    bool head_request;
    uint64_t timeout_ms; /* per request, from when it was handed to send */
    load_http_header_fn on_header; /* user: the connection's user pointer */
    load_http_body_fn on_body;
    load_http_done_fn on_done;
    uint64_t bytes_sent;     /* requests written in full */
    uint64_t bytes_received; /* everything read, framing included */
    /* libuv reads into it and the reply is parsed before the next read, so
     * one buffer serves every connection */
    char read_buffer[64 * 1024];
} load_http_client;

/* NULL when out of memory. The connection opens its socket on the first send. */
load_http_conn *load_http_conn_new(load_http_client *client, void *user);
/* Sends the request, connecting first if the connection has no open socket.
 * on_done follows exactly once, from the loop, never from inside this call.
 * Fails (nothing sent, on_done not called) when a request is already
 * outstanding or a socket cannot be created. */
conv_status load_http_conn_send(load_http_conn *c, conv_error *err);
/* Drops any outstanding request (on_done is not called) and frees the
 * connection once the loop has run its close callbacks. */
void load_http_conn_close(load_http_conn *c);

#endif
