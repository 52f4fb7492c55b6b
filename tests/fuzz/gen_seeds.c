/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Seed corpora for the fuzz targets, made with the project's own encoders so
 * that they follow the formats when those change:
 *   gen_seeds DIR    writes DIR/<target>/<name> for every target.
 *
 * - fuzz_dp_channel / fuzz_dp_wire: a peer channel ("A", dp_fuzz.c) and the
 *   fuzzed channel ("B") run whole exchanges (clean, lossy, with PING, ABORT
 *   and CLOSE) on a virtual clock in several modes; every frame A sends is
 *   recorded as the target replays it, and single frames of each type seed
 *   the frame decoders.
 * - fuzz_ctl_server / fuzz_ctl_client: the client session of ctl_fuzz.c runs
 *   against a real server (tests/unit/control's memory backend, with and
 *   without a token, over TCP and over the fake data path) through a proxy
 *   that records both directions (binary frames by default, JSON ones in the
 *   "-json" runs); plus hand-built frames of the messages the client library
 *   never sends, and binary frames with bad bodies and headers.
 * - fuzz_ctl_bin: one binary frame of each request and reply type, from the
 *   encoders of controlplane/ctl_bin.c.
 * - fuzz_npy: dj_npy_format_header() files of every dtype, the 2.0 and 3.0
 *   layouts, float64.
 * - fuzz_op_attrs: a valid call of every operation, attributes written by
 *   tn_op_attrs_to_json().
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "djinn/npy.h"
#include "tensor/ops.h"
#include "ctl_wire.h"
#include "ctl_bin.h"
#include "ctl_fuzz.h"
#include "dp_fuzz.h"
#include "fake_dp.h"
#include "fixture.h"
#include "op_fuzz.h"

static const char *out_dir;
static int n_written;

/* A growable byte buffer. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL) {
			perror("gen_seeds");
			exit(1);
		}
	}
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_byte(struct buf *b, uint8_t v)
{
	buf_add(b, &v, 1);
}

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	n_written++;
}

/* ---- data plane ------------------------------------------------------------ */

enum dp_scenario { DP_CLEAN, DP_LOSSY, DP_CONTROL };

struct dp_run {
	unsigned mode;
	enum dp_scenario sc;
	struct dp_channel *a;
	uint64_t now;
	struct buf rec;                      /* the target's input */
	uint8_t frames[64][FZ_DP_MAX_FRAME]; /* what A sent this step */
	size_t lens[64];
	unsigned n;
	unsigned sent;                       /* DATA frames A sent so far */
};

static void collect(void *ctx, const uint8_t *frame, size_t len)
{
	struct dp_run *r = ctx;

	if (r->n < 64 && len <= FZ_DP_MAX_FRAME) {
		memcpy(r->frames[r->n], frame, len);
		r->lens[r->n++] = len;
	}
}

static void keep_for_wire(struct dp_run *r, const uint8_t *frame, size_t len);

/* What B sends reaches A at once. */
static void to_a(void *ctx, const uint8_t *frame, size_t len)
{
	struct dp_run *r = ctx;
	uint8_t copy[FZ_DP_MAX_FRAME];

	memcpy(copy, frame, len);
	keep_for_wire(r, frame, len);
	fz_dp_deliver(r->a, r->mode & FZ_DP_ENCAP, copy, len, r->now);
}

static void record(struct dp_run *r, unsigned dt, const uint8_t *frame, size_t len)
{
	buf_byte(&r->rec, (uint8_t)dt);
	buf_byte(&r->rec, (uint8_t)(len >> 8));
	buf_byte(&r->rec, (uint8_t)len);
	buf_add(&r->rec, frame, len);
}

/* One frame of each type and framing, as a fuzz_dp_wire seed. */
static void keep_for_wire(struct dp_run *r, const uint8_t *frame, size_t len)
{
	static unsigned seen[2];
	unsigned *seen_types = &seen[r->mode & FZ_DP_ENCAP ? 1 : 0];
	struct dp_wire_encap e;
	struct dp_wire_hdr h;
	const uint8_t *p = frame;
	size_t avail = len;
	struct buf b = {0};
	char name[64];

	if (r->mode & FZ_DP_ENCAP) {
		if (dp_wire_encap_parse(frame, len, true, &e) != DP_REJ_NONE)
			return;
		p += e.payload_off;
		avail = e.payload_len;
	}
	if (dp_wire_hdr_decode(p, avail, true, &h) != DP_REJ_NONE ||
	    (*seen_types & (1u << h.type)))
		return;
	*seen_types |= 1u << h.type;
	/* mode: bit 0 encap, bit 1 verify the IPv4 checksum, bit 2 body in buf */
	buf_byte(&b, (uint8_t)((r->mode & FZ_DP_ENCAP ? 3 : 0) | 4));
	buf_add(&b, frame, len);
	snprintf(name, sizeof(name), "%s-%s", r->mode & FZ_DP_ENCAP ? "encap" : "bare",
		 dp_pkt_type_name(h.type));
	write_seed("fuzz_dp_wire", name, b.p, b.len);
	free(b.p);
}

static int dp_a_open(struct dp_run *r, uint8_t **bufs)
{
	struct dp_channel_config cfg;
	int rc;

	fz_dp_config(r->mode, true, &cfg);
	rc = dp_channel_create(&cfg, &r->a);
	for (int i = 0; rc == 0 && i < FZ_DP_RX_IDS; i++) {
		bufs[i] = malloc(fz_dp_rx_len[i] + 1);
		for (uint64_t k = 0; k < fz_dp_rx_len[i]; k++)
			bufs[i][k] = (uint8_t)(k * 13 + (uint64_t)i);
		rc = dp_channel_send(r->a, (uint64_t)i + 1, bufs[i], fz_dp_rx_len[i], DJ_MEM_HOST,
				     NULL, 0);
	}
	bufs[FZ_DP_RX_IDS] = malloc(fz_dp_tx_len);
	if (rc == 0)
		rc = dp_channel_recv(r->a, 1, bufs[FZ_DP_RX_IDS], fz_dp_tx_len, DJ_MEM_HOST, NULL, 0);
	return rc;
}

static void dp_exchange(unsigned mode, enum dp_scenario sc, const char *name)
{
	static const char *const sc_name[] = {"clean", "lossy", "control"};
	struct dp_run *r = calloc(1, sizeof(*r));
	uint8_t *bufs[FZ_DP_RX_IDS + 1] = {0};
	struct dp_xfer_event ev[8];
	struct fz_dp b;
	unsigned done = 0, n;
	char seed[64];

	r->mode = mode;
	r->sc = sc;
	buf_byte(&r->rec, (uint8_t)mode);
	if (dp_a_open(r, bufs) != 0 || fz_dp_open(&b, mode) != 0) {
		fprintf(stderr, "gen_seeds: data-plane channels do not open\n");
		exit(1);
	}
	for (unsigned step = 1; step <= 400 && done < FZ_DP_RX_IDS + 1; step++) {
		unsigned dt = 1;

		r->now = step * FZ_DP_TICK_NS;
		if (sc == DP_CONTROL && step == 2)
			dp_channel_ping(r->a, 0x1122334455667788ull);
		if (sc == DP_CONTROL && step == 2)
			dp_channel_cancel(r->a, DP_XFER_TX, 1);
		if (sc == DP_CONTROL && step == 4)
			dp_channel_close(r->a);
		dp_channel_poll(r->a, r->now);
		r->n = 0;
		fz_dp_drain(r->a, r->now, b.ctrl, b.frame, collect, r);
		for (unsigned i = 0; i < r->n; i++) {
			struct dp_wire_hdr h;
			size_t off = mode & FZ_DP_ENCAP ? DP_WIRE_ENCAP_LEN : 0;
			int is_data = dp_wire_hdr_decode(r->frames[i] + off, r->lens[i] - off, true,
							 &h) == DP_REJ_NONE && h.type == DP_PKT_DATA;

			/* Lossy: every third new DATA frame never arrives. */
			if (is_data && !(h.flags & DP_WIRE_F_RETRANS) && sc == DP_LOSSY &&
			    ++r->sent % 3 == 0)
				continue;
			keep_for_wire(r, r->frames[i], r->lens[i]);
			record(r, dt, r->frames[i], r->lens[i]);
			fz_dp_record(&b, dt, r->frames[i], r->lens[i], to_a, r);
			dt = 0;
		}
		if (dt == 1) {
			record(r, 1, NULL, 0);
			fz_dp_record(&b, 1, NULL, 0, to_a, r);
		}
		while ((n = dp_channel_events(r->a, ev, 8)) > 0)
			done += n;
	}
	snprintf(seed, sizeof(seed), "%s-%s", name, sc_name[sc]);
	write_seed("fuzz_dp_channel", seed, r->rec.p, r->rec.len);
	fz_dp_close(&b);
	dp_channel_destroy(r->a);
	for (int i = 0; i <= FZ_DP_RX_IDS; i++)
		free(bufs[i]);
	free(r->rec.p);
	free(r);
}

static void dp_seeds(void)
{
	static const struct {
		unsigned mode;
		const char *name;
	} modes[] = {
		{0, "bare"},
		{FZ_DP_ENCAP | FZ_DP_RX_CRC, "encap-crc"},
		{FZ_DP_RX_CRC | FZ_DP_GPU | FZ_DP_SPLIT, "gpu-split"},
		{FZ_DP_ENCAP | FZ_DP_RX_CRC | FZ_DP_FIX_CRC | FZ_DP_CC, "encap-fixcrc-cc"},
	};

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
		for (int sc = DP_CLEAN; sc <= DP_CONTROL; sc++)
			dp_exchange(modes[m].mode, (enum dp_scenario)sc, modes[m].name);
}

/* ---- control plane --------------------------------------------------------- */

struct proxy {
	int lfd;
	uint16_t server_port;
	struct buf c2s, s2c;
};

static int relay(int from, int to, struct buf *log)
{
	char tmp[65536];
	ssize_t r = read(from, tmp, sizeof(tmp));

	if (r <= 0) {
		shutdown(to, SHUT_WR);
		return 0;
	}
	buf_add(log, tmp, (size_t)r);
	for (ssize_t off = 0; off < r;) {
		ssize_t w = send(to, tmp + off, (size_t)(r - off), MSG_NOSIGNAL);

		if (w <= 0)
			return 0;
		off += w;
	}
	return 1;
}

/* One client connection relayed to the server, both directions recorded. */
static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->server_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c_open = 1, s_open = 1;

	if (c < 0 || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("gen_seeds: proxy");
		exit(1);
	}
	while (c_open || s_open) {
		struct pollfd pf[2] = {{.fd = c_open ? c : -1, .events = POLLIN},
				       {.fd = s_open ? s : -1, .events = POLLIN}};

		if (poll(pf, 2, 5000) <= 0)
			break;
		if (pf[0].revents)
			c_open = relay(c, s, &p->c2s);
		if (pf[1].revents)
			s_open = relay(s, c, &p->s2c);
	}
	close(c);
	close(s);
	return NULL;
}

/* The client script against a real server through the recording proxy. */
static void ctl_record(const char *token, int dpdk, int json_only, struct buf *c2s,
		       struct buf *s2c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct fake_net *net = fake_net_create();
	struct fake_dp *sdp = fake_dp_create(net, 47001), *cdp = fake_dp_create(net, 47002);
	struct ctl_server_config cfg;
	struct dj_client_options o;
	struct proxy p = {0};
	struct dj_client *cl;
	struct fixture fx;
	pthread_t th;

	ctl_server_config_init(&cfg);
	cfg.n_workers = 2;
	cfg.token = token;
	cfg.datapath = dpdk ? &sdp->dp : NULL;
	if (fx_start(&fx, &cfg, NULL) != 0) {
		fprintf(stderr, "gen_seeds: server does not start\n");
		exit(1);
	}
	p.server_port = fx.port;
	p.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p.lfd < 0 || bind(p.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(p.lfd, 4) != 0 || getsockname(p.lfd, (struct sockaddr *)&sa, &sl) != 0 ||
	    pthread_create(&th, NULL, proxy_main, &p) != 0) {
		perror("gen_seeds: proxy");
		exit(1);
	}
	fz_client_options(&o, ntohs(sa.sin_port));
	o.token = token;
	o.json_only = json_only;
	if (dpdk) {
		o.datapath = &cdp->dp;
		o.path = DJ_PATH_DPDK;
	}
	if (dj_client_create(&o, &cl) == 0) {
		fz_client_script(cl);
		dj_client_destroy(cl);
	}
	pthread_join(th, NULL);
	close(p.lfd);
	fx_stop(&fx);
	fake_dp_destroy(cdp);
	fake_dp_destroy(sdp);
	fake_net_destroy(net);
	*c2s = p.c2s;
	*s2c = p.s2c;
}

static void add_frame(struct buf *b, const char *json, const void *payload, size_t payload_len)
{
	cJSON *msg = cJSON_Parse(json);
	char *f;
	size_t n;

	if (msg == NULL || ctl_frame(msg, payload_len, &f, &n) != 0) {
		fprintf(stderr, "gen_seeds: bad seed message %s\n", json);
		exit(1);
	}
	buf_add(b, f, n);
	buf_add(b, payload, payload_len);
	free(f);
	cJSON_Delete(msg);
}

/* Requests the client library never makes, each on a ready session. */
static void ctl_hand_seeds(void)
{
	static const struct {
		const char *name;
		const char *json;
		size_t payload;
	} msgs[] = {
		{"unknown", "{\"id\":3,\"type\":\"NOPE\"}", 0},
		{"second-hello", "{\"id\":3,\"type\":\"HELLO\",\"version\":1}", 0},
		{"resume", "{\"id\":3,\"type\":\"SESSION\",\"resume\":{\"session\":1,"
			   "\"cookie\":\"0x1234\"}}", 0},
		{"path-dpdk", "{\"id\":3,\"type\":\"PATH\",\"path\":\"dpdk\",\"reason\":\"fuzz\"}", 0},
		{"put-dp", "{\"id\":3,\"type\":\"PUT\",\"dtype\":\"int32\",\"shape\":[2],"
			   "\"via\":\"dpdk\",\"xfer\":1}", 0},
		{"put-done", "{\"id\":3,\"type\":\"PUT_DONE\",\"xfer\":1,\"abort\":true}", 0},
		{"get-dp", "{\"id\":3,\"type\":\"GET\",\"handle\":\"0x1\",\"via\":\"dpdk\",\"xfer\":2}", 0},
		{"put-into", "{\"id\":3,\"type\":\"PUT\",\"dtype\":\"float16\",\"shape\":[2,2],"
			     "\"handle\":\"0x1\"}", 8},
		{"exec-batch", "{\"id\":3,\"type\":\"EXECUTE\",\"ops\":[{\"op\":\"dup\","
			       "\"inputs\":[\"0x1\"]},{\"op\":\"add\",\"inputs\":[\"$0\",\"$1\"],"
			       "\"attrs\":{}}]}", 0},
		{"ping-payload", "{\"id\":3,\"type\":\"PING\"}", 4},
		{"bye", "{\"id\":3,\"type\":\"BYE\"}", 0},
	};
	static const uint8_t zeros[16];
	char hello[1024];
	struct dp_caps caps = {.dpdk = 1, .endpoint = {.ipv4 = 0x0100007f, .udp_port = 47002,
						       .n_queues = 1, .mtu = 9000}};
	cJSON *h = ctl_caps_to_json(&caps);
	char *caps_text = cJSON_PrintUnformatted(h);

	/* HELLO announcing a data-plane endpoint, so PATH dpdk can be chosen. */
	snprintf(hello, sizeof(hello), "{\"id\":1,\"type\":\"HELLO\",\"version\":1,\"caps\":%s}",
		 caps_text);
	cJSON_free(caps_text);
	cJSON_Delete(h);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct buf b = {0};

		buf_byte(&b, 0);
		add_frame(&b, hello, NULL, 0);
		add_frame(&b, "{\"id\":2,\"type\":\"SESSION\"}", NULL, 0);
		add_frame(&b, "{\"id\":4,\"type\":\"ALLOC\",\"dtype\":\"float32\",\"shape\":[2]}",
			  NULL, 0);
		add_frame(&b, msgs[i].json, zeros, msgs[i].payload);
		write_seed("fuzz_ctl_server", msgs[i].name, b.p, b.len);
		free(b.p);
	}
}

/* One binary frame: header (trace "fz" on requests), body. */
static void bin_add(struct buf *b, uint8_t type, uint64_t id, const void *body, size_t len)
{
	uint8_t hdr[CTL_HDR_LEN];
	size_t tl = type & CTL_BIN_REPLY ? 0 : 2;

	ctl_bin_hdr_encode(hdr, type, (uint8_t)tl, (uint32_t)(tl + len), id);
	buf_add(b, hdr, sizeof(hdr));
	buf_add(b, "fz", tl);
	buf_add(b, body, len);
}

/* The binary codec's seeds (fuzz_ctl_bin), and binary requests with bad
 * bodies and headers after a HELLO that negotiated them (fuzz_ctl_server). */
static void ctl_bin_seeds(void)
{
	uint64_t in[2] = {1, 2};
	struct ctl_bin_exec e = {.op_id = 0, .n_in = 2, .in = {1, 2}};
	struct ctl_bin_exec named = {.op_id = CTL_BIN_OP_NAMED, .op = "dup", .op_len = 3,
				     .n_in = 1, .in = {1}, .device = "cuda:0", .dev_len = 6,
				     .attrs = "{\"factor\":2}", .attrs_len = 12};
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {2, 3}};
	uint8_t body[512], *o;
	struct buf b = {0};
	size_t n;

	/* Codec seeds: the mode byte (0 request, 1 reply), then the frame. */
	buf_byte(&b, 0);
	ctl_bin_exec_encode(body, &e);
	bin_add(&b, CTL_BIN_EXECUTE, 1, body, ctl_bin_exec_size(&e));
	write_seed("fuzz_ctl_bin", "exec-id", b.p, b.len);
	b.len = 1;
	ctl_bin_exec_encode(body, &named);
	bin_add(&b, CTL_BIN_EXECUTE, 2, body, ctl_bin_exec_size(&named));
	write_seed("fuzz_ctl_bin", "exec-named", b.p, b.len);
	b.len = 1;
	bin_add(&b, CTL_BIN_FREE, 3, in, 8);
	write_seed("fuzz_ctl_bin", "free", b.p, b.len);
	b.len = 0;
	buf_byte(&b, 1);
	ctl_bin_exec_reply_head(body, 2);
	o = ctl_bin_output_encode(body + CTL_BIN_EXEC_REPLY_FIXED, 5, &d, "cuda:1", 6);
	o = ctl_bin_output_encode(o, 6, &d, "", 0);
	bin_add(&b, CTL_BIN_REPLY | CTL_BIN_EXECUTE, 1, body, (size_t)(o - body));
	write_seed("fuzz_ctl_bin", "exec-reply", b.p, b.len);
	b.len = 1;
	ctl_bin_error_encode(body, -DJ_EHANDLE, "no tensor 0x5 in this session");
	bin_add(&b, CTL_BIN_ERROR, 1, body, ctl_bin_error_size("no tensor 0x5 in this session"));
	write_seed("fuzz_ctl_bin", "error", b.p, b.len);

	/* Server seeds: a session offering binary, a tensor, then frames. */
	b.len = 0;
	buf_byte(&b, 0);
	add_frame(&b, "{\"id\":1,\"type\":\"HELLO\",\"version\":1,\"binary\":1}", NULL, 0);
	add_frame(&b, "{\"id\":2,\"type\":\"SESSION\"}", NULL, 0);
	add_frame(&b, "{\"id\":3,\"type\":\"ALLOC\",\"dtype\":\"float32\",\"shape\":[2]}",
		  NULL, 0);
	n = b.len;
	bin_add(&b, CTL_BIN_PING, 4, NULL, 0);
	ctl_bin_exec_encode(body, &e);
	bin_add(&b, CTL_BIN_EXECUTE, 5, body, ctl_bin_exec_size(&e));
	ctl_bin_exec_encode(body, &named);
	bin_add(&b, CTL_BIN_EXECUTE, 6, body, ctl_bin_exec_size(&named));
	bin_add(&b, CTL_BIN_FREE, 7, in, 8);
	bin_add(&b, CTL_BIN_EXECUTE, 8, body, 9);           /* wrong counts */
	write_seed("fuzz_ctl_server", "binary", b.p, b.len);
	b.len = n;
	bin_add(&b, CTL_BIN_PING, 4, NULL, 0);
	b.p[b.len - CTL_HDR_LEN - 2 + 3] = 1;                /* flags: closes */
	write_seed("fuzz_ctl_server", "binary-bad-header", b.p, b.len);
	free(b.p);
}

static void ctl_seeds(void)
{
	static const struct {
		const char *name;
		const char *token;
		int dpdk, json_only;
		uint8_t server_mode, client_mode;
	} runs[] = {
		{"tcp", NULL, 0, 0, 0, 0},
		{"tcp-json", NULL, 0, 1, 0, 0},
		{"tcp-chunked", NULL, 0, 0, 2, 0},
		{"token", "fuzz-token", 0, 0, 1, 1},
		{"dpdk", NULL, 1, 0, 0, 2},
	};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct buf c2s = {0}, s2c = {0}, b = {0};

		ctl_record(runs[i].token, runs[i].dpdk, runs[i].json_only, &c2s, &s2c);
		buf_byte(&b, runs[i].server_mode);
		buf_add(&b, c2s.p, c2s.len);
		write_seed("fuzz_ctl_server", runs[i].name, b.p, b.len);
		b.len = 0;
		buf_byte(&b, runs[i].client_mode);
		buf_add(&b, s2c.p, s2c.len);
		if (runs[i].server_mode != 2)
			write_seed("fuzz_ctl_client", runs[i].name, b.p, b.len);
		free(b.p);
		free(c2s.p);
		free(s2c.p);
	}
	ctl_hand_seeds();
	ctl_bin_seeds();
}

/* ---- .npy ------------------------------------------------------------------- */

static void npy_one(const char *name, const struct dj_tensor_desc *d, unsigned flags,
		    int version, int f64)
{
	char hdr[512];
	size_t hlen, nbytes = dj_tensor_nbytes(d) * (f64 ? 2 : 1);
	struct buf b = {0};
	uint8_t pre[12];
	char *descr;

	if (dj_npy_format_header(d, hdr, sizeof(hdr), &hlen) != 0) {
		fprintf(stderr, "gen_seeds: npy header for %s\n", name);
		exit(1);
	}
	if (f64 && (descr = strstr(hdr, "<f4")) != NULL)
		descr[2] = '8';
	buf_byte(&b, (uint8_t)flags);
	if (version == 1) {
		buf_add(&b, hdr, hlen);
	} else {
		/* 2.0 / 3.0: the same dict behind a 32-bit length. */
		uint32_t dict = (uint32_t)(hlen - 10);

		memcpy(pre, hdr, 6);
		pre[6] = (uint8_t)version;
		pre[7] = 0;
		for (int i = 0; i < 4; i++)
			pre[8 + i] = (uint8_t)(dict >> (8 * i));
		buf_add(&b, pre, 12);
		buf_add(&b, hdr + 10, dict);
	}
	for (size_t i = 0; i < nbytes; i++)
		buf_byte(&b, (uint8_t)(i * 29 + 3));
	write_seed("fuzz_npy", name, b.p, b.len);
	free(b.p);
}

static void npy_seeds(void)
{
	struct dj_tensor_desc f32 = {DJ_DTYPE_FLOAT32, 2, {2, 3}};
	struct dj_tensor_desc f16 = {DJ_DTYPE_FLOAT16, 1, {3}};
	struct dj_tensor_desc bf16 = {DJ_DTYPE_BFLOAT16, 2, {2, 2}};
	struct dj_tensor_desc i32 = {DJ_DTYPE_INT32, 0, {0}};
	struct dj_tensor_desc i64 = {DJ_DTYPE_INT64, 4, {1, 2, 1, 2}};
	struct dj_tensor_desc empty = {DJ_DTYPE_FLOAT32, 2, {0, 4}};
	struct dj_tensor_desc f8 = {DJ_DTYPE_FLOAT32, 1, {2}};

	npy_one("f32-2x3", &f32, 0, 1, 0);
	npy_one("f16-3", &f16, 0, 1, 0);
	npy_one("bf16-2x2", &bf16, DJ_NPY_U2_AS_BF16, 1, 0);
	npy_one("i32-scalar", &i32, 0, 1, 0);
	npy_one("i64-1x2x1x2", &i64, 0, 1, 0);
	npy_one("f32-empty", &empty, 0, 1, 0);
	npy_one("v2-f32", &f32, 0, 2, 0);
	npy_one("v3-f32", &f32, 0, 3, 0);
	npy_one("f64-as-f32", &f8, DJ_NPY_F64_TO_F32, 1, 1);
}

/* ---- operations -------------------------------------------------------------- */

#define D(t, n, ...) ((struct dj_tensor_desc){DJ_DTYPE_##t, n, {__VA_ARGS__}})

static void op_one(const char *name, const char *seed, const struct dj_tensor_desc *in, int n_in,
		   const struct tn_op_attrs *a)
{
	const struct tn_op *op = tn_op_find(name);
	uint8_t buf[1024];
	size_t off = 2;
	struct dj_tensor_desc out;
	char err[TN_OP_ERR_LEN] = "";
	cJSON *j;
	char *text = NULL;

	if (op == NULL) {
		fprintf(stderr, "gen_seeds: no operation %s\n", name);
		exit(1);
	}
	if (tn_op_infer(op, in, n_in, a, &out, err, sizeof(err)) != 0)
		fprintf(stderr, "gen_seeds: warning: seed %s is refused: %s\n", seed, err);
	buf[0] = (uint8_t)op->id;
	buf[1] = (uint8_t)n_in;
	for (int i = 0; i < n_in; i++)
		if (fz_op_put_desc(buf, sizeof(buf), &off, &in[i]) != 0)
			exit(1);
	j = a != NULL ? tn_op_attrs_to_json(op, a) : NULL;
	if (j != NULL && (text = cJSON_PrintUnformatted(j)) != NULL && strcmp(text, "{}") != 0 &&
	    off + strlen(text) <= sizeof(buf)) {
		memcpy(buf + off, text, strlen(text));
		off += strlen(text);
	}
	cJSON_free(text);
	cJSON_Delete(j);
	write_seed("fuzz_op_attrs", seed, buf, off);
}

static void op_seeds(void)
{
	struct tn_op_attrs a;
	struct dj_tensor_desc in[4];

	in[0] = D(FLOAT32, 3, 2, 2, 3);
	in[1] = D(FLOAT32, 2, 3, 4);
	op_one("matmul", "matmul-batched", in, 2, NULL);
	in[0] = D(FLOAT32, 1, 3);
	in[1] = D(FLOAT32, 1, 3);
	op_one("matmul", "matmul-dot", in, 2, NULL);
	in[0] = D(FLOAT32, 2, 2, 3);
	in[1] = D(FLOAT32, 1, 3);
	op_one("add", "add-broadcast", in, 2, NULL);
	op_one("sub", "sub", in, 2, NULL);
	in[0] = D(FLOAT16, 2, 2, 3);
	in[1] = D(FLOAT16, 2, 2, 1);
	op_one("mul", "mul-f16", in, 2, NULL);
	in[0] = D(INT32, 1, 4);
	in[1] = D(INT32, 0, 0);
	op_one("div", "div-int", in, 2, NULL);
	in[0] = D(BFLOAT16, 2, 2, 3);
	op_one("relu", "relu-bf16", in, 1, NULL);
	in[0] = D(FLOAT32, 2, 2, 3);
	op_one("sigmoid", "sigmoid", in, 1, NULL);
	op_one("tanh", "tanh", in, 1, NULL);
	op_one("exp", "exp", in, 1, NULL);
	op_one("log", "log", in, 1, NULL);
	op_one("sqrt", "sqrt", in, 1, NULL);
	op_one("gelu", "gelu", in, 1, NULL);
	op_one("silu", "silu", in, 1, NULL);
	tn_op_attrs_init(&a);
	a.has_dim = 1;
	a.dim = 1;
	a.keepdim = 1;
	in[0] = D(INT32, 3, 2, 3, 2);
	op_one("sum", "sum-dim-keepdim", in, 1, &a);
	in[0] = D(FLOAT32, 2, 2, 3);
	op_one("mean", "mean-all", in, 1, NULL);
	tn_op_attrs_init(&a);
	a.has_dim = 1;
	a.dim = -1;
	op_one("softmax", "softmax", in, 1, &a);
	tn_op_attrs_init(&a);
	a.has_dims = 1;
	a.dims[0] = 0;
	a.dims[1] = 1;
	op_one("transpose", "transpose-dims", in, 1, &a);
	tn_op_attrs_init(&a);
	a.n_perm = 3;
	a.perm[0] = 2;
	a.perm[1] = 0;
	a.perm[2] = 1;
	in[0] = D(FLOAT32, 3, 2, 3, 4);
	op_one("transpose", "transpose-perm", in, 1, &a);
	tn_op_attrs_init(&a);
	a.shape_ndim = 2;
	a.shape[0] = 4;
	a.shape[1] = -1;
	op_one("reshape", "reshape", in, 1, &a);
	tn_op_attrs_init(&a);
	a.has_dim = 1;
	a.dim = 1;
	in[0] = D(INT64, 2, 2, 1);
	in[1] = D(INT64, 2, 2, 2);
	in[2] = D(INT64, 2, 2, 3);
	op_one("cat", "cat", in, 3, &a);
	in[0] = D(FLOAT32, 2, 2, 3);
	in[1] = D(FLOAT32, 2, 4, 3);
	in[2] = D(FLOAT32, 1, 4);
	op_one("linear", "linear-bias", in, 3, NULL);
	tn_op_attrs_init(&a);
	a.norm_ndim = 1;
	a.norm_shape[0] = 3;
	a.eps = 1e-3;
	in[1] = D(FLOAT32, 1, 3);
	in[2] = D(FLOAT32, 1, 3);
	op_one("layer_norm", "layer_norm", in, 3, &a);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	mkdir(out_dir, 0755);
	dj_log_set_level(DJ_LOG_ERR);
	dp_seeds();
	npy_seeds();
	op_seeds();
	ctl_seeds();
	printf("gen_seeds: %d seeds in %s\n", n_written, out_dir);
	return 0;
}
