/* SPDX-License-Identifier: BSD-3-Clause */
/* Operation attributes to and from JSON (the control plane's form). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ops_internal.h"

/* Largest integer a JSON number (a double) carries exactly. */
#define JSON_INT_MAX 9007199254740992.0

struct attr_parse {
	const struct tn_op *op;
	const char *key;
	char *err;
	size_t errlen;
};

static int attr_fail(const struct attr_parse *p, const char *what)
{
	return tn_op_fail(-EINVAL, p->err, p->errlen, p->op->name, "attribute '%s' %s", p->key, what);
}

static int json_int(const struct attr_parse *p, const cJSON *item, double lo, double hi,
		    int64_t *value)
{
	if (!cJSON_IsNumber(item))
		return attr_fail(p, "must be an integer");
	double v = item->valuedouble;

	if (v != floor(v) || v < lo || v > hi)
		return attr_fail(p, "is not an integer in range");
	*value = (int64_t)v;
	return 0;
}

static int json_int_array(const struct attr_parse *p, const cJSON *item, int min_len,
			  int max_len, double lo, int64_t *dst, int *n)
{
	int len = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : -1;

	if (len < min_len || len > max_len)
		return attr_fail(p, len < 0 ? "must be an array of integers"
					    : "has the wrong number of entries");
	const cJSON *e;
	int i = 0;

	cJSON_ArrayForEach(e, item) {
		int rc = json_int(p, e, lo, JSON_INT_MAX, &dst[i++]);

		if (rc != 0)
			return rc;
	}
	*n = len;
	return 0;
}

static int parse_dim_list(const struct attr_parse *p, const cJSON *item, int min_len,
			  int max_len, int *dst, int *n)
{
	int64_t wide[DJ_MAX_DIMS];
	int rc = json_int_array(p, item, min_len, max_len, -DJ_MAX_DIMS, wide, n);

	for (int i = 0; rc == 0 && i < *n; i++) {
		if (wide[i] >= DJ_MAX_DIMS)
			return attr_fail(p, "holds a dimension out of range");
		dst[i] = (int)wide[i];
	}
	return rc;
}

static int parse_one(const struct attr_parse *p, unsigned int bit, const cJSON *item,
		     struct tn_op_attrs *a)
{
	int64_t v = 0;
	int n, rc;

	switch (bit) {
	case ATTR_DIM:
		rc = json_int(p, item, -DJ_MAX_DIMS, DJ_MAX_DIMS - 1, &v);
		a->has_dim = rc == 0;
		a->dim = (int)v;
		return rc;
	case ATTR_KEEPDIM:
		if (!cJSON_IsBool(item))
			return attr_fail(p, "must be true or false");
		a->keepdim = cJSON_IsTrue(item);
		return 0;
	case ATTR_DIMS:
		rc = parse_dim_list(p, item, 2, 2, a->dims, &n);
		a->has_dims = rc == 0;
		return rc;
	case ATTR_PERM:
		return parse_dim_list(p, item, 1, DJ_MAX_DIMS, a->perm, &a->n_perm);
	case ATTR_SHAPE:
		return json_int_array(p, item, 0, DJ_MAX_DIMS, -1, a->shape, &a->shape_ndim);
	case ATTR_NORM_SHAPE:
		return json_int_array(p, item, 1, DJ_MAX_DIMS, 0, a->norm_shape, &a->norm_ndim);
	case ATTR_START:
		rc = json_int(p, item, -JSON_INT_MAX, JSON_INT_MAX, &a->start);
		a->has_start = rc == 0;
		return rc;
	case ATTR_LENGTH:
		rc = json_int(p, item, 0, JSON_INT_MAX, &a->length);
		a->has_length = rc == 0;
		return rc;
	case ATTR_IS_CAUSAL:
		if (!cJSON_IsBool(item))
			return attr_fail(p, "must be true or false");
		a->is_causal = cJSON_IsTrue(item);
		return 0;
	case ATTR_SCALE:
		if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
			return attr_fail(p, "must be a finite number");
		a->has_scale = 1;
		a->scale = item->valuedouble;
		return 0;
	default: /* ATTR_EPS */
		if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < 0)
			return attr_fail(p, "must be a non-negative number");
		a->eps = item->valuedouble;
		return 0;
	}
}

static const struct {
	const char *key;
	unsigned int bit;
} attr_keys[] = {
	{"dim", ATTR_DIM},
	{"keepdim", ATTR_KEEPDIM},
	{"dims", ATTR_DIMS},
	{"perm", ATTR_PERM},
	{"shape", ATTR_SHAPE},
	{"normalized_shape", ATTR_NORM_SHAPE},
	{"eps", ATTR_EPS},
	{"start", ATTR_START},
	{"length", ATTR_LENGTH},
	{"is_causal", ATTR_IS_CAUSAL},
	{"scale", ATTR_SCALE},
};

#define N_ATTR_KEYS (sizeof(attr_keys) / sizeof(attr_keys[0]))

static unsigned int attr_bit(const char *key)
{
	for (size_t i = 0; i < N_ATTR_KEYS; i++)
		if (strcmp(attr_keys[i].key, key) == 0)
			return attr_keys[i].bit;
	return 0;
}

int tn_op_attrs_from_json(const struct tn_op *op, const cJSON *json,
			  struct tn_op_attrs *attrs, char *err, size_t errlen)
{
	const cJSON *item;

	if (op == NULL)
		return tn_op_fail(-DJ_EUNKNOWN_OP, err, errlen, "op", "unknown operation");
	tn_op_attrs_init(attrs);
	if (json == NULL || cJSON_IsNull(json))
		return 0;
	if (!cJSON_IsObject(json))
		return tn_op_fail(-EINVAL, err, errlen, op->name, "attributes must be a JSON object");
	unsigned int seen = 0;

	cJSON_ArrayForEach(item, json) {
		struct attr_parse p = {.op = op, .key = item->string, .err = err, .errlen = errlen};
		unsigned int bit = attr_bit(item->string);

		if (!(op->attr_keys & bit))
			return attr_fail(&p, bit ? "does not apply to this operation"
						 : "is unknown");
		/* cJSON keeps duplicate keys; which one wins would be a guess. */
		if (seen & bit)
			return attr_fail(&p, "is repeated");
		seen |= bit;
		int rc = parse_one(&p, bit, item, attrs);

		if (rc != 0)
			return rc;
	}
	return 0;
}

static int add_int_array(cJSON *obj, const char *key, const int64_t *v, int n)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);

	for (int i = 0; arr != NULL && i < n; i++)
		if (!cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)v[i])))
			return -ENOMEM;
	return arr != NULL ? 0 : -ENOMEM;
}

static int add_dim_list(cJSON *obj, const char *key, const int *v, int n)
{
	int64_t wide[DJ_MAX_DIMS];

	for (int i = 0; i < n; i++)
		wide[i] = v[i];
	return add_int_array(obj, key, wide, n);
}

static int fill_json(cJSON *obj, unsigned int keys, const struct tn_op_attrs *a)
{
	int rc = 0;

	if ((keys & ATTR_DIM) && a->has_dim && !cJSON_AddNumberToObject(obj, "dim", a->dim))
		rc = -ENOMEM;
	if ((keys & ATTR_KEEPDIM) && a->keepdim && !cJSON_AddTrueToObject(obj, "keepdim"))
		rc = -ENOMEM;
	if (rc == 0 && (keys & ATTR_DIMS) && a->has_dims)
		rc = add_dim_list(obj, "dims", a->dims, 2);
	if (rc == 0 && (keys & ATTR_PERM) && a->n_perm > 0)
		rc = add_dim_list(obj, "perm", a->perm, a->n_perm);
	if (rc == 0 && (keys & ATTR_SHAPE))
		rc = add_int_array(obj, "shape", a->shape, a->shape_ndim);
	if (rc == 0 && (keys & ATTR_NORM_SHAPE) && a->norm_ndim > 0)
		rc = add_int_array(obj, "normalized_shape", a->norm_shape, a->norm_ndim);
	if (rc == 0 && (keys & ATTR_EPS) && !isnan(a->eps) &&
	    !cJSON_AddNumberToObject(obj, "eps", a->eps))
		rc = -ENOMEM;
	if (rc == 0 && (keys & ATTR_START) && a->has_start &&
	    !cJSON_AddNumberToObject(obj, "start", (double)a->start))
		rc = -ENOMEM;
	if (rc == 0 && (keys & ATTR_LENGTH) && a->has_length &&
	    !cJSON_AddNumberToObject(obj, "length", (double)a->length))
		rc = -ENOMEM;
	if (rc == 0 && (keys & ATTR_IS_CAUSAL) && a->is_causal &&
	    !cJSON_AddTrueToObject(obj, "is_causal"))
		rc = -ENOMEM;
	if (rc == 0 && (keys & ATTR_SCALE) && a->has_scale &&
	    !cJSON_AddNumberToObject(obj, "scale", a->scale))
		rc = -ENOMEM;
	return rc;
}

cJSON *tn_op_attrs_to_json(const struct tn_op *op, const struct tn_op_attrs *attrs)
{
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL || op == NULL || attrs == NULL)
		return obj;
	if (fill_json(obj, op->attr_keys, attrs) != 0) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}
