/* layers.c — layer specs: torch.nn defaults, torch's validation rules with
 * messages that name the rule, output shapes and the weight tensors each layer owns. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/conv.h"
#include "core/internal.h"

static const char *const layer_type_names[CONV_LAYER_TYPE_COUNT] = {
    "Conv2d", "SeparableConv2d", "BatchNorm2d", "ReLU", "ReLU6", "MaxPool2d", "AvgPool2d",
};

const char *conv_layer_type_name(conv_layer_type type)
{
    return (unsigned)type < CONV_LAYER_TYPE_COUNT ? layer_type_names[type] : "unknown";
}

int conv_layer_type_from_name(const char *name)
{
    for (int i = 0; i < CONV_LAYER_TYPE_COUNT; i++)
        if (strcmp(name, layer_type_names[i]) == 0) return i;
    return -1;
}

static const char *const padding_mode_names[] = {"zeros", "reflect", "replicate", "circular"};

const char *conv_padding_mode_name(conv_padding_mode mode)
{
    return (unsigned)mode < 4 ? padding_mode_names[mode] : "unknown";
}

int conv_padding_mode_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, padding_mode_names[i]) == 0) return i;
    return -1;
}

static const char *const algorithm_names[CONV_ALGO_COUNT] = {
    "auto", "direct", "im2col", "gemm_1x1", "winograd", "depthwise", "fused_separable",
};

const char *conv_algorithm_name(conv_algorithm algo)
{
    return (unsigned)algo < CONV_ALGO_COUNT ? algorithm_names[algo] : "unknown";
}

int conv_algorithm_from_name(const char *name)
{
    for (int i = 0; i < CONV_ALGO_COUNT; i++)
        if (strcmp(name, algorithm_names[i]) == 0) return i;
    return -1;
}

void conv_layer_spec_init(conv_layer_spec *spec, conv_layer_type type)
{
    memset(spec, 0, sizeof *spec);
    spec->type = type;
    spec->stride[0] = spec->stride[1] = 1;
    spec->dilation[0] = spec->dilation[1] = 1;
    spec->padding_kind = CONV_PADDING_EXPLICIT;
    spec->padding_mode = CONV_PAD_ZEROS;
    spec->groups = 1;
    spec->depth_multiplier = 1;
    spec->bias = true;
    spec->algorithm = CONV_ALGO_AUTO;
    spec->eps = 1e-5;
    spec->affine = true;
    spec->count_include_pad = true;
    if (type == CONV_LAYER_MAXPOOL2D || type == CONV_LAYER_AVGPOOL2D)
        spec->stride[0] = spec->stride[1] = 0; /* torch's stride=None: the kernel size */
}

/* Sizes above this are refused outright: they cannot describe a real layer
 * and keeping them small lets every product below stay far from overflow. */
#define MAX_DIM ((int64_t)1 << 30)

static conv_status check_pair(const int64_t v[2], const char *name, int64_t min, conv_error *err)
{
    for (int i = 0; i < 2; i++) {
        if (v[i] < min)
            return conv_fail(err, CONV_INVALID_PARAMETER, "%s must be %s, got [%lld, %lld]", name,
                             min > 0 ? "positive" : "non-negative", (long long)v[0], (long long)v[1]);
        if (v[i] > MAX_DIM)
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "%s [%lld, %lld] is larger than %lld", name,
                             (long long)v[0], (long long)v[1], (long long)MAX_DIM);
    }
    return CONV_OK;
}

static conv_status check_count(int64_t v, const char *name, conv_error *err)
{
    if (v <= 0) return conv_fail(err, CONV_INVALID_PARAMETER, "%s must be positive, got %lld", name, (long long)v);
    if (v > MAX_DIM)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "%s %lld is larger than %lld", name, (long long)v,
                         (long long)MAX_DIM);
    return CONV_OK;
}

static conv_status validate_conv(const conv_layer_spec *s, conv_error *err)
{
    conv_status st;
    if ((st = check_count(s->in_channels, "in_channels", err))) return st;
    if ((st = check_count(s->out_channels, "out_channels", err))) return st;
    if ((st = check_pair(s->kernel_size, "kernel_size", 1, err))) return st;
    if ((st = check_pair(s->stride, "stride", 1, err))) return st;
    if ((st = check_pair(s->dilation, "dilation", 1, err))) return st;
    if (s->padding_kind == CONV_PADDING_EXPLICIT && (st = check_pair(s->padding, "padding", 0, err))) return st;
    if ((unsigned)s->padding_kind > CONV_PADDING_VALID)
        return conv_fail(err, CONV_INVALID_PARAMETER, "padding must be an int, a pair, \"same\" or \"valid\"");
    if ((unsigned)s->padding_mode > CONV_PAD_CIRCULAR)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "padding_mode must be one of \"zeros\", \"reflect\", \"replicate\", \"circular\"");
    if (s->padding_kind == CONV_PADDING_SAME && (s->stride[0] != 1 || s->stride[1] != 1))
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "padding='same' is not supported for strided convolutions (stride [%lld, %lld])",
                         (long long)s->stride[0], (long long)s->stride[1]);
    if ((unsigned)s->algorithm >= CONV_ALGO_COUNT)
        return conv_fail(err, CONV_INVALID_PARAMETER, "algorithm is not a known algorithm");
    if (s->type == CONV_LAYER_CONV2D) {
        if (s->groups <= 0)
            return conv_fail(err, CONV_INVALID_PARAMETER, "groups must be a positive integer, got %lld",
                             (long long)s->groups);
        if (s->in_channels % s->groups)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "in_channels must be divisible by groups (in_channels %lld, groups %lld)",
                             (long long)s->in_channels, (long long)s->groups);
        if (s->out_channels % s->groups)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "out_channels must be divisible by groups (out_channels %lld, groups %lld)",
                             (long long)s->out_channels, (long long)s->groups);
    } else {
        if ((st = check_count(s->depth_multiplier, "depth_multiplier", err))) return st;
        if (s->in_channels * s->depth_multiplier > MAX_DIM)
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "in_channels * depth_multiplier is larger than %lld",
                             (long long)MAX_DIM);
        if (s->algorithm != CONV_ALGO_AUTO && s->algorithm != CONV_ALGO_DIRECT &&
            s->algorithm != CONV_ALGO_FUSED_SEPARABLE && s->algorithm != CONV_ALGO_DEPTHWISE)
            return conv_fail(err, CONV_UNSUPPORTED_ALGORITHM,
                             "algorithm \"%s\" cannot run a SeparableConv2d (use auto, direct, depthwise or "
                             "fused_separable)",
                             conv_algorithm_name(s->algorithm));
    }
    return CONV_OK;
}

static conv_status validate_pool(const conv_layer_spec *s, conv_error *err)
{
    conv_status st;
    if ((st = check_pair(s->kernel_size, "kernel_size", 1, err))) return st;
    if (!(s->stride[0] == 0 && s->stride[1] == 0) && (st = check_pair(s->stride, "stride", 1, err))) return st;
    if ((st = check_pair(s->padding, "padding", 0, err))) return st;
    if (s->type == CONV_LAYER_MAXPOOL2D) {
        if ((st = check_pair(s->dilation, "dilation", 1, err))) return st;
    } else if (s->dilation[0] != 1 || s->dilation[1] != 1) {
        return conv_fail(err, CONV_INVALID_PARAMETER, "AvgPool2d has no dilation argument");
    }
    for (int i = 0; i < 2; i++)
        if (s->padding[i] > s->kernel_size[i] / 2)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "pad should be at most half of kernel size (padding [%lld, %lld], kernel_size "
                             "[%lld, %lld])",
                             (long long)s->padding[0], (long long)s->padding[1], (long long)s->kernel_size[0],
                             (long long)s->kernel_size[1]);
    if (s->type == CONV_LAYER_AVGPOOL2D && s->divisor_override < 0)
        return conv_fail(err, CONV_INVALID_PARAMETER, "divisor_override must be positive or None, got %lld",
                         (long long)s->divisor_override);
    return CONV_OK;
}

conv_status conv_layer_spec_validate(const conv_layer_spec *s, conv_error *err)
{
    switch (s->type) {
    case CONV_LAYER_CONV2D:
    case CONV_LAYER_SEPARABLE_CONV2D: return validate_conv(s, err);
    case CONV_LAYER_BATCHNORM2D:
        if (check_count(s->num_features, "num_features", err)) return CONV_INVALID_PARAMETER;
        if (!(s->eps > 0) || !isfinite(s->eps))
            return conv_fail(err, CONV_INVALID_PARAMETER, "eps must be a positive finite number, got %g", s->eps);
        return CONV_OK;
    case CONV_LAYER_RELU:
    case CONV_LAYER_RELU6: return CONV_OK;
    case CONV_LAYER_MAXPOOL2D:
    case CONV_LAYER_AVGPOOL2D: return validate_pool(s, err);
    case CONV_LAYER_TYPE_COUNT: break;
    }
    return conv_fail(err, CONV_INVALID_PARAMETER, "unknown layer type %d", (int)s->type);
}

void conv_resolve_padding(const conv_layer_spec *s, int64_t pads[4])
{
    /* pads = {top, bottom, left, right}. torch's "same" puts the odd
     * remainder of the total padding on the bottom/right. */
    for (int i = 0; i < 2; i++) {
        int64_t before = 0, after = 0;
        if (s->padding_kind == CONV_PADDING_EXPLICIT) {
            before = after = s->padding[i];
        } else if (s->padding_kind == CONV_PADDING_SAME) {
            int64_t total = s->dilation[i] * (s->kernel_size[i] - 1);
            before = total / 2;
            after = total - before;
        }
        pads[2 * i] = before;
        pads[2 * i + 1] = after;
    }
}

/* torch's pooling_output_shape, including its ceil_mode rule that the last
 * window must start inside the input or the left padding. */
static int64_t pool_output_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode)
{
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    /* floor division: num may be negative for inputs smaller than the window */
    int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

void conv_pool_stride(const conv_layer_spec *s, int64_t stride[2])
{
    stride[0] = s->stride[0] ? s->stride[0] : s->kernel_size[0];
    stride[1] = s->stride[1] ? s->stride[1] : s->kernel_size[1];
}

static conv_status conv_shape(const conv_layer_spec *s, const int64_t in[4], int64_t out[4], conv_error *err)
{
    char shape[96];
    if (in[1] != s->in_channels) {
        conv_shape_format(in, 4, shape, sizeof shape);
        return conv_fail(err, CONV_INVALID_SHAPE,
                         "input channels must equal in_channels: expected input%s to have %lld channels, "
                         "got %lld",
                         shape, (long long)s->in_channels, (long long)in[1]);
    }
    int64_t pads[4];
    conv_resolve_padding(s, pads);
    const int64_t size[2] = {in[2], in[3]};
    for (int i = 0; i < 2; i++) {
        int64_t before = pads[2 * i], after = pads[2 * i + 1];
        if (s->padding_mode == CONV_PAD_REFLECT && (before >= size[i] || after >= size[i]))
            return conv_fail(err, CONV_INVALID_SHAPE,
                             "reflect padding must be smaller than the input: padding %lld/%lld on an input %s "
                             "of %lld",
                             (long long)before, (long long)after, i ? "width" : "height", (long long)size[i]);
        if (s->padding_mode == CONV_PAD_CIRCULAR && (before > size[i] || after > size[i]))
            return conv_fail(err, CONV_INVALID_SHAPE,
                             "circular padding must not exceed the input: padding %lld/%lld on an input %s of "
                             "%lld (it would wrap around more than once)",
                             (long long)before, (long long)after, i ? "width" : "height", (long long)size[i]);
    }
    int64_t padded_h = in[2] + pads[0] + pads[1], padded_w = in[3] + pads[2] + pads[3];
    int64_t eff_h = s->dilation[0] * (s->kernel_size[0] - 1) + 1;
    int64_t eff_w = s->dilation[1] * (s->kernel_size[1] - 1) + 1;
    if (eff_h > padded_h || eff_w > padded_w)
        return conv_fail(err, CONV_INVALID_SHAPE,
                         "the (dilated) kernel must fit the padded input: padded input %lldx%lld, effective "
                         "kernel %lldx%lld",
                         (long long)padded_h, (long long)padded_w, (long long)eff_h, (long long)eff_w);
    out[0] = in[0];
    out[1] = s->out_channels;
    out[2] = (padded_h - eff_h) / s->stride[0] + 1;
    out[3] = (padded_w - eff_w) / s->stride[1] + 1;
    return CONV_OK;
}

conv_status conv_layer_output_shape(const conv_layer_spec *s, const int64_t in[4], int64_t out[4], conv_error *err)
{
    conv_status st = conv_layer_spec_validate(s, err);
    if (st) return st;
    for (int i = 0; i < 4; i++) {
        if (in[i] <= 0) {
            char shape[96];
            conv_shape_format(in, 4, shape, sizeof shape);
            return conv_fail(err, CONV_INVALID_SHAPE, "input shape %s must have positive dimensions", shape);
        }
        if (in[i] > MAX_DIM)
            return conv_fail(err, CONV_LIMIT_EXCEEDED, "input dimension %d (%lld) is larger than %lld", i,
                             (long long)in[i], (long long)MAX_DIM);
    }
    switch (s->type) {
    case CONV_LAYER_CONV2D:
    case CONV_LAYER_SEPARABLE_CONV2D: return conv_shape(s, in, out, err);
    case CONV_LAYER_BATCHNORM2D:
        if (in[1] != s->num_features)
            return conv_fail(err, CONV_INVALID_SHAPE,
                             "input channels must equal num_features: expected %lld channels, got %lld",
                             (long long)s->num_features, (long long)in[1]);
        memcpy(out, in, 4 * sizeof *out);
        return CONV_OK;
    case CONV_LAYER_RELU:
    case CONV_LAYER_RELU6: memcpy(out, in, 4 * sizeof *out); return CONV_OK;
    case CONV_LAYER_MAXPOOL2D:
    case CONV_LAYER_AVGPOOL2D: {
        int64_t stride[2];
        conv_pool_stride(s, stride);
        out[0] = in[0];
        out[1] = in[1];
        for (int i = 0; i < 2; i++) {
            int64_t dil = s->type == CONV_LAYER_MAXPOOL2D ? s->dilation[i] : 1;
            out[2 + i] = pool_output_size(in[2 + i], s->kernel_size[i], s->padding[i], stride[i], dil, s->ceil_mode);
        }
        if (out[2] < 1 || out[3] < 1)
            return conv_fail(err, CONV_INVALID_SHAPE,
                             "the pooling window must fit the padded input: input %lldx%lld gives output "
                             "%lldx%lld, which is too small",
                             (long long)in[2], (long long)in[3], (long long)out[2], (long long)out[3]);
        return CONV_OK;
    }
    case CONV_LAYER_TYPE_COUNT: break;
    }
    return conv_fail(err, CONV_INVALID_PARAMETER, "unknown layer type %d", (int)s->type);
}

static void set_desc(conv_param_desc *d, const char *suffix, int rank, int64_t a, int64_t b, int64_t c, int64_t e)
{
    d->suffix = suffix;
    d->rank = rank;
    d->dims[0] = a;
    d->dims[1] = b;
    d->dims[2] = c;
    d->dims[3] = e;
}

size_t conv_layer_param_descs(const conv_layer_spec *s, conv_param_desc out[CONV_MAX_LAYER_PARAMS])
{
    size_t n = 0;
    switch (s->type) {
    case CONV_LAYER_CONV2D:
        set_desc(&out[n++], "weight", 4, s->out_channels, s->in_channels / (s->groups ? s->groups : 1),
                 s->kernel_size[0], s->kernel_size[1]);
        if (s->bias) set_desc(&out[n++], "bias", 1, s->out_channels, 0, 0, 0);
        break;
    case CONV_LAYER_SEPARABLE_CONV2D: {
        int64_t mid = s->in_channels * s->depth_multiplier;
        set_desc(&out[n++], "depthwise.weight", 4, mid, 1, s->kernel_size[0], s->kernel_size[1]);
        if (s->bias) set_desc(&out[n++], "depthwise.bias", 1, mid, 0, 0, 0);
        set_desc(&out[n++], "pointwise.weight", 4, s->out_channels, mid, 1, 1);
        if (s->bias) set_desc(&out[n++], "pointwise.bias", 1, s->out_channels, 0, 0, 0);
        break;
    }
    case CONV_LAYER_BATCHNORM2D:
        if (s->affine) {
            set_desc(&out[n++], "weight", 1, s->num_features, 0, 0, 0);
            set_desc(&out[n++], "bias", 1, s->num_features, 0, 0, 0);
        }
        set_desc(&out[n++], "running_mean", 1, s->num_features, 0, 0, 0);
        set_desc(&out[n++], "running_var", 1, s->num_features, 0, 0, 0);
        break;
    default: break;
    }
    return n;
}
