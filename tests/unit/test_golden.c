/* test_golden.c — runs every committed golden case (tests/golden/<case>/:
 * model.json, weights.safetensors, input.npy, expected.npy made by PyTorch
 * with tests/gen_golden.py) through the core, with the default algorithm
 * choice, with every algorithm forced where it applies, and threaded.
 * Agreement: max |out - expected| <= 1e-4 * max |expected|. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/conv.h"
#include "proto/model_dir.h"
#include "proto/npy.h"
#include "proto/safetensors.h"

#define TOLERANCE 1e-4

static const char *golden_root(void)
{
    const char *dir = getenv("CONVD_GOLDEN");
    return dir ? dir : "tests/golden";
}

/* worst error relative to the expected output's largest magnitude */
static double relative_error(const conv_tensor *got, const conv_tensor *want, char *why, size_t len)
{
    if (got->rank != want->rank) {
        snprintf(why, len, "rank %d, expected %d", got->rank, want->rank);
        return INFINITY;
    }
    for (int i = 0; i < got->rank; i++)
        if (got->dims[i] != want->dims[i]) {
            snprintf(why, len, "dim %d is %lld, expected %lld", i, (long long)got->dims[i], (long long)want->dims[i]);
            return INFINITY;
        }
    double scale = 0, worst = 0;
    size_t n = conv_tensor_numel(want);
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want->data[i]));
    for (size_t i = 0; i < n; i++) {
        float a = got->data[i], b = want->data[i];
        if (isnan(a) != isnan(b)) {
            snprintf(why, len, "element %zu is %g, expected %g", i, a, b);
            return INFINITY;
        }
        if (!isnan(a)) worst = fmax(worst, fabs((double)a - (double)b));
    }
    why[0] = '\0';
    return worst / (scale > 0 ? scale : 1.0);
}

/* Is layer i a depthwise Conv2d whose next convolution-like layer (past a
 * BatchNorm and an activation) is a 1x1 Conv2d it can run fused with? */
static bool feeds_pointwise(const conv_layer_spec *layers, size_t n, size_t i)
{
    const conv_layer_spec *s = &layers[i];
    if (s->type != CONV_LAYER_CONV2D || s->groups != s->in_channels) return false;
    size_t j = i + 1;
    if (j < n && layers[j].type == CONV_LAYER_BATCHNORM2D) j++;
    if (j < n && (layers[j].type == CONV_LAYER_RELU || layers[j].type == CONV_LAYER_RELU6)) j++;
    if (j >= n) return false;
    const conv_layer_spec *pw = &layers[j];
    bool unpadded = pw->padding_kind != CONV_PADDING_EXPLICIT || (pw->padding[0] == 0 && pw->padding[1] == 0);
    return pw->type == CONV_LAYER_CONV2D && pw->kernel_size[0] == 1 && pw->kernel_size[1] == 1 &&
           pw->stride[0] == 1 && pw->stride[1] == 1 && pw->groups == 1 && unpadded;
}

/* Forces `algo` on every convolution layer it can run, leaving the others
 * on auto: a rerun then exercises that kernel on every golden shape.
 * SeparableConv2d takes direct (both stages), depthwise (its unfused
 * depthwise stage) and fused_separable; fused_separable goes on the
 * SeparableConv2d layers and the depthwise Conv2d layers that feed a 1x1. */
static void force_algorithm(conv_layer_spec *layers, size_t n, conv_algorithm algo)
{
    for (size_t i = 0; i < n; i++) {
        conv_layer_spec *s = &layers[i];
        if (algo == CONV_ALGO_FUSED_SEPARABLE) {
            if (s->type == CONV_LAYER_SEPARABLE_CONV2D || feeds_pointwise(layers, n, i)) s->algorithm = algo;
        } else if (s->type == CONV_LAYER_CONV2D ||
                   (s->type == CONV_LAYER_SEPARABLE_CONV2D &&
                    (algo == CONV_ALGO_DIRECT || algo == CONV_ALGO_DEPTHWISE))) {
            s->algorithm = algo;
        }
    }
}

static int check_output(const char *dir, const char *label, const conv_tensor *out, const conv_tensor *expected)
{
    char why[128];
    double e = relative_error(out, expected, why, sizeof why);
    if (e <= TOLERANCE) return 0;
    print_error("%s [%s]: relative error %g > %g %s\n", dir, label, e, TOLERANCE, why);
    return 1;
}

static int run_case(const char *dir, int *runs)
{
    char path[1100];
    conv_error err;
    conv_tensor input = {0}, expected = {0}, out = {0};
    int failures = 0;
    snprintf(path, sizeof path, "%s/input.npy", dir);
    if (npy_read_file(path, &input, &err)) fail_msg("%s: %s", path, err.message);
    snprintf(path, sizeof path, "%s/expected.npy", dir);
    if (npy_read_file(path, &expected, &err)) fail_msg("%s: %s", path, err.message);

    /* the model folder as users load it, default algorithm choice */
    conv_model_options opts;
    conv_model_options_init(&opts);
    model_dir md;
    if (model_dir_load(dir, &opts, &md, &err)) fail_msg("%s: %s", dir, err.message);
    if (conv_model_run_alloc(md.model, &input, &out, NULL, NULL, &err)) {
        print_error("%s [auto]: %s\n", dir, err.message);
        failures++;
    } else {
        failures += check_output(dir, "auto", &out, &expected);
        (*runs)++;
    }
    conv_tensor_free(&out);

    /* every algorithm forced, single-threaded and on a pool of 2 */
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    safetensors_file weights;
    if (safetensors_read_file(path, &weights, &err)) fail_msg("%s: %s", path, err.message);
    size_t n = md.spec.n_layers;
    conv_layer_spec *layers = malloc(n * sizeof *layers);
    assert_non_null(layers);
    conv_threadpool *pool;
    assert_int_equal(conv_threadpool_create(2, &pool, NULL), CONV_OK);
    for (int algo = CONV_ALGO_DIRECT; algo < CONV_ALGO_COUNT; algo++) {
        memcpy(layers, md.spec.layers, n * sizeof *layers);
        force_algorithm(layers, n, (conv_algorithm)algo);
        conv_model *m;
        if (conv_model_create(layers, n, weights.tensors, weights.count, &opts, &m, &err)) {
            print_error("%s [%s]: %s\n", dir, conv_algorithm_name((conv_algorithm)algo), err.message);
            failures++;
            continue;
        }
        for (int threaded = 0; threaded < 2; threaded++) {
            conv_status st = conv_model_run_alloc(m, &input, &out, threaded ? pool : NULL, NULL, &err);
            char label[64];
            snprintf(label, sizeof label, "%s%s", conv_algorithm_name((conv_algorithm)algo),
                     threaded ? ", 2 threads" : "");
            if (st == CONV_UNSUPPORTED_ALGORITHM) break; /* this kernel does not fit this case */
            if (st) {
                print_error("%s [%s]: %s\n", dir, label, err.message);
                failures++;
            } else {
                failures += check_output(dir, label, &out, &expected);
                (*runs)++;
            }
            conv_tensor_free(&out);
        }
        conv_model_destroy(m);
    }
    conv_threadpool_destroy(pool);
    free(layers);
    safetensors_free(&weights);
    model_dir_free(&md);
    conv_tensor_free(&input);
    conv_tensor_free(&expected);
    return failures;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_golden_cases(void **state)
{
    (void)state;
    DIR *d = opendir(golden_root());
    if (!d) fail_msg("cannot open %s", golden_root());
    char *names[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s/model.json", golden_root(), e->d_name);
        if (stat(path, &sb) == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, compare_names);
    int failures = 0, runs = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", golden_root(), names[i]);
        failures += run_case(dir, &runs);
        free(names[i]);
    }
    print_message("%zu golden cases, %d runs, %d failures\n", n, runs, failures);
    assert_true(n >= 40);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
