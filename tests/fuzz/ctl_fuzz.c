/* SPDX-License-Identifier: BSD-3-Clause */
/* The client session the control-plane fuzz targets replay (ctl_fuzz.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl_fuzz.h"

void fz_client_options(struct dj_client_options *o, uint16_t port)
{
	dj_client_options_init(o);
	o->port = port;
	o->path = DJ_PATH_TCP;
	o->max_retries = 0;
	o->backoff_base_ms = 0;
	o->backoff_max_ms = 0;
	o->connect_timeout_ms = 1000;
	o->request_timeout_ms = 2000;
	o->wait_spin_us = 0;
}

void fz_client_script(struct dj_client *cl)
{
	float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 2, .shape = {2, 3}},
			      .data = x, .mem = DJ_MEM_HOST};
	struct dj_tensor out = {.desc = t.desc, .data = y, .mem = DJ_MEM_HOST};
	struct dj_tensor_desc d, descs[2];
	uint64_t ha = 0, hb = 0, hc = 0, outs[2];
	char text[2][24], *stats = NULL;
	struct dj_batch_op ops[2] = {
		{.op = "add", .inputs = {text[0], text[1]}, .n_in = 2},
		{.op = "scale", .inputs = {"$0"}, .n_in = 1, .attrs_json = "{\"factor\":0.5}"},
	};
	struct dj_future *f = NULL;
	struct dj_conn *conn;

	if (dj_connect(cl, &conn) != 0)
		return;
	dj_ping(conn, NULL);
	dj_put(conn, &t, &ha);
	dj_alloc(conn, &t.desc, &hb);
	dj_put_into(conn, hb, &t);
	dj_describe(conn, ha, &d);
	dj_execute(conn, "add", (uint64_t[]){ha, hb}, 2, NULL, &hc, &d);
	dj_execute(conn, "scale", &hc, 1, "{\"factor\":2}", &hc, &d);
	if (dj_execute_async(conn, "dup", &ha, 1, NULL, NULL, NULL, &f) == 0) {
		if (dj_future_wait(f, -1) == 0)
			dj_future_outputs(f, outs, descs, 2);
		dj_future_release(f);
	}
	snprintf(text[0], sizeof(text[0]), "0x%" PRIx64, ha);
	snprintf(text[1], sizeof(text[1]), "0x%" PRIx64, hb);
	dj_execute_batch(conn, ops, 2, outs);
	dj_get(conn, hc, &out);
	if (dj_stats(conn, &stats) == 0)
		free(stats);
	dj_free(conn, ha);
	dj_free(conn, hb);
	dj_conn_close(conn);
}
