/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interoperability with numpy itself, when a python3 with numpy is installed
 * (skipped otherwise): numpy loads what Djinn saves, Djinn loads what numpy
 * saves, byte for byte, and float16 rounding matches numpy's astype.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "djinn/common.h"
#include "djinn/npy.h"
#include "harness.h"
#include "ops_test_util.h"

static char dir[64];
static const char *python;
static char err[256];

static const char *const candidates[] = {"python3", "/usr/bin/python3"};

static const char *find_numpy_python(void)
{
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "%s -c 'import numpy' >/dev/null 2>&1", candidates[i]);
		if (system(cmd) == 0)
			return candidates[i];
	}
	return NULL;
}

static int run_python(const char *script)
{
	char path[128], cmd[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/check.py", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(script, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd '%s' && %s check.py", dir, python);
	return system(cmd);
}

static void save_random(const char *name, enum dj_dtype t, int ndim, const int64_t *shape)
{
	struct dj_tensor a = {.desc = {.dtype = t, .ndim = ndim}, .mem = DJ_MEM_HOST};
	char path[128];
	FILE *raw;

	for (int i = 0; i < ndim; i++)
		a.desc.shape[i] = shape[i];
	size_t bytes = dj_tensor_nbytes(&a.desc);

	a.data = malloc(bytes + 1);
	for (size_t i = 0; i < bytes; i++)
		((unsigned char *)a.data)[i] = (unsigned char)rand();
	/* Finite float16 values: clear the top exponent bit of each element. */
	if (t == DJ_DTYPE_FLOAT16)
		for (size_t i = 1; i < bytes; i += 2)
			((unsigned char *)a.data)[i] &= 0xbf;
	snprintf(path, sizeof(path), "%s/c_%s.npy", dir, name);
	CU_ASSERT_EQUAL(dj_npy_save(path, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/c_%s.bin", dir, name);
	raw = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
	CU_ASSERT_EQUAL(fwrite(a.data, 1, bytes, raw), bytes);
	fclose(raw);
	free(a.data);
}

static void test_numpy_loads_ours(void)
{
	srand(dj_test_seed());
	save_random("f4", DJ_DTYPE_FLOAT32, 3, (int64_t[]){3, 4, 5});
	save_random("f2", DJ_DTYPE_FLOAT16, 1, (int64_t[]){9});
	save_random("i4", DJ_DTYPE_INT32, 2, (int64_t[]){2, 7});
	save_random("i8", DJ_DTYPE_INT64, 0, NULL);
	save_random("bf", DJ_DTYPE_BFLOAT16, 2, (int64_t[]){4, 0});
	CU_ASSERT_EQUAL(run_python(
		"import numpy as np, sys\n"
		"want = {'f4': ('<f4', (3, 4, 5)), 'f2': ('<f2', (9,)), 'i4': ('<i4', (2, 7)),\n"
		"        'i8': ('<i8', ()), 'bf': ('<u2', (4, 0))}\n"
		"for name, (descr, shape) in want.items():\n"
		"    a = np.load('c_%s.npy' % name)\n"
		"    raw = open('c_%s.bin' % name, 'rb').read()\n"
		"    if a.dtype.str != descr or a.shape != shape or a.tobytes() != raw:\n"
		"        print('numpy disagrees on', name, a.dtype.str, a.shape); sys.exit(1)\n"),
		0);
}

static void test_we_load_numpys(void)
{
	static const struct {
		const char *name;
		enum dj_dtype dtype;
		int ndim;
		int64_t shape[3];
	} arrays[] = {
		{"f4", DJ_DTYPE_FLOAT32, 2, {5, 6}},
		{"f2", DJ_DTYPE_FLOAT16, 3, {2, 1, 3}},
		{"i4", DJ_DTYPE_INT32, 1, {11}},
		{"i8", DJ_DTYPE_INT64, 0, {0}},
		{"v2", DJ_DTYPE_FLOAT32, 1, {4}},
		{"v3", DJ_DTYPE_INT64, 2, {3, 2}},
	};
	CU_ASSERT_EQUAL_FATAL(run_python(
		"import numpy as np\n"
		"from numpy.lib import format as fmt\n"
		"rng = np.random.default_rng(7)\n"
		"arrs = {'f4': rng.standard_normal((5, 6)).astype(np.float32),\n"
		"        'f2': rng.standard_normal((2, 1, 3)).astype(np.float16),\n"
		"        'i4': rng.integers(-2**31, 2**31, 11).astype(np.int32),\n"
		"        'i8': np.array(-5, dtype=np.int64),\n"
		"        'v2': np.arange(4, dtype=np.float32), 'v3': np.arange(6).reshape(3, 2)}\n"
		"for name, a in arrs.items():\n"
		"    version = {'v2': (2, 0), 'v3': (3, 0)}.get(name)\n"
		"    with open('py_%s.npy' % name, 'wb') as f:\n"
		"        fmt.write_array(f, a, version=version)\n"
		"    open('py_%s.bin' % name, 'wb').write(a.tobytes())\n"),
		0);
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		char path[128], raw[512];
		struct dj_tensor t;
		FILE *f;

		snprintf(path, sizeof(path), "%s/py_%s.npy", dir, arrays[i].name);
		int rc = dj_npy_load(path, 0, &t, err, sizeof(err));

		if (rc != 0)
			printf("\n%s: %s\n", path, err);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		CU_ASSERT_EQUAL(t.desc.dtype, arrays[i].dtype);
		CU_ASSERT_EQUAL(t.desc.ndim, arrays[i].ndim);
		for (int d = 0; d < arrays[i].ndim; d++)
			CU_ASSERT_EQUAL(t.desc.shape[d], arrays[i].shape[d]);
		snprintf(path, sizeof(path), "%s/py_%s.bin", dir, arrays[i].name);
		f = fopen(path, "rb");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		size_t n = fread(raw, 1, sizeof(raw), f);

		fclose(f);
		CU_ASSERT_EQUAL(n, dj_tensor_nbytes(&t.desc));
		CU_ASSERT_EQUAL(memcmp(raw, t.data, n), 0);
		dj_tensor_free_host(&t);
	}
}

/* numpy's default float64 arrays load as float32 exactly like astype(np.float32). */
static void test_float64_like_astype(void)
{
	char path[128];
	struct dj_tensor t;
	FILE *f;
	float want[64];

	CU_ASSERT_EQUAL_FATAL(run_python(
		"import numpy as np\n"
		"a = np.random.default_rng().standard_normal((8, 8)) * 1e3\n"
		"np.save('f8.npy', a)\n"
		"a.astype(np.float32).tofile('f8_as_f4.bin')\n"),
		0);
	snprintf(path, sizeof(path), "%s/f8.npy", dir);
	CU_ASSERT_EQUAL_FATAL(dj_npy_load(path, DJ_NPY_F64_TO_F32, &t, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/f8_as_f4.bin", dir);
	f = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fread(want, sizeof(float), 64, f), 64);
	fclose(f);
	CU_ASSERT(t.desc.dtype == DJ_DTYPE_FLOAT32 && dj_tensor_numel(&t.desc) == 64);
	CU_ASSERT_EQUAL(memcmp(t.data, want, sizeof(want)), 0);
	dj_tensor_free_host(&t);
}

/* numpy rounds float32 -> float16 to nearest even: the same bits as ours. */
static void test_float16_matches_numpy(void)
{
	enum { N = 1 << 18 };
	char path[128];
	uint32_t *bits = malloc(N * sizeof(*bits));
	uint16_t *theirs = malloc(N * sizeof(*theirs));
	FILE *f;
	int mismatches = 0;

	CU_ASSERT_EQUAL_FATAL(run_python(
		"import numpy as np, warnings\n"
		"warnings.simplefilter('ignore')\n"
		"rng = np.random.default_rng()\n"
		"n = 1 << 17\n"
		"a = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)\n"
		"b = (rng.standard_normal(n) * np.exp2(rng.integers(-26, 17, n))).astype(np.float32)\n"
		"x = np.concatenate([a, b])\n"
		"x.tofile('f32.bin')\n"
		"x.astype(np.float16).tofile('f16.bin')\n"),
		0);
	snprintf(path, sizeof(path), "%s/f32.bin", dir);
	f = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fread(bits, sizeof(*bits), N, f), N);
	fclose(f);
	snprintf(path, sizeof(path), "%s/f16.bin", dir);
	f = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fread(theirs, sizeof(*theirs), N, f), N);
	fclose(f);
	for (int i = 0; i < N; i++) {
		float x;

		memcpy(&x, &bits[i], sizeof(x));
		uint16_t mine = dj_float_to_half(x);
		int both_nan = (mine & 0x7fff) > 0x7c00 && (theirs[i] & 0x7fff) > 0x7c00;

		if (mine != theirs[i] && !both_nan && mismatches++ < 5)
			printf("\n%a: ours 0x%04x, numpy 0x%04x\n", (double)x, mine, theirs[i]);
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	free(bits);
	free(theirs);
}

static int setup(void)
{
	return tu_tmpdir_create(dir, sizeof(dir), "numpy");
}

static int teardown(void)
{
	return tu_tmpdir_remove(dir);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"numpy loads Djinn's files", test_numpy_loads_ours},
		{"Djinn loads numpy's files (v1, v2, v3)", test_we_load_numpys},
		{"float16 rounding identical to numpy", test_float16_matches_numpy},
		{"float64 files load like astype(np.float32)", test_float64_like_astype},
		{NULL, NULL},
	};
	python = find_numpy_python();
	if (python == NULL)
		dj_test_skip("no python3 with numpy (apt-get install python3-numpy)");
	dj_test_add_suite("npy vs numpy", setup, teardown, cases);
	return dj_test_main(argc, argv);
}
