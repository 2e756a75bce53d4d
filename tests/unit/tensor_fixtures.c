/* tensor_fixtures.c — random tensors and checks shared by the model-level
 * core tests (see tensor_fixtures.h). */
#include "tests/unit/tensor_fixtures.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

float fixture_rnd(uint32_t *rng)
{
    *rng = *rng * 1664525u + 1013904223u;
    return (float)((*rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

void add_weight(owned_weights *w, uint32_t *rng, const char *name, int rank, const int64_t *dims)
{
    assert_true(w->n < OWNED_WEIGHTS_MAX);
    conv_named_tensor *nt = &w->t[w->n];
    snprintf(w->names[w->n], sizeof w->names[0], "%s", name);
    nt->name = w->names[w->n];
    nt->is_float = true;
    assert_int_equal(conv_tensor_alloc(&nt->tensor, rank, dims, NULL), CONV_OK);
    for (size_t i = 0; i < conv_tensor_numel(&nt->tensor); i++) nt->tensor.data[i] = fixture_rnd(rng);
    w->n++;
}

void model_weights(const conv_layer_spec *l, size_t n, uint32_t *rng, owned_weights *w)
{
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < n; i++) {
        conv_param_desc d[CONV_MAX_LAYER_PARAMS];
        size_t nd = conv_layer_param_descs(&l[i], d);
        for (size_t k = 0; k < nd; k++) {
            char name[48];
            snprintf(name, sizeof name, "%zu.%s", i, d[k].suffix);
            add_weight(w, rng, name, d[k].rank, d[k].dims);
            if (strcmp(d[k].suffix, "running_var") == 0) {
                conv_tensor *var = &w->t[w->n - 1].tensor;
                for (size_t e = 0; e < conv_tensor_numel(var); e++) var->data[e] = 0.5f + fabsf(var->data[e]);
            }
        }
    }
}

void free_weights(owned_weights *w)
{
    for (size_t i = 0; i < w->n; i++) conv_tensor_free(&w->t[i].tensor);
}

void random_input(conv_tensor *t, uint32_t *rng, int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t dims[4] = {n, c, h, w};
    assert_int_equal(conv_tensor_alloc(t, 4, dims, NULL), CONV_OK);
    for (size_t i = 0; i < conv_tensor_numel(t); i++) t->data[i] = fixture_rnd(rng);
}

void assert_close(const conv_tensor *got, const conv_tensor *want, double rel, const char *what)
{
    assert_int_equal(got->rank, want->rank);
    for (int i = 0; i < got->rank; i++) assert_int_equal(got->dims[i], want->dims[i]);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < conv_tensor_numel(want); i++) scale = fmax(scale, fabs(want->data[i]));
    for (size_t i = 0; i < conv_tensor_numel(got); i++) worst = fmax(worst, fabs(got->data[i] - want->data[i]));
    if (!(worst <= rel * (scale > 0 ? scale : 1))) fail_msg("%s: max error %g over scale %g", what, worst, scale);
}
