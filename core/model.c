/* model.c — sequential models: load (validate specs, match and fold weights,
 * pack them per algorithm), plan (shapes, algorithms, workspace, statistics
 * for one input shape) and run (allocation-free, over a caller workspace).
 *
 * A model compiles its layers into ops. An op computes one layer, or a layer
 * plus the BatchNorm folded into its weights and the activation fused into
 * its epilogue; a SeparableConv2d op holds two convolution stages, and so
 * does a depthwise Conv2d followed (after a folded BatchNorm and a fused
 * activation) by a 1x1 stride-1 Conv2d, run as one fused pair. Layers
 * absorbed into another op keep their statistics row with fused_into set. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "core/kernels/fused_separable.h"

typedef enum op_kind { OP_CONV, OP_SEPARABLE, OP_BATCHNORM, OP_ACTIVATION, OP_MAXPOOL, OP_AVGPOOL } op_kind;

/* One convolution with the weights it owns (BatchNorm already folded in). */
typedef struct conv_stage {
    conv_params params;         /* zero pads when padding_mode != zeros */
    conv_padding_mode pad_mode;
    int64_t mode_pads[4];       /* pads applied by a padded copy for non-zero modes */
    float *weight;              /* OIHW; NULL for structure-only models */
    float *bias;                /* NULL when the layer has none and nothing was folded */
    conv_algorithm forced;
    void *packed[CONV_ALGO_COUNT];
} conv_stage;

typedef struct model_op {
    op_kind kind;
    size_t layer;        /* the model layer this op is for */
    size_t last_layer;   /* the last layer it absorbs (folded BN, fused activation) */
    conv_stage stage[2]; /* OP_CONV: [0]; OP_SEPARABLE: depthwise [0], pointwise [1] */
    bool fused;          /* OP_SEPARABLE: the stages may run as one fused_separable pair (plans choose) */
    bool fuse_forced;    /* ... and must: "fused_separable" was forced on the pair */
    conv_activation act; /* OP_ACTIVATION */
    float *scale, *shift; /* OP_BATCHNORM */
} model_op;

/* Autotuned choices: one per (stage, padded input shape). The model is
 * otherwise immutable and shared by the server's workers, so the cache has
 * its own lock, held while a shape is tuned so it is timed once, alone. */
typedef struct tuned_choice {
    const conv_stage *stage;
    conv_dims in;
    bool pair; /* the fused-or-not choice of the pair whose depthwise stage is `stage` */
    conv_algorithm algo;
} tuned_choice;

typedef struct tune_cache {
    pthread_mutex_t lock;
    tuned_choice *choices;
    size_t n, cap;
} tune_cache;

struct conv_model {
    size_t n_layers;
    conv_layer_spec *layers;
    int *fused_into; /* per layer: index of the absorbing layer or -1 */
    size_t n_ops;
    model_op *ops;
    conv_model_options opts;
    tune_cache *tune; /* NULL unless opts.autotune */
};

typedef struct op_plan {
    conv_dims in, mid, out; /* mid: the depthwise output of a separable op */
    conv_algorithm algo[2];
    bool fused; /* OP_SEPARABLE: run as one fused_separable pair */
} op_plan;

struct conv_plan {
    const conv_model *model;
    op_plan *ops;
    conv_model_stats stats;
    size_t act_bytes; /* each of the two ping-pong activation buffers */
    size_t mid_bytes; /* separable intermediate */
    size_t pad_bytes; /* padded copy for non-zero padding modes */
};

void conv_model_options_init(conv_model_options *opts)
{
    opts->fold_batchnorm = true;
    opts->allow_winograd = true;
    opts->fuse = true;
    opts->structure_only = false;
    opts->autotune = false;
}

/* ------------------------------------------------------------------ load */

static void stage_free(conv_stage *st)
{
    for (int a = 0; a < CONV_ALGO_COUNT; a++) {
        const conv_kernel *k = conv_kernel_for((conv_algorithm)a);
        if (st->packed[a] && k && k->release) k->release(st->packed[a]);
    }
    conv_aligned_free(st->weight);
    conv_aligned_free(st->bias);
}

void conv_model_destroy(conv_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_ops; i++) {
        stage_free(&m->ops[i].stage[0]);
        stage_free(&m->ops[i].stage[1]);
        conv_aligned_free(m->ops[i].scale);
        conv_aligned_free(m->ops[i].shift);
    }
    free(m->ops);
    free(m->layers);
    free(m->fused_into);
    if (m->tune) {
        pthread_mutex_destroy(&m->tune->lock);
        free(m->tune->choices);
        free(m->tune);
    }
    free(m);
}

size_t conv_model_layer_count(const conv_model *m) { return m->n_layers; }
const conv_layer_spec *conv_model_layer(const conv_model *m, size_t i) { return i < m->n_layers ? &m->layers[i] : NULL; }

/* The weights for each layer, found by state_dict key "<layer>.<suffix>". */
typedef struct weight_table {
    const conv_tensor *t[CONV_MAX_LAYER_PARAMS]; /* per param desc, NULL if absent */
} weight_table;

static conv_status match_weights(const conv_model *m, const conv_named_tensor *w, size_t n_w, weight_table *tables,
                                 conv_error *err)
{
    char want[96], got[96];
    for (size_t k = 0; k < n_w; k++) {
        const char *name = w[k].name ? w[k].name : "";
        char *end = NULL;
        unsigned long long layer = strtoull(name, &end, 10);
        bool numbered = end != name && *end == '.' && name[0] >= '0' && name[0] <= '9';
        conv_param_desc descs[CONV_MAX_LAYER_PARAMS];
        size_t nd = numbered && layer < m->n_layers ? conv_layer_param_descs(&m->layers[layer], descs) : 0;
        size_t d = 0;
        while (d < nd && strcmp(end + 1, descs[d].suffix) != 0) d++;
        if (d == nd) {
            if (!w[k].is_float) continue; /* e.g. "1.num_batches_tracked" (I64) */
            return conv_fail(err, CONV_INVALID_WEIGHTS, "unexpected weight \"%s\": the model has no such tensor",
                             name);
        }
        if (!w[k].is_float)
            return conv_fail(err, CONV_INVALID_WEIGHTS, "weight \"%s\" must be a float tensor, got %s", name,
                             w[k].dtype ? w[k].dtype : "a non-float dtype");
        if (tables[layer].t[d])
            return conv_fail(err, CONV_INVALID_WEIGHTS, "weight \"%s\" is given twice", name);
        const conv_tensor *t = &w[k].tensor;
        bool same = t->rank == descs[d].rank && t->data != NULL;
        for (int i = 0; same && i < t->rank; i++) same = t->dims[i] == descs[d].dims[i];
        if (!same) {
            conv_shape_format(descs[d].dims, descs[d].rank, want, sizeof want);
            conv_shape_format(t->dims, t->rank, got, sizeof got);
            return conv_fail(err, CONV_INVALID_WEIGHTS, "weight \"%s\": expected shape %s, got %s", name, want, got);
        }
        tables[layer].t[d] = t;
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        conv_param_desc descs[CONV_MAX_LAYER_PARAMS];
        size_t nd = conv_layer_param_descs(&m->layers[l], descs);
        for (size_t d = 0; d < nd; d++) {
            if (tables[l].t[d]) continue;
            conv_shape_format(descs[d].dims, descs[d].rank, want, sizeof want);
            return conv_fail(err, CONV_INVALID_WEIGHTS, "missing weight \"%zu.%s\" (expected shape %s)", l,
                             descs[d].suffix, want);
        }
    }
    return CONV_OK;
}

static const conv_tensor *param(const conv_model *m, const weight_table *tables, size_t layer, const char *suffix)
{
    if (!tables) return NULL;
    conv_param_desc descs[CONV_MAX_LAYER_PARAMS];
    size_t nd = conv_layer_param_descs(&m->layers[layer], descs);
    for (size_t d = 0; d < nd; d++)
        if (strcmp(descs[d].suffix, suffix) == 0) return tables[layer].t[d];
    return NULL;
}

static float *copy_floats(const float *src, size_t n)
{
    float *dst = conv_aligned_alloc(n * sizeof(float));
    if (dst && src) memcpy(dst, src, n * sizeof(float));
    return dst;
}

static void stage_params(conv_stage *st, const conv_layer_spec *s, int64_t in_c, int64_t out_c, int64_t groups,
                         bool pointwise)
{
    conv_params *p = &st->params;
    memset(p, 0, sizeof *p);
    p->in_channels = in_c;
    p->out_channels = out_c;
    p->groups = groups;
    p->kernel_h = pointwise ? 1 : s->kernel_size[0];
    p->kernel_w = pointwise ? 1 : s->kernel_size[1];
    p->stride_h = pointwise ? 1 : s->stride[0];
    p->stride_w = pointwise ? 1 : s->stride[1];
    p->dilation_h = pointwise ? 1 : s->dilation[0];
    p->dilation_w = pointwise ? 1 : s->dilation[1];
    st->pad_mode = CONV_PAD_ZEROS;
    if (!pointwise) {
        int64_t pads[4];
        conv_resolve_padding(s, pads);
        if (s->padding_mode == CONV_PAD_ZEROS) {
            p->pad_top = pads[0], p->pad_bottom = pads[1], p->pad_left = pads[2], p->pad_right = pads[3];
        } else {
            st->pad_mode = s->padding_mode;
            memcpy(st->mode_pads, pads, sizeof pads);
        }
    }
    /* A forced "direct" on a SeparableConv2d means both stages; any other
     * forced algorithm names the depthwise stage (or the fused pair). */
    st->forced = s->algorithm;
    if (pointwise && s->algorithm != CONV_ALGO_DIRECT) st->forced = CONV_ALGO_AUTO;
}

static conv_status stage_load_weights(conv_stage *st, const conv_tensor *w, const conv_tensor *b, conv_error *err)
{
    if (!w) return CONV_OK; /* structure only */
    size_t n = conv_tensor_numel(w);
    st->weight = copy_floats(w->data, n);
    if (!st->weight) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory copying weights");
    if (b) {
        st->bias = copy_floats(b->data, (size_t)st->params.out_channels);
        if (!st->bias) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory copying a bias");
    }
    return CONV_OK;
}

/* BatchNorm after a convolution becomes a per-output-channel scale of the
 * weights and a new bias, computed in double: y = (conv(x) + b - mean) *
 * gamma / sqrt(var + eps) + beta. */
static conv_status fold_batchnorm(conv_stage *st, const conv_layer_spec *bn, const conv_tensor *gamma,
                                  const conv_tensor *beta, const conv_tensor *mean, const conv_tensor *var,
                                  conv_error *err)
{
    if (!st->weight) return CONV_OK;
    int64_t oc_n = st->params.out_channels;
    size_t per_oc =
        (size_t)(st->params.in_channels / st->params.groups * st->params.kernel_h * st->params.kernel_w);
    if (!st->bias) {
        st->bias = conv_aligned_alloc((size_t)oc_n * sizeof(float));
        if (!st->bias) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory folding BatchNorm");
        memset(st->bias, 0, (size_t)oc_n * sizeof(float));
    }
    for (int64_t oc = 0; oc < oc_n; oc++) {
        double g = gamma ? gamma->data[oc] : 1.0, bt = beta ? beta->data[oc] : 0.0;
        double a = g / sqrt((double)var->data[oc] + bn->eps);
        float *w = st->weight + (size_t)oc * per_oc;
        for (size_t i = 0; i < per_oc; i++) w[i] = (float)((double)w[i] * a);
        st->bias[oc] = (float)(((double)st->bias[oc] - mean->data[oc]) * a + bt);
    }
    return CONV_OK;
}

static conv_status stage_pack(conv_stage *st, const conv_model_options *opts, conv_error *err)
{
    if (!st->weight) return CONV_OK;
    for (int a = 0; a < CONV_ALGO_COUNT; a++) {
        const conv_kernel *k = conv_kernel_for((conv_algorithm)a);
        if (!k || !k->pack || !k->supports(&st->params)) continue;
        if (a == CONV_ALGO_WINOGRAD && !opts->allow_winograd) continue;
        conv_status s = k->pack(&st->params, st->weight, st->bias, &st->packed[a], err);
        if (s) return s;
    }
    return CONV_OK;
}

static bool is_activation(const conv_layer_spec *s)
{
    return s->type == CONV_LAYER_RELU || s->type == CONV_LAYER_RELU6;
}

static conv_activation activation_of(const conv_layer_spec *s)
{
    return s->type == CONV_LAYER_RELU6 ? CONV_ACT_RELU6 : CONV_ACT_RELU;
}

/* Folds a BatchNorm that directly follows layer `i` into `st`, then fuses an
 * activation that follows; returns the last layer absorbed. */
static conv_status absorb_followers(conv_model *m, const weight_table *tables, size_t i, conv_stage *st,
                                    size_t *last, conv_error *err)
{
    size_t j = i + 1;
    *last = i;
    if (m->opts.fold_batchnorm && j < m->n_layers && m->layers[j].type == CONV_LAYER_BATCHNORM2D &&
        m->layers[j].num_features == st->params.out_channels) {
        conv_status s = fold_batchnorm(st, &m->layers[j], param(m, tables, j, "weight"), param(m, tables, j, "bias"),
                                       param(m, tables, j, "running_mean"), param(m, tables, j, "running_var"), err);
        if (s) return s;
        m->fused_into[j] = (int)i;
        *last = j++;
    }
    if (m->opts.fuse && j < m->n_layers && is_activation(&m->layers[j])) {
        st->params.activation = activation_of(&m->layers[j]);
        m->fused_into[j] = (int)i;
        *last = j;
    }
    return CONV_OK;
}

static bool fusable_choice(conv_algorithm a) { return a == CONV_ALGO_AUTO || a == CONV_ALGO_FUSED_SEPARABLE; }

/* Does depthwise Conv2d layer i (its BatchNorm and activation already
 * absorbed) feed layer j, a 1x1 stride-1 unpadded ungrouped Conv2d, so the
 * two can run as a fused pair? Fused when fusion is on or either layer
 * forces "fused_separable", unless either forces another algorithm. */
static bool pairs_with_pointwise(const conv_model *m, size_t i, size_t j)
{
    const conv_layer_spec *dw = &m->layers[i], *pw = &m->layers[j];
    if (dw->type != CONV_LAYER_CONV2D || pw->type != CONV_LAYER_CONV2D) return false;
    if (dw->groups != dw->in_channels || !fusable_choice(dw->algorithm) || !fusable_choice(pw->algorithm))
        return false;
    if (!m->opts.fuse && dw->algorithm != CONV_ALGO_FUSED_SEPARABLE && pw->algorithm != CONV_ALGO_FUSED_SEPARABLE)
        return false;
    int64_t pads[4];
    conv_resolve_padding(pw, pads);
    return pw->kernel_size[0] == 1 && pw->kernel_size[1] == 1 && pw->stride[0] == 1 && pw->stride[1] == 1 &&
           pads[0] == 0 && pads[1] == 0 && pads[2] == 0 && pads[3] == 0 && pw->groups == 1 &&
           pw->in_channels == dw->out_channels;
}

/* Makes op (a depthwise Conv2d) a fused pair with the 1x1 Conv2d at layer
 * j and what that absorbs; every absorbed layer counts as computed by op. */
static conv_status compile_pointwise_partner(conv_model *m, const weight_table *tables, model_op *op, size_t j,
                                             conv_error *err)
{
    const conv_layer_spec *pw = &m->layers[j];
    conv_stage *st = &op->stage[1];
    conv_status s;
    stage_params(st, pw, pw->in_channels, pw->out_channels, 1, true);
    if ((s = stage_load_weights(st, param(m, tables, j, "weight"), param(m, tables, j, "bias"), err)) ||
        (s = absorb_followers(m, tables, j, st, &op->last_layer, err)) || (s = stage_pack(st, &m->opts, err)))
        return s;
    for (size_t l = op->layer + 1; l <= op->last_layer; l++) m->fused_into[l] = (int)op->layer;
    op->kind = OP_SEPARABLE;
    op->fused = true;
    op->fuse_forced = m->layers[op->layer].algorithm == CONV_ALGO_FUSED_SEPARABLE ||
                      pw->algorithm == CONV_ALGO_FUSED_SEPARABLE;
    return CONV_OK;
}

static conv_status compile_layer(conv_model *m, const weight_table *tables, size_t i, model_op *op, size_t *next,
                                 conv_error *err)
{
    const conv_layer_spec *s = &m->layers[i];
    conv_status st = CONV_OK;
    memset(op, 0, sizeof *op);
    op->layer = op->last_layer = i;
    switch (s->type) {
    case CONV_LAYER_CONV2D:
        op->kind = OP_CONV;
        stage_params(&op->stage[0], s, s->in_channels, s->out_channels, s->groups, false);
        if ((st = stage_load_weights(&op->stage[0], param(m, tables, i, "weight"), param(m, tables, i, "bias"), err)))
            return st;
        if ((st = absorb_followers(m, tables, i, &op->stage[0], &op->last_layer, err))) return st;
        if ((st = stage_pack(&op->stage[0], &m->opts, err))) return st;
        if (op->last_layer + 1 < m->n_layers && pairs_with_pointwise(m, i, op->last_layer + 1) &&
            (st = compile_pointwise_partner(m, tables, op, op->last_layer + 1, err)))
            return st;
        break;
    case CONV_LAYER_SEPARABLE_CONV2D: {
        int64_t mid = s->in_channels * s->depth_multiplier;
        op->kind = OP_SEPARABLE;
        stage_params(&op->stage[0], s, s->in_channels, mid, s->in_channels, false);
        stage_params(&op->stage[1], s, mid, s->out_channels, 1, true);
        if ((st = stage_load_weights(&op->stage[0], param(m, tables, i, "depthwise.weight"),
                                     param(m, tables, i, "depthwise.bias"), err)) ||
            (st = stage_load_weights(&op->stage[1], param(m, tables, i, "pointwise.weight"),
                                     param(m, tables, i, "pointwise.bias"), err)))
            return st;
        if ((st = absorb_followers(m, tables, i, &op->stage[1], &op->last_layer, err))) return st;
        if ((st = stage_pack(&op->stage[0], &m->opts, err)) || (st = stage_pack(&op->stage[1], &m->opts, err)))
            return st;
        /* fusable by default (the plan chooses per shape); any other forced
         * algorithm names the unfused depthwise stage */
        op->fuse_forced = s->algorithm == CONV_ALGO_FUSED_SEPARABLE;
        op->fused = op->fuse_forced || (s->algorithm == CONV_ALGO_AUTO && m->opts.fuse);
        break;
    }
    case CONV_LAYER_BATCHNORM2D: {
        op->kind = OP_BATCHNORM;
        const conv_tensor *mean = param(m, tables, i, "running_mean");
        if (!mean) break; /* structure only */
        const conv_tensor *var = param(m, tables, i, "running_var");
        const conv_tensor *gamma = param(m, tables, i, "weight"), *beta = param(m, tables, i, "bias");
        size_t c = (size_t)s->num_features;
        op->scale = conv_aligned_alloc(c * sizeof(float));
        op->shift = conv_aligned_alloc(c * sizeof(float));
        if (!op->scale || !op->shift) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory loading BatchNorm2d");
        for (size_t k = 0; k < c; k++) {
            double a = (gamma ? gamma->data[k] : 1.0) / sqrt((double)var->data[k] + s->eps);
            op->scale[k] = (float)a;
            op->shift[k] = (float)((beta ? beta->data[k] : 0.0) - mean->data[k] * a);
        }
        break;
    }
    case CONV_LAYER_RELU:
    case CONV_LAYER_RELU6:
        op->kind = OP_ACTIVATION;
        op->act = activation_of(s);
        break;
    case CONV_LAYER_MAXPOOL2D: op->kind = OP_MAXPOOL; break;
    case CONV_LAYER_AVGPOOL2D: op->kind = OP_AVGPOOL; break;
    case CONV_LAYER_TYPE_COUNT: break;
    }
    *next = op->last_layer + 1;
    return CONV_OK;
}

conv_status conv_model_create(const conv_layer_spec *layers, size_t n_layers, const conv_named_tensor *weights,
                              size_t n_weights, const conv_model_options *opts, conv_model **out, conv_error *err)
{
    *out = NULL;
    if (n_layers == 0) return conv_fail(err, CONV_INVALID_PARAMETER, "a model needs at least one layer");
    if (n_layers > 65536) return conv_fail(err, CONV_LIMIT_EXCEEDED, "%zu layers is more than 65536", n_layers);
    for (size_t i = 0; i < n_layers; i++) {
        conv_error e;
        conv_status s = conv_layer_spec_validate(&layers[i], &e);
        if (s) return conv_fail(err, s, "layers[%zu] (%s): %s", i, conv_layer_type_name(layers[i].type), e.message);
    }
    conv_model *m = calloc(1, sizeof *m);
    if (!m) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating a model");
    if (opts) m->opts = *opts;
    else conv_model_options_init(&m->opts);
    m->n_layers = n_layers;
    m->layers = malloc(n_layers * sizeof *m->layers);
    m->fused_into = malloc(n_layers * sizeof *m->fused_into);
    m->ops = calloc(n_layers, sizeof *m->ops);
    weight_table *tables = m->opts.structure_only ? NULL : calloc(n_layers, sizeof *tables);
    conv_status s = CONV_OK;
    if (!m->layers || !m->fused_into || !m->ops || (!m->opts.structure_only && !tables)) {
        s = conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating a model");
        goto fail;
    }
    memcpy(m->layers, layers, n_layers * sizeof *layers);
    for (size_t i = 0; i < n_layers; i++) m->fused_into[i] = -1;
    if (m->opts.autotune && !m->opts.structure_only) {
        m->tune = calloc(1, sizeof *m->tune);
        if (!m->tune || pthread_mutex_init(&m->tune->lock, NULL) != 0) {
            free(m->tune);
            m->tune = NULL;
            s = conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory creating a model");
            goto fail;
        }
    }
    if (tables && (s = match_weights(m, weights, n_weights, tables, err))) goto fail;
    for (size_t i = 0; i < n_layers;) {
        size_t next = i + 1;
        s = compile_layer(m, tables, i, &m->ops[m->n_ops], &next, err);
        m->n_ops++; /* counted even on failure so destroy frees what it holds */
        if (s) goto fail;
        i = next;
    }
    free(tables);
    *out = m;
    return CONV_OK;
fail:
    free(tables);
    conv_model_destroy(m);
    return s;
}

/* ------------------------------------------------------------------ plan */

static conv_dims dims_of(const int64_t s[4]) { return (conv_dims){s[0], s[1], s[2], s[3]}; }

static bool activation_bytes(const conv_dims *d, size_t *bytes)
{
    int64_t v[4] = {d->n, d->c, d->h, d->w};
    size_t n;
    return conv_dims_product(v, 4, &n) && conv_size_mul(n, sizeof(float), bytes);
}

static bool padded_dims(const conv_stage *st, const conv_dims *in, conv_dims *out)
{
    *out = *in;
    if (st->pad_mode == CONV_PAD_ZEROS) return false;
    out->h = in->h + st->mode_pads[0] + st->mode_pads[1];
    out->w = in->w + st->mode_pads[2] + st->mode_pads[3];
    return true;
}

static double now_ms(void);

/* Best of one warm-up and up to three timed calls of run(ctx), in ms. */
static double time_runs(void (*run)(const void *ctx), const void *ctx)
{
    double t0 = now_ms();
    run(ctx);
    double t = now_ms() - t0;
    for (int r = 0; r < 3 && t < 50.0; r++) {
        t0 = now_ms();
        run(ctx);
        double dt = now_ms() - t0;
        if (dt < t) t = dt;
    }
    return t;
}

/* Tuning input: small normal values (denormals would slow some kernels unfairly). */
static void fill_tuning_input(float *x, size_t bytes)
{
    for (size_t i = 0; i < bytes / sizeof(float); i++) x[i] = (float)(i % 17) * 0.0625f - 0.5f;
}

typedef struct kernel_run {
    const conv_kernel *kernel;
    conv_run_args args;
} kernel_run;

static void run_kernel(const void *ctx)
{
    const kernel_run *r = ctx;
    r->kernel->run(&r->args);
}

/* Every kernel that can run the stage, on scratch input, output and
 * workspace with the stage's weights: one warm-up run, then the minimum of
 * up to three (one when a run takes over 50 ms). Single-threaded: plans know
 * no pool. `*algo` holds the heuristic's choice on entry and keeps it when
 * the scratch buffers cannot be allocated (tuning is an optimisation). */
static void time_candidates(const conv_model *m, const conv_stage *st, const conv_dims *in, conv_algorithm *algo)
{
    const conv_params *p = &st->params;
    conv_dims out = {in->n, p->out_channels,
                     (in->h + p->pad_top + p->pad_bottom - p->dilation_h * (p->kernel_h - 1) - 1) / p->stride_h + 1,
                     (in->w + p->pad_left + p->pad_right - p->dilation_w * (p->kernel_w - 1) - 1) / p->stride_w + 1};
    size_t in_bytes, out_bytes, ws_bytes = 0;
    if (!activation_bytes(in, &in_bytes) || !activation_bytes(&out, &out_bytes)) return;
    for (int a = 0; a < CONV_ALGO_COUNT; a++) {
        const conv_kernel *k = conv_kernel_for((conv_algorithm)a);
        size_t b;
        if (!k || !k->supports(p) || (a == CONV_ALGO_WINOGRAD && !m->opts.allow_winograd)) continue;
        if (k->pack && !st->packed[a]) continue;
        if (!k->workspace_size(p, in, &out, 1, &b)) return;
        if (b > ws_bytes) ws_bytes = b;
    }
    float *x = conv_aligned_alloc(in_bytes), *y = conv_aligned_alloc(out_bytes);
    void *ws = conv_aligned_alloc(ws_bytes);
    if (x && y && ws) {
        fill_tuning_input(x, in_bytes);
        double best = 0;
        for (int a = 0; a < CONV_ALGO_COUNT; a++) {
            const conv_kernel *k = conv_kernel_for((conv_algorithm)a);
            if (!k || !k->supports(p) || (a == CONV_ALGO_WINOGRAD && !m->opts.allow_winograd)) continue;
            if (k->pack && !st->packed[a]) continue;
            kernel_run run = {k, {.params = p, .packed = st->packed[a], .weight = st->weight, .bias = st->bias,
                                  .input = x, .output = y, .in = *in, .out = out, .workspace = ws, .pool = NULL}};
            double t = time_runs(run_kernel, &run);
            if (best == 0 || t < best) best = t, *algo = (conv_algorithm)a;
        }
    }
    conv_aligned_free(x);
    conv_aligned_free(y);
    conv_aligned_free(ws);
}

typedef struct pair_runs {
    fused_sep_args fused;
    kernel_run stage[2];
} pair_runs;

static void run_pair_fused(const void *ctx) { conv_fused_separable_run(&((const pair_runs *)ctx)->fused); }

static void run_pair_stages(const void *ctx)
{
    const pair_runs *r = ctx;
    run_kernel(&r->stage[0]);
    run_kernel(&r->stage[1]);
}

/* The fused pair against its two planned stages (pl->algo) on scratch
 * buffers, single-threaded like time_candidates: `*algo` becomes
 * CONV_ALGO_FUSED_SEPARABLE when the fused run was the faster, else
 * CONV_ALGO_AUTO; it keeps its value when scratch cannot be allocated. */
static void time_pair(const model_op *op, const op_plan *pl, conv_algorithm *algo)
{
    const conv_stage *dw = &op->stage[0], *pw = &op->stage[1];
    conv_dims in;
    padded_dims(dw, &pl->in, &in);
    size_t in_bytes, mid_bytes, out_bytes, ws_bytes, b;
    if (!activation_bytes(&in, &in_bytes) || !activation_bytes(&pl->mid, &mid_bytes) ||
        !activation_bytes(&pl->out, &out_bytes) || !conv_fused_separable_workspace(&dw->params, &pl->mid, 1, &ws_bytes))
        return;
    const conv_kernel *k0 = conv_kernel_for(pl->algo[0]), *k1 = conv_kernel_for(pl->algo[1]);
    if (!k0->workspace_size(&dw->params, &in, &pl->mid, 1, &b)) return;
    if (b > ws_bytes) ws_bytes = b;
    if (!k1->workspace_size(&pw->params, &pl->mid, &pl->out, 1, &b)) return;
    if (b > ws_bytes) ws_bytes = b;
    float *x = conv_aligned_alloc(in_bytes), *mid = conv_aligned_alloc(mid_bytes), *y = conv_aligned_alloc(out_bytes);
    void *ws = conv_aligned_alloc(ws_bytes);
    if (x && mid && y && ws) {
        fill_tuning_input(x, in_bytes);
        pair_runs r = {
            .fused = {.dw = &dw->params, .pw = &pw->params, .dw_weight = dw->weight, .dw_bias = dw->bias,
                      .dw_packed = dw->packed[CONV_ALGO_DEPTHWISE], .pw_weight = pw->weight, .pw_bias = pw->bias,
                      .pw_packed = pw->packed[CONV_ALGO_GEMM_1X1], .input = x, .output = y, .in = in,
                      .mid = pl->mid, .out = pl->out, .workspace = ws},
            .stage = {{k0, {.params = &dw->params, .packed = dw->packed[pl->algo[0]], .weight = dw->weight,
                            .bias = dw->bias, .input = x, .output = mid, .in = in, .out = pl->mid, .workspace = ws}},
                      {k1, {.params = &pw->params, .packed = pw->packed[pl->algo[1]], .weight = pw->weight,
                            .bias = pw->bias, .input = mid, .output = y, .in = pl->mid, .out = pl->out,
                            .workspace = ws}}},
        };
        double fused = time_runs(run_pair_fused, &r), stages = time_runs(run_pair_stages, &r);
        *algo = fused <= stages ? CONV_ALGO_FUSED_SEPARABLE : CONV_ALGO_AUTO;
    }
    conv_aligned_free(x);
    conv_aligned_free(mid);
    conv_aligned_free(y);
    conv_aligned_free(ws);
}

/* The cached choice for (stage, input shape), timing the candidates the
 * first time under the cache lock; with `pair` (op and pl given), the
 * choice between the fused pair and its two stages (pl->algo). */
static conv_status autotune_stage(const conv_model *m, const conv_stage *st, const conv_dims *in, conv_algorithm *algo,
                                  bool pair, const model_op *op, const op_plan *pl, conv_error *err)
{
    tune_cache *c = m->tune;
    conv_status s = CONV_OK;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        const tuned_choice *t = &c->choices[i];
        if (t->stage == st && t->pair == pair && t->in.n == in->n && t->in.c == in->c && t->in.h == in->h &&
            t->in.w == in->w) {
            *algo = t->algo;
            goto done;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        tuned_choice *grown = realloc(c->choices, cap * sizeof *grown);
        if (!grown) {
            s = conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory caching an autotuned algorithm");
            goto done;
        }
        c->choices = grown;
        c->cap = cap;
    }
    if (pair)
        time_pair(op, pl, algo);
    else
        time_candidates(m, st, in, algo);
    c->choices[c->n++] = (tuned_choice){.stage = st, .in = *in, .pair = pair, .algo = *algo};
done:
    pthread_mutex_unlock(&c->lock);
    return s;
}

static conv_status plan_stage(const conv_model *m, const conv_stage *st, const conv_dims *in, conv_algorithm *algo,
                              size_t *pad_bytes, conv_error *err)
{
    conv_dims padded;
    if (padded_dims(st, in, &padded)) {
        size_t bytes;
        if (!activation_bytes(&padded, &bytes)) return conv_fail(err, CONV_LIMIT_EXCEEDED, "padded input size overflows");
        if (bytes > *pad_bytes) *pad_bytes = bytes;
    }
    conv_status s = conv_select_algorithm(&st->params, &padded, st->forced, m->opts.allow_winograd, algo, err);
    if (s || !m->tune || st->forced != CONV_ALGO_AUTO || !st->weight) return s;
    return autotune_stage(m, st, &padded, algo, false, NULL, NULL, err);
}

/* A fusable pair: fused when forced, else its two stages planned as usual
 * and then fused when conv_fused_separable_pays (or, autotuning, when the
 * fused run was the faster). Fused needs the padded copy its depthwise stage
 * may need and no mid tensor. */
static conv_status plan_separable(const conv_model *m, const model_op *op, op_plan *pl, size_t *pad_bytes,
                                  conv_error *err)
{
    const conv_params *dw = &op->stage[0].params, *pw = &op->stage[1].params;
    conv_status s;
    pl->fused = op->fuse_forced;
    if (!op->fuse_forced) {
        if ((s = plan_stage(m, &op->stage[0], &pl->in, &pl->algo[0], pad_bytes, err)) ||
            (s = plan_stage(m, &op->stage[1], &pl->mid, &pl->algo[1], pad_bytes, err)))
            return s;
        if (!conv_fused_separable_supports(dw, pw)) return CONV_OK;
        conv_algorithm choice = conv_fused_separable_pays(dw, pw, &pl->mid) ? CONV_ALGO_FUSED_SEPARABLE : CONV_ALGO_AUTO;
        if (m->tune && op->stage[0].weight && op->stage[1].weight &&
            (s = autotune_stage(m, &op->stage[0], &pl->in, &choice, true, op, pl, err)))
            return s;
        pl->fused = choice == CONV_ALGO_FUSED_SEPARABLE;
        if (!pl->fused) return CONV_OK;
    }
    conv_dims padded;
    if (padded_dims(&op->stage[0], &pl->in, &padded)) {
        size_t bytes;
        if (!activation_bytes(&padded, &bytes)) return conv_fail(err, CONV_LIMIT_EXCEEDED, "padded input size overflows");
        if (bytes > *pad_bytes) *pad_bytes = bytes;
    }
    if (!conv_fused_separable_supports(dw, pw))
        return conv_fail(err, CONV_UNSUPPORTED_ALGORITHM, "algorithm \"fused_separable\" cannot run this pair");
    pl->algo[0] = pl->algo[1] = CONV_ALGO_FUSED_SEPARABLE;
    return CONV_OK;
}

static void set_standard_equivalent(conv_layer_stats *ls, const conv_layer_spec *s)
{
    int64_t kk = s->kernel_size[0] * s->kernel_size[1];
    ls->has_standard_equivalent = true;
    ls->standard_macs = ls->output_shape[0] * s->out_channels * ls->output_shape[2] * ls->output_shape[3] *
                        s->in_channels * kk;
    ls->standard_flops = 2 * ls->standard_macs;
    ls->textbook_ratio = 1.0 / (double)s->out_channels + 1.0 / (double)kk;
    ls->flop_ratio = ls->standard_flops ? (double)ls->flops / (double)ls->standard_flops : 0.0;
}

/* Per-layer static statistics: costs by the conventions in conv.h and the
 * receptive field grown by each windowed layer: rf += (eff_kernel-1)*jump,
 * jump *= stride. */
static void layer_statistics(const conv_layer_spec *s, conv_layer_stats *ls, int64_t rf[2], int64_t jump[2])
{
    const int64_t *o = ls->output_shape;
    int64_t out_pixels = o[0] * o[2] * o[3];
    int64_t kk = s->kernel_size[0] * s->kernel_size[1];
    int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, dil[2] = {1, 1};
    switch (s->type) {
    case CONV_LAYER_CONV2D:
        ls->params = s->out_channels * (s->in_channels / s->groups) * kk + (s->bias ? s->out_channels : 0);
        ls->macs = out_pixels * s->out_channels * (s->in_channels / s->groups) * kk;
        ls->flops = 2 * ls->macs;
        if (s->groups > 1 && s->groups == s->in_channels) set_standard_equivalent(ls, s);
        break;
    case CONV_LAYER_SEPARABLE_CONV2D: {
        int64_t mid = s->in_channels * s->depth_multiplier;
        ls->params = mid * kk + mid * s->out_channels + (s->bias ? mid + s->out_channels : 0);
        ls->macs = out_pixels * mid * kk + out_pixels * s->out_channels * mid;
        ls->flops = 2 * ls->macs;
        set_standard_equivalent(ls, s);
        break;
    }
    case CONV_LAYER_BATCHNORM2D:
        ls->params = s->affine ? 2 * s->num_features : 0;
        ls->macs = ls->fused_into >= 0 ? 0 : out_pixels * o[1];
        ls->flops = 2 * ls->macs;
        break;
    case CONV_LAYER_AVGPOOL2D:
        ls->macs = out_pixels * o[1] * kk;
        ls->flops = 2 * ls->macs;
        break;
    default: break;
    }
    if (s->type == CONV_LAYER_CONV2D || s->type == CONV_LAYER_SEPARABLE_CONV2D || s->type == CONV_LAYER_MAXPOOL2D ||
        s->type == CONV_LAYER_AVGPOOL2D) {
        bool pool = s->type == CONV_LAYER_MAXPOOL2D || s->type == CONV_LAYER_AVGPOOL2D;
        int64_t pstride[2];
        if (pool) conv_pool_stride(s, pstride);
        for (int i = 0; i < 2; i++) {
            kernel[i] = s->kernel_size[i];
            stride[i] = pool ? pstride[i] : s->stride[i];
            dil[i] = s->type == CONV_LAYER_AVGPOOL2D ? 1 : s->dilation[i];
        }
    }
    for (int i = 0; i < 2; i++) {
        rf[i] += dil[i] * (kernel[i] - 1) * jump[i];
        jump[i] *= stride[i];
        ls->receptive_field[i] = rf[i];
        ls->jump[i] = jump[i];
    }
}

void conv_plan_destroy(conv_plan *plan)
{
    if (!plan) return;
    free(plan->ops);
    free(plan->stats.layers);
    free(plan);
}

conv_status conv_plan_create(const conv_model *m, const int64_t input_shape[4], conv_plan **out, conv_error *err)
{
    *out = NULL;
    conv_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory planning a model");
    plan->model = m;
    plan->ops = calloc(m->n_ops, sizeof *plan->ops);
    plan->stats.layers = calloc(m->n_layers, sizeof *plan->stats.layers);
    conv_status s = CONV_OK;
    if (!plan->ops || !plan->stats.layers) {
        s = conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory planning a model");
        goto fail;
    }
    conv_model_stats *ms = &plan->stats;
    ms->n_layers = m->n_layers;
    memcpy(ms->input_shape, input_shape, sizeof ms->input_shape);
    int64_t shape[4], rf[2] = {1, 1}, jump[2] = {1, 1};
    memcpy(shape, input_shape, sizeof shape);
    {
        size_t bytes;
        conv_dims d = dims_of(shape);
        for (int i = 0; i < 4; i++)
            if (shape[i] <= 0) {
                char buf[96];
                conv_shape_format(shape, 4, buf, sizeof buf);
                s = conv_fail(err, CONV_INVALID_SHAPE, "input shape %s must have positive dimensions", buf);
                goto fail;
            }
        if (!activation_bytes(&d, &bytes)) {
            s = conv_fail(err, CONV_LIMIT_EXCEEDED, "input size overflows");
            goto fail;
        }
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        conv_layer_stats *ls = &ms->layers[l];
        conv_error e;
        memcpy(ls->input_shape, shape, sizeof shape);
        s = conv_layer_output_shape(&m->layers[l], shape, ls->output_shape, &e);
        if (s) {
            char buf[96];
            conv_shape_format(shape, 4, buf, sizeof buf);
            s = conv_fail(err, s, "layers[%zu] (%s) with input %s: %s", l, conv_layer_type_name(m->layers[l].type),
                          buf, e.message);
            goto fail;
        }
        ls->type = m->layers[l].type;
        ls->fused_into = m->fused_into[l];
        layer_statistics(&m->layers[l], ls, rf, jump);
        memcpy(shape, ls->output_shape, sizeof shape);
        /* every activation must be addressable; costs must not overflow */
        size_t bytes;
        conv_dims d = dims_of(shape);
        if (!activation_bytes(&d, &bytes) || ls->macs < 0) {
            s = conv_fail(err, CONV_LIMIT_EXCEEDED, "layers[%zu]: output size overflows", l);
            goto fail;
        }
        if (bytes > plan->act_bytes) plan->act_bytes = bytes;
        ms->params += ls->params;
        ms->macs += ls->macs;
    }
    ms->flops = 2 * ms->macs;
    memcpy(ms->output_shape, shape, sizeof shape);
    memcpy(ms->receptive_field, rf, sizeof rf);
    memcpy(ms->jump, jump, sizeof jump);

    for (size_t i = 0; i < m->n_ops; i++) {
        const model_op *op = &m->ops[i];
        op_plan *pl = &plan->ops[i];
        conv_layer_stats *ls = &ms->layers[op->layer];
        pl->in = dims_of(ls->input_shape);
        pl->out = dims_of(ms->layers[op->last_layer].output_shape);
        if (op->kind == OP_CONV) {
            if ((s = plan_stage(m, &op->stage[0], &pl->in, &pl->algo[0], &plan->pad_bytes, err))) goto fail;
            ls->algorithm = pl->algo[0];
            snprintf(ls->execution, sizeof ls->execution, "%s", conv_algorithm_name(pl->algo[0]));
        } else if (op->kind == OP_SEPARABLE) {
            pl->mid = pl->out;
            pl->mid.c = op->stage[0].params.out_channels;
            if (op->fused) {
                if ((s = plan_separable(m, op, pl, &plan->pad_bytes, err))) goto fail;
            } else if ((s = plan_stage(m, &op->stage[0], &pl->in, &pl->algo[0], &plan->pad_bytes, err)) ||
                       (s = plan_stage(m, &op->stage[1], &pl->mid, &pl->algo[1], &plan->pad_bytes, err))) {
                goto fail;
            }
            ls->algorithm = pl->algo[0];
            if (pl->fused) {
                snprintf(ls->execution, sizeof ls->execution, "%s", conv_algorithm_name(CONV_ALGO_FUSED_SEPARABLE));
            } else {
                size_t bytes;
                if (!activation_bytes(&pl->mid, &bytes)) {
                    s = conv_fail(err, CONV_LIMIT_EXCEEDED, "layers[%zu]: depthwise output size overflows", op->layer);
                    goto fail;
                }
                if (bytes > plan->mid_bytes) plan->mid_bytes = bytes;
                snprintf(ls->execution, sizeof ls->execution, "depthwise:%s+pointwise:%s",
                         conv_algorithm_name(pl->algo[0]), conv_algorithm_name(pl->algo[1]));
            }
            /* a depthwise Conv2d's 1x1 partner: the pair's algorithm (its
             * time stays on the depthwise layer, which ran both) */
            for (size_t l = op->layer + 1; l <= op->last_layer; l++)
                if (m->layers[l].type == CONV_LAYER_CONV2D) ms->layers[l].algorithm = pl->algo[1];
        } else {
            snprintf(ls->execution, sizeof ls->execution, "%s",
                     op->kind == OP_MAXPOOL || op->kind == OP_AVGPOOL ? "pool" : "elementwise");
        }
        for (size_t l = op->layer + 1; l <= op->last_layer; l++)
            snprintf(ms->layers[l].execution, sizeof ms->layers[l].execution, "%s",
                     m->layers[l].type == CONV_LAYER_BATCHNORM2D ? "folded"
                     : m->layers[l].type == CONV_LAYER_CONV2D && !pl->fused ? conv_algorithm_name(pl->algo[1])
                                                                             : "fused");
    }
    *out = plan;
    return CONV_OK;
fail:
    conv_plan_destroy(plan);
    return s;
}

void conv_plan_output_shape(const conv_plan *plan, int64_t out_shape[4])
{
    memcpy(out_shape, plan->stats.output_shape, sizeof plan->stats.output_shape);
}

const conv_model_stats *conv_plan_stats(const conv_plan *plan) { return &plan->stats; }

/* Workspace layout: [activation A][activation B][separable mid][padded copy][kernel scratch] */
typedef struct workspace_layout {
    size_t act, mid, pad, kernel, total;
} workspace_layout;

static size_t align_up(size_t v) { return (v + CONV_ALIGNMENT - 1) & ~(size_t)(CONV_ALIGNMENT - 1); }

static bool stage_scratch(const conv_stage *st, conv_algorithm algo, const conv_dims *in, const conv_dims *out,
                          int threads, size_t *bytes)
{
    conv_dims padded;
    padded_dims(st, in, &padded);
    const conv_kernel *k = conv_kernel_for(algo);
    return k->workspace_size(&st->params, &padded, out, threads, bytes);
}

static bool layout_workspace(const conv_plan *plan, int threads, workspace_layout *w)
{
    const conv_model *m = plan->model;
    size_t kernel = 0;
    for (size_t i = 0; i < m->n_ops; i++) {
        const op_plan *pl = &plan->ops[i];
        size_t b;
        if (m->ops[i].kind == OP_CONV) {
            if (!stage_scratch(&m->ops[i].stage[0], pl->algo[0], &pl->in, &pl->out, threads, &b)) return false;
            if (b > kernel) kernel = b;
        } else if (m->ops[i].kind == OP_SEPARABLE && pl->fused) {
            if (!conv_fused_separable_workspace(&m->ops[i].stage[0].params, &pl->mid, threads, &b)) return false;
            if (b > kernel) kernel = b;
        } else if (m->ops[i].kind == OP_SEPARABLE) {
            if (!stage_scratch(&m->ops[i].stage[0], pl->algo[0], &pl->in, &pl->mid, threads, &b)) return false;
            if (b > kernel) kernel = b;
            if (!stage_scratch(&m->ops[i].stage[1], pl->algo[1], &pl->mid, &pl->out, threads, &b)) return false;
            if (b > kernel) kernel = b;
        }
    }
    /* each region is below 2^62 (checked sizes), so aligning cannot wrap */
    w->act = align_up(plan->act_bytes);
    w->mid = align_up(plan->mid_bytes);
    w->pad = align_up(plan->pad_bytes);
    w->kernel = align_up(kernel);
    size_t total = 0;
    return conv_size_add(total, w->act, &total) && conv_size_add(total, w->act, &total) &&
           conv_size_add(total, w->mid, &total) && conv_size_add(total, w->pad, &total) &&
           conv_size_add(total, w->kernel, &total) && ((w->total = total), true);
}

size_t conv_plan_workspace_size(const conv_plan *plan, int threads)
{
    workspace_layout w;
    if (threads < 1) threads = 1;
    return layout_workspace(plan, threads, &w) ? w.total : SIZE_MAX;
}

/* ------------------------------------------------------------------- run */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void run_stage(const conv_stage *st, conv_algorithm algo, const float *src, float *dst, const conv_dims *in,
                      const conv_dims *out, char *ws, const workspace_layout *w, conv_threadpool *pool)
{
    conv_dims padded;
    const float *x = src;
    if (padded_dims(st, in, &padded)) {
        float *copy = (float *)(ws + 2 * w->act + w->mid);
        conv_pad_plane(src, copy, in->n * in->c, in->h, in->w, st->mode_pads, st->pad_mode);
        x = copy;
    }
    conv_run_args args = {
        .params = &st->params,
        .packed = st->packed[algo],
        .weight = st->weight,
        .bias = st->bias,
        .input = x,
        .output = dst,
        .in = padded,
        .out = *out,
        .workspace = ws + 2 * w->act + w->mid + w->pad,
        .pool = pool,
    };
    conv_kernel_for(algo)->run(&args);
}

static void run_fused(const model_op *op, const op_plan *pl, const float *src, float *dst, char *ws,
                      const workspace_layout *w, conv_threadpool *pool)
{
    const conv_stage *dw = &op->stage[0], *pw = &op->stage[1];
    conv_dims padded;
    const float *x = src;
    if (padded_dims(dw, &pl->in, &padded)) {
        float *copy = (float *)(ws + 2 * w->act + w->mid);
        conv_pad_plane(src, copy, pl->in.n * pl->in.c, pl->in.h, pl->in.w, dw->mode_pads, dw->pad_mode);
        x = copy;
    }
    fused_sep_args args = {
        .dw = &dw->params,
        .pw = &pw->params,
        .dw_weight = dw->weight,
        .dw_bias = dw->bias,
        .dw_packed = dw->packed[CONV_ALGO_DEPTHWISE],
        .pw_weight = pw->weight,
        .pw_bias = pw->bias,
        .pw_packed = pw->packed[CONV_ALGO_GEMM_1X1],
        .input = x,
        .output = dst,
        .in = padded,
        .mid = pl->mid,
        .out = pl->out,
        .workspace = ws + 2 * w->act + w->mid + w->pad,
        .pool = pool,
    };
    conv_fused_separable_run(&args);
}

conv_status conv_model_run(const conv_model *m, const conv_plan *plan, const float *input, float *output,
                           void *workspace, conv_threadpool *pool, conv_model_stats *stats, conv_error *err)
{
    if (plan->model != m) return conv_fail(err, CONV_INVALID_STATE, "the plan was made for another model");
    if (m->opts.structure_only)
        return conv_fail(err, CONV_INVALID_STATE, "the model was loaded without weights and cannot run");
    workspace_layout w;
    if (!layout_workspace(plan, conv_threadpool_size(pool), &w))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "workspace size overflows");
    char *ws = workspace;
    float *buf[2] = {(float *)ws, (float *)(ws + w.act)};
    float *mid = (float *)(ws + 2 * w.act);
    if (stats) {
        conv_layer_stats *keep = stats->layers;
        *stats = plan->stats;
        stats->layers = keep;
        memcpy(stats->layers, plan->stats.layers, m->n_layers * sizeof *keep);
    }
    const float *src = input;
    double total_start = now_ms();
    for (size_t i = 0; i < m->n_ops; i++) {
        const model_op *op = &m->ops[i];
        const op_plan *pl = &plan->ops[i];
        float *dst = i + 1 == m->n_ops ? output : (src == buf[0] ? buf[1] : buf[0]);
        double start = stats ? now_ms() : 0;
        size_t numel = (size_t)(pl->out.n * pl->out.c * pl->out.h * pl->out.w);
        switch (op->kind) {
        case OP_CONV: run_stage(&op->stage[0], pl->algo[0], src, dst, &pl->in, &pl->out, ws, &w, pool); break;
        case OP_SEPARABLE:
            if (pl->fused) {
                run_fused(op, pl, src, dst, ws, &w, pool);
                break;
            }
            run_stage(&op->stage[0], pl->algo[0], src, mid, &pl->in, &pl->mid, ws, &w, pool);
            run_stage(&op->stage[1], pl->algo[1], mid, dst, &pl->mid, &pl->out, ws, &w, pool);
            break;
        case OP_BATCHNORM: conv_batchnorm_run(src, dst, &pl->in, op->scale, op->shift, pool); break;
        case OP_ACTIVATION: conv_activation_run(src, dst, numel, op->act); break;
        case OP_MAXPOOL: conv_maxpool_run(&m->layers[op->layer], src, dst, &pl->in, &pl->out, pool); break;
        case OP_AVGPOOL: conv_avgpool_run(&m->layers[op->layer], src, dst, &pl->in, &pl->out, pool); break;
        }
        if (stats) stats->layers[op->layer].compute_ms = now_ms() - start;
        src = dst;
    }
    if (stats) stats->compute_ms = now_ms() - total_start;
    return CONV_OK;
}

conv_status conv_model_run_alloc(const conv_model *m, const conv_tensor *input, conv_tensor *output,
                                 conv_threadpool *pool, conv_model_stats *stats, conv_error *err)
{
    memset(output, 0, sizeof *output);
    if (input->rank != 4) {
        char buf[96];
        conv_shape_format(input->dims, input->rank, buf, sizeof buf);
        return conv_fail(err, CONV_INVALID_SHAPE, "input must be 4-dimensional NCHW, got shape %s", buf);
    }
    conv_plan *plan;
    conv_status s = conv_plan_create(m, input->dims, &plan, err);
    if (s) return s;
    int64_t out_shape[4];
    conv_plan_output_shape(plan, out_shape);
    size_t ws_bytes = conv_plan_workspace_size(plan, conv_threadpool_size(pool));
    void *ws = ws_bytes == SIZE_MAX ? NULL : conv_aligned_alloc(ws_bytes);
    if (!ws) {
        conv_plan_destroy(plan);
        return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory allocating a %zu-byte workspace", ws_bytes);
    }
    s = conv_tensor_alloc(output, 4, out_shape, err);
    if (!s) s = conv_model_run(m, plan, input->data, output->data, ws, pool, stats, err);
    if (s) conv_tensor_free(output);
    conv_aligned_free(ws);
    conv_plan_destroy(plan);
    return s;
}

conv_status conv_model_stats_copy(const conv_model_stats *src, conv_model_stats *dst, conv_error *err)
{
    *dst = *src;
    dst->layers = malloc((src->n_layers ? src->n_layers : 1) * sizeof *dst->layers);
    if (!dst->layers) return conv_fail(err, CONV_OUT_OF_MEMORY, "out of memory copying statistics");
    memcpy(dst->layers, src->layers, src->n_layers * sizeof *dst->layers);
    return CONV_OK;
}

void conv_model_stats_free(conv_model_stats *stats)
{
    if (!stats) return;
    free(stats->layers);
    stats->layers = NULL;
    stats->n_layers = 0;
}
