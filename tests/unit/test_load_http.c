/* test_load_http.c — convd load's HTTP/1.1 reply parser: every reply split at
 * every byte boundary parses as it does whole, chunked bodies and trailers,
 * pipelined replies in one buffer, 1xx interim replies, bodies that run to
 * the close, and the errors (bad status lines, Content-Length and chunk-size
 * overflow, over-long lines); URL parsing and request serialisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/load_http.h"

/* what the callbacks saw of one reply */
typedef struct seen {
    char body[4096];
    size_t body_len;
    size_t body_calls;
    char headers[2048]; /* "name=value;" for each header */
    size_t headers_len;
} seen;

static void on_header(void *user, const char *name, size_t name_len, const char *value, size_t value_len)
{
    seen *s = user;
    int n = snprintf(s->headers + s->headers_len, sizeof s->headers - s->headers_len, "%.*s=%.*s;",
                     (int)name_len, name, (int)value_len, value);
    assert_true(n > 0 && (size_t)n < sizeof s->headers - s->headers_len);
    s->headers_len += (size_t)n;
}

static void on_body(void *user, const char *data, size_t len)
{
    seen *s = user;
    assert_true(s->body_len + len <= sizeof s->body);
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    s->body_calls++;
}

static load_http_parser *new_parser(bool head, seen *s)
{
    load_http_parser *p = malloc(sizeof *p);
    assert_non_null(p);
    memset(s, 0, sizeof *s);
    load_http_parser_init(p, head, on_header, on_body, s);
    return p;
}

/* feeds text in pieces cut at the given offsets (ascending, within len);
 * returns the total consumed and whether the reply completed */
static conv_status feed_pieces(load_http_parser *p, const char *text, size_t len, const size_t *cuts,
                               size_t n_cuts, size_t *consumed, bool *complete)
{
    size_t from = 0;
    *consumed = 0;
    *complete = false;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        size_t used = 0;
        bool done = false;
        conv_error err;
        conv_status st = load_http_parse(p, text + from, to - from, &used, &done, &err);
        if (st != CONV_OK) return st;
        *consumed += used;
        if (done) {
            *complete = true;
            return CONV_OK;
        }
        assert_int_equal(used, to - from); /* an unfinished reply takes everything */
        from = to;
    }
    return CONV_OK;
}

typedef struct reply_case {
    const char *text;
    bool head;
    int status;
    const char *body;
    bool keep_alive;
    bool needs_eof; /* the body runs to the close */
    const char *headers;
} reply_case;

static const reply_case cases[] = {
    {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}", false, 200,
     "{\"status\":\"ok\"}", true, false, "Content-Type=application/json;Content-Length=15;"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer-Timing: queue;dur=0.1, compute;dur=2.5\r\n\r\n"
     "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
     false, 200, "hello 0123456789", true, false,
     "Transfer-Encoding=chunked;Server-Timing=queue;dur=0.1, compute;dur=2.5;"},
    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nnop", false,
     404, "nop", false, false, "Content-Length=3;Connection=close;"},
    {"HTTP/1.1 204 No Content\r\nX-A:  spaced  \r\n\r\n", false, 204, "", true, false, "X-A=spaced;"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true, 200, "", true, false, "Content-Length=1000;"},
    {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, "ok", false, false, "Content-Length=2;"},
    {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", false, 200, "", true, false,
     "Connection=Keep-Alive;Content-Length=0;"},
    {"HTTP/1.1 200 OK\nContent-Length: 4\n\nbare", false, 200, "bare", true, false, "Content-Length=4;"},
    {"HTTP/1.1 500 Internal Server Error\r\nServer: x\r\n\r\nuntil the close", false, 500, "until the close", false,
     true, "Server=x;"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, 200, "abc", true,
     false, "Transfer-Encoding=gzip, chunked;"},
};

static void check_reply(const reply_case *c, load_http_parser *p, const seen *s, size_t consumed, bool complete)
{
    size_t len = strlen(c->text);
    if (c->needs_eof) {
        assert_false(complete);
        assert_int_equal(consumed, len);
        conv_error err;
        assert_int_equal(load_http_parse_eof(p, &complete, &err), CONV_OK);
    } else {
        assert_int_equal(consumed, len);
    }
    assert_true(complete);
    assert_int_equal(p->status, c->status);
    assert_int_equal(p->keep_alive, c->keep_alive);
    assert_int_equal(s->body_len, strlen(c->body));
    assert_memory_equal(s->body, c->body, s->body_len);
    assert_int_equal(p->body_bytes, strlen(c->body));
    assert_int_equal(s->headers_len, strlen(c->headers));
    assert_memory_equal(s->headers, c->headers, s->headers_len);
}

/* each reply whole, split once at every offset, and one byte at a time */
static void test_split_at_every_boundary(void **state)
{
    (void)state;
    seen s;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const reply_case *c = &cases[k];
        size_t len = strlen(c->text), consumed;
        bool complete;
        load_http_parser *p = new_parser(c->head, &s);
        assert_int_equal(feed_pieces(p, c->text, len, NULL, 0, &consumed, &complete), CONV_OK);
        check_reply(c, p, &s, consumed, complete);
        for (size_t cut = 0; cut <= len; cut++) {
            memset(&s, 0, sizeof s);
            load_http_parser_reset(p);
            assert_int_equal(feed_pieces(p, c->text, len, &cut, 1, &consumed, &complete), CONV_OK);
            check_reply(c, p, &s, consumed, complete);
        }
        size_t *every = malloc(len * sizeof *every);
        assert_non_null(every);
        for (size_t i = 0; i < len; i++) every[i] = i + 1;
        memset(&s, 0, sizeof s);
        load_http_parser_reset(p);
        assert_int_equal(feed_pieces(p, c->text, len, every, len ? len - 1 : 0, &consumed, &complete), CONV_OK);
        check_reply(c, p, &s, consumed, complete);
        free(every);
        free(p);
    }
}

static void test_chunked_body_and_counts(void **state)
{
    (void)state;
    seen s;
    load_http_parser *p = new_parser(false, &s);
    const char text[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    size_t used;
    bool done;
    assert_int_equal(load_http_parse(p, text, sizeof text - 1, &used, &done, NULL), CONV_OK);
    assert_true(done);
    assert_int_equal(used, sizeof text - 1);
    assert_true(p->chunked);
    assert_int_equal(s.body_len, 23);
    assert_memory_equal(s.body, "Wikipedia in\r\n\r\nchunks.", 23);
    assert_int_equal(p->header_bytes, strlen("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
    /* a complete reply takes nothing more until it is reset */
    assert_int_equal(load_http_parse(p, "HTTP", 4, &used, &done, NULL), CONV_OK);
    assert_true(done);
    assert_int_equal(used, 0);

    /* the chunk's data must be followed by CRLF */
    load_http_parser_reset(p);
    const char bad[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n";
    conv_error err;
    assert_int_equal(load_http_parse(p, bad, sizeof bad - 1, &used, &done, &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "chunk"));

    const char *bad_sizes[] = {"zz\r\n", "\r\n", "5 x\r\n"};
    for (size_t i = 0; i < 3; i++) {
        load_http_parser_reset(p);
        const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_int_equal(load_http_parse(p, head, sizeof head - 1, &used, &done, NULL), CONV_OK);
        assert_int_equal(load_http_parse(p, bad_sizes[i], strlen(bad_sizes[i]), &used, &done, &err),
                         CONV_INVALID_PARAMETER);
    }
    free(p);
}

/* three replies back to back in one read: each ends where the next begins */
static void test_pipelined_replies(void **state)
{
    (void)state;
    seen s;
    load_http_parser *p = new_parser(false, &s);
    const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nthree";
    const int statuses[] = {200, 201, 404};
    const char *bodies[] = {"one", "two", "three"};
    size_t pos = 0, len = sizeof text - 1;
    for (int i = 0; i < 3; i++) {
        memset(&s, 0, sizeof s);
        load_http_parser_reset(p);
        size_t used;
        bool done;
        assert_int_equal(load_http_parse(p, text + pos, len - pos, &used, &done, NULL), CONV_OK);
        assert_true(done);
        assert_int_equal(p->status, statuses[i]);
        assert_int_equal(s.body_len, strlen(bodies[i]));
        assert_memory_equal(s.body, bodies[i], s.body_len);
        pos += used;
        if (i < 2) assert_memory_equal(text + pos, "HTTP/1.1 ", 9);
    }
    assert_int_equal(pos, len);
    free(p);
}

static void test_malformed_status_lines(void **state)
{
    (void)state;
    const char *lines[] = {
        "HTTP/1.1 20 OK\r\n",      "HTTP/2 200 OK\r\n",     "HTTX/1.1 200 OK\r\n", "HTTP/1.1 2000 OK\r\n",
        "HTTP/1.1 abc OK\r\n",     "\r\n",                  "garbage\r\n",         "HTTP/1.1  200 OK\r\n",
        "HTTP/1.1 099 Low\r\n",    "http/1.1 200 OK\r\n",   "HTTP/1.x 200 OK\r\n", "HTTP/1.1 200OK\r\n",
    };
    seen s;
    load_http_parser *p = new_parser(false, &s);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        load_http_parser_reset(p);
        size_t used;
        bool done = true;
        conv_error err = {{0}};
        assert_int_equal(load_http_parse(p, lines[i], strlen(lines[i]), &used, &done, &err), CONV_INVALID_PARAMETER);
        assert_false(done);
        assert_non_null(strstr(err.message, "status line"));
        /* the parser stays failed */
        assert_int_not_equal(load_http_parse(p, "x", 1, &used, &done, NULL), CONV_OK);
    }
    /* a reason phrase is optional */
    load_http_parser_reset(p);
    size_t used;
    bool done;
    assert_int_equal(load_http_parse(p, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 35, &used, &done, NULL), CONV_OK);
    assert_true(done);
    assert_int_equal(p->status, 200);
    free(p);
}

static conv_status parse_headers(load_http_parser *p, const char *headers, conv_error *err)
{
    char text[512];
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%s\r\n", headers);
    size_t used;
    bool done;
    load_http_parser_reset(p);
    return load_http_parse(p, text, strlen(text), &used, &done, err);
}

static void test_content_length_rules(void **state)
{
    (void)state;
    seen s;
    load_http_parser *p = new_parser(false, &s);
    conv_error err;
    assert_int_equal(parse_headers(p, "Content-Length: 18446744073709551616\r\n", &err), CONV_LIMIT_EXCEEDED);
    assert_non_null(strstr(err.message, "64 bits"));
    assert_int_equal(parse_headers(p, "Content-Length: 99999999999999999999999\r\n", &err), CONV_LIMIT_EXCEEDED);
    /* the largest 64-bit length is a length (the body has not come yet) */
    assert_int_equal(parse_headers(p, "Content-Length: 18446744073709551615\r\n", &err), CONV_OK);
    assert_int_equal(p->content_length, UINT64_MAX);
    assert_int_equal(parse_headers(p, "Content-Length: 12a\r\n", &err), CONV_INVALID_PARAMETER);
    assert_int_equal(parse_headers(p, "Content-Length: -1\r\n", &err), CONV_INVALID_PARAMETER);
    assert_int_equal(parse_headers(p, "Content-Length:\r\n", &err), CONV_INVALID_PARAMETER);
    assert_int_equal(parse_headers(p, "Content-Length: 3\r\nContent-Length: 4\r\n", &err), CONV_INVALID_PARAMETER);
    assert_int_equal(parse_headers(p, "Content-Length: 3\r\nContent-Length: 3\r\n", &err), CONV_OK);
    assert_int_equal(parse_headers(p, "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", &err),
                     CONV_LIMIT_EXCEEDED);
    assert_int_equal(parse_headers(p, "No colon here\r\n", &err), CONV_INVALID_PARAMETER);
    assert_int_equal(parse_headers(p, "Bad Name: x\r\n", &err), CONV_INVALID_PARAMETER);
    assert_int_equal(parse_headers(p, "A: b\r\n folded\r\n", &err), CONV_INVALID_PARAMETER);
    free(p);
}

/* an over-long line fails whether it comes whole or in pieces */
static void test_line_limit(void **state)
{
    (void)state;
    seen s;
    load_http_parser *p = new_parser(false, &s);
    size_t len = LOAD_HTTP_LINE_MAX + 64;
    char *text = malloc(len);
    assert_non_null(text);
    memcpy(text, "HTTP/1.1 200 OK\r\nX-Long: ", 25);
    memset(text + 25, 'a', len - 25);
    size_t used;
    bool done;
    conv_error err;
    assert_int_equal(load_http_parse(p, text, len, &used, &done, &err), CONV_LIMIT_EXCEEDED);
    load_http_parser_reset(p);
    conv_status st = CONV_OK;
    for (size_t pos = 0; pos < len && st == CONV_OK; pos += 100)
        st = load_http_parse(p, text + pos, len - pos < 100 ? len - pos : 100, &used, &done, &err);
    assert_int_equal(st, CONV_LIMIT_EXCEEDED);
    free(text);
    free(p);
}

static void test_end_of_stream(void **state)
{
    (void)state;
    seen s;
    load_http_parser *p = new_parser(false, &s);
    size_t used;
    bool done;
    conv_error err;
    const char partial[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(load_http_parse(p, partial, sizeof partial - 1, &used, &done, NULL), CONV_OK);
    assert_false(done);
    assert_int_equal(load_http_parse_eof(p, &done, &err), CONV_INVALID_PARAMETER);
    assert_false(done);
    load_http_parser_reset(p);
    assert_false(p->started);
    assert_int_equal(load_http_parse_eof(p, &done, &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "before a status line"));
    free(p);
}

static void test_parse_url(void **state)
{
    (void)state;
    load_http_url u;
    conv_error err;
    assert_int_equal(load_http_parse_url("http://127.0.0.1:8080/healthz?x=1", &u, &err), CONV_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "8080");
    assert_string_equal(u.authority, "127.0.0.1:8080");
    assert_string_equal(u.target, "/healthz?x=1");
    assert_int_equal(load_http_parse_url("http://localhost", &u, &err), CONV_OK);
    assert_string_equal(u.port, "80");
    assert_string_equal(u.target, "/");
    assert_int_equal(load_http_parse_url("http://[::1]:9000/v1", &u, &err), CONV_OK);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.port, "9000");
    assert_string_equal(u.authority, "[::1]:9000");
    assert_int_equal(load_http_parse_url("https://example.com/", &u, &err), CONV_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "https"));
    const char *bad[] = {"ftp://x/", "http://", "http://h:0/", "http://h:65536/", "http://h:8a/",
                         "http://u@h/", "http://h/a b", "http://[::1/", "http://h/#frag"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(load_http_parse_url(bad[i], &u, &err), CONV_INVALID_PARAMETER);
}

static void test_build_request(void **state)
{
    (void)state;
    load_http_url u;
    conv_error err;
    char *req;
    size_t len;
    assert_int_equal(load_http_parse_url("http://127.0.0.1:8080/healthz", &u, &err), CONV_OK);
    assert_int_equal(load_http_build_request("GET", &u, NULL, 0, NULL, NULL, 0, &req, &len, &err), CONV_OK);
    const char get[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    assert_int_equal(len, sizeof get - 1);
    assert_memory_equal(req, get, len);
    free(req);

    const char *headers[] = {"X-Api-Key: k", "Host: other"};
    assert_int_equal(load_http_build_request("POST", &u, headers, 2, "application/json", "{}", 2, &req, &len, &err),
                     CONV_OK);
    const char post[] = "POST /healthz HTTP/1.1\r\nX-Api-Key: k\r\nHost: other\r\n"
                        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    assert_int_equal(len, sizeof post - 1);
    assert_memory_equal(req, post, len);
    free(req);

    const char *bad[] = {"NoColon", ": empty name", "Content-Length: 5", "X: a\r\nY: b", "Transfer-Encoding: chunked"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(load_http_build_request("GET", &u, &bad[i], 1, NULL, NULL, 0, &req, &len, &err),
                         CONV_INVALID_PARAMETER);
    assert_int_equal(load_http_build_request("GE T", &u, NULL, 0, NULL, NULL, 0, &req, &len, &err),
                     CONV_INVALID_PARAMETER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_at_every_boundary),
        cmocka_unit_test(test_chunked_body_and_counts),
        cmocka_unit_test(test_pipelined_replies),
        cmocka_unit_test(test_malformed_status_lines),
        cmocka_unit_test(test_content_length_rules),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_end_of_stream),
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_build_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
