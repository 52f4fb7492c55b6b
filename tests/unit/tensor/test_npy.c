/* SPDX-License-Identifier: BSD-3-Clause */
/* .npy files: numpy's exact bytes, round trips, every malformed header named. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "djinn/npy.h"
#include "tensor/ops.h"
#include "harness.h"
#include "ops_test_util.h"

static char dir[64];
static char err[256];

static int make_dir(void)
{
	return tu_tmpdir_create(dir, sizeof(dir), "npy");
}

static int remove_dir(void)
{
	return tu_tmpdir_remove(dir);
}

static const char *path_of(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* A header as numpy 1.24 writes it: the dict, spaces to a 64-byte multiple. */
static size_t numpy_file(char *buf, int version, const char *dict, const void *data,
			 size_t data_len)
{
	size_t prefix = version == 1 ? 10 : 12;
	size_t dlen = strlen(dict), total = (prefix + dlen + 1 + 63) / 64 * 64;
	size_t hlen = total - prefix;

	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (char)version;
	buf[7] = 0;
	buf[8] = (char)(hlen & 0xff);
	buf[9] = (char)(hlen >> 8);
	if (version > 1)
		buf[10] = buf[11] = 0;
	memcpy(buf + prefix, dict, dlen);
	memset(buf + prefix + dlen, ' ', hlen - dlen - 1);
	buf[total - 1] = '\n';
	if (data_len > 0)
		memcpy(buf + total, data, data_len);
	return total + data_len;
}

/* Headers captured from numpy 1.24's np.save (dict text including padding). */
static void test_header_bytes_match_numpy(void)
{
	static const struct {
		struct dj_tensor_desc desc;
		const char *dict;
		size_t total;
	} cases[] = {
		{{DJ_DTYPE_FLOAT32, 2, {2, 3}},
		 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 128},
		{{DJ_DTYPE_INT64, 0, {0}}, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", 128},
		{{DJ_DTYPE_FLOAT16, 1, {4}},
		 "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", 128},
		{{DJ_DTYPE_INT32, 4, {1, 2, 0, 3}},
		 "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2, 0, 3), }", 128},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char mine[512], theirs[512];
		size_t len;

		CU_ASSERT_EQUAL_FATAL(dj_npy_format_header(&cases[i].desc, mine, sizeof(mine), &len), 0);
		size_t tlen = numpy_file(theirs, 1, cases[i].dict, NULL, 0);

		CU_ASSERT_EQUAL(len, cases[i].total);
		CU_ASSERT_EQUAL(tlen, cases[i].total);
		if (len == tlen && memcmp(mine, theirs, len) != 0)
			printf("\nheader %zu differs: %.*s\n", i, (int)len - 10, mine + 10);
		CU_ASSERT(len == tlen && memcmp(mine, theirs, len) == 0);
	}
	char small[32];
	size_t len;

	CU_ASSERT_EQUAL(dj_npy_format_header(&cases[0].desc, small, sizeof(small), &len), -ENOSPC);
}

static void round_trip(enum dj_dtype t, int ndim, const int64_t *shape, unsigned int flags)
{
	struct dj_tensor a = {.desc = {.dtype = t, .ndim = ndim}, .mem = DJ_MEM_HOST}, b = {0};

	for (int i = 0; i < ndim; i++)
		a.desc.shape[i] = shape[i];
	size_t bytes = dj_tensor_nbytes(&a.desc);

	a.data = malloc(bytes + 1);
	for (size_t i = 0; i < bytes; i++)
		((unsigned char *)a.data)[i] = (unsigned char)rand();
	CU_ASSERT_EQUAL_FATAL(dj_npy_save(path_of("rt.npy"), &a, err, sizeof(err)), 0);
	int rc = dj_npy_load(path_of("rt.npy"), flags, &b, err, sizeof(err));

	if (rc != 0)
		printf("\nload: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT(dj_tensor_desc_equal(&a.desc, &b.desc));
	CU_ASSERT_EQUAL(b.mem, DJ_MEM_HOST);
	CU_ASSERT_EQUAL(memcmp(a.data, b.data, bytes), 0);
	free(a.data);
	dj_tensor_free_host(&b);
	CU_ASSERT_PTR_NULL(b.data);
}

static void test_round_trips(void)
{
	srand(dj_test_seed());
	for (int t = 0; t < DJ_DTYPE_COUNT; t++) {
		round_trip((enum dj_dtype)t, 0, NULL, DJ_NPY_U2_AS_BF16);
		round_trip((enum dj_dtype)t, 1, (int64_t[]){17}, DJ_NPY_U2_AS_BF16);
		round_trip((enum dj_dtype)t, 3, (int64_t[]){2, 5, 3}, DJ_NPY_U2_AS_BF16);
		round_trip((enum dj_dtype)t, 2, (int64_t[]){0, 4}, DJ_NPY_U2_AS_BF16);
		round_trip((enum dj_dtype)t, 8, (int64_t[]){1, 2, 1, 3, 1, 2, 1, 2}, DJ_NPY_U2_AS_BF16);
	}
	round_trip(DJ_DTYPE_FLOAT32, 2, (int64_t[]){1000, 300}, 0);
}

/* Versions 2.0 and 3.0, double quotes, other key order, Python 2 longs. */
static void test_accepted_variants(void)
{
	char buf[512];
	int32_t data[6] = {1, 2, 3, 4, 5, 6};
	struct dj_tensor t;
	static const char *const dicts[] = {
		"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
		"{\"shape\": (2, 3), \"descr\": \"<i4\", \"fortran_order\": False}",
		"{'descr':'<i4','fortran_order':False,'shape':(2L, 3L)}",
		"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3,), }",
	};

	for (int version = 1; version <= 3; version++) {
		for (size_t i = 0; i < sizeof(dicts) / sizeof(dicts[0]); i++) {
			size_t len = numpy_file(buf, version, dicts[i], data, sizeof(data));
			int rc = dj_npy_load_buffer(buf, len, 0, &t, err, sizeof(err));

			if (rc != 0)
				printf("\nv%d %s: %s\n", version, dicts[i], err);
			CU_ASSERT_EQUAL_FATAL(rc, 0);
			CU_ASSERT(t.desc.dtype == DJ_DTYPE_INT32 && t.desc.ndim == 2 &&
				  t.desc.shape[0] == 2 && t.desc.shape[1] == 3);
			CU_ASSERT_EQUAL(memcmp(t.data, data, sizeof(data)), 0);
			dj_tensor_free_host(&t);
		}
	}
}

static void expect_bad(const char *dict, size_t data_len, unsigned int flags, int rc,
		       const char *piece)
{
	static char buf[1 << 12];
	static const char zeros[256];
	size_t len = numpy_file(buf, 1, dict, zeros, data_len);
	struct dj_tensor t = {0};
	int got = dj_npy_load_buffer(buf, len, flags, &t, err, sizeof(err));

	if (got != rc || strstr(err, piece) == NULL)
		printf("\n%s: rc %d (want %d) \"%s\" (want \"%s\")\n", dict, got, rc, err, piece);
	CU_ASSERT_EQUAL(got, rc);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, piece));
	/* A refusal leaves nothing allocated. */
	if (rc != 0)
		CU_ASSERT_PTR_NULL(t.data);
	dj_tensor_free_host(&t);
}

#define OK_TAIL "'fortran_order': False, 'shape': (2,), }"

static void test_malformed_headers(void)
{
	expect_bad("{'descr': '<f4', " OK_TAIL, 8, 0, 0, "");
	expect_bad("{'descr': '<f8', " OK_TAIL, 16, 0, -DJ_EDTYPE,
		   "float64 ('<f8') not supported: use a.astype(np.float32)");
	expect_bad("{'descr': '<f8', " OK_TAIL, 16, DJ_NPY_F64_TO_F32, 0, "");
	expect_bad("{'descr': '>f4', " OK_TAIL, 8, 0, -DJ_EDTYPE, "big-endian data '>f4'");
	expect_bad("{'descr': '<u2', " OK_TAIL, 4, 0, -DJ_EDTYPE, "'<u2' (uint16) is not a Djinn");
	expect_bad("{'descr': '<u2', " OK_TAIL, 4, DJ_NPY_U2_AS_BF16, 0, "");
	expect_bad("{'descr': '|b1', " OK_TAIL, 2, 0, -DJ_EDTYPE, "dtype '|b1' not supported");
	expect_bad("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, 0, -EINVAL,
		   "fortran_order True not supported");
	expect_bad("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, 0, -EINVAL,
		   "fortran_order must be True or False");
	expect_bad("{'descr': '<f4', 'shape': (2,), }", 8, 0, -EINVAL, "header lacks 'fortran_order'");
	expect_bad("{'descr': '<f4', 'fortran_order': False, }", 8, 0, -EINVAL, "lacks 'shape'");
	expect_bad("{'descr': '<f4', 'descr': '<f4', " OK_TAIL, 8, 0, -EINVAL,
		   "header key 'descr' repeated");
	expect_bad("{'descr': '<f4', 'color': 'red', " OK_TAIL, 8, 0, -EINVAL,
		   "unknown header key 'color'");
	expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, 0, -EINVAL,
		   "non-negative integers");
	expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", 8, 0, -EINVAL,
		   "expected ',' or ')'");
	expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, 0, -EINVAL,
		   "1-tuple without a comma");
	expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, 0, -EINVAL,
		   "shape must be a tuple");
	expect_bad("{'descr': '<f4', 'fortran_order': False, "
		   "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 4, 0, -DJ_ESHAPE,
		   "more than 8 dimensions");
	expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
		   4, 0, -DJ_ESHAPE, "shape dimension overflows");
	expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }",
		   4, 0, -DJ_ESHAPE, "shape too large");
	expect_bad("{'descr': '<f4', " OK_TAIL " x", 8, 0, -EINVAL, "trailing characters");
	expect_bad("{'descr' '<f4', " OK_TAIL, 8, 0, -EINVAL, "expected ':' after a key");
	expect_bad("{'descr': '<f4', 'fortran_order': False 'shape': (2,)}", 8, 0, -EINVAL,
		   "expected ',' or '}'");
	expect_bad("'descr': '<f4'", 8, 0, -EINVAL, "expected '{'");
	expect_bad("{'de\\'scr': '<f4', " OK_TAIL, 8, 0, -EINVAL, "unexpected string");
	expect_bad("{'descr': '<f4', " OK_TAIL, 4, 0, -DJ_ESHAPE,
		   "data is 4 bytes, the shape needs 8 (truncated)");
	expect_bad("{'descr': '<f4', " OK_TAIL, 12, 0, -DJ_ESHAPE, "(trailing bytes)");
}

/* numpy's default float64, narrowed to float32 on request only. */
static void test_float64_to_float32(void)
{
	double v[4] = {1.5, 1.0 / 3, 1e300, -0.0};
	char buf[256];
	size_t len = numpy_file(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
				v, sizeof(v));
	struct dj_tensor t = {0};
	struct dj_tensor_desc d;
	size_t off;
	FILE *f;

	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, len, 0, &t, err, sizeof(err)), -DJ_EDTYPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "float64-to-float32 option"));
	CU_ASSERT_EQUAL(dj_npy_parse_header(buf, len, DJ_NPY_F64_TO_F32, &d, &off, err, sizeof(err)),
			-DJ_EDTYPE);
	for (int from_file = 0; from_file < 2; from_file++) {
		if (from_file) {
			f = fopen(path_of("f8.npy"), "w");
			CU_ASSERT_PTR_NOT_NULL_FATAL(f);
			CU_ASSERT_EQUAL(fwrite(buf, 1, len, f), len);
			fclose(f);
		}
		int rc = from_file ? dj_npy_load(path_of("f8.npy"), DJ_NPY_F64_TO_F32, &t, err,
						 sizeof(err))
				   : dj_npy_load_buffer(buf, len, DJ_NPY_F64_TO_F32, &t, err,
							sizeof(err));

		CU_ASSERT_EQUAL_FATAL(rc, 0);
		CU_ASSERT(t.desc.dtype == DJ_DTYPE_FLOAT32 && t.desc.ndim == 2 &&
			  t.desc.shape[1] == 2);
		float *x = t.data;

		CU_ASSERT(x[0] == 1.5f && x[1] == (float)(1.0 / 3) && isinf(x[2]));
		CU_ASSERT(x[3] == 0 && signbit(x[3]));
		dj_tensor_free_host(&t);
	}
	/* The size check counts 8 bytes per element in the file. */
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, len - 8, DJ_NPY_F64_TO_F32, &t, err, sizeof(err)),
			-DJ_ESHAPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "data is 24 bytes, the shape needs 32"));
}

static void test_malformed_prefix(void)
{
	char buf[256];
	struct dj_tensor t = {0};
	size_t len = numpy_file(buf, 1, "{'descr': '<f4', " OK_TAIL, "\0\0\0\0\0\0\0\0", 8);

	buf[1] = 'X';
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, len, 0, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));
	buf[1] = 'N';
	buf[6] = 4;
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, len, 0, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unsupported format version 4.0"));
	buf[6] = 1;
	buf[7] = 1;
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, len, 0, &t, err, sizeof(err)), -EINVAL);
	buf[7] = 0;
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, 40, 0, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated header"));
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, 5, 0, &t, err, sizeof(err)), -EINVAL);
	/* Version 2 with a 1 GiB header length: refused before any allocation. */
	buf[6] = 2;
	buf[8] = buf[9] = buf[10] = 0;
	buf[11] = 0x40;
	CU_ASSERT_EQUAL(dj_npy_load_buffer(buf, len, 0, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "too large"));
	CU_ASSERT_PTR_NULL(t.data);
}

static void test_file_errors(void)
{
	struct dj_tensor t = {0};
	FILE *f;

	CU_ASSERT_EQUAL(dj_npy_load(path_of("missing.npy"), 0, &t, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing.npy"));
	f = fopen(path_of("empty.npy"), "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	CU_ASSERT_EQUAL(dj_npy_load(path_of("empty.npy"), 0, &t, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));
	/* A truncated data section in a real file. */
	char buf[256];
	size_t len = numpy_file(buf, 1, "{'descr': '<i8', " OK_TAIL, "0123456789abcdef", 16);

	f = fopen(path_of("short.npy"), "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(buf, 1, len - 3, f), len - 3);
	fclose(f);
	CU_ASSERT_EQUAL(dj_npy_load(path_of("short.npy"), 0, &t, err, sizeof(err)), -DJ_ESHAPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));
	CU_ASSERT_PTR_NULL(t.data);
	struct dj_tensor host = {.desc = {.dtype = DJ_DTYPE_INT32, .ndim = 1, .shape = {1}},
				 .data = buf};

	CU_ASSERT_EQUAL(dj_npy_save("/nonexistent-dir/x.npy", &host, err, sizeof(err)), -ENOENT);
	host.mem = DJ_MEM_GPU;
	CU_ASSERT_EQUAL(dj_npy_save(path_of("gpu.npy"), &host, err, sizeof(err)), -EINVAL);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"header bytes identical to numpy's", test_header_bytes_match_numpy},
		{"save/load round trips, all dtypes and shapes", test_round_trips},
		{"versions 2.0/3.0 and header variants accepted", test_accepted_variants},
		{"malformed headers and unsupported dtypes named", test_malformed_headers},
		{"float64 narrowed to float32 on request", test_float64_to_float32},
		{"bad magic, version, lengths", test_malformed_prefix},
		{"file errors", test_file_errors},
		{NULL, NULL},
	};
	dj_test_add_suite("npy", make_dir, remove_dir, cases);
	return dj_test_main(argc, argv);
}
