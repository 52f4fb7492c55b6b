/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the control-plane server's whole input path on one
 * connection. The input is a mode byte and the bytes a client sends: they go
 * through a socket pair into the server's own reader (frame header decode,
 * limits, JSON parse, ctl_dispatch() of every message type: HELLO, AUTH,
 * SESSION, PATH, ALLOC, PUT with its payload, PUT_DONE, GET, DESCRIBE, FREE,
 * EXECUTE with attrs, STATS, PING, BYE, unknown ones) against the
 * host-memory backend and the fake data path of tests/unit/control.
 *
 * Mode bit 0: the server wants a token (HELLO/AUTH challenge); bit 1: the
 * backend hands out no host pointers (chunked reads and writes).
 *
 * The server's epoll loop and worker threads do not run: this file includes
 * ctl_server.c to reach its static connection functions and drives them on
 * one thread, running each queued job at once, so every input replays
 * exactly. Checks: every reply frame the server writes is a well-formed
 * frame holding a JSON object with a "type"; after the connection and its
 * sessions close, the backend holds no tensor (nothing leaks between inputs
 * or tenants).
 */
#include "controlplane/ctl_server.c"

#include <poll.h>

#include "fake_dp.h"
#include "mem_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SERVERS 4
#define FZ_ROUNDS 4096
#define FZ_REPLY_JSON_MAX (1u << 20)

static struct ctl_server *servers[FZ_SERVERS];
static struct ctl_backend fz_ops;
static const struct ctl_backend *mem_ops;
static int utf8_check;

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ctl_server: invariant broken: %s\n", what);
		abort();
	}
}

/* The memory backend without its "sleep" operation (it would stall the
 * fuzzer for as long as the input asks). */
static int fz_execute(void *ctx, void *session, const char *op, const uint64_t *inputs,
		      int n_in, const cJSON *attrs, uint64_t *outputs,
		      struct dj_tensor_desc *out_desc, int *n_out, char *err)
{
	if (strcmp(op, "sleep") == 0) {
		snprintf(err, CTL_ERRMSG_MAX, "no sleep while fuzzing");
		return -DJ_EUNKNOWN_OP;
	}
	return mem_ops->execute(ctx, session, op, inputs, n_in, attrs, outputs, out_desc,
				n_out, err);
}

static void init_once(void)
{
	static int done;
	struct fake_net *net;
	struct fake_dp *fdp;

	if (done)
		return;
	done = 1;
	dj_log_set_level(DJ_LOG_ERR);
	/* On unless FZ_UTF8=0 (to fuzz a build that still echoes raw bytes). */
	utf8_check = getenv("FZ_UTF8") == NULL || strcmp(getenv("FZ_UTF8"), "0") != 0;
	mem_ops = mem_backend_ops();
	fz_ops = *mem_ops;
	fz_ops.execute = fz_execute;
	net = fake_net_create();
	fdp = fake_dp_create(net, 47001);
	for (int i = 0; i < FZ_SERVERS; i++) {
		struct ctl_server_config cfg;

		ctl_server_config_init(&cfg);
		cfg.token = (i & 1) ? "fuzz-token" : NULL;
		cfg.datapath = &fdp->dp;
		cfg.dp_timeout_ms = 1;
		cfg.limits.max_json_bytes = 64u << 10;
		cfg.limits.max_payload_bytes = 1u << 20;
		cfg.limits.max_handles = 64;
		cfg.limits.max_inflight = 64;
		cfg.limits.session_linger_ms = 1;
		check(ctl_server_create(&cfg, &fz_ops, NULL, &servers[i]) == 0, "server create");
	}
}

/* What the worker threads would do: run every queued job, then hand the
 * replies over as the epoll thread does. */
static void run_jobs(struct ctl_server *srv)
{
	while (srv->jobs != NULL) {
		struct ctl_job *job = srv->jobs;

		srv->jobs = job->next;
		if (srv->jobs == NULL)
			srv->jobs_tail = NULL;
		job->reply = job->fn(srv, job);
		job->next = NULL;
		if (srv->done_tail != NULL)
			srv->done_tail->next = job;
		else
			srv->done = job;
		srv->done_tail = job;
		if (srv->jobs == NULL)
			drain_completions(srv);
	}
}

/* Everything the server wrote so far, appended to *out. */
static void read_replies(int fd, uint8_t **out, size_t *len, size_t *cap)
{
	for (;;) {
		ssize_t r;

		if (*cap - *len < 65536) {
			uint8_t *p = realloc(*out, *cap * 2 + 65536);

			check(p != NULL, "out of memory for replies");
			*out = p;
			*cap = *cap * 2 + 65536;
		}
		r = read(fd, *out + *len, *cap - *len);
		if (r <= 0)
			return;
		*len += (size_t)r;
	}
}

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or values past
 * U+10FFFF. */
static int utf8_valid(const uint8_t *p, size_t n)
{
	static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};

	for (size_t i = 0; i < n;) {
		uint32_t c = p[i];
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		k = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
		if (k == 0 || k >= n - i)
			return 0;
		c &= 0x3fu >> k;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (p[i + j] & 0x3fu);
		}
		if (c < min[k] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* A binary reply frame (docs/CONTROL.md, "Binary frames"): a reply
 * header without a trace, a body that decodes as its type says (an
 * ERROR's text in UTF-8). Its size, or 0 where the close cut it short. */
static size_t check_bin_reply(const uint8_t *p, size_t len)
{
	struct ctl_bin_output outs[DJ_MAX_OP_ARGS];
	struct ctl_bin_hdr h;
	char why[CTL_ERRMSG_MAX];
	int code;

	check(ctl_bin_hdr_decode(p, 1, &h, why) == 0 && h.trace_len == 0, "binary reply header");
	if (len - CTL_HDR_LEN < h.body_len)
		return 0;
	p += CTL_HDR_LEN;
	if (h.type == CTL_BIN_ERROR) {
		check(ctl_bin_error_decode(p, h.body_len, &code, why) == 0, "binary ERROR body");
		if (utf8_check)
			check(utf8_valid(p + CTL_BIN_ERROR_FIXED, h.body_len - CTL_BIN_ERROR_FIXED),
			      "binary ERROR text is not UTF-8");
	} else if (h.type == (CTL_BIN_REPLY | CTL_BIN_EXECUTE)) {
		check(ctl_bin_exec_reply_decode(p, h.body_len, outs, DJ_MAX_OP_ARGS, why) >= 0,
		      "binary EXECUTE reply body");
	} else {
		check(h.body_len == 0, "binary PING / FREE reply with a body");
	}
	return CTL_HDR_LEN + h.body_len;
}

/* Every complete reply frame: a valid header, then a JSON object with a
 * string "type", in valid UTF-8 (issue 11 asks that client text never
 * comes back raw; FZ_UTF8=0 in the environment turns that check off). A last frame cut
 * short by the close is not judged. */
static void check_replies(const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (len - off >= CTL_HDR_LEN) {
		struct ctl_hdr h;
		cJSON *msg;

		if (ctl_bin_is(p + off)) {
			size_t used = check_bin_reply(p + off, len - off);

			if (used == 0)
				return;
			off += used;
			continue;
		}
		check(ctl_hdr_decode(p + off, &h) == 0, "reply frame with a bad magic");
		check(h.json_len > 0 && h.json_len <= FZ_REPLY_JSON_MAX, "reply JSON length");
		if (len - off - CTL_HDR_LEN < h.json_len)
			return;
		if (utf8_check)
			check(utf8_valid(p + off + CTL_HDR_LEN, h.json_len), "reply is not UTF-8");
		msg = cJSON_ParseWithLength((const char *)p + off + CTL_HDR_LEN, h.json_len);
		check(cJSON_IsObject(msg), "reply is not a JSON object");
		check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "type")),
		      "reply without a type");
		cJSON_Delete(msg);
		off += CTL_HDR_LEN + h.json_len;
		if (h.payload_len > len - off)
			return;
		off += h.payload_len;
	}
}

static void close_sessions(struct ctl_server *srv)
{
	while (srv->sessions != NULL) {
		struct ctl_session *s = srv->sessions;

		srv->sessions = s->next;
		ctl_session_close(srv, s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_backend_options mbo = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct ctl_server *srv;
	struct mem_backend *mb;
	struct ctl_conn *c;
	uint8_t *out = NULL;
	size_t off = 1, out_len = 0, out_cap = 0;
	int sv[2], shut = 0;

	if (size < 1)
		return 0;
	init_once();
	srv = servers[data[0] % FZ_SERVERS];
	mbo.chunked = (data[0] >> 1) & 1;
	mbo.session_bytes = 4u << 20;
	check(mem_backend_create(&mbo, &mb) == 0, "backend create");
	srv->bctx = mb;
	srv->next_session_id = 1;
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	accept_one(srv, sv[0], &sa);
	c = srv->conns;
	check(c != NULL && c->io.fd == sv[0], "connection not accepted");
	c->refs++; /* ours: c stays readable after the server closes it */

	for (int round = 0; round < FZ_ROUNDS && !c->dead; round++) {
		if (off < size) {
			ssize_t w = write(sv[1], data + off, size - off);

			if (w > 0)
				off += (size_t)w;
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = 1;
		}
		conn_event(c, EPOLLIN);
		run_jobs(srv);
		read_replies(sv[1], &out, &out_len, &out_cap);
	}
	if (!c->dead)
		conn_close(c, "fuzz input done");
	conn_unref(c);
	read_replies(sv[1], &out, &out_len, &out_cap);
	close(sv[1]);
	check_replies(out, out_len);
	free(out);

	close_sessions(srv);
	check(mem_backend_live(mb) == 0 && mem_backend_tensors(mb) == 0,
	      "tensors left after every session closed");
	mem_backend_destroy(mb);
	srv->bctx = NULL;
	return 0;
}
