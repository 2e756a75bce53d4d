/* test_multipart.c — multipart/form-data bodies captured from curl 7.88
 * (tests/data/multipart, see capture.py there), every prefix of them, random
 * corruptions, and hand-made edge cases for each rule of RFC 2046/7578. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/conv.h"
#include "proto/fileio.h"
#include "proto/multipart.h"

/* ------------------------------------------------------------ helpers */

typedef struct capture {
    char content_type[256];
    uint8_t *body;
    size_t len;
} capture;

static uint8_t *read_data_file(const char *name, size_t *len)
{
    const char *dir = getenv("CONVD_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/multipart/%s", dir ? dir : "tests/data", name);
    uint8_t *bytes = NULL;
    conv_error err = {{0}};
    if (fileio_read_all(path, 1 << 20, &bytes, len, &err) != CONV_OK) fail_msg("cannot read %s: %s", path, err.message);
    return bytes;
}

static capture load_capture(const char *stem)
{
    capture c;
    char name[128];
    size_t len;
    snprintf(name, sizeof name, "%s.content-type", stem);
    uint8_t *ct = read_data_file(name, &len);
    while (len > 0 && (ct[len - 1] == '\n' || ct[len - 1] == '\r')) len--;
    assert_true(len < sizeof c.content_type);
    memcpy(c.content_type, ct, len);
    c.content_type[len] = '\0';
    free(ct);
    snprintf(name, sizeof name, "%s.body", stem);
    c.body = read_data_file(name, &c.len);
    return c;
}

/* parses a NUL-terminated body copied into an exact-size buffer, so a
 * sanitizer build sees any read past its end */
static conv_status parse_exact(const char *content_type, const void *body, size_t len, size_t max_parts,
                               multipart_body *out, conv_error *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    conv_status st = multipart_parse(content_type, copy, len, max_parts, out, err);
    if (st == CONV_OK) {
        /* rebase the parts onto the caller's buffer before freeing the copy */
        for (size_t i = 0; i < out->count; i++) out->parts[i].data = (const uint8_t *)body + (out->parts[i].data - copy);
    }
    free(copy);
    return st;
}

static const char *CT = "multipart/form-data; boundary=XyZ";

static multipart_body parse_ok(const char *content_type, const char *body, size_t expected_parts)
{
    multipart_body b;
    conv_error err = {{0}};
    conv_status st = parse_exact(content_type, body, strlen(body), 16, &b, &err);
    if (st != CONV_OK) fail_msg("%s (%s)\nbody: %s", err.message, conv_status_name(st), body);
    assert_int_equal(b.count, expected_parts);
    return b;
}

static void expect_error(const char *content_type, const char *body, size_t max_parts, conv_status status,
                         const char *message)
{
    multipart_body b;
    b.count = 99;
    conv_error err = {{0}};
    conv_status st = parse_exact(content_type, body, strlen(body), max_parts, &b, &err);
    if (st != status || strcmp(err.message, message) != 0)
        fail_msg("got %s \"%s\"\nwant %s \"%s\"\nbody: %s", conv_status_name(st), err.message, conv_status_name(status),
                 message, body);
    assert_int_equal(b.count, 0);
    assert_null(b.parts);
}

static void assert_part(const multipart_part *p, const char *name, const char *filename, const char *content_type,
                        const char *data)
{
    assert_non_null(p);
    assert_string_equal(p->name, name);
    assert_string_equal(p->filename, filename);
    assert_string_equal(p->content_type, content_type);
    assert_int_equal(p->len, strlen(data));
    assert_memory_equal(p->data, data, p->len);
}

/* ------------------------------------------------------------ curl captures */

static void test_curl_json_and_npy(void **state)
{
    (void)state;
    capture c = load_capture("curl_json_npy");
    multipart_body b;
    conv_error err = {{0}};
    assert_int_equal(multipart_parse(c.content_type, c.body, c.len, 8, &b, &err), CONV_OK);
    assert_int_equal(b.count, 2);
    const multipart_part *request = multipart_find(&b, "request");
    assert_part(request, "request", "request.json", "application/octet-stream",
                "{\"model\": {\"layers\": [{\"type\": \"ReLU\"}]}, \"note\": \"line1\\r\\n--not-a-boundary\"}\n");
    const multipart_part *input = multipart_find(&b, "input");
    assert_non_null(input);
    assert_string_equal(input->filename, "x.npy");
    assert_int_equal(input->len, 224); /* the size of the .npy curl sent */
    assert_memory_equal(input->data, "\x93NUMPY\x01\x00", 8);
    /* the CRLF before the closing delimiter is not data: the file ends in float bytes */
    assert_memory_equal(input->data + 220, "\x00\x00\x08\x41", 4); /* 8.5f, the last element */
    char closing[128];
    snprintf(closing, sizeof closing, "\r\n--%s--\r\n", strstr(c.content_type, "boundary=") + 9);
    assert_memory_equal(input->data + input->len, closing, strlen(closing));
    assert_ptr_equal(input->data + input->len + strlen(closing), c.body + c.len);
    assert_null(multipart_find(&b, "missing"));
    multipart_free(&b);
    assert_int_equal(b.count, 0);
    free(c.body);
}

static void test_curl_fields(void **state)
{
    (void)state;
    capture c = load_capture("curl_fields");
    multipart_body b;
    conv_error err = {{0}};
    assert_int_equal(multipart_parse(c.content_type, c.body, c.len, 8, &b, &err), CONV_OK);
    assert_int_equal(b.count, 3);
    assert_part(&b.parts[0], "name", "", "", "plain value");
    assert_part(&b.parts[1], "empty", "", "", "");
    assert_string_equal(b.parts[2].name, "weights");
    assert_string_equal(b.parts[2].filename, "w e%22ird.npy"); /* curl percent-encodes '"' */
    assert_string_equal(b.parts[2].content_type, "application/octet-stream");
    assert_int_equal(b.parts[2].len, 224);
    multipart_free(&b);
    free(c.body);
}

/* Every prefix that stops before the closing "--boundary--" is complete
 * fails with a message; the ones that include it succeed. */
static void test_every_prefix_of_captures(void **state)
{
    (void)state;
    const char *stems[2] = {"curl_json_npy", "curl_fields"};
    for (int s = 0; s < 2; s++) {
        capture c = load_capture(stems[s]);
        const char *boundary = strstr(c.content_type, "boundary=") + 9;
        char closing[128];
        snprintf(closing, sizeof closing, "\r\n--%s--", boundary);
        const uint8_t *close_at = memmem(c.body, c.len, closing, strlen(closing));
        assert_non_null(close_at);
        size_t complete = (size_t)(close_at - c.body) + strlen(closing);
        for (size_t len = 0; len <= c.len; len++) {
            multipart_body b;
            conv_error err = {{0}};
            conv_status st = parse_exact(c.content_type, c.body, len, 8, &b, &err);
            if (len < complete) {
                if (st == CONV_OK) fail_msg("%s: prefix of %zu bytes accepted", stems[s], len);
                assert_int_equal(strncmp(err.message, "multipart: ", 11), 0);
                assert_non_null(strstr(err.message, "(offset "));
            } else {
                if (st != CONV_OK) fail_msg("%s: prefix of %zu bytes: %s", stems[s], len, err.message);
                assert_int_equal(b.count, s == 0 ? 2 : 3);
                multipart_free(&b);
            }
        }
        free(c.body);
    }
}

/* Random corruptions must never crash or point outside the body. */
static void test_corrupted_captures(void **state)
{
    (void)state;
    capture c = load_capture("curl_fields");
    uint64_t rng = 0x1234567u;
    uint8_t *mutated = malloc(c.len);
    assert_non_null(mutated);
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(mutated, c.body, c.len);
        size_t len = c.len;
        int edits = 1 + round % 4;
        for (int e = 0; e < edits && len > 1; e++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            size_t at = (size_t)(rng >> 33) % len;
            switch ((rng >> 20) % 4) {
            case 0: mutated[at] = (uint8_t)(rng >> 8); break;
            case 1: mutated[at] = "\r\n-\" ;=:"[(rng >> 8) % 8]; break;
            case 2: /* cut the tail */
                len = at + 1;
                break;
            default: /* delete one byte */
                memmove(mutated + at, mutated + at + 1, len - at - 1);
                len--;
            }
        }
        multipart_body b;
        conv_error err = {{0}};
        conv_status st = parse_exact(c.content_type, mutated, len, 8, &b, &err);
        if (st == CONV_OK) {
            accepted++;
            for (size_t i = 0; i < b.count; i++) {
                assert_true(b.parts[i].data >= mutated && b.parts[i].data + b.parts[i].len <= mutated + len);
                assert_true(b.parts[i].name[0] != '\0');
            }
            multipart_free(&b);
        } else {
            assert_int_equal(strncmp(err.message, "multipart: ", 11), 0);
        }
    }
    /* some corruptions land in data and are legitimately accepted */
    assert_true(accepted > 0 && accepted < 20000);
    free(mutated);
    free(c.body);
}

/* ------------------------------------------------------------ accepted edge cases */

static void test_preamble_epilogue_and_padding(void **state)
{
    (void)state;
    multipart_body b = parse_ok(CT,
                                "This is the preamble.\r\n--XyZ-not-yet\r\n"
                                "--XyZ \t\r\n"
                                "content-disposition: FORM-DATA; NAME=a\r\n\r\n"
                                "one\r\n"
                                "--XyZ\r\n"
                                "Content-Disposition: form-data; name=\"b\"; filename=\"f.bin\";\r\n"
                                "X-Other: ignored\r\n"
                                "Content-Type:   text/plain; charset=utf-8  \r\n\r\n"
                                "two\r\n\r\n"
                                "--XyZ--   and an epilogue\r\nwith --XyZ in it\r\n",
                                2);
    assert_part(&b.parts[0], "a", "", "", "one");
    /* the data's own CRLF is kept; only the delimiter's is removed */
    assert_part(&b.parts[1], "b", "f.bin", "text/plain; charset=utf-8", "two\r\n");
    multipart_free(&b);
}

static void test_boundary_lookalikes_are_data(void **state)
{
    (void)state;
    multipart_body b = parse_ok(CT,
                                "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                                "x\r\n--XyZW\r\n--XyZ-\r\n--Xy\r\nZ--XyZ\r\n"
                                "--XyZ--",
                                1);
    assert_part(&b.parts[0], "a", "", "", "x\r\n--XyZW\r\n--XyZ-\r\n--Xy\r\nZ--XyZ");
    multipart_free(&b);
}

static void test_empty_data_and_quoted_values(void **state)
{
    (void)state;
    multipart_body b = parse_ok("Multipart/Form-Data ; charset=x; boundary=\"a b(c)'+_,-./:=?\"",
                                "--a b(c)'+_,-./:=?\r\nContent-Disposition: form-data; name=\"q\\\"uote\\\\d\"\r\n\r\n"
                                "\r\n--a b(c)'+_,-./:=?\r\nContent-Disposition: form-data; filename=\"\"; name=\"e\"\r\n\r\n"
                                "\r\n--a b(c)'+_,-./:=?--\r\n",
                                2);
    assert_part(&b.parts[0], "q\"uote\\d", "", "", "");
    assert_part(&b.parts[1], "e", "", "", "");
    assert_ptr_equal(multipart_find(&b, "e"), &b.parts[1]);
    multipart_free(&b);
}

static void test_boundary_lengths(void **state)
{
    (void)state;
    char boundary[72], ct[128], body[512];
    memset(boundary, 'b', 70);
    boundary[70] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", boundary);
    snprintf(body, sizeof body, "--%s\r\nContent-Disposition: form-data; name=k\r\n\r\nv\r\n--%s--", boundary, boundary);
    multipart_body b = parse_ok(ct, body, 1);
    assert_part(&b.parts[0], "k", "", "", "v");
    multipart_free(&b);
    b = parse_ok("multipart/form-data; boundary=1", "--1\r\nContent-Disposition: form-data; name=k\r\n\r\nv\r\n--1--", 1);
    multipart_free(&b);

    boundary[70] = 'b';
    boundary[71] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", boundary);
    expect_error(ct, body, 8, CONV_INVALID_PARAMETER, "multipart: boundary is longer than 70 characters");
}

/* ------------------------------------------------------------ errors */

static void test_content_type_errors(void **state)
{
    (void)state;
    const char *body = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ--";
    expect_error(NULL, body, 8, CONV_INVALID_PARAMETER, "multipart: no Content-Type header");
    expect_error("application/json", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type \"application/json\" is not multipart/form-data");
    expect_error("multipart/mixed; boundary=XyZ", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type \"multipart/mixed; boundary=XyZ\" is not multipart/form-data");
    expect_error("multipart/form-data", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type has no boundary parameter");
    expect_error("multipart/form-data; charset=utf-8", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type has no boundary parameter");
    expect_error("multipart/form-data; boundary=\"\"", body, 8, CONV_INVALID_PARAMETER, "multipart: boundary is empty");
    expect_error("multipart/form-data; boundary=", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type parameters are malformed at \"\"");
    expect_error("multipart/form-data; boundary=\"XyZ", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type parameters are malformed at \"\"");
    expect_error("multipart/form-data; boundary=a; boundary=b", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type has two boundary parameters");
    expect_error("multipart/form-data; boundary=\"ab\x01\"", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: boundary character 2 is not allowed by RFC 2046");
    expect_error("multipart/form-data; boundary=\"ab \"", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: boundary ends in a space (RFC 2046)");
    expect_error("multipart/form-data boundary=XyZ", body, 8, CONV_INVALID_PARAMETER,
                 "multipart: Content-Type parameters are malformed at \"boundary=XyZ\"");
}

static void test_structure_errors(void **state)
{
    (void)state;
    expect_error(CT, "", 8, CONV_INVALID_PARAMETER, "multipart: no \"--boundary\" line found (offset 0)");
    expect_error(CT, "preamble only\r\n--XyZW\r\n", 8, CONV_INVALID_PARAMETER,
                 "multipart: no \"--boundary\" line found (offset 0)");
    expect_error(CT, "--XyZ--\r\n", 8, CONV_INVALID_PARAMETER, "multipart: body has no parts (offset 7)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno closing delimiter", 8,
                 CONV_INVALID_PARAMETER,
                 "multipart: part 1 is not followed by a boundary; the closing \"--boundary--\" is missing (offset 7)");
    /* the boundary line must end in CRLF, the data's own "\r\n--XyZ" too */
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 is not followed by a boundary; the closing \"--boundary--\" is missing (offset 7)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 is not followed by a boundary; the closing \"--boundary--\" is missing (offset 7)");
    expect_error(CT,
                 "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\ny",
                 8, CONV_INVALID_PARAMETER,
                 "multipart: part 2 is not followed by a boundary; the closing \"--boundary--\" is missing (offset 59)");
}

static void test_header_errors(void **state)
{
    (void)state;
    /* the message example from the service's contract */
    char body[512];
    snprintf(body, sizeof body, "%s",
             "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n"
             "--XyZ\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\ny\r\n--XyZ--");
    expect_error(CT, body, 8, CONV_INVALID_PARAMETER, "multipart: part 2 has no name (offset 85)");
    assert_memory_equal(body + 85, "Content-Disposition", 19);

    expect_error(CT, "--XyZ\r\nContent-Type: text/plain\r\n\r\ny\r\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 has no Content-Disposition (offset 7)");
    expect_error(CT, "--XyZ\r\n\r\ny\r\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 has no Content-Disposition (offset 7)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"\"\r\n\r\ny\r\n--XyZ--", 8,
                 CONV_INVALID_PARAMETER, "multipart: part 1 has an empty name (offset 7)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\ny\r\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 Content-Disposition \"attachment; name=a\" is not form-data (offset 7)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\ny\r\n--XyZ--", 8,
                 CONV_INVALID_PARAMETER, "multipart: part 1 Content-Disposition is malformed (offset 46)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data name=a\r\n\r\ny\r\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 Content-Disposition is malformed (offset 38)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\ny\r\n--XyZ--", 8,
                 CONV_INVALID_PARAMETER, "multipart: part 1 has two name parameters (offset 7)");
    expect_error(CT,
                 "--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\n"
                 "y\r\n--XyZ--",
                 8, CONV_INVALID_PARAMETER, "multipart: part 1 has two Content-Disposition headers (offset 47)");
    expect_error(CT,
                 "--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n"
                 "y\r\n--XyZ--",
                 8, CONV_INVALID_PARAMETER, "multipart: part 1 has two Content-Type headers (offset 64)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"a\x01\"\r\n\r\ny\r\n--XyZ--", 8,
                 CONV_INVALID_PARAMETER, "multipart: part 1 name contains a control character (offset 7)");
    /* header lines without CRLF */
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\n\r\ny\r\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 header line does not end in CRLF (offset 45)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\rX\r\n\r\ny\r\n--XyZ--", 8,
                 CONV_INVALID_PARAMETER, "multipart: part 1 header line does not end in CRLF (offset 45)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 headers end without a blank line; the body is cut short (offset 47)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data; name=a", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 headers end without a blank line; the body is cut short (offset 7)");
    expect_error(CT, "--XyZ\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\ny\r\n--XyZ--", 8,
                 CONV_INVALID_PARAMETER,
                 "multipart: part 1 has a folded header line, which RFC 7578 does not allow (offset 40)");
    expect_error(CT, "--XyZ\r\nContent-Disposition form-data; name=a\r\n\r\ny\r\n--XyZ--", 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 header line has no ':' (offset 7)");
}

static void test_duplicate_names(void **state)
{
    (void)state;
    expect_error(CT,
                 "--XyZ\r\nContent-Disposition: form-data; name=input\r\n\r\nx\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=other\r\n\r\nx\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=\"input\"\r\n\r\ny\r\n--XyZ--",
                 8, CONV_INVALID_PARAMETER, "multipart: part 3 repeats the name \"input\" of part 1 (offset 119)");
}

static void test_limits(void **state)
{
    (void)state;
    const char *three = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                        "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
                        "--XyZ\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--XyZ--";
    expect_error(CT, three, 2, CONV_LIMIT_EXCEEDED, "multipart: more than 2 parts (offset 111)");
    expect_error(CT, three, 0, CONV_LIMIT_EXCEEDED, "multipart: more than 0 parts (offset 7)");
    multipart_body b;
    conv_error err = {{0}};
    assert_int_equal(parse_exact(CT, three, strlen(three), 3, &b, &err), CONV_OK);
    assert_part(&b.parts[2], "c", "", "", "3");
    multipart_free(&b);

    /* headers of exactly 8192 bytes (lines and their CRLFs) pass, one more fails */
    static char body[20000];
    const char *cd = "Content-Disposition: form-data; name=big\r\n";
    size_t filler_len = MULTIPART_MAX_HEADER_BYTES - strlen(cd) - 4; /* "X:" + value + CRLF */
    char *filler = malloc(filler_len + 1);
    memset(filler, 'v', filler_len);
    filler[filler_len] = '\0';
    snprintf(body, sizeof body, "--XyZ\r\n%sX:%s\r\n\r\ndata\r\n--XyZ--", cd, filler);
    multipart_body ok = parse_ok(CT, body, 1);
    assert_part(&ok.parts[0], "big", "", "", "data");
    multipart_free(&ok);
    snprintf(body, sizeof body, "--XyZ\r\n%sX:%sv\r\n\r\ndata\r\n--XyZ--", cd, filler);
    expect_error(CT, body, 8, CONV_LIMIT_EXCEEDED, "multipart: part 1 headers are longer than 8192 bytes (offset 7)");
    free(filler);

    char longname[200];
    memset(longname, 'n', 128);
    longname[128] = '\0';
    snprintf(body, sizeof body, "--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\nx\r\n--XyZ--", longname);
    expect_error(CT, body, 8, CONV_INVALID_PARAMETER, "multipart: part 1 name is longer than 127 bytes (offset 7)");
    longname[127] = '\0';
    snprintf(body, sizeof body, "--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\nx\r\n--XyZ--", longname);
    ok = parse_ok(CT, body, 1);
    assert_string_equal(ok.parts[0].name, longname);
    multipart_free(&ok);

    char longtype[200];
    memset(longtype, 't', 128);
    longtype[128] = '\0';
    snprintf(body, sizeof body,
             "--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Type: %s\r\n\r\nx\r\n--XyZ--", longtype);
    expect_error(CT, body, 8, CONV_INVALID_PARAMETER,
                 "multipart: part 1 Content-Type is longer than 127 bytes (offset 47)");
}

static void test_many_parts_grow(void **state)
{
    (void)state;
    static char body[64 * 1024];
    size_t used = 0;
    for (int i = 0; i < 200; i++)
        used += (size_t)snprintf(body + used, sizeof body - used,
                                 "--XyZ\r\nContent-Disposition: form-data; name=\"p%d\"\r\n\r\n%d\r\n", i, i * 7);
    snprintf(body + used, sizeof body - used, "--XyZ--\r\n");
    multipart_body b;
    conv_error err = {{0}};
    assert_int_equal(parse_exact(CT, body, strlen(body), 1000, &b, &err), CONV_OK);
    assert_int_equal(b.count, 200);
    const multipart_part *p = multipart_find(&b, "p150");
    assert_non_null(p);
    assert_int_equal(p->len, 4);
    assert_memory_equal(p->data, "1050", 4);
    multipart_free(&b);
    multipart_free(&b); /* idempotent */
    multipart_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl_json_and_npy),
        cmocka_unit_test(test_curl_fields),
        cmocka_unit_test(test_every_prefix_of_captures),
        cmocka_unit_test(test_corrupted_captures),
        cmocka_unit_test(test_preamble_epilogue_and_padding),
        cmocka_unit_test(test_boundary_lookalikes_are_data),
        cmocka_unit_test(test_empty_data_and_quoted_values),
        cmocka_unit_test(test_boundary_lengths),
        cmocka_unit_test(test_content_type_errors),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_parts_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
