/* stats_json.c — conv_model_stats as the JSON document the CLI prints and
 * the server returns (key list in stats_json.h). */
#include <math.h>

#include "proto/stats_json.h"

/* Remembers a failed insertion (out of memory) so the writers stay a flat
 * list of puts with one check at the end. */
typedef struct obj_builder {
    json_t *obj;
    bool ok;
} obj_builder;

static void put(obj_builder *b, const char *key, json_t *value)
{
    /* json_object_set_new takes value's reference even when it fails, and
     * fails on a NULL object or value: one check covers every allocation */
    if (json_object_set_new(b->obj, key, value) != 0) b->ok = false;
}

static json_t *finish(obj_builder *b)
{
    if (b->ok) return b->obj;
    json_decref(b->obj);
    return NULL;
}

static json_t *int_list(const int64_t *v, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        if (json_array_append_new(list, json_integer((json_int_t)v[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* JSON has no infinity or NaN; such a value is written as null. */
static json_t *real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static bool is_convolution(conv_layer_type type)
{
    return type == CONV_LAYER_CONV2D || type == CONV_LAYER_SEPARABLE_CONV2D;
}

json_t *layer_stats_to_json(const conv_layer_stats *ls, size_t index)
{
    obj_builder b = {json_object(), true};
    put(&b, "index", json_integer((json_int_t)index));
    put(&b, "type", json_string(conv_layer_type_name(ls->type)));
    put(&b, "algorithm", is_convolution(ls->type) ? json_string(conv_algorithm_name(ls->algorithm)) : json_null());
    put(&b, "execution", json_string(ls->execution));
    put(&b, "input_shape", int_list(ls->input_shape, 4));
    put(&b, "output_shape", int_list(ls->output_shape, 4));
    put(&b, "params", json_integer((json_int_t)ls->params));
    put(&b, "macs", json_integer((json_int_t)ls->macs));
    put(&b, "flops", json_integer((json_int_t)ls->flops));
    put(&b, "receptive_field", int_list(ls->receptive_field, 2));
    put(&b, "jump", int_list(ls->jump, 2));
    put(&b, "compute_ms", real_or_null(ls->compute_ms));
    put(&b, "fused_into", ls->fused_into >= 0 ? json_integer(ls->fused_into) : json_null());
    if (ls->has_standard_equivalent) {
        obj_builder eq = {json_object(), true};
        put(&eq, "macs", json_integer((json_int_t)ls->standard_macs));
        put(&eq, "flops", json_integer((json_int_t)ls->standard_flops));
        put(&eq, "textbook_ratio", real_or_null(ls->textbook_ratio));
        put(&eq, "flop_ratio", real_or_null(ls->flop_ratio));
        put(&eq, "speedup_bound", ls->flop_ratio > 0 ? real_or_null(1.0 / ls->flop_ratio) : json_null());
        put(&b, "standard_equivalent", finish(&eq));
    }
    return finish(&b);
}

json_t *stats_to_json(const conv_model_stats *stats)
{
    obj_builder b = {json_object(), true};
    put(&b, "input_shape", int_list(stats->input_shape, 4));
    put(&b, "output_shape", int_list(stats->output_shape, 4));
    put(&b, "params", json_integer((json_int_t)stats->params));
    put(&b, "macs", json_integer((json_int_t)stats->macs));
    put(&b, "flops", json_integer((json_int_t)stats->flops));
    put(&b, "receptive_field", int_list(stats->receptive_field, 2));
    put(&b, "jump", int_list(stats->jump, 2));
    put(&b, "compute_ms", real_or_null(stats->compute_ms));
    json_t *layers = json_array();
    for (size_t i = 0; layers && i < stats->n_layers; i++) {
        if (json_array_append_new(layers, layer_stats_to_json(&stats->layers[i], i)) != 0) {
            json_decref(layers);
            layers = NULL;
        }
    }
    put(&b, "layers", layers);
    return finish(&b);
}
