/* test_autotune.c — conv_model_options.autotune: plans pick a kernel that can
 * run the layer, compute the same result as the reference, keep forced
 * algorithms, tune a shape once (the same choice from concurrent planners)
 * and fall back to the heuristic for structure-only models. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/conv.h"

static uint32_t rng_state = 4242;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct one_layer {
    conv_layer_spec spec;
    conv_named_tensor w[2];
} one_layer;

static void make_layer(one_layer *l, int64_t c, int64_t out, int64_t k, int64_t pad, int64_t groups)
{
    conv_layer_spec_init(&l->spec, CONV_LAYER_CONV2D);
    l->spec.in_channels = c, l->spec.out_channels = out, l->spec.groups = groups;
    l->spec.kernel_size[0] = l->spec.kernel_size[1] = k;
    l->spec.padding[0] = l->spec.padding[1] = pad;
    int64_t wd[4] = {out, c / groups, k, k}, bd[1] = {out};
    memset(l->w, 0, sizeof l->w);
    l->w[0].name = "0.weight", l->w[1].name = "0.bias";
    l->w[0].is_float = l->w[1].is_float = true;
    assert_int_equal(conv_tensor_alloc(&l->w[0].tensor, 4, wd, NULL), CONV_OK);
    assert_int_equal(conv_tensor_alloc(&l->w[1].tensor, 1, bd, NULL), CONV_OK);
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < conv_tensor_numel(&l->w[i].tensor); j++) l->w[i].tensor.data[j] = rnd();
}

static void free_layer(one_layer *l)
{
    conv_tensor_free(&l->w[0].tensor);
    conv_tensor_free(&l->w[1].tensor);
}

static conv_model *create(const one_layer *l, bool autotune, bool structure_only)
{
    conv_model_options o;
    conv_model_options_init(&o);
    assert_false(o.autotune); /* off unless asked for */
    o.autotune = autotune;
    o.structure_only = structure_only;
    conv_model *m;
    conv_error err;
    conv_status s = conv_model_create(&l->spec, 1, structure_only ? NULL : l->w, structure_only ? 0 : 2, &o, &m, &err);
    if (s) fail_msg("%s", err.message);
    return m;
}

static conv_algorithm planned(const conv_model *m, const int64_t shape[4])
{
    conv_plan *p;
    conv_error err;
    if (conv_plan_create(m, shape, &p, &err)) fail_msg("%s", err.message);
    conv_algorithm a = conv_plan_stats(p)->layers[0].algorithm;
    conv_plan_destroy(p);
    return a;
}

static void test_autotuned_results_match_direct(void **state)
{
    (void)state;
    /* a grouped, a 1x1, a 3x3 Winograd candidate and a tiny-channel layer */
    const int64_t cases[][6] = {{32, 32, 3, 1, 4, 13}, {24, 40, 1, 0, 1, 11}, {16, 16, 3, 1, 1, 20}, {3, 10, 3, 1, 1, 17}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        one_layer l;
        make_layer(&l, cases[c][0], cases[c][1], cases[c][2], cases[c][3], cases[c][4]);
        int64_t shape[4] = {2, cases[c][0], cases[c][5], cases[c][5] + 2};
        conv_tensor x, got, want;
        assert_int_equal(conv_tensor_alloc(&x, 4, shape, NULL), CONV_OK);
        for (size_t j = 0; j < conv_tensor_numel(&x); j++) x.data[j] = rnd();

        conv_model *tuned = create(&l, true, false);
        conv_algorithm a = planned(tuned, shape);
        assert_true(a > CONV_ALGO_AUTO && a < CONV_ALGO_COUNT);
        assert_int_equal(conv_model_run_alloc(tuned, &x, &got, NULL, NULL, NULL), CONV_OK);
        l.spec.algorithm = CONV_ALGO_DIRECT;
        conv_model *ref = create(&l, false, false);
        assert_int_equal(conv_model_run_alloc(ref, &x, &want, NULL, NULL, NULL), CONV_OK);
        /* the tuned choice is one the plain model accepts when forced */
        l.spec.algorithm = a;
        conv_model *forced = create(&l, false, false);
        assert_int_equal(planned(forced, shape), a);

        double scale = 0, worst = 0;
        for (size_t j = 0; j < conv_tensor_numel(&want); j++) {
            scale = fmax(scale, fabs(want.data[j]));
            worst = fmax(worst, fabs(got.data[j] - want.data[j]));
        }
        /* Winograd may win: its documented bound is 1e-3 of the largest output */
        if (worst > 1e-3 * scale) fail_msg("case %zu (%s): error %g over %g", c, conv_algorithm_name(a), worst, scale);
        conv_model_destroy(tuned), conv_model_destroy(ref), conv_model_destroy(forced);
        conv_tensor_free(&x), conv_tensor_free(&got), conv_tensor_free(&want);
        free_layer(&l);
    }
}

static void test_forced_algorithm_is_kept(void **state)
{
    (void)state;
    one_layer l;
    make_layer(&l, 8, 8, 3, 1, 1);
    l.spec.algorithm = CONV_ALGO_DIRECT;
    conv_model *m = create(&l, true, false);
    int64_t shape[4] = {1, 8, 12, 12};
    assert_int_equal(planned(m, shape), CONV_ALGO_DIRECT);
    conv_model_destroy(m);
    free_layer(&l);
}

static void test_structure_only_uses_the_heuristic(void **state)
{
    (void)state;
    one_layer l;
    make_layer(&l, 8, 8, 1, 0, 1);
    conv_model *m = create(&l, true, true);
    int64_t shape[4] = {1, 8, 12, 12};
    assert_int_equal(planned(m, shape), CONV_ALGO_GEMM_1X1);
    conv_model_destroy(m);
    free_layer(&l);
}

typedef struct planner_arg {
    const conv_model *model;
    const int64_t *shape;
    conv_algorithm got[4];
} planner_arg;

static void *planner(void *p)
{
    planner_arg *a = p;
    for (int i = 0; i < 4; i++) {
        conv_plan *plan;
        if (conv_plan_create(a->model, a->shape, &plan, NULL) != CONV_OK) return NULL;
        a->got[i] = conv_plan_stats(plan)->layers[0].algorithm;
        conv_plan_destroy(plan);
    }
    return p;
}

static void test_one_choice_per_shape_across_threads(void **state)
{
    (void)state;
    one_layer l;
    make_layer(&l, 16, 16, 3, 1, 1);
    conv_model *m = create(&l, true, false);
    int64_t a_shape[4] = {1, 16, 24, 24}, b_shape[4] = {1, 16, 9, 31};
    planner_arg args[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (planner_arg){.model = m, .shape = i % 2 ? b_shape : a_shape};
        assert_int_equal(pthread_create(&t[i], NULL, planner, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_non_null(ret);
    }
    /* every plan of a shape, from any thread, got the first tuning's answer */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++) assert_int_equal(args[i].got[k], args[i % 2].got[0]);
    assert_int_equal(planned(m, a_shape), args[0].got[0]);
    assert_int_equal(planned(m, b_shape), args[1].got[0]);
    conv_model_destroy(m);
    free_layer(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_autotuned_results_match_direct),
        cmocka_unit_test(test_forced_algorithm_is_kept),
        cmocka_unit_test(test_structure_only_uses_the_heuristic),
        cmocka_unit_test(test_one_choice_per_shape_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
