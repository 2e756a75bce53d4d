/* tensor_fixtures.h — what the model-level core tests (test_core,
 * test_fused_separable) share: a seeded generator, random inputs and named
 * weights for a model's layers, and a closeness check on tensors. */
#ifndef CONVD_TESTS_TENSOR_FIXTURES_H
#define CONVD_TESTS_TENSOR_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"

#define OWNED_WEIGHTS_MAX 16

/* named float tensors a test allocated; free_weights releases them */
typedef struct owned_weights {
    conv_named_tensor t[OWNED_WEIGHTS_MAX];
    char names[OWNED_WEIGHTS_MAX][48];
    size_t n;
} owned_weights;

/* the next value in [-1, 1) of the generator whose state is *rng (each
 * test file keeps its own, so its values do not depend on other files) */
float fixture_rnd(uint32_t *rng);
/* appends a tensor of random values from *rng, failing the test when full */
void add_weight(owned_weights *w, uint32_t *rng, const char *name, int rank, const int64_t *dims);
/* weights for every layer of a model, named "<layer>.<suffix>"; BatchNorm
 * variances positive */
void model_weights(const conv_layer_spec *l, size_t n, uint32_t *rng, owned_weights *w);
void free_weights(owned_weights *w);
/* a new n x c x h x w tensor of random values from *rng */
void random_input(conv_tensor *t, uint32_t *rng, int64_t n, int64_t c, int64_t h, int64_t w);
/* fails the test (naming `what`) unless got has want's shape and every
 * element within rel of want's largest magnitude (1 when all zero); NaN fails */
void assert_close(const conv_tensor *got, const conv_tensor *want, double rel, const char *what);

#endif
