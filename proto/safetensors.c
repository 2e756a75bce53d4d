/* safetensors.c — reads and writes safetensors files. Everything in the
 * header is validated before any tensor is allocated, so a hostile header
 * cannot make the parser allocate more than the file's own size justifies. */
#include "proto/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fileio.h"
#include "proto/npy.h"

enum { HEADER_LENGTH_BYTES = 8, HEADER_ALIGN = 8, NAME_EXCERPT = 96 };

typedef enum dtype_kind { KIND_F32, KIND_F64, KIND_F16, KIND_BF16, KIND_NOT_FLOAT } dtype_kind;

typedef struct dtype_info {
    const char *name;
    size_t size;
    dtype_kind kind;
} dtype_info;

static const dtype_info DTYPES[] = {
    {"F64", 8, KIND_F64},        {"F32", 4, KIND_F32},        {"F16", 2, KIND_F16},
    {"BF16", 2, KIND_BF16},      {"I64", 8, KIND_NOT_FLOAT},  {"I32", 4, KIND_NOT_FLOAT},
    {"I16", 2, KIND_NOT_FLOAT},  {"I8", 1, KIND_NOT_FLOAT},   {"U64", 8, KIND_NOT_FLOAT},
    {"U32", 4, KIND_NOT_FLOAT},  {"U16", 2, KIND_NOT_FLOAT},  {"U8", 1, KIND_NOT_FLOAT},
    {"BOOL", 1, KIND_NOT_FLOAT},
};

static const dtype_info *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return &DTYPES[i];
    return NULL;
}

/* Keys are untrusted UTF-8; messages quote them on one line and bounded. */
static void excerpt(const char *text, char *out, size_t out_size)
{
    size_t n = 0;
    for (size_t i = 0; text[i] && n + 1 < out_size; i++) {
        if (n + 4 >= out_size && text[i + 1]) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char c = (unsigned char)text[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ validation */

/* One header entry after validation, before anything is decoded. */
typedef struct entry_plan {
    const char *key; /* borrowed from the JSON tree */
    const dtype_info *dtype;
    int rank;
    int64_t dims[CONV_MAX_RANK];
    size_t begin, end;
} entry_plan;

static conv_status check_metadata(json_t *metadata, conv_error *err)
{
    if (!json_is_object(metadata))
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: '__metadata__' must be an object of strings");
    const char *key;
    json_t *value;
    json_object_foreach(metadata, key, value) {
        if (!json_is_string(value)) {
            char name[NAME_EXCERPT];
            excerpt(key, name, sizeof name);
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "safetensors: '__metadata__' value of '%s' must be a string", name);
        }
    }
    return CONV_OK;
}

/* A JSON integer in [0, limit]; false for anything else. */
static bool get_count(json_t *value, size_t limit, size_t *out)
{
    if (!json_is_integer(value)) return false;
    json_int_t v = json_integer_value(value);
    if (v < 0 || (unsigned long long)v > limit) return false;
    *out = (size_t)v;
    return true;
}

static conv_status check_entry(const char *key, json_t *entry, size_t buffer_len, entry_plan *plan,
                               conv_error *err)
{
    char name[NAME_EXCERPT];
    excerpt(key, name, sizeof name);
    memset(plan, 0, sizeof *plan);
    plan->key = key;
    if (!json_is_object(entry))
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': entry must be an object", name);

    const char *field;
    json_t *value;
    json_object_foreach(entry, field, value) {
        if (strcmp(field, "dtype") != 0 && strcmp(field, "shape") != 0 && strcmp(field, "data_offsets") != 0) {
            char field_name[NAME_EXCERPT];
            excerpt(field, field_name, sizeof field_name);
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "safetensors: tensor '%s': unexpected key '%s' (allowed: dtype, shape, data_offsets)",
                             name, field_name);
        }
    }

    json_t *dtype = json_object_get(entry, "dtype");
    if (!dtype) return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': missing key 'dtype'", name);
    if (!json_is_string(dtype))
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': 'dtype' must be a string", name);
    plan->dtype = find_dtype(json_string_value(dtype));
    if (!plan->dtype) {
        char dtype_name[NAME_EXCERPT];
        excerpt(json_string_value(dtype), dtype_name, sizeof dtype_name);
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "safetensors: tensor '%s': unknown dtype '%s' (known: F64, F32, F16, BF16, I64, I32, I16, "
                         "I8, U64, U32, U16, U8, BOOL)",
                         name, dtype_name);
    }

    json_t *shape = json_object_get(entry, "shape");
    if (!shape) return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': missing key 'shape'", name);
    if (!json_is_array(shape))
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': 'shape' must be an array", name);
    size_t rank = json_array_size(shape);
    for (size_t i = 0; i < rank; i++) {
        json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim))
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "safetensors: tensor '%s': 'shape' element %zu must be an integer", name, i);
        if (json_integer_value(dim) < 0)
            return conv_fail(err, CONV_INVALID_SHAPE, "safetensors: tensor '%s': 'shape' element %zu is negative",
                             name, i);
    }
    if (rank > CONV_MAX_RANK)
        return conv_fail(err, CONV_INVALID_SHAPE, "safetensors: tensor '%s': 'shape' has rank %zu; at most %d is supported",
                         name, rank, CONV_MAX_RANK);
    plan->rank = (int)rank;
    for (size_t i = 0; i < rank; i++) plan->dims[i] = (int64_t)json_integer_value(json_array_get(shape, i));

    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!offsets)
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': missing key 'data_offsets'", name);
    if (!json_is_array(offsets) || json_array_size(offsets) != 2)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "safetensors: tensor '%s': 'data_offsets' must be an array [begin, end]", name);
    for (size_t i = 0; i < 2; i++) {
        json_t *offset = json_array_get(offsets, i);
        if (!json_is_integer(offset) || json_integer_value(offset) < 0)
            return conv_fail(err, CONV_INVALID_PARAMETER,
                             "safetensors: tensor '%s': 'data_offsets' must hold two non-negative integers", name);
    }
    size_t begin, end;
    if (!get_count(json_array_get(offsets, 0), buffer_len, &begin) ||
        !get_count(json_array_get(offsets, 1), buffer_len, &end))
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "safetensors: tensor '%s': 'data_offsets' [%lld, %lld] run past the %zu-byte data buffer", name,
                         (long long)json_integer_value(json_array_get(offsets, 0)),
                         (long long)json_integer_value(json_array_get(offsets, 1)), buffer_len);
    if (end < begin)
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': 'data_offsets' end %zu is before begin %zu",
                         name, end, begin);

    char shape_text[128];
    conv_shape_format(plan->dims, plan->rank, shape_text, sizeof shape_text);
    size_t numel, bytes, float32_bytes;
    if (!conv_dims_product(plan->dims, plan->rank, &numel) || !conv_size_mul(numel, plan->dtype->size, &bytes) ||
        !conv_size_mul(numel, sizeof(float), &float32_bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "safetensors: tensor '%s': shape %s is too large: its byte size overflows",
                         name, shape_text);
    if (end - begin != bytes)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "safetensors: tensor '%s': 'data_offsets' [%zu, %zu] span %zu bytes, but %s with shape %s needs %zu",
                         name, begin, end, end - begin, plan->dtype->name, shape_text, bytes);
    plan->begin = begin;
    plan->end = end;
    return CONV_OK;
}

static int compare_ranges(const void *a, const void *b)
{
    const entry_plan *x = *(const entry_plan *const *)a, *y = *(const entry_plan *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Overlapping ranges would let one tensor's bytes be read as another's; the
 * reference implementation refuses them too. */
static conv_status check_no_overlap(entry_plan *plans, size_t n, conv_error *err)
{
    if (n < 2) return CONV_OK;
    const entry_plan **sorted = malloc(n * sizeof *sorted);
    if (!sorted) return conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory checking %zu tensors", n);
    for (size_t i = 0; i < n; i++) sorted[i] = &plans[i];
    qsort(sorted, n, sizeof *sorted, compare_ranges);
    const entry_plan *furthest = sorted[0];
    for (size_t i = 1; i < n; i++) {
        if (sorted[i]->begin < furthest->end) {
            char a[NAME_EXCERPT], b[NAME_EXCERPT];
            excerpt(furthest->key, a, sizeof a);
            excerpt(sorted[i]->key, b, sizeof b);
            conv_status st = conv_fail(err, CONV_INVALID_PARAMETER,
                                       "safetensors: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu]: byte ranges overlap",
                                       a, furthest->begin, furthest->end, b, sorted[i]->begin, sorted[i]->end);
            free(sorted);
            return st;
        }
        if (sorted[i]->end > furthest->end) furthest = sorted[i];
    }
    free(sorted);
    return CONV_OK;
}

/* ------------------------------------------------------------ decoding */

static void decode_floats(const uint8_t *data, dtype_kind kind, size_t count, float *out)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        switch (kind) {
        case KIND_F32:
            bits = load_le32(data + 4 * i);
            memcpy(&out[i], &bits, sizeof bits);
            break;
        case KIND_F64: {
            uint64_t wide = (uint64_t)load_le32(data + 8 * i) | (uint64_t)load_le32(data + 8 * i + 4) << 32;
            double value;
            memcpy(&value, &wide, sizeof value);
            out[i] = (float)value;
            break;
        }
        case KIND_F16:
            out[i] = npy_half_to_float((uint16_t)(data[2 * i] | data[2 * i + 1] << 8));
            break;
        case KIND_BF16:
            /* bfloat16 is the upper half of a float32, so this is exact */
            bits = (uint32_t)(data[2 * i] | data[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, sizeof bits);
            break;
        case KIND_NOT_FLOAT:
            return;
        }
    }
}

static conv_status decode_entries(const entry_plan *plans, size_t n, const uint8_t *buffer, safetensors_file *out,
                                  conv_error *err)
{
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    if (!out->tensors) return conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory for %zu tensors", n);
    for (size_t i = 0; i < n; i++) {
        const entry_plan *plan = &plans[i];
        conv_named_tensor *t = &out->tensors[i];
        out->count = i + 1; /* so safetensors_free releases what is filled so far */
        t->name = strdup(plan->key);
        if (!t->name) return conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory for tensor names");
        t->dtype = plan->dtype->name;
        if (plan->dtype->kind == KIND_NOT_FLOAT) {
            t->is_float = false;
            conv_tensor_wrap(&t->tensor, plan->rank, plan->dims, NULL);
            continue;
        }
        t->is_float = true;
        conv_error alloc_err;
        conv_status st = conv_tensor_alloc(&t->tensor, plan->rank, plan->dims, &alloc_err);
        if (st != CONV_OK) {
            char name[NAME_EXCERPT];
            excerpt(plan->key, name, sizeof name);
            return conv_fail(err, st, "safetensors: tensor '%s': %s", name, alloc_err.message);
        }
        decode_floats(buffer + plan->begin, plan->dtype->kind, conv_tensor_numel(&t->tensor), t->tensor.data);
    }
    return CONV_OK;
}

/* ------------------------------------------------------------ parse */

static conv_status parse_header(json_t *root, const uint8_t *buffer, size_t buffer_len, safetensors_file *out,
                                conv_error *err)
{
    if (!json_is_object(root))
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: header must be a JSON object");
    size_t n = json_object_size(root);
    json_t *metadata = json_object_get(root, "__metadata__");
    if (metadata) {
        conv_status st = check_metadata(metadata, err);
        if (st != CONV_OK) return st;
        n--;
    }
    entry_plan *plans = calloc(n ? n : 1, sizeof *plans);
    if (!plans) return conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory for %zu tensors", n);
    size_t filled = 0;
    const char *key;
    json_t *entry;
    conv_status st = CONV_OK;
    json_object_foreach(root, key, entry) {
        if (strcmp(key, "__metadata__") == 0) continue;
        st = check_entry(key, entry, buffer_len, &plans[filled], err);
        if (st != CONV_OK) break;
        filled++;
    }
    if (st == CONV_OK) st = check_no_overlap(plans, filled, err);
    if (st == CONV_OK) st = decode_entries(plans, filled, buffer, out, err);
    free(plans);
    return st;
}

conv_status safetensors_parse(const uint8_t *buf, size_t len, safetensors_file *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < HEADER_LENGTH_BYTES)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "safetensors: file is %zu bytes, too short for the 8-byte header length", len);
    uint64_t header_len = (uint64_t)load_le32(buf) | (uint64_t)load_le32(buf + 4) << 32;
    if (header_len > SAFETENSORS_MAX_HEADER_BYTES)
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "safetensors: header length %llu is more than the limit of %zu bytes",
                         (unsigned long long)header_len, SAFETENSORS_MAX_HEADER_BYTES);
    if (header_len > len - HEADER_LENGTH_BYTES)
        return conv_fail(err, CONV_INVALID_PARAMETER,
                         "safetensors: header length %llu runs past the end of the %zu-byte file",
                         (unsigned long long)header_len, len);

    json_error_t json_err;
    json_t *root = json_loadb((const char *)buf + HEADER_LENGTH_BYTES, (size_t)header_len, JSON_REJECT_DUPLICATES,
                              &json_err);
    if (!root)
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: header is not valid JSON at byte %lld: %s",
                         (long long)json_err.position + HEADER_LENGTH_BYTES, json_err.text);

    size_t data_start = HEADER_LENGTH_BYTES + (size_t)header_len;
    conv_status st = parse_header(root, buf + data_start, len - data_start, out, err);
    json_decref(root);
    if (st != CONV_OK) safetensors_free(out);
    return st;
}

void safetensors_free(safetensors_file *f)
{
    if (!f) return;
    for (size_t i = 0; f->tensors && i < f->count; i++) {
        free((char *)f->tensors[i].name);
        conv_tensor_free(&f->tensors[i].tensor);
    }
    free(f->tensors);
    f->tensors = NULL;
    f->count = 0;
}

const conv_named_tensor *safetensors_find(const safetensors_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* ------------------------------------------------------------ serialize */

static int compare_names(const void *a, const void *b)
{
    const conv_named_tensor *x = *(const conv_named_tensor *const *)a, *y = *(const conv_named_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static conv_status check_writable(const conv_named_tensor *t, size_t *bytes, conv_error *err)
{
    if (!t->name) return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: a tensor has no name");
    char name[NAME_EXCERPT];
    excerpt(t->name, name, sizeof name);
    if (strcmp(t->name, "__metadata__") == 0)
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: '__metadata__' is reserved, not a tensor name");
    if (!t->is_float)
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': only float tensors can be written (as F32)",
                         name);
    if (t->tensor.rank < 0 || t->tensor.rank > CONV_MAX_RANK)
        return conv_fail(err, CONV_INVALID_SHAPE, "safetensors: tensor '%s': rank %d is outside 0..%d", name,
                         t->tensor.rank, CONV_MAX_RANK);
    size_t numel;
    if (!conv_dims_product(t->tensor.dims, t->tensor.rank, &numel))
        return conv_fail(err, CONV_INVALID_SHAPE, "safetensors: tensor '%s': negative or overflowing dimension", name);
    if (!conv_size_mul(numel, sizeof(float), bytes))
        return conv_fail(err, CONV_LIMIT_EXCEEDED, "safetensors: tensor '%s': byte size overflows", name);
    if (numel > 0 && !t->tensor.data)
        return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor '%s': has no data", name);
    return CONV_OK;
}

/* Builds the compact JSON header with entries in the given order. */
static conv_status build_header(const conv_named_tensor **order, size_t n, json_t **out, size_t *data_bytes,
                                conv_error *err)
{
    json_t *root = json_object();
    if (!root) return conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory building the header");
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const conv_named_tensor *t = order[i];
        size_t bytes, end;
        conv_status st = check_writable(t, &bytes, err);
        if (st == CONV_OK && !conv_size_add(offset, bytes, &end))
            st = conv_fail(err, CONV_LIMIT_EXCEEDED, "safetensors: total data size overflows");
        if (st != CONV_OK) {
            json_decref(root);
            return st;
        }
        json_t *shape = json_array();
        json_t *entry = json_object();
        json_t *offsets = json_array();
        bool built = shape && entry && offsets;
        for (int d = 0; built && d < t->tensor.rank; d++)
            built = json_array_append_new(shape, json_integer((json_int_t)t->tensor.dims[d])) == 0;
        built = built && json_array_append_new(offsets, json_integer((json_int_t)offset)) == 0 &&
                json_array_append_new(offsets, json_integer((json_int_t)end)) == 0 &&
                json_object_set_new(entry, "dtype", json_string("F32")) == 0 &&
                json_object_set(entry, "shape", shape) == 0 &&
                json_object_set(entry, "data_offsets", offsets) == 0;
        json_decref(shape);
        json_decref(offsets);
        if (!built || json_object_set_new(root, t->name, entry) != 0) {
            if (!built) json_decref(entry);
            json_decref(root);
            char name[NAME_EXCERPT];
            excerpt(t->name, name, sizeof name);
            /* json_object_set_new refuses keys that are not valid UTF-8 (and
             * releases entry itself) */
            return conv_fail(err, built ? CONV_INVALID_PARAMETER : CONV_OUT_OF_MEMORY,
                             built ? "safetensors: tensor '%s': name is not valid UTF-8"
                                   : "safetensors: tensor '%s': out of memory building the header",
                             name);
        }
        offset = end;
    }
    *out = root;
    *data_bytes = offset;
    return CONV_OK;
}

static void store_floats_le(const float *values, size_t count, uint8_t *out)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        out[4 * i] = (uint8_t)bits;
        out[4 * i + 1] = (uint8_t)(bits >> 8);
        out[4 * i + 2] = (uint8_t)(bits >> 16);
        out[4 * i + 3] = (uint8_t)(bits >> 24);
    }
}

conv_status safetensors_serialize(const conv_named_tensor *tensors, size_t n, uint8_t **out, size_t *out_len,
                                  conv_error *err)
{
    *out = NULL;
    *out_len = 0;
    const conv_named_tensor **order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory for %zu tensors", n);
    for (size_t i = 0; i < n; i++) {
        if (!tensors[i].name) {
            free(order);
            return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: tensor %zu has no name", i);
        }
        order[i] = &tensors[i];
    }
    /* the reference writer orders by dtype alignment, then name; all F32 here */
    qsort(order, n, sizeof *order, compare_names);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            char name[NAME_EXCERPT];
            excerpt(order[i]->name, name, sizeof name);
            free(order);
            return conv_fail(err, CONV_INVALID_PARAMETER, "safetensors: duplicate tensor name '%s'", name);
        }
    }

    json_t *header = NULL;
    size_t data_bytes = 0;
    conv_status st = build_header(order, n, &header, &data_bytes, err);
    if (st != CONV_OK) {
        free(order);
        return st;
    }
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t json_len = json_dumpb(header, NULL, 0, flags);
    size_t padded = (json_len + HEADER_ALIGN - 1) / HEADER_ALIGN * HEADER_ALIGN;
    size_t total;
    uint8_t *bytes = NULL;
    if (json_len == 0 || !conv_size_add(HEADER_LENGTH_BYTES + padded, data_bytes, &total)) {
        st = conv_fail(err, CONV_LIMIT_EXCEEDED, "safetensors: file size overflows");
    } else if (!(bytes = malloc(total))) {
        st = conv_fail(err, CONV_OUT_OF_MEMORY, "safetensors: out of memory for a %zu-byte file", total);
    } else {
        for (int i = 0; i < HEADER_LENGTH_BYTES; i++) bytes[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        json_dumpb(header, (char *)bytes + HEADER_LENGTH_BYTES, json_len, flags);
        memset(bytes + HEADER_LENGTH_BYTES + json_len, ' ', padded - json_len);
        uint8_t *data = bytes + HEADER_LENGTH_BYTES + padded;
        for (size_t i = 0; i < n; i++) {
            size_t numel = conv_tensor_numel(&order[i]->tensor);
            if (numel) store_floats_le(order[i]->tensor.data, numel, data);
            data += numel * sizeof(float);
        }
        *out = bytes;
        *out_len = total;
    }
    json_decref(header);
    free(order);
    return st;
}

/* ------------------------------------------------------------ files */

conv_status safetensors_read_file(const char *path, safetensors_file *out, conv_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *bytes;
    size_t len;
    conv_status st = fileio_read_all(path, FILEIO_MAX_FILE_BYTES, &bytes, &len, err);
    if (st != CONV_OK) return st;
    st = safetensors_parse(bytes, len, out, err);
    free(bytes);
    return st;
}

conv_status safetensors_write_file(const char *path, const conv_named_tensor *tensors, size_t n, conv_error *err)
{
    uint8_t *bytes;
    size_t len;
    conv_status st = safetensors_serialize(tensors, n, &bytes, &len, err);
    if (st != CONV_OK) return st;
    st = fileio_write_all(path, bytes, len, err);
    free(bytes);
    return st;
}
