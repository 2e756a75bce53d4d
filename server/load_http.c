/* load_http.c — `convd load`'s HTTP/1.1 client: the reply parser, URL and
 * request serialisation, and keep-alive connections on libuv.
 *
 * Design: a connection (load_http_conn) lives for the whole run and owns at
 * most one socket at a time. A socket is its own allocation, freed in its
 * close callback, so a connection can drop a socket (server closed it, a
 * timeout, "Connection: close") and open the next one at once, while libuv
 * still holds the old one; callbacks of a dropped socket find conn == NULL
 * and do nothing. One request is outstanding per connection (no
 * pipelining), so bytes after a complete reply mean the server misbehaved
 * and the socket is dropped. The request is written with uv_try_write
 * straight from the shared request buffer; only a partial write falls back
 * to uv_write. Timeouts cost nothing per request: each connection has one
 * watchdog timer, armed when it goes busy if it is not running already; when
 * it fires it either fails the request or re-arms for the time left. A
 * request that finds its reused keep-alive socket closed before a byte of the
 * reply arrived is sent once more on a new socket, as browsers and libcurl
 * do: the server closed an idle connection while the request was on its way. */
#include "server/load_http.h"

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ the parser */

enum parser_state {
    ST_STATUS,
    ST_HEADER,
    ST_BODY_LENGTH,
    ST_BODY_UNTIL_CLOSE,
    ST_CHUNK_SIZE,
    ST_CHUNK_DATA,
    ST_CHUNK_DATA_END,
    ST_TRAILER,
    ST_DONE,
    ST_ERROR,
};

void load_http_parser_init(load_http_parser *p, bool head_request, load_http_header_fn on_header,
                           load_http_body_fn on_body, void *user)
{
    p->head_request = head_request;
    p->on_header = on_header;
    p->on_body = on_body;
    p->user = user;
    load_http_parser_reset(p);
}

void load_http_parser_reset(load_http_parser *p)
{
    p->status = 0;
    p->minor_version = 0;
    p->keep_alive = true;
    p->chunked = p->other_encoding = p->has_length = false;
    p->content_length = p->remaining = 0;
    p->header_bytes = p->body_bytes = 0;
    p->started = false;
    p->state = ST_STATUS;
    p->line_len = 0;
}

static conv_status parser_fail(load_http_parser *p, conv_error *err, conv_status status, const char *fmt,
                               const char *detail, size_t detail_len)
{
    p->state = ST_ERROR;
    /* the offending text, cut short and with control bytes hidden */
    char shown[64];
    size_t n = detail_len < sizeof shown - 1 ? detail_len : sizeof shown - 1;
    for (size_t i = 0; i < n; i++) shown[i] = isprint((unsigned char)detail[i]) ? detail[i] : '?';
    shown[n] = '\0';
    return conv_fail(err, status, fmt, shown);
}

static bool token_equals(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && !strncasecmp(s, word, len);
}

/* true when the comma-separated list value[0..len) has the token word
 * (Connection: keep-alive, Upgrade) */
static bool list_has(const char *value, size_t len, const char *word)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) i++;
        size_t start = i;
        while (i < len && value[i] != ',') i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) end--;
        if (end > start && token_equals(value + start, end - start, word)) return true;
    }
    return false;
}

/* the last token of a comma-separated list is "chunked" */
static bool ends_chunked(const char *value, size_t len)
{
    size_t end = len;
    while (end && (value[end - 1] == ' ' || value[end - 1] == '\t')) end--;
    size_t start = end;
    while (start && value[start - 1] != ',' && value[start - 1] != ' ' && value[start - 1] != '\t') start--;
    return token_equals(value + start, end - start, "chunked");
}

/* "HTTP/1.x SSS[ reason]" */
static conv_status parse_status_line(load_http_parser *p, const char *s, size_t n, conv_error *err)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) || !isdigit((unsigned char)s[7]) || s[8] != ' ' ||
        !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) || !isdigit((unsigned char)s[11]) ||
        (n > 12 && s[12] != ' ') || s[9] == '0')
        return parser_fail(p, err, CONV_INVALID_PARAMETER,
                           "reply status line \"%s\": expected \"HTTP/1.x NNN reason\"", s, n);
    p->minor_version = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    /* HTTP/1.0 closes unless the server says keep-alive */
    p->keep_alive = p->minor_version >= 1;
    return CONV_OK;
}

static conv_status parse_content_length(load_http_parser *p, const char *v, size_t n, conv_error *err)
{
    uint64_t value = 0;
    if (!n) return parser_fail(p, err, CONV_INVALID_PARAMETER, "reply Content-Length \"%s\": expected digits", v, n);
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return parser_fail(p, err, CONV_INVALID_PARAMETER, "reply Content-Length \"%s\": expected digits",
                               v, n);
        unsigned d = (unsigned)(v[i] - '0');
        if (value > (UINT64_MAX - d) / 10)
            return parser_fail(p, err, CONV_LIMIT_EXCEEDED,
                               "reply Content-Length \"%s\": does not fit in 64 bits", v, n);
        value = value * 10 + d;
    }
    if (p->has_length && value != p->content_length)
        return parser_fail(p, err, CONV_INVALID_PARAMETER,
                           "reply Content-Length \"%s\": differs from an earlier Content-Length", v, n);
    p->has_length = true;
    p->content_length = value;
    return CONV_OK;
}

static conv_status parse_header_line(load_http_parser *p, const char *s, size_t n, conv_error *err)
{
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : 0;
    bool name_ok = name_len > 0;
    for (size_t i = 0; i < name_len && name_ok; i++)
        name_ok = s[i] > ' ' && s[i] < 127;
    if (!name_ok)
        return parser_fail(p, err, CONV_INVALID_PARAMETER, "reply header \"%s\": expected \"Name: value\"", s, n);
    const char *v = colon + 1, *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t vlen = (size_t)(end - v);
    if (token_equals(s, name_len, "content-length")) {
        conv_status st = parse_content_length(p, v, vlen, err);
        if (st != CONV_OK) return st;
    } else if (token_equals(s, name_len, "transfer-encoding")) {
        if (ends_chunked(v, vlen)) p->chunked = true;
        else p->other_encoding = true;
    } else if (token_equals(s, name_len, "connection")) {
        if (list_has(v, vlen, "close")) p->keep_alive = false;
        else if (list_has(v, vlen, "keep-alive")) p->keep_alive = true;
    }
    if (p->on_header && p->status >= 200) p->on_header(p->user, s, name_len, v, vlen);
    return CONV_OK;
}

/* the blank line after the headers: how the body is framed */
static void end_of_headers(load_http_parser *p)
{
    if (p->status < 200) {
        /* 100 Continue and friends: the real reply follows */
        int minor = p->minor_version;
        uint64_t header_bytes = p->header_bytes;
        load_http_parser_reset(p);
        p->minor_version = minor;
        p->header_bytes = header_bytes;
        p->started = true;
        return;
    }
    if (p->head_request || p->status == 204 || p->status == 304) {
        p->state = ST_DONE;
    } else if (p->chunked && !p->other_encoding) {
        p->state = ST_CHUNK_SIZE;
    } else if (p->has_length && !p->chunked && !p->other_encoding) {
        p->remaining = p->content_length;
        p->state = p->remaining ? ST_BODY_LENGTH : ST_DONE;
    } else {
        p->keep_alive = false;
        p->state = ST_BODY_UNTIL_CLOSE;
    }
}

/* "1a3f[;ext]" */
static conv_status parse_chunk_size(load_http_parser *p, const char *s, size_t n, conv_error *err)
{
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n && isxdigit((unsigned char)s[i]); i++) {
        if (size >> 60)
            return parser_fail(p, err, CONV_LIMIT_EXCEEDED, "reply chunk size \"%s\": does not fit in 64 bits",
                               s, n);
        int c = tolower((unsigned char)s[i]);
        size = size * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    size_t j = i;
    while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
    if (!i || (j < n && s[j] != ';'))
        return parser_fail(p, err, CONV_INVALID_PARAMETER, "reply chunk size \"%s\": expected hex digits", s, n);
    p->remaining = size;
    p->state = size ? ST_CHUNK_DATA : ST_TRAILER;
    return CONV_OK;
}

static conv_status handle_line(load_http_parser *p, const char *s, size_t n, conv_error *err)
{
    switch (p->state) {
    case ST_STATUS:
        return parse_status_line(p, s, n, err);
    case ST_HEADER:
        if (!n) {
            end_of_headers(p);
            return CONV_OK;
        }
        if (s[0] == ' ' || s[0] == '\t')
            return parser_fail(p, err, CONV_INVALID_PARAMETER,
                               "reply header \"%s\": folded header lines are obsolete (RFC 9112)", s, n);
        return parse_header_line(p, s, n, err);
    case ST_CHUNK_SIZE:
        return parse_chunk_size(p, s, n, err);
    case ST_CHUNK_DATA_END:
        if (n)
            return parser_fail(p, err, CONV_INVALID_PARAMETER,
                               "reply chunk: \"%s\" where the chunk's CRLF belongs", s, n);
        p->state = ST_CHUNK_SIZE;
        return CONV_OK;
    case ST_TRAILER:
        if (!n) p->state = ST_DONE;
        return CONV_OK;
    default:
        return CONV_OK;
    }
}

static bool line_state(int state)
{
    return state == ST_STATUS || state == ST_HEADER || state == ST_CHUNK_SIZE || state == ST_CHUNK_DATA_END ||
           state == ST_TRAILER;
}

conv_status load_http_parse(load_http_parser *p, const char *data, size_t len, size_t *consumed,
                            bool *complete, conv_error *err)
{
    size_t pos = 0;
    *consumed = 0;
    *complete = false;
    if (p->state == ST_ERROR) return conv_fail(err, CONV_INVALID_STATE, "reply parser: an earlier error");
    if (len && p->state != ST_DONE) p->started = true;
    while (pos < len && p->state != ST_DONE) {
        if (line_state(p->state)) {
            const char *start = data + pos;
            size_t avail = len - pos;
            const char *nl = memchr(start, '\n', avail);
            size_t take = nl ? (size_t)(nl - start) + 1 : avail;
            bool in_headers = p->state == ST_STATUS || p->state == ST_HEADER;
            if (in_headers) p->header_bytes += take;
            if (p->line_len + (nl ? take - 1 : take) > LOAD_HTTP_LINE_MAX)
                return parser_fail(p, err, CONV_LIMIT_EXCEEDED, "reply line \"%s...\": longer than 8192 bytes",
                                   p->line_len ? p->line : start, p->line_len ? p->line_len : avail);
            pos += take;
            if (!nl) {
                memcpy(p->line + p->line_len, start, take);
                p->line_len += take;
                continue;
            }
            const char *line = start;
            size_t n = take - 1;
            if (p->line_len) {
                /* the line began in an earlier read */
                memcpy(p->line + p->line_len, start, n);
                line = p->line;
                n += p->line_len;
                p->line_len = 0;
            }
            if (n && line[n - 1] == '\r') n--;
            int state = p->state;
            conv_status st = handle_line(p, line, n, err);
            if (st != CONV_OK) return st;
            if (state == ST_STATUS && p->state == ST_STATUS) p->state = ST_HEADER;
            continue;
        }
        size_t avail = len - pos;
        size_t take = avail;
        if (p->state != ST_BODY_UNTIL_CLOSE && p->remaining < take) take = (size_t)p->remaining;
        if (p->on_body) p->on_body(p->user, data + pos, take);
        p->body_bytes += take;
        pos += take;
        if (p->state == ST_BODY_UNTIL_CLOSE) continue;
        p->remaining -= take;
        if (!p->remaining) p->state = p->state == ST_BODY_LENGTH ? ST_DONE : ST_CHUNK_DATA_END;
    }
    *consumed = pos;
    *complete = p->state == ST_DONE;
    return CONV_OK;
}

conv_status load_http_parse_eof(load_http_parser *p, bool *complete, conv_error *err)
{
    *complete = false;
    if (p->state == ST_BODY_UNTIL_CLOSE || p->state == ST_DONE) {
        p->state = ST_DONE;
        *complete = true;
        return CONV_OK;
    }
    if (p->state == ST_ERROR) return conv_fail(err, CONV_INVALID_STATE, "reply parser: an earlier error");
    p->state = ST_ERROR;
    return conv_fail(err, CONV_INVALID_PARAMETER, "reply: the connection closed %s",
                     p->status ? "before the end of the reply" : "before a status line");
}

/* ------------------------------------------------------------ requests */

conv_status load_http_parse_url(const char *url, load_http_url *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    if (!strncasecmp(url, "https://", 8))
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "url %s: https is not supported (convd serve speaks plain HTTP; put a TLS proxy's "
                         "upstream address here)", url);
    if (strncasecmp(url, "http://", 7))
        return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: expected http://HOST[:PORT][/PATH]", url);
    const char *auth = url + 7;
    size_t auth_len = strcspn(auth, "/?#");
    const char *rest = auth + auth_len;
    if (!auth_len || auth_len >= sizeof out->authority || memchr(auth, '@', auth_len))
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "url %s: expected a host of at most %zu bytes and no user name", url,
                         sizeof out->authority - 1);
    memcpy(out->authority, auth, auth_len);
    const char *host = auth, *host_end, *port = NULL;
    if (*auth == '[') {
        host = auth + 1;
        host_end = memchr(host, ']', auth_len - 1);
        if (!host_end) return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: an IPv6 host needs its ]", url);
        if (host_end + 1 < rest) {
            if (host_end[1] != ':') return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: expected :PORT after ]", url);
            port = host_end + 2;
        }
    } else {
        host_end = memchr(auth, ':', auth_len);
        if (host_end) port = host_end + 1;
        else host_end = rest;
    }
    size_t host_len = (size_t)(host_end - host);
    if (!host_len || host_len >= sizeof out->host)
        return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: empty or too long host", url);
    memcpy(out->host, host, host_len);
    if (port) {
        size_t port_len = (size_t)(rest - port);
        long value = 0;
        bool ok = port_len > 0 && port_len <= 5;
        for (size_t i = 0; i < port_len && ok; i++) {
            ok = isdigit((unsigned char)port[i]);
            value = value * 10 + (port[i] - '0');
        }
        if (!ok || value < 1 || value > 65535)
            return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: the port must be a number in [1, 65535]", url);
        snprintf(out->port, sizeof out->port, "%ld", value);
    } else {
        snprintf(out->port, sizeof out->port, "80");
    }
    /* the fragment is the browser's, never sent */
    size_t target_len = strcspn(rest, "#");
    if (rest[target_len])
        return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: a #fragment is never sent; drop it", url);
    if (*rest == '/') out->target = rest;
    else if (*rest == '?') out->target = rest; /* "http://h?q": written as "/?q" by build_request */
    else out->target = "/";
    for (const char *c = out->target; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 127)
            return conv_fail(err, CONV_INVALID_PARAMETER, "url %s: spaces and control characters must be %%-encoded",
                             url);
    return CONV_OK;
}

conv_status load_http_resolve(const load_http_url *u, struct sockaddr_storage *addr, conv_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0 || !res)
        return conv_fail(err, CONV_INVALID_PARAMETER, "url host %s: %s", u->host,
                         rc ? gai_strerror(rc) : "no address");
    memset(addr, 0, sizeof *addr);
    memcpy(addr, res->ai_addr, res->ai_addrlen < sizeof *addr ? res->ai_addrlen : sizeof *addr);
    freeaddrinfo(res);
    return CONV_OK;
}

static bool header_named(const char *header, const char *name)
{
    size_t n = strlen(name);
    return !strncasecmp(header, name, n) && header[n] == ':';
}

conv_status load_http_build_request(const char *method, const load_http_url *u,
                                    const char *const *headers, size_t n_headers,
                                    const char *content_type, const char *body, size_t body_len,
                                    char **out, size_t *out_len, conv_error *err)
{
    *out = NULL;
    *out_len = 0;
    bool own_host = false, own_type = false;
    size_t head = 0;
    for (const char *m = method; *m; m++)
        if (!isalpha((unsigned char)*m) && *m != '-' && *m != '_')
            return conv_fail(err, CONV_INVALID_PARAMETER, "method %s: expected a token such as GET or POST", method);
    if (!*method) return conv_fail(err, CONV_INVALID_PARAMETER, "method: empty");
    for (size_t i = 0; i < n_headers; i++) {
        const char *h = headers[i], *colon = strchr(h, ':');
        bool ok = colon && colon > h && !strpbrk(h, "\r\n");
        for (const char *c = h; ok && c < colon; c++) ok = *c > ' ' && *c < 127;
        if (!ok) return conv_fail(err, CONV_INVALID_PARAMETER, "header \"%s\": expected \"Name: value\" on one line", h);
        if (header_named(h, "content-length") || header_named(h, "transfer-encoding"))
            return conv_fail(err, CONV_INVALID_PARAMETER, "header \"%s\": the body sets it", h);
        own_host |= header_named(h, "host");
        own_type |= header_named(h, "content-type");
        head += strlen(h) + 2;
    }
    if (content_type && strpbrk(content_type, "\r\n"))
        return conv_fail(err, CONV_INVALID_PARAMETER, "content type: no line breaks");
    head += strlen(method) + strlen(u->target) + 64 + strlen(u->authority) + (content_type ? strlen(content_type) : 0) +
            48;
    size_t total;
    if (!conv_size_add(head, body_len, &total))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "request body of %zu bytes: too large", body_len);
    char *buf = malloc(total);
    if (!buf) return conv_fail(err, CONV_OUT_OF_MEMORY, "request of %zu bytes: out of memory", total);
    size_t n = (size_t)snprintf(buf, head, "%s %s%s HTTP/1.1\r\n", method, u->target[0] == '?' ? "/" : "", u->target);
    if (!own_host) n += (size_t)snprintf(buf + n, head - n, "Host: %s\r\n", u->authority);
    for (size_t i = 0; i < n_headers; i++) n += (size_t)snprintf(buf + n, head - n, "%s\r\n", headers[i]);
    if (body) {
        if (content_type && !own_type) n += (size_t)snprintf(buf + n, head - n, "Content-Type: %s\r\n", content_type);
        n += (size_t)snprintf(buf + n, head - n, "Content-Length: %zu\r\n", body_len);
    }
    n += (size_t)snprintf(buf + n, head - n, "\r\n");
    if (body_len) memcpy(buf + n, body, body_len);
    *out = buf;
    *out_len = n + body_len;
    return CONV_OK;
}

/* ------------------------------------------------------------ connections */

static const char *const failure_names[LOAD_HTTP_FAILURE_COUNT] = {
    [LOAD_HTTP_OK] = "ok",
    [LOAD_HTTP_CONNECT] = "connect failed",
    [LOAD_HTTP_SEND] = "send failed",
    [LOAD_HTTP_RECEIVE] = "receive failed",
    [LOAD_HTTP_CLOSED] = "connection closed before the reply",
    [LOAD_HTTP_TIMEOUT] = "timeout",
    [LOAD_HTTP_MALFORMED] = "malformed reply",
};

const char *load_http_failure_name(load_http_failure f)
{
    return (unsigned)f < LOAD_HTTP_FAILURE_COUNT ? failure_names[f] : "unknown";
}

typedef struct load_http_socket {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    load_http_client *client;
    load_http_conn *conn; /* NULL once dropped */
    bool connected;
    bool writing; /* a uv_write of the request is pending */
} load_http_socket;

struct load_http_conn {
    load_http_client *client;
    void *user;
    load_http_socket *sock; /* NULL: the next send connects */
    uv_timer_t watchdog;
    uint64_t sent_ms; /* loop time the request was handed to send */
    bool busy;        /* a request is outstanding */
    bool reused;      /* the socket has carried a complete reply */
    bool retried;     /* this request was sent again on a new socket */
    char detail[512];
    load_http_parser parser;
};

static void socket_closed(uv_handle_t *h)
{
    free(h->data);
}

static void drop_socket(load_http_conn *c)
{
    load_http_socket *s = c->sock;
    if (!s) return;
    c->sock = NULL;
    c->reused = false;
    s->conn = NULL;
    if (s->connected) uv_read_stop((uv_stream_t *)&s->tcp);
    uv_close((uv_handle_t *)&s->tcp, socket_closed);
}

/* ends the outstanding request with a failure; the callback may reuse c */
static void fail(load_http_conn *c, load_http_failure failure, const char *what, int uv_code)
{
    drop_socket(c);
    c->busy = false;
    if (uv_code) snprintf(c->detail, sizeof c->detail, "%s: %s", what, uv_strerror(uv_code));
    else snprintf(c->detail, sizeof c->detail, "%s", what);
    c->client->on_done(c->user, c, failure, 0, c->detail);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    load_http_socket *s = h->data;
    *buf = uv_buf_init(s->client->read_buffer, sizeof s->client->read_buffer);
}

static void on_write(uv_write_t *req, int status)
{
    load_http_socket *s = req->data;
    s->writing = false;
    load_http_conn *c = s->conn;
    if (!c) return;
    if (status < 0) {
        /* a reply that is already complete (the server answered early and
         * closed) is not a send failure; its socket was dropped by then */
        if (c->busy) fail(c, LOAD_HTTP_SEND, "send", status);
        return;
    }
    c->client->bytes_sent += c->client->request_len;
}

/* 0, or a libuv error when the write could not even be queued */
static int write_request(load_http_conn *c)
{
    load_http_socket *s = c->sock;
    load_http_client *cl = c->client;
    uv_buf_t buf = uv_buf_init((char *)cl->request, (unsigned)cl->request_len);
    int n = uv_try_write((uv_stream_t *)&s->tcp, &buf, 1);
    if (n == (int)cl->request_len) {
        cl->bytes_sent += cl->request_len;
        return 0;
    }
    /* the rest (or, after an error, all of it: uv_write then reports the
     * error from the loop rather than from inside send) */
    size_t off = n > 0 ? (size_t)n : 0;
    buf = uv_buf_init((char *)cl->request + off, (unsigned)(cl->request_len - off));
    s->writing = true;
    int rc = uv_write(&s->write, (uv_stream_t *)&s->tcp, &buf, 1, on_write);
    if (rc < 0) s->writing = false;
    return rc;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_connect(uv_connect_t *req, int status);

static int open_socket(load_http_conn *c)
{
    load_http_socket *s = calloc(1, sizeof *s);
    if (!s) return UV_ENOMEM;
    s->client = c->client;
    s->conn = c;
    int rc = uv_tcp_init(c->client->loop, &s->tcp);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->tcp.data = s;
    s->connect.data = s;
    s->write.data = s;
    uv_tcp_nodelay(&s->tcp, 1);
    rc = uv_tcp_connect(&s->connect, &s->tcp, (const struct sockaddr *)&c->client->addr, on_connect);
    if (rc < 0) {
        s->conn = NULL;
        uv_close((uv_handle_t *)&s->tcp, socket_closed);
        return rc;
    }
    c->sock = s;
    c->reused = false;
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    load_http_socket *s = req->data;
    load_http_conn *c = s->conn;
    if (!c) return;
    if (status < 0) {
        fail(c, LOAD_HTTP_CONNECT, "connect", status);
        return;
    }
    s->connected = true;
    /* applied here as well: before connect libuv only records the wish */
    uv_tcp_nodelay(&s->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail(c, LOAD_HTTP_RECEIVE, "read", rc);
        return;
    }
    if (c->busy && (rc = write_request(c)) < 0) fail(c, LOAD_HTTP_SEND, "send", rc);
}

/* the reused socket was closed under a request that got no reply byte: send
 * it again, once, on a new socket; false when that does not apply */
static bool retry_on_new_socket(load_http_conn *c)
{
    if (!c->reused || c->retried || c->parser.started) return false;
    c->retried = true;
    load_http_parser_reset(&c->parser); /* parse_eof left it failed */
    drop_socket(c);
    int rc = open_socket(c);
    if (rc < 0) fail(c, LOAD_HTTP_CONNECT, "connect", rc);
    return true;
}

static void complete(load_http_conn *c, bool clean_end)
{
    bool keep = clean_end && c->parser.keep_alive && c->sock && !c->sock->writing;
    if (keep) c->reused = true;
    else drop_socket(c);
    c->busy = false;
    c->client->on_done(c->user, c, LOAD_HTTP_OK, c->parser.status, NULL);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    load_http_socket *s = stream->data;
    load_http_conn *c = s->conn;
    if (!c || nread == 0) return;
    if (nread > 0) c->client->bytes_received += (uint64_t)nread;
    if (!c->busy) {
        /* an idle socket's server closed it, or sent bytes nobody asked for */
        drop_socket(c);
        return;
    }
    conv_error err;
    bool done = false;
    if (nread < 0) {
        if (nread == UV_EOF) {
            if (load_http_parse_eof(&c->parser, &done, NULL) == CONV_OK && done) {
                complete(c, false);
                return;
            }
        }
        if (retry_on_new_socket(c)) return;
        if (nread == UV_EOF)
            fail(c, LOAD_HTTP_CLOSED,
                 c->parser.started ? "the server closed the connection mid-reply"
                                   : "the server closed the connection before replying",
                 0);
        else fail(c, LOAD_HTTP_RECEIVE, "receive", (int)nread);
        return;
    }
    size_t used;
    if (load_http_parse(&c->parser, buf->base, (size_t)nread, &used, &done, &err) != CONV_OK) {
        fail(c, LOAD_HTTP_MALFORMED, err.message, 0);
        return;
    }
    /* one request at a time: bytes after the reply are the server's error */
    if (done) complete(c, used == (size_t)nread);
}

static void on_watchdog(uv_timer_t *t)
{
    load_http_conn *c = t->data;
    if (!c->busy) return;
    uint64_t elapsed = uv_now(c->client->loop) - c->sent_ms, limit = c->client->timeout_ms;
    if (elapsed >= limit) {
        char what[96];
        snprintf(what, sizeof what, "no complete reply within %llu ms", (unsigned long long)limit);
        fail(c, LOAD_HTTP_TIMEOUT, what, 0);
    } else {
        uv_timer_start(t, on_watchdog, limit - elapsed, 0);
    }
}

load_http_conn *load_http_conn_new(load_http_client *client, void *user)
{
    load_http_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->client = client;
    c->user = user;
    if (uv_timer_init(client->loop, &c->watchdog) < 0) {
        free(c);
        return NULL;
    }
    c->watchdog.data = c;
    load_http_parser_init(&c->parser, client->head_request, client->on_header, client->on_body, user);
    return c;
}

conv_status load_http_conn_send(load_http_conn *c, conv_error *err)
{
    if (c->busy) return conv_fail(err, CONV_INVALID_STATE, "connection: a request is already outstanding");
    load_http_parser_reset(&c->parser);
    c->retried = false;
    c->sent_ms = uv_now(c->client->loop);
    if (!c->sock) {
        int rc = open_socket(c);
        if (rc < 0) return conv_fail(err, CONV_OUT_OF_MEMORY, "connect: %s", uv_strerror(rc));
    }
    c->busy = true;
    if (!uv_is_active((uv_handle_t *)&c->watchdog))
        uv_timer_start(&c->watchdog, on_watchdog, c->client->timeout_ms, 0);
    if (c->sock->connected) {
        int rc = write_request(c);
        if (rc < 0) {
            c->busy = false;
            drop_socket(c);
            return conv_fail(err, CONV_INVALID_STATE, "send: %s", uv_strerror(rc));
        }
    }
    return CONV_OK;
}

static void conn_closed(uv_handle_t *h)
{
    free(h->data);
}

void load_http_conn_close(load_http_conn *c)
{
    if (!c) return;
    drop_socket(c);
    c->busy = false;
    uv_close((uv_handle_t *)&c->watchdog, conn_closed);
}
