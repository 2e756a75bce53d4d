/* stats_json.h — model and layer statistics (shapes, parameters, MACs,
 * FLOPs, receptive field, times) as JSON for the CLI and the server. */
#ifndef CONVD_PROTO_STATS_JSON_H
#define CONVD_PROTO_STATS_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "core/conv.h"

/* Keys are stable (the CLI, the server and the conformance tests read them):
 *
 *   {"input_shape": [N, C, H, W], "output_shape": [...], "params", "macs",
 *    "flops", "receptive_field": [h, w], "jump": [h, w], "compute_ms",
 *    "layers": [<layer>, ...]}
 *
 * and each layer
 *
 *   {"index", "type" (torch name), "algorithm" (for convolutions, else null),
 *    "execution", "input_shape", "output_shape", "params", "macs", "flops",
 *    "receptive_field", "jump", "compute_ms", "fused_into" (null or an index),
 *    "standard_equivalent": {"macs", "flops", "textbook_ratio", "flop_ratio",
 *                            "speedup_bound"}   (depthwise/separable only)}
 *
 * Counts are JSON integers, times and ratios reals; a ratio that is not a
 * finite number (speedup_bound of a zero flop_ratio) is null. Both return
 * NULL when out of memory. */
json_t *stats_to_json(const conv_model_stats *stats);
json_t *layer_stats_to_json(const conv_layer_stats *ls, size_t index);

#endif
