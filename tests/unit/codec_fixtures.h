/* codec_fixtures.h — what the codec tests (test_npy, test_safetensors) share:
 * the fixture files under CONVD_TEST_DATA (default tests/data) and checks
 * on floats and error messages. */
#ifndef CONVD_TESTS_CODEC_FIXTURES_H
#define CONVD_TESTS_CODEC_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

/* the path of fixture `name` of one format (the folder under the data dir: "npy", "safetensors") */
void fixture_path(const char *format, const char *name, char *out, size_t size);
/* the fixture's bytes (up to 1 MiB), failing the test when it cannot be read */
uint8_t *read_fixture(const char *format, const char *name, size_t *len);
uint32_t float_bits(float f);
/* fails the test unless err's message contains needle */
void assert_message_contains(const conv_error *err, const char *needle);

#endif
