/* conv.h — the public API of convd's computation core: tensors, layer specs,
 * sequential models, algorithms and statistics. No I/O, JSON or HTTP here. */
#ifndef CONVD_CORE_CONV_H
#define CONVD_CORE_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONVD_VERSION "0.1.0"

/* ---------------------------------------------------------------- status */

/* Stable values: the server maps invalid_* to 422, limit_exceeded to 422,
 * out_of_memory to 503 and the rest to 500. */
typedef enum conv_status {
    CONV_OK = 0,
    CONV_INVALID_PARAMETER = 1,     /* a layer argument breaks one of torch's rules */
    CONV_INVALID_SHAPE = 2,         /* the input shape does not fit the layer or model */
    CONV_INVALID_WEIGHTS = 3,       /* missing, unexpected or mis-shaped weight tensor */
    CONV_UNSUPPORTED_ALGORITHM = 4, /* a forced algorithm that cannot run this layer */
    CONV_LIMIT_EXCEEDED = 5,        /* a size overflows or passes the caller's limit */
    CONV_OUT_OF_MEMORY = 6,
    CONV_INVALID_STATE = 7,         /* API calls out of order */
} conv_status;

/* Caller-owned error message; every failing call fills it with one line that
 * names the field and the rule. A NULL conv_error is allowed. */
typedef struct conv_error {
    char message[512];
} conv_error;

const char *conv_status_name(conv_status status);

/* printf-style: fills err (if non-NULL) and returns status, so a failing
 * check is `return conv_fail(err, CONV_INVALID_PARAMETER, "...", ...)`. */
conv_status conv_fail(conv_error *err, conv_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------- checked sizes */

/* Each returns false (and leaves *out untouched) on overflow. Every size
 * derived from user input goes through these. */
bool conv_size_mul(size_t a, size_t b, size_t *out);
bool conv_size_add(size_t a, size_t b, size_t *out);
/* product of n non-negative int64 dims as size_t; false on overflow or a negative dim */
bool conv_dims_product(const int64_t *dims, int n, size_t *out);

/* ---------------------------------------------------------------- tensors */

#define CONV_MAX_RANK 4
#define CONV_ALIGNMENT 64

/* A dense row-major float32 tensor. Activations are NCHW (rank 4); weights
 * are OIHW (rank 4); bias and BatchNorm vectors are rank 1. */
typedef struct conv_tensor {
    int rank;
    int64_t dims[CONV_MAX_RANK]; /* dims[0] is the slowest-varying */
    float *data;                 /* CONV_ALIGNMENT-aligned when allocated here */
    bool owns_data;
} conv_tensor;

/* Allocates zeroed, aligned storage for the given shape. */
conv_status conv_tensor_alloc(conv_tensor *t, int rank, const int64_t *dims, conv_error *err);
/* Wraps caller memory without copying; conv_tensor_free leaves it alone. */
void conv_tensor_wrap(conv_tensor *t, int rank, const int64_t *dims, float *data);
void conv_tensor_free(conv_tensor *t);
size_t conv_tensor_numel(const conv_tensor *t);
/* "[1, 3, 128, 128]" into buf */
void conv_shape_format(const int64_t *dims, int rank, char *buf, size_t len);

void *conv_aligned_alloc(size_t bytes); /* NULL on failure; bytes may be 0 */
void conv_aligned_free(void *p);

/* ------------------------------------------------------------ layer spec */

typedef enum conv_layer_type {
    CONV_LAYER_CONV2D = 0,
    CONV_LAYER_SEPARABLE_CONV2D,
    CONV_LAYER_BATCHNORM2D,
    CONV_LAYER_RELU,
    CONV_LAYER_RELU6,
    CONV_LAYER_MAXPOOL2D,
    CONV_LAYER_AVGPOOL2D,
    CONV_LAYER_TYPE_COUNT
} conv_layer_type;

/* torch.nn class name ("Conv2d") and back; -1 for an unknown name. */
const char *conv_layer_type_name(conv_layer_type type);
int conv_layer_type_from_name(const char *name);

typedef enum conv_padding_kind {
    CONV_PADDING_EXPLICIT = 0, /* padding = int or [h, w] */
    CONV_PADDING_SAME,         /* padding = "same" */
    CONV_PADDING_VALID,        /* padding = "valid" (= 0) */
} conv_padding_kind;

typedef enum conv_padding_mode {
    CONV_PAD_ZEROS = 0,
    CONV_PAD_REFLECT,
    CONV_PAD_REPLICATE,
    CONV_PAD_CIRCULAR,
} conv_padding_mode;

const char *conv_padding_mode_name(conv_padding_mode mode);
int conv_padding_mode_from_name(const char *name); /* -1 if unknown */

typedef enum conv_algorithm {
    CONV_ALGO_AUTO = 0,
    CONV_ALGO_DIRECT,          /* the reference loop nest */
    CONV_ALGO_IM2COL,          /* im2col + cblas_sgemm, one GEMM per group */
    CONV_ALGO_GEMM_1X1,        /* 1x1 stride-1 unpadded: a plain GEMM, no im2col */
    CONV_ALGO_WINOGRAD,
    CONV_ALGO_DEPTHWISE,
    CONV_ALGO_FUSED_SEPARABLE,
    CONV_ALGO_COUNT
} conv_algorithm;

const char *conv_algorithm_name(conv_algorithm algo);
int conv_algorithm_from_name(const char *name); /* -1 if unknown */

/* Every argument of the torch.nn layer it describes. conv_layer_spec_init
 * sets torch's defaults; fields a layer type does not use are ignored. */
typedef struct conv_layer_spec {
    conv_layer_type type;

    /* Conv2d, SeparableConv2d */
    int64_t in_channels;
    int64_t out_channels;
    int64_t kernel_size[2]; /* [h, w]; also MaxPool2d/AvgPool2d */
    int64_t stride[2];      /* pools: {0, 0} means torch's None = kernel_size */
    int64_t padding[2];     /* used when padding_kind == CONV_PADDING_EXPLICIT; also pools */
    int64_t dilation[2];    /* also MaxPool2d */
    conv_padding_kind padding_kind;
    conv_padding_mode padding_mode;
    int64_t groups;           /* Conv2d only */
    int64_t depth_multiplier; /* SeparableConv2d only */
    bool bias;
    conv_algorithm algorithm; /* CONV_ALGO_AUTO unless the caller forces one */

    /* BatchNorm2d */
    int64_t num_features;
    double eps;
    bool affine;

    /* MaxPool2d, AvgPool2d */
    bool ceil_mode;
    bool count_include_pad;   /* AvgPool2d */
    int64_t divisor_override; /* AvgPool2d; 0 = None */
} conv_layer_spec;

void conv_layer_spec_init(conv_layer_spec *spec, conv_layer_type type);

/* Checks the spec against torch's constructor rules (no input shape needed). */
conv_status conv_layer_spec_validate(const conv_layer_spec *spec, conv_error *err);

/* Output shape for an NCHW input, enforcing torch's forward-time rules
 * (channel count, kernel fits the padded input, reflect padding < input...). */
conv_status conv_layer_output_shape(const conv_layer_spec *spec, const int64_t in_shape[4],
                                    int64_t out_shape[4], conv_error *err);

/* The weight tensors a layer owns, as state_dict suffixes ("weight", "bias",
 * "depthwise.weight", "running_mean", ...) with their shapes. */
#define CONV_MAX_LAYER_PARAMS 4
typedef struct conv_param_desc {
    const char *suffix;
    int rank;
    int64_t dims[CONV_MAX_RANK];
} conv_param_desc;
size_t conv_layer_param_descs(const conv_layer_spec *spec, conv_param_desc out[CONV_MAX_LAYER_PARAMS]);

/* ------------------------------------------------------------ statistics */

/* How costs are counted (see README "Statistics"):
 *   - Convolutions: MACs = N * C_out * H_out * W_out * (C_in / groups) * kh * kw.
 *     Bias initialises the accumulator and is not counted.
 *   - BatchNorm2d: folded into the preceding convolution -> 0; standalone ->
 *     one MAC per element (x * scale + shift).
 *   - ReLU, ReLU6, MaxPool2d: 0 MACs (comparisons, not arithmetic).
 *   - AvgPool2d: one MAC per output element per window element.
 *   - FLOPs = 2 * MACs everywhere. */
typedef struct conv_layer_stats {
    conv_layer_type type;
    conv_algorithm algorithm; /* for convolutions; AUTO for other layers */
    char execution[64];       /* how it ran: "im2col", "depthwise:direct+pointwise:gemm_1x1",
                                 "folded" (BatchNorm in a conv), "fused" (activation epilogue),
                                 "elementwise", "pool" */
    int64_t input_shape[4];
    int64_t output_shape[4];
    int64_t params;
    int64_t macs;
    int64_t flops;
    int64_t receptive_field[2]; /* [h, w], relative to the model input */
    int64_t jump[2];            /* effective stride relative to the model input */
    /* depthwise Conv2d and SeparableConv2d only */
    bool has_standard_equivalent;
    int64_t standard_macs;
    int64_t standard_flops;
    double textbook_ratio; /* 1/out_channels + 1/(kh*kw) */
    double flop_ratio;     /* flops / standard_flops */
    double compute_ms;     /* filled by a run; 0 before */
    int fused_into;        /* index of the layer whose kernel computed this one, or -1 */
} conv_layer_stats;

typedef struct conv_model_stats {
    size_t n_layers;
    conv_layer_stats *layers;
    int64_t input_shape[4];
    int64_t output_shape[4];
    int64_t params;
    int64_t macs;
    int64_t flops;
    int64_t receptive_field[2];
    int64_t jump[2];
    double compute_ms;
} conv_model_stats;

/* ------------------------------------------------------------ threads */

/* A fixed pool of worker threads for intra-operator parallelism. The
 * calling thread takes part, so a pool of T threads starts T-1 workers. */
typedef struct conv_threadpool conv_threadpool;
conv_status conv_threadpool_create(int threads, conv_threadpool **out, conv_error *err);
void conv_threadpool_destroy(conv_threadpool *pool);
int conv_threadpool_size(const conv_threadpool *pool); /* 1 for NULL */
/* Calls fn(ctx, i, thread) for i in [0, n); returns when all are done.
 * thread is in [0, size) and tells which per-thread scratch to use. */
typedef void (*conv_task_fn)(void *ctx, size_t i, int thread);
void conv_parallel_for(conv_threadpool *pool, size_t n, conv_task_fn fn, void *ctx);

/* ------------------------------------------------------------ models */

/* A named weight tensor as found in a state_dict. Non-float entries are
 * accepted only for keys the model does not use (num_batches_tracked). */
typedef struct conv_named_tensor {
    const char *name;
    bool is_float;     /* false: an integer or bool tensor */
    const char *dtype; /* for messages, e.g. "I64"; may be NULL */
    conv_tensor tensor;
} conv_named_tensor;

typedef struct conv_model_options {
    bool fold_batchnorm;   /* default true */
    bool allow_winograd;   /* default true; false keeps exact (direct/GEMM) arithmetic */
    bool fuse;             /* default true: activation epilogues, fused separable */
    bool structure_only;   /* no weights: the model can be planned (analyzed) but not run */
    bool autotune;         /* default false: conv_plan_create times every kernel that can run
                              a convolution (once per layer and input shape, single-threaded,
                              cached in the model) and keeps the fastest instead of the heuristic */
} conv_model_options;
void conv_model_options_init(conv_model_options *opts);

/* An immutable, loaded model: validated specs and packed weights. Safe to
 * run from several threads at once with distinct plans' workspaces. */
typedef struct conv_model conv_model;

conv_status conv_model_create(const conv_layer_spec *layers, size_t n_layers,
                              const conv_named_tensor *weights, size_t n_weights,
                              const conv_model_options *opts, conv_model **out, conv_error *err);
void conv_model_destroy(conv_model *model);
size_t conv_model_layer_count(const conv_model *model);
const conv_layer_spec *conv_model_layer(const conv_model *model, size_t i);

/* A plan binds a model to one input shape: every layer's shapes, chosen
 * algorithm, workspace size and static statistics. Costs no computation. */
typedef struct conv_plan conv_plan;

conv_status conv_plan_create(const conv_model *model, const int64_t input_shape[4], conv_plan **out,
                             conv_error *err);
void conv_plan_destroy(conv_plan *plan);
void conv_plan_output_shape(const conv_plan *plan, int64_t out_shape[4]);
/* bytes of scratch a run needs (intermediate activations and kernel buffers) */
size_t conv_plan_workspace_size(const conv_plan *plan, int threads);
/* static statistics (compute_ms all 0); owned by the plan */
const conv_model_stats *conv_plan_stats(const conv_plan *plan);

/* Runs the model. input and output are dense NCHW of the plan's shapes;
 * workspace is caller-owned, >= conv_plan_workspace_size, CONV_ALIGNMENT-
 * aligned. Allocates nothing. stats (optional) receives a copy of the
 * plan's statistics with times filled; its layers array must hold n_layers. */
conv_status conv_model_run(const conv_model *model, const conv_plan *plan, const float *input,
                           float *output, void *workspace, conv_threadpool *pool,
                           conv_model_stats *stats, conv_error *err);

/* Convenience for tools and tests: plan, allocate, run, free. output is
 * allocated here. */
conv_status conv_model_run_alloc(const conv_model *model, const conv_tensor *input,
                                 conv_tensor *output, conv_threadpool *pool,
                                 conv_model_stats *stats, conv_error *err);

/* Deep copy of the plan's statistics for callers that outlive the plan. */
conv_status conv_model_stats_copy(const conv_model_stats *src, conv_model_stats *dst, conv_error *err);
void conv_model_stats_free(conv_model_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
