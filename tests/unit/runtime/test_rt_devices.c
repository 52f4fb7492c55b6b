/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime's devices without a GPU: the device list grammar (for
 * machines of 0, 1, 4, 8 and 20 GPUs), the staged move pipeline against a
 * recording implementation, and a runtime of simulated devices (host
 * memory pretending to be GPUs of a given size) driven through its backend
 * table: placement, per-device accounting, the default device of sessions,
 * capacity, operations on their inputs' device, outputs placed elsewhere,
 * to_device through the staged path (byte-exact, many chunks), and moves in
 * opposite directions at once with one context per device.
 *
 *   test_rt_devices gpu   the same moves on real GPU memory: every GPU, or
 *                         GPU 0 twice (cuda:0 and its alias cuda:0.1: two
 *                         contexts on one GPU) where there is one; device
 *                         to device / peer and staged, byte-exact, an
 *                         operation after each move against the CPU;
 *                         skipped (77) without a GPU
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "gpu/ops/gpu_ops.h"
#include "runtime/runtime.h"
#include "harness.h"

/* ---- the device list ------------------------------------------------------ */

static void expect_cuda(const char *spec, int n_gpus, int n, const int *ordinals)
{
	struct rt_device_spec s;
	char err[160];

	CU_ASSERT_EQUAL_FATAL(rt_device_spec_parse(spec, n_gpus, &s, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(s.kind, RT_DEVICE_CUDA);
	CU_ASSERT_EQUAL_FATAL(s.n, n);
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(s.ordinals[i], ordinals[i]);
}

static void expect_error(const char *spec, int n_gpus, int code, const char *words)
{
	struct rt_device_spec s;
	char err[160] = "";

	CU_ASSERT_EQUAL(rt_device_spec_parse(spec, n_gpus, &s, err, sizeof(err)), code);
	if (strstr(err, words) == NULL)
		printf("\n  '%s' on %d GPUs: \"%s\" lacks \"%s\"\n", spec, n_gpus, err, words);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, words));
}

static void test_spec(void)
{
	static const int seq[20] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	struct rt_device_spec s;

	/* auto: every GPU, else host memory; none / host: host memory. */
	CU_ASSERT_EQUAL(rt_device_spec_parse(NULL, 0, &s, NULL, 0), 0);
	CU_ASSERT_EQUAL(s.kind, RT_DEVICE_HOST);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_EQUAL(rt_device_spec_parse("auto", 0, &s, NULL, 0), 0);
	CU_ASSERT_EQUAL(s.kind, RT_DEVICE_HOST);
	expect_cuda("auto", 1, 1, seq);
	expect_cuda("auto", 8, 8, seq);
	expect_cuda("", 4, 4, seq);
	expect_cuda("all", 8, 8, seq);
	expect_cuda("auto", 20, RT_MAX_DEVICES, seq); /* the first 16 */
	CU_ASSERT_EQUAL(rt_device_spec_parse("none", 8, &s, NULL, 0), 0);
	CU_ASSERT_EQUAL(s.kind, RT_DEVICE_HOST);
	CU_ASSERT_EQUAL(rt_device_spec_parse("host", 8, &s, NULL, 0), 0);
	CU_ASSERT_EQUAL(s.kind, RT_DEVICE_HOST);
	/* One index, lists, an index repeated (a logical alias). */
	expect_cuda("1", 4, 1, (int[]){1});
	expect_cuda("0,2,3", 4, 3, (int[]){0, 2, 3});
	expect_cuda("3,0", 8, 2, (int[]){3, 0});
	expect_cuda("0,0", 1, 2, (int[]){0, 0});
	/* Errors name what is wrong. */
	expect_error("all", 0, -DJ_ENOGPU, "no CUDA device");
	expect_error("4", 4, -DJ_ENOGPU, "has 4");
	expect_error("0,7", 4, -DJ_ENOGPU, "has 4");
	expect_error("0", 0, -DJ_ENOGPU, "has 0");
	for (const char *const *bad = (const char *const[]){"x", "1,", ",1", "-1", "1,,2", "1 2",
							     "+1", "0x1", "cuda:0", NULL};
	     *bad != NULL; bad++)
		expect_error(*bad, 4, -EINVAL, "not auto, all, none");
	expect_error("0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0", 1, -EINVAL, "more than 16");
	/* Simulated devices. */
	CU_ASSERT_EQUAL(rt_device_spec_parse("sim:2", 0, &s, NULL, 0), 0);
	CU_ASSERT_EQUAL(s.kind, RT_DEVICE_SIM);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(s.sim_capacity, UINT64_C(1) << 30);
	CU_ASSERT_EQUAL(rt_device_spec_parse("sim:16:64M", 8, &s, NULL, 0), 0);
	CU_ASSERT_EQUAL(s.n, 16);
	CU_ASSERT_EQUAL(s.sim_capacity, UINT64_C(64) << 20);
	expect_error("sim:0", 0, -EINVAL, "N from 1 to 16");
	expect_error("sim:17", 0, -EINVAL, "N from 1 to 16");
	expect_error("sim:x", 0, -EINVAL, "N from 1 to 16");
	expect_error("sim:2:1", 0, -EINVAL, "SIZE must be");
	expect_error("sim:2:lots", 0, -EINVAL, "SIZE must be");
}

/* ---- the staged pipeline ---------------------------------------------------- */

#define REC_MAX 256

/* Records every step; checks the pipeline's promises as it goes. */
struct recorder {
	char steps[REC_MAX];       /* 'o' out, 'i' in, 'w' wait, 'f' finish */
	unsigned int slot[REC_MAX];
	size_t len[REC_MAX];
	int n;
	int out_pending[DJG_STAGE_MAX_SLOTS]; /* out done, its in not yet */
	int in_unwaited[DJG_STAGE_MAX_SLOTS]; /* an in read the slot, not waited */
	int violations;
	int fail_out_at;            /* fail the k-th out (1-based); 0: never */
	int outs;
};

static void rec(struct recorder *r, char step, unsigned int slot, size_t len)
{
	if (r->n < REC_MAX) {
		r->steps[r->n] = step;
		r->slot[r->n] = slot;
		r->len[r->n++] = len;
	}
}

static int rec_out(void *ctx, unsigned int slot, void *host, const void *src, size_t n)
{
	struct recorder *r = ctx;

	/* A slot is refilled only once its previous reader was waited for. */
	if (r->in_unwaited[slot] || r->out_pending[slot])
		r->violations++;
	if (++r->outs == r->fail_out_at)
		return -EIO;
	memcpy(host, src, n);
	r->out_pending[slot] = 1;
	rec(r, 'o', slot, n);
	return 0;
}

static int rec_in(void *ctx, unsigned int slot, void *dst, const void *host, size_t n)
{
	struct recorder *r = ctx;

	if (!r->out_pending[slot])
		r->violations++;
	memcpy(dst, host, n);
	r->out_pending[slot] = 0;
	r->in_unwaited[slot] = 1;
	rec(r, 'i', slot, n);
	return 0;
}

static int rec_wait(void *ctx, unsigned int slot)
{
	struct recorder *r = ctx;

	r->in_unwaited[slot] = 0;
	rec(r, 'w', slot, 0);
	return 0;
}

static int rec_finish(void *ctx)
{
	struct recorder *r = ctx;

	memset(r->in_unwaited, 0, sizeof(r->in_unwaited));
	rec(r, 'f', 0, 0);
	return 0;
}

static const struct djg_stage_ops rec_ops = {
	.out = rec_out, .in = rec_in, .wait = rec_wait, .finish = rec_finish,
};

static int count_steps(const struct recorder *r, char step)
{
	int n = 0;

	for (int i = 0; i < r->n; i++)
		n += r->steps[i] == step;
	return n;
}

static void test_stage_pipeline(void)
{
	unsigned int seed = dj_test_seed();
	size_t sizes[] = {0, 1, 999, 1000, 1001, 2999, 3000, 12345};
	char host[3 * 1000], src[12345], dst[12345];
	struct djg_stage_ring ring = {.host = host, .slot_bytes = 1000, .slots = 3};
	uint64_t chunks;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)rand_r(&seed);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct recorder r = {.n = 0};
		size_t bytes = sizes[k];

		memset(dst, 0x5a, sizeof(dst));
		CU_ASSERT_EQUAL(djg_stage_run(&rec_ops, &r, &ring, dst, src, bytes, &chunks), 0);
		CU_ASSERT_EQUAL(chunks, (bytes + 999) / 1000);
		CU_ASSERT_EQUAL(memcmp(dst, src, bytes), 0);
		if (bytes < sizeof(dst))
			CU_ASSERT_EQUAL(dst[bytes], 0x5a); /* nothing written past the end */
		CU_ASSERT_EQUAL(r.violations, 0);
		CU_ASSERT_EQUAL(count_steps(&r, 'o'), (int)chunks);
		CU_ASSERT_EQUAL(count_steps(&r, 'i'), (int)chunks);
		/* Waits only for slots being reused: chunks beyond the ring. */
		CU_ASSERT_EQUAL(count_steps(&r, 'w'), chunks > 3 ? (int)chunks - 3 : 0);
		CU_ASSERT_EQUAL(count_steps(&r, 'f'), 1);
		CU_ASSERT_EQUAL(r.steps[r.n - 1], 'f');
		if (chunks > 0)
			CU_ASSERT_EQUAL(r.len[r.n - 2], bytes - (chunks - 1) * 1000);
	}
	/* A failing step stops the loop; what started is finished. */
	struct recorder r = {.fail_out_at = 4};

	CU_ASSERT_EQUAL(djg_stage_run(&rec_ops, &r, &ring, dst, src, 12345, &chunks), -EIO);
	CU_ASSERT_EQUAL(count_steps(&r, 'o'), 3);
	CU_ASSERT_EQUAL(count_steps(&r, 'f'), 1);
	/* Rings the pipeline cannot use. */
	struct djg_stage_ring bad = ring;

	bad.slots = 1;
	CU_ASSERT_EQUAL(djg_stage_run(&rec_ops, &r, &bad, dst, src, 10, NULL), -EINVAL);
	bad.slots = DJG_STAGE_MAX_SLOTS + 1;
	CU_ASSERT_EQUAL(djg_stage_run(&rec_ops, &r, &bad, dst, src, 10, NULL), -EINVAL);
	bad = ring;
	bad.slot_bytes = 0;
	CU_ASSERT_EQUAL(djg_stage_run(&rec_ops, &r, &bad, dst, src, 10, NULL), -EINVAL);
	CU_ASSERT_EQUAL(djg_stage_run(&rec_ops, &r, &ring, NULL, src, 10, NULL), -EINVAL);
	CU_ASSERT_STRING_EQUAL(djg_move_path_name(DJG_MOVE_STAGED), "staged");
	CU_ASSERT_STRING_EQUAL(djg_move_path_name(DJG_MOVE_PEER), "peer");
}

/* ---- a runtime of simulated devices ------------------------------------------ */

#define SIM_SIZE (1u << 20)

static struct rt_runtime *rt;
static const struct ctl_backend *be;

static int sim_init(void)
{
	struct rt_config cfg = {.gpu = "sim:3:1M", .stage_slot_bytes = 4096, .stage_slots = 2,
				.n_contexts = 1};

	be = rt_backend();
	return rt_create(&cfg, &rt);
}

static int sim_cleanup(void)
{
	rt_destroy(rt);
	return 0;
}

static void *session_open(void)
{
	void *s = NULL;
	char err[CTL_ERRMSG_MAX];

	CU_ASSERT_EQUAL_FATAL(be->session_open(rt, 1, &s, err), 0);
	return s;
}

static const char *session_dev(void *s)
{
	static char dev[CTL_DEVICE_MAX];
	char err[CTL_ERRMSG_MAX];

	CU_ASSERT_EQUAL(be->session_device(rt, s, NULL, dev, err), 0);
	return dev;
}

static const char *where(void *s, uint64_t h)
{
	static char dev[CTL_DEVICE_MAX];

	CU_ASSERT_EQUAL(be->device_of(rt, s, h, dev), 0);
	return dev;
}

static struct dj_tensor_desc vec(int64_t n)
{
	return (struct dj_tensor_desc){.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {n}};
}

static uint64_t put(void *s, const char *device, const float *v, int64_t n)
{
	struct dj_tensor_desc d = vec(n);
	struct ctl_tensor_io io;
	char err[CTL_ERRMSG_MAX] = "";
	uint64_t h = 0;

	CU_ASSERT_EQUAL_FATAL(be->alloc_on(rt, s, &d, device, &h, err), 0);
	CU_ASSERT_EQUAL_FATAL(be->write_begin(rt, s, h, &io, err), 0);
	CU_ASSERT_EQUAL(be->write_chunk(rt, s, &io, 0, v, (size_t)n * 4, err), 0);
	be->write_end(rt, s, &io, 0);
	return h;
}

static void get(void *s, uint64_t h, float *v, int64_t n)
{
	struct ctl_tensor_io io;
	char err[CTL_ERRMSG_MAX] = "";

	CU_ASSERT_EQUAL_FATAL(be->read_begin(rt, s, h, &io, err), 0);
	CU_ASSERT_EQUAL(io.nbytes, (uint64_t)n * 4);
	CU_ASSERT_EQUAL(be->read_chunk(rt, s, &io, 0, v, (size_t)n * 4, err), 0);
	be->read_end(rt, s, &io);
}

static int execute(void *s, const char *op, const uint64_t *in, int n_in, const char *attrs,
		   uint64_t *out, char *err)
{
	cJSON *a = cJSON_Parse(attrs != NULL ? attrs : "{}");
	struct dj_tensor_desc desc[DJ_MAX_OP_ARGS];
	int n_out = 0, rc;

	err[0] = '\0';
	rc = be->execute(rt, s, op, in, n_in, a, out, desc, &n_out, err);
	cJSON_Delete(a);
	/* Expected failures print too: a failure's reason is in the log. */
	if (rc != 0)
		printf("\n    %s %s: %s (%s)\n", op, attrs != NULL ? attrs : "", dj_strerror(rc), err);
	CU_ASSERT_EQUAL(n_out, rc == 0 ? 1 : 0);
	return rc;
}

static void memory(struct rt_memory *m)
{
	CU_ASSERT_EQUAL_FATAL(rt_memory(rt, m, RT_MAX_DEVICES), 3);
}

static void test_sim_devices(void)
{
	struct rt_device_info info[RT_MAX_DEVICES];

	CU_ASSERT_EQUAL_FATAL(rt_devices(rt, info, RT_MAX_DEVICES), 3);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "sim:%d", i);
		CU_ASSERT_STRING_EQUAL(info[i].name, name);
		CU_ASSERT_EQUAL(info[i].kind, RT_DEVICE_SIM);
		CU_ASSERT_EQUAL(rt_device_find(rt, name), i);
	}
	CU_ASSERT_EQUAL(rt_device_find(rt, "cuda:0"), -ENODEV);
	CU_ASSERT_EQUAL(rt_gpu_device(rt), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(rt_description(rt), "sim:0, sim:1, sim:2"));

	struct dp_caps caps = {0};

	CU_ASSERT_EQUAL(be->caps(rt, &caps), 0);
	CU_ASSERT_EQUAL(caps.n_gpus, 3);
	CU_ASSERT_STRING_EQUAL(caps.gpus[2].name, "sim:2");
	CU_ASSERT_STRING_EQUAL(caps.ops[caps.n_ops - 1], "to_device");
}

/* Sessions spread over the devices: fewest sessions first, then most free
 * memory, then the lowest index; SESSION's "device" overrides. */
static void test_default_device(void)
{
	void *s1 = session_open(), *s2 = session_open(), *s3 = session_open(), *s4, *s5;
	char dev[CTL_DEVICE_MAX], err[CTL_ERRMSG_MAX];
	float v[1000] = {0};
	struct rt_memory m[RT_MAX_DEVICES];

	CU_ASSERT_STRING_EQUAL(session_dev(s1), "sim:0");
	CU_ASSERT_STRING_EQUAL(session_dev(s2), "sim:1");
	CU_ASSERT_STRING_EQUAL(session_dev(s3), "sim:2");
	memory(m);
	CU_ASSERT_EQUAL(m[1].sessions, 1);
	/* Equal sessions: the most free memory wins (sim:0 holds a tensor). */
	put(s1, NULL, v, 1000);
	be->session_close(rt, s2);
	s4 = session_open();
	CU_ASSERT_STRING_EQUAL(session_dev(s4), "sim:1");
	put(s4, NULL, v, 1000);
	s5 = session_open();
	CU_ASSERT_STRING_EQUAL(session_dev(s5), "sim:2");
	/* Chosen explicitly; a name it does not have is refused, named. */
	CU_ASSERT_EQUAL(be->session_device(rt, s5, "sim:0", dev, err), 0);
	CU_ASSERT_STRING_EQUAL(dev, "sim:0");
	memory(m);
	CU_ASSERT_EQUAL(m[0].sessions, 2);
	CU_ASSERT_EQUAL(m[2].sessions, 1);
	CU_ASSERT_EQUAL(be->session_device(rt, s5, "cuda:3", dev, err), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no device 'cuda:3' on this server (it has sim:0, "
				      "sim:1, sim:2)"));
	be->session_close(rt, s1);
	be->session_close(rt, s3);
	be->session_close(rt, s4);
	be->session_close(rt, s5);
	memory(m);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(m[i].sessions, 0);
		CU_ASSERT_EQUAL(m[i].used, 0);
	}
}

static void test_placement_and_capacity(void)
{
	void *s = session_open();
	struct rt_memory m[RT_MAX_DEVICES];
	struct dj_tensor_desc big = vec(SIM_SIZE / 4 / 2 + 1); /* just over half */
	char err[CTL_ERRMSG_MAX] = "";
	uint64_t a, b, c;
	float v[100];

	for (int i = 0; i < 100; i++)
		v[i] = (float)i;
	a = put(s, "sim:2", v, 100);
	CU_ASSERT_STRING_EQUAL(where(s, a), "sim:2");
	memory(m);
	CU_ASSERT_EQUAL(m[2].used, 400);
	CU_ASSERT_EQUAL(m[2].tensors, 1);
	CU_ASSERT_EQUAL(m[0].tensors + m[1].tensors, 0);
	CU_ASSERT_EQUAL(m[2].free, SIM_SIZE - 400);
	CU_ASSERT_EQUAL(m[2].total, SIM_SIZE);
	CU_ASSERT_EQUAL(m[2].kind, RT_DEVICE_SIM);
	/* A device is full as a GPU is full: -ENOMEM naming it; the others
	 * still take tensors. */
	CU_ASSERT_EQUAL(be->alloc_on(rt, s, &big, "sim:1", &b, err), 0);
	CU_ASSERT_EQUAL(be->alloc_on(rt, s, &big, "sim:1", &c, err), -ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "sim:1"));
	CU_ASSERT_EQUAL(be->alloc_on(rt, s, &big, "sim:0", &c, err), 0);
	CU_ASSERT_EQUAL(be->alloc_on(rt, s, &big, "gpu:0", &c, err), -ENODEV);
	memory(m);
	CU_ASSERT_EQUAL(m[1].used, dj_tensor_nbytes(&big));
	CU_ASSERT_TRUE(m[1].free < SIM_SIZE / 2);
	be->session_close(rt, s);
	memory(m);
	CU_ASSERT_EQUAL(m[0].free, SIM_SIZE);
	CU_ASSERT_EQUAL(m[1].free, SIM_SIZE);
}

/* Operations run on their inputs' device; inputs on two devices are
 * refused naming both; a "device" places the output elsewhere. */
static void test_operations(void)
{
	void *s = session_open();
	struct rt_memory before[RT_MAX_DEVICES], after[RT_MAX_DEVICES];
	char err[CTL_ERRMSG_MAX];
	float x[64], y[64], z[64];
	uint64_t hx, hy, hy1, out;

	for (int i = 0; i < 64; i++) {
		x[i] = (float)i;
		y[i] = (float)(100 - i);
	}
	hx = put(s, "sim:0", x, 64);
	hy = put(s, "sim:0", y, 64);
	hy1 = put(s, "sim:1", y, 64);
	memory(before);
	CU_ASSERT_EQUAL(execute(s, "add", (uint64_t[]){hx, hy}, 2, NULL, &out, err), 0);
	CU_ASSERT_STRING_EQUAL(where(s, out), "sim:0");
	get(s, out, z, 64);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(z[i], 100.0f);
	memory(after);
	CU_ASSERT_EQUAL(after[0].ops, before[0].ops + 1);
	CU_ASSERT_EQUAL(after[1].ops, before[1].ops);
	CU_ASSERT_EQUAL(execute(s, "add", (uint64_t[]){hx, hy1}, 2, NULL, &out, err), -EXDEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "is on sim:0, input 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "on sim:1: move one with to_device"));
	/* Computed on sim:0, the result lands on sim:2. */
	CU_ASSERT_EQUAL(execute(s, "mul", (uint64_t[]){hx, hy}, 2, "{\"device\": \"sim:2\"}",
				&out, err), 0);
	CU_ASSERT_STRING_EQUAL(where(s, out), "sim:2");
	get(s, out, z, 64);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(z[i], x[i] * y[i]);
	memory(after);
	CU_ASSERT_EQUAL(after[0].ops, before[0].ops + 2);
	CU_ASSERT_EQUAL(after[0].moves_out, before[0].moves_out + 1);
	CU_ASSERT_EQUAL(after[2].moves_in, before[2].moves_in + 1);
	CU_ASSERT_EQUAL(after[2].move_bytes_in, before[2].move_bytes_in + 256);
	/* The temporary output on sim:0 is gone: two inputs and one sum left. */
	CU_ASSERT_EQUAL(after[0].tensors, 3);
	CU_ASSERT_EQUAL(after[2].tensors, 1);
	/* Bad devices, and an in-place op asked to put its output elsewhere. */
	CU_ASSERT_EQUAL(execute(s, "add", (uint64_t[]){hx, hy}, 2, "{\"device\": 3}", &out, err),
			-EINVAL);
	CU_ASSERT_EQUAL(execute(s, "add", (uint64_t[]){hx, hy}, 2, "{\"device\": \"sim:9\"}", &out,
				err), -ENODEV);
	CU_ASSERT_EQUAL(execute(s, "slice_write", (uint64_t[]){hx, hy}, 2,
				"{\"dim\": 0, \"start\": 0, \"device\": \"sim:1\"}", &out, err),
			-EXDEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "in place"));
	/* Attributes are still checked with "device" taken out. */
	CU_ASSERT_EQUAL(execute(s, "sum", &hx, 1, "{\"dim\": 0, \"device\": \"sim:1\", \"x\": 1}",
				&out, err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'x'"));
	be->session_close(rt, s);
}

/* to_device: a byte-exact copy on the named device through the staged
 * path: 4 KiB slots, so a 100 004-byte tensor takes 25 chunks. */
static void test_to_device(void)
{
	unsigned int seed = dj_test_seed();
	int64_t n = 25001;
	float *v = malloc((size_t)n * 4), *w = malloc((size_t)n * 4);
	void *s = session_open();
	struct rt_memory before[RT_MAX_DEVICES], after[RT_MAX_DEVICES];
	char err[CTL_ERRMSG_MAX];
	uint64_t h, moved, back, same;

	for (int64_t i = 0; i < n; i++)
		v[i] = (float)rand_r(&seed) / 7.0f;
	h = put(s, "sim:0", v, n);
	memory(before);
	CU_ASSERT_EQUAL(execute(s, "to_device", &h, 1, "{\"device\": \"sim:2\"}", &moved, err), 0);
	CU_ASSERT_STRING_EQUAL(where(s, moved), "sim:2");
	memset(w, 0, (size_t)n * 4);
	get(s, moved, w, n);
	CU_ASSERT_EQUAL(memcmp(v, w, (size_t)n * 4), 0);
	/* And back, and onto its own device (a copy there). */
	CU_ASSERT_EQUAL(execute(s, "to_device", &moved, 1, "{\"device\": \"sim:1\"}", &back, err),
			0);
	get(s, back, w, n);
	CU_ASSERT_EQUAL(memcmp(v, w, (size_t)n * 4), 0);
	CU_ASSERT_EQUAL(execute(s, "to_device", &back, 1, "{\"device\": \"sim:1\"}", &same, err),
			0);
	CU_ASSERT_NOT_EQUAL(same, back);
	get(s, same, w, n);
	CU_ASSERT_EQUAL(memcmp(v, w, (size_t)n * 4), 0);
	memory(after);
	CU_ASSERT_EQUAL(after[0].moves_out - before[0].moves_out, 1);
	CU_ASSERT_EQUAL(after[2].moves_in - before[2].moves_in, 1);
	CU_ASSERT_EQUAL(after[2].move_bytes_in - before[2].move_bytes_in, (uint64_t)n * 4);
	CU_ASSERT_EQUAL(after[1].moves_in - before[1].moves_in, 2);
	CU_ASSERT_EQUAL(after[1].used, 2 * (uint64_t)n * 4);
	/* The source stays; no operation was counted for a move. */
	get(s, h, w, n);
	CU_ASSERT_EQUAL(memcmp(v, w, (size_t)n * 4), 0);
	CU_ASSERT_EQUAL(after[0].ops, before[0].ops);
	/* What to_device refuses. */
	CU_ASSERT_EQUAL(execute(s, "to_device", &h, 1, NULL, &moved, err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "device is required"));
	CU_ASSERT_EQUAL(execute(s, "to_device", (uint64_t[]){h, h}, 2, "{\"device\": \"sim:1\"}",
				&moved, err), -EINVAL);
	CU_ASSERT_EQUAL(execute(s, "to_device", (uint64_t[]){0x1234}, 1, "{\"device\": \"sim:1\"}",
				&moved, err), -DJ_EHANDLE);
	/* A full destination: -ENOMEM naming it, nothing left behind. */
	uint64_t fill;
	/* sim:2 holds the 100 004-byte copy: 900 000 bytes more leave less
	 * room than another copy needs. */
	struct dj_tensor_desc most = vec(225000);

	CU_ASSERT_EQUAL_FATAL(be->alloc_on(rt, s, &most, "sim:2", &fill, err), 0);
	memory(before);
	CU_ASSERT_EQUAL(execute(s, "to_device", &h, 1, "{\"device\": \"sim:2\"}", &moved, err),
			-ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "sim:2"));
	memory(after);
	CU_ASSERT_EQUAL(after[2].tensors, before[2].tensors);
	be->session_close(rt, s);
	free(v);
	free(w);
}

struct mover {
	void *s;
	uint64_t h;
	const char *to;
	int failures;
};

/*
 * A batch (batch_begin .. batch_end, as the control plane brackets an
 * EXECUTE) on devices 0 and 1 of rt, named d0 and d1: its operations hold
 * one context of their device to the end (running stays 1 between them),
 * what they touched stays pinned (a tensor freed in the batch is still
 * charged), and a move inside the batch waits for the batch's work and
 * gives its context back first: with one context per device (sim_init) it
 * would otherwise wait for itself for ever. Then a chain of operations,
 * each freeing the one before (on a GPU: frees and allocations ordered on
 * the batch's stream, nothing waited for), read in the middle of the batch
 * (the read waits for the kernels before it) and after its end.
 */
static void batch_hold(const char *d0, const char *d1)
{
	enum { N = 64, CHAIN = 100 };
	float a[N], b[N], w[N];
	struct rt_memory m[RT_MAX_DEVICES];
	char err[CTL_ERRMSG_MAX], attrs[64];
	void *s = session_open();
	uint64_t ha, hb, sum, act, moved, x, used;

	for (int i = 0; i < N; i++) {
		a[i] = (float)(i - 32);
		b[i] = 0.5f;
	}
	ha = put(s, d0, a, N);
	hb = put(s, d0, b, N);
	be->batch_begin(rt, s);
	CU_ASSERT_EQUAL(execute(s, "add", (uint64_t[]){ha, hb}, 2, NULL, &sum, err), 0);
	rt_memory(rt, m, RT_MAX_DEVICES);
	CU_ASSERT_EQUAL(m[0].running, 1);
	CU_ASSERT_EQUAL(execute(s, "relu", &sum, 1, NULL, &act, err), 0);
	rt_memory(rt, m, RT_MAX_DEVICES);
	used = m[0].used;
	CU_ASSERT_EQUAL(be->free(rt, s, sum, err), 0);
	rt_memory(rt, m, RT_MAX_DEVICES);
	CU_ASSERT_EQUAL(m[0].used, used);
	snprintf(attrs, sizeof(attrs), "{\"device\": \"%.15s\"}", d1);
	CU_ASSERT_EQUAL(execute(s, "to_device", &act, 1, attrs, &moved, err), 0);
	rt_memory(rt, m, RT_MAX_DEVICES);
	CU_ASSERT_EQUAL(m[0].running, 0);
	CU_ASSERT_EQUAL(m[0].used, used - sizeof(a));
	x = act;
	for (int k = 0; k < CHAIN; k++) {
		uint64_t y;

		CU_ASSERT_EQUAL_FATAL(execute(s, "add", (uint64_t[]){x, hb}, 2, NULL, &y, err), 0);
		if (x != act)
			CU_ASSERT_EQUAL(be->free(rt, s, x, err), 0);
		x = y;
		if (k == CHAIN / 2) {
			rt_memory(rt, m, RT_MAX_DEVICES);
			CU_ASSERT_EQUAL(m[0].running, 1);
			get(s, x, w, N);
			for (int i = 0; i < N; i++)
				CU_ASSERT_EQUAL(w[i], (a[i] + 0.5f > 0 ? a[i] + 0.5f : 0.0f) +
						      0.5f * (k + 1));
		}
	}
	CU_ASSERT_EQUAL(be->batch_end(rt, s, err), 0);
	rt_memory(rt, m, RT_MAX_DEVICES);
	CU_ASSERT_EQUAL(m[0].running, 0);
	CU_ASSERT_EQUAL(m[1].running, 0);
	get(s, moved, w, N);
	for (int i = 0; i < N; i++)
		CU_ASSERT_EQUAL(w[i], a[i] + 0.5f > 0 ? a[i] + 0.5f : 0.0f);
	get(s, x, w, N);
	for (int i = 0; i < N; i++)
		CU_ASSERT_EQUAL(w[i], (a[i] + 0.5f > 0 ? a[i] + 0.5f : 0.0f) + 0.5f * CHAIN);
	/* Outside a batch nothing is held. */
	CU_ASSERT_EQUAL(execute(s, "relu", &ha, 1, NULL, &sum, err), 0);
	rt_memory(rt, m, RT_MAX_DEVICES);
	CU_ASSERT_EQUAL(m[0].running, 0);
	be->session_close(rt, s);
}

static void test_batch_hold(void)
{
	batch_hold("sim:0", "sim:1");
}

static void *mover_main(void *arg)
{
	struct mover *m = arg;
	char attrs[64], err[CTL_ERRMSG_MAX];

	snprintf(attrs, sizeof(attrs), "{\"device\": \"%s\"}", m->to);
	for (int i = 0; i < 200; i++) {
		cJSON *a = cJSON_Parse(attrs);
		struct dj_tensor_desc d;
		uint64_t out;
		int n_out;

		if (be->execute(rt, m->s, "to_device", &m->h, 1, a, &out, &d, &n_out, err) != 0 ||
		    be->free(rt, m->s, out, err) != 0)
			m->failures++;
		cJSON_Delete(a);
	}
	return NULL;
}

/* One context per device: moves sim:0 -> sim:1 and sim:1 -> sim:0 at once
 * each need both devices' contexts; taken in device order, they never
 * wait for each other forever. */
static void test_opposite_moves(void)
{
	void *s = session_open();
	float v[4096] = {1.0f};
	struct mover a = {.s = s, .to = "sim:1"}, b = {.s = s, .to = "sim:0"};
	pthread_t ta, tb;
	struct rt_memory m[RT_MAX_DEVICES];

	a.h = put(s, "sim:0", v, 4096);
	b.h = put(s, "sim:1", v, 4096);
	pthread_create(&ta, NULL, mover_main, &a);
	pthread_create(&tb, NULL, mover_main, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CU_ASSERT_EQUAL(a.failures + b.failures, 0);
	memory(m);
	CU_ASSERT_EQUAL(m[0].running + m[1].running + m[0].waiting + m[1].waiting, 0);
	CU_ASSERT_EQUAL(m[0].tensors, 1);
	CU_ASSERT_EQUAL(m[1].tensors, 1);
	be->session_close(rt, s);
}

struct crossed {
	void *s;
	uint64_t h[2];                  /* a vector on sim:0, one on sim:1 */
	int first;                      /* the device this batch starts on */
	pthread_barrier_t *both;
	int failures;
};

/* A batch on device first, then (once the other batch holds its first
 * device too) on the other one. */
static void *crossed_main(void *arg)
{
	struct crossed *c = arg;
	cJSON *a = cJSON_CreateObject();
	struct dj_tensor_desc d[DJ_MAX_OP_ARGS];
	char err[CTL_ERRMSG_MAX];
	uint64_t out[DJ_MAX_OP_ARGS];
	int n_out;

	be->batch_begin(rt, c->s);
	for (int k = 0; k < 2; k++) {
		if (be->execute(rt, c->s, "relu", &c->h[(c->first + k) % 2], 1, a, out, d, &n_out,
				err) != 0)
			c->failures++;
		if (k == 0)
			pthread_barrier_wait(c->both);
	}
	c->failures += be->batch_end(rt, c->s, err) != 0;
	cJSON_Delete(a);
	return NULL;
}

/* One context per device: a batch holding sim:0's that wants sim:1's, and
 * one holding sim:1's that wants sim:0's, at once. Each gives back what it
 * holds before it waits: both finish (a hang here is the bug). */
static void test_batch_crossed(void)
{
	void *s = session_open();
	float v[8] = {1, -2, 3, -4, 5, -6, 7, -8};
	pthread_barrier_t both;
	struct crossed c[2];
	pthread_t t[2];
	struct rt_memory m[RT_MAX_DEVICES];

	pthread_barrier_init(&both, NULL, 2);
	for (int i = 0; i < 2; i++)
		c[i] = (struct crossed){.s = s, .first = i, .both = &both};
	c[0].h[0] = c[1].h[0] = put(s, "sim:0", v, 8);
	c[0].h[1] = c[1].h[1] = put(s, "sim:1", v, 8);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, crossed_main, &c[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&both);
	CU_ASSERT_EQUAL(c[0].failures + c[1].failures, 0);
	memory(m);
	CU_ASSERT_EQUAL(m[0].running + m[1].running + m[0].waiting + m[1].waiting, 0);
	be->session_close(rt, s);
}

/* STATS' backend object and the fleet record's device loads. */
static void test_stats(void)
{
	void *s = session_open();
	struct ctl_mem_info mi;
	float v[10] = {0};
	cJSON *obj = cJSON_CreateObject(), *mem, *d;

	put(s, "sim:1", v, 10);
	be->stats(rt, s, obj);
	mem = cJSON_GetObjectItemCaseSensitive(obj, "memory");
	CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(mem), 3);
	d = cJSON_GetArrayItem(mem, 1);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(d, "device")->valuestring, "sim:1");
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(d, "kind")->valuestring, "sim");
	CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(d, "used")->valuedouble, 40);
	CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(d, "total")->valuedouble, SIM_SIZE);
	for (const char *const *k = (const char *const[]){"ops", "running", "waiting", "sessions",
							   "moves_in", "move_bytes_out",
							   "numa_node", NULL}; *k; k++)
		CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(d, *k));
	CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(obj, "session_device"));
	cJSON_Delete(obj);
	CU_ASSERT_EQUAL(be->mem_info(rt, &mi), 0);
	CU_ASSERT_EQUAL(mi.n_devices, 3);
	CU_ASSERT_EQUAL(mi.devices[1].used, 40);
	CU_ASSERT_EQUAL(mi.devices[1].tensors, 1);
	CU_ASSERT_EQUAL(mi.devices[1].free, SIM_SIZE - 40);
	CU_ASSERT_EQUAL(mi.store_bytes, 40);
	CU_ASSERT_EQUAL(mi.devices[0].mem, DJ_MEM_HOST);
	be->session_close(rt, s);
}

/* A host runtime is one device, "host"; a total limit caps every device's
 * free memory in the fleet record by what is left of it. */
static void test_host_and_limits(void)
{
	struct rt_config cfg = {.gpu = "none"};
	struct rt_config lim = {.gpu = "sim:2:1M", .total_limit = 4096};
	struct rt_runtime *h, *l;
	struct dj_tensor_desc d = vec(512); /* 2 KiB */
	char err[CTL_ERRMSG_MAX], dev[CTL_DEVICE_MAX];
	struct ctl_mem_info mi;
	void *s = NULL;
	uint64_t x;

	CU_ASSERT_EQUAL_FATAL(rt_create(&cfg, &h), 0);
	CU_ASSERT_EQUAL(be->session_open(h, 1, &s, err), 0);
	CU_ASSERT_EQUAL(be->session_device(h, s, NULL, dev, err), 0);
	CU_ASSERT_STRING_EQUAL(dev, "host");
	CU_ASSERT_EQUAL(be->alloc_on(h, s, &d, "cuda:0", &x, err), -ENODEV);
	CU_ASSERT_EQUAL(be->alloc_on(h, s, &d, "host", &x, err), 0);
	be->session_close(h, s);
	rt_destroy(h);
	CU_ASSERT_EQUAL_FATAL(rt_create(&lim, &l), 0);
	CU_ASSERT_EQUAL(be->session_open(l, 1, &s, err), 0);
	CU_ASSERT_EQUAL(be->alloc_on(l, s, &d, "sim:0", &x, err), 0);
	CU_ASSERT_EQUAL(be->mem_info(l, &mi), 0);
	CU_ASSERT_EQUAL(mi.devices[0].free, 2048);
	CU_ASSERT_EQUAL(mi.devices[1].free, 2048);
	CU_ASSERT_EQUAL(mi.devices[1].total, 4096);
	CU_ASSERT_EQUAL(be->alloc_on(l, s, &d, "sim:1", &x, err), 0);
	CU_ASSERT_EQUAL(be->alloc_on(l, s, &d, "sim:1", &x, err), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "limit exceeded"));
	be->session_close(l, s);
	rt_destroy(l);
}

/* ---- real GPUs ----------------------------------------------------------------- */

static struct rt_runtime *gpu_rt[2]; /* moves auto, moves staged */
static int gpu_n;

static int gpu_init(void)
{
	int n = djg_ops_device_count();
	struct rt_config cfg = {.gpu = n >= 2 ? "all" : "0,0", .n_contexts = 2,
				.stage_slot_bytes = 1u << 20, .stage_slots = 3};

	for (int m = 0; m < 2; m++) {
		cfg.move_mode = m == 0 ? RT_MOVE_AUTO : RT_MOVE_STAGED;
		if (rt_create(&cfg, &gpu_rt[m]) != 0)
			return -1;
	}
	struct rt_device_info devs[RT_MAX_DEVICES];

	gpu_n = rt_devices(gpu_rt[0], devs, RT_MAX_DEVICES);
	printf("\n  runtime: %s\n", rt_description(gpu_rt[0]));
	return 0;
}

static int gpu_cleanup(void)
{
	rt_destroy(gpu_rt[0]);
	rt_destroy(gpu_rt[1]);
	return 0;
}

/* Every ordered pair of devices, sizes from one element to 9 MiB and odd
 * (several 1 MiB slots, a partial last one): to_device byte-exact, then
 * an operation on the destination equal to the CPU's. */
static void test_gpu_moves(void)
{
	static const int64_t sizes[] = {1, 1000, 262144, 2359297};
	unsigned int seed = dj_test_seed();
	int64_t max = sizes[3];
	float *v = malloc((size_t)max * 4), *w = malloc((size_t)max * 4);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	for (int m = 0; m < 2; m++) {
		struct rt_device_info devs[RT_MAX_DEVICES];
		struct rt_memory before[RT_MAX_DEVICES], after[RT_MAX_DEVICES];
		void *s;
		char err[CTL_ERRMSG_MAX];

		rt = gpu_rt[m];
		rt_devices(rt, devs, RT_MAX_DEVICES);
		CU_ASSERT_EQUAL_FATAL(be->session_open(rt, 1, &s, err), 0);
		rt_memory(rt, before, RT_MAX_DEVICES);
		for (int a = 0; a < gpu_n; a++)
			for (int b = 0; b < gpu_n; b++) {
				if (a == b)
					continue;
				for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
					int64_t n = sizes[k];
					char attrs[64];
					uint64_t h, moved, act;

					for (int64_t i = 0; i < n; i++)
						v[i] = (float)rand_r(&seed) / 1024.0f - 1e6f;
					h = put(s, devs[a].name, v, n);
					snprintf(attrs, sizeof(attrs), "{\"device\": \"%.15s\"}",
						 devs[b].name);
					CU_ASSERT_EQUAL_FATAL(execute(s, "to_device", &h, 1, attrs, &moved,
								      err), 0);
					CU_ASSERT_STRING_EQUAL(where(s, moved), devs[b].name);
					memset(w, 0, (size_t)n * 4);
					get(s, moved, w, n);
					CU_ASSERT_EQUAL(memcmp(v, w, (size_t)n * 4), 0);
					CU_ASSERT_EQUAL(execute(s, "relu", &moved, 1, NULL, &act, err), 0);
					CU_ASSERT_STRING_EQUAL(where(s, act), devs[b].name);
					get(s, act, w, n);
					for (int64_t i = 0; i < n; i++)
						if (w[i] != (v[i] > 0.0f ? v[i] : 0.0f)) {
							CU_FAIL("relu after the move differs from the CPU's");
							break;
						}
					be->free(rt, s, h, err);
					be->free(rt, s, moved, err);
					be->free(rt, s, act, err);
				}
			}
		rt_memory(rt, after, RT_MAX_DEVICES);
		for (int d = 0; d < gpu_n; d++) {
			CU_ASSERT_EQUAL(after[d].moves_in - before[d].moves_in, 4 * (gpu_n - 1));
			CU_ASSERT_EQUAL(after[d].ops - before[d].ops, 4 * (gpu_n - 1));
		}
		be->session_close(rt, s);
	}
	free(v);
	free(w);
	rt = NULL;
}

/* Staged moves in opposite directions at once on real contexts. */
/* The batch's hold on a GPU: one stream, waited for at the end. */
static void test_gpu_batch(void)
{
	struct rt_device_info devs[RT_MAX_DEVICES];

	rt = gpu_rt[0];
	rt_devices(rt, devs, RT_MAX_DEVICES);
	batch_hold(devs[0].name, devs[1].name);
}

static void test_gpu_opposite_moves(void)
{
	struct rt_device_info devs[RT_MAX_DEVICES];
	float v[65536];
	struct mover a, b;
	pthread_t ta, tb;
	void *s;
	char err[CTL_ERRMSG_MAX];

	rt = gpu_rt[1];
	rt_devices(rt, devs, RT_MAX_DEVICES);
	for (int i = 0; i < 65536; i++)
		v[i] = (float)i;
	CU_ASSERT_EQUAL_FATAL(be->session_open(rt, 1, &s, err), 0);
	a = (struct mover){.s = s, .to = devs[1].name, .h = put(s, devs[0].name, v, 65536)};
	b = (struct mover){.s = s, .to = devs[0].name, .h = put(s, devs[1].name, v, 65536)};
	pthread_create(&ta, NULL, mover_main, &a);
	pthread_create(&tb, NULL, mover_main, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CU_ASSERT_EQUAL(a.failures + b.failures, 0);
	be->session_close(rt, s);
	rt = NULL;
}

int main(int argc, char **argv)
{
	static const struct dj_test_case pure[] = {
		{"device lists: auto, all, none, indices, aliases, sim, errors", test_spec},
		{"the staged pipeline: chunks, slot reuse, tails, errors", test_stage_pipeline},
		{NULL, NULL},
	};
	static const struct dj_test_case sims[] = {
		{"three simulated devices", test_sim_devices},
		{"a session's default device", test_default_device},
		{"placement, accounting and capacity per device", test_placement_and_capacity},
		{"operations on their inputs' device, outputs placed", test_operations},
		{"to_device: staged, byte-exact, refusals", test_to_device},
		{"moves in opposite directions at once", test_opposite_moves},
		{"a batch holds its context and pins to its end", test_batch_hold},
		{"two batches crossing two devices' only contexts", test_batch_crossed},
		{"STATS and the fleet record per device", test_stats},
		{"host runtime; a total limit across devices", test_host_and_limits},
		{NULL, NULL},
	};

	static const struct dj_test_case gpus[] = {
		{"to_device between every pair, both move modes", test_gpu_moves},
		{"staged moves in opposite directions at once", test_gpu_opposite_moves},
		{"a batch on one stream, waited for at its end", test_gpu_batch},
		{NULL, NULL},
	};

	be = rt_backend();
	if (argc > 1 && strcmp(argv[1], "gpu") == 0) {
		if (djg_ops_device_count() == 0)
			dj_test_skip("no CUDA device (or built without CUDA)");
		dj_test_add_suite("runtime_gpu", gpu_init, gpu_cleanup, gpus);
		return dj_test_main(1, argv);
	}
	dj_test_add_suite("runtime_devices", NULL, NULL, pure);
	dj_test_add_suite("runtime_sim", sim_init, sim_cleanup, sims);
	return dj_test_main(argc, argv);
}
