/* codec_fixtures.c — fixture loading and small checks shared by the codec
 * tests (see codec_fixtures.h). */
#include "tests/unit/codec_fixtures.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/fileio.h"

void fixture_path(const char *format, const char *name, char *out, size_t size)
{
    const char *dir = getenv("CONVD_TEST_DATA");
    snprintf(out, size, "%s/%s/%s", dir ? dir : "tests/data", format, name);
}

uint8_t *read_fixture(const char *format, const char *name, size_t *len)
{
    char path[512];
    fixture_path(format, name, path, sizeof path);
    uint8_t *bytes = NULL;
    conv_error err = {{0}};
    conv_status st = fileio_read_all(path, 1 << 20, &bytes, len, &err);
    if (st != CONV_OK) fail_msg("cannot read fixture %s: %s", path, err.message);
    return bytes;
}

uint32_t float_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

void assert_message_contains(const conv_error *err, const char *needle)
{
    if (!strstr(err->message, needle)) fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
}
