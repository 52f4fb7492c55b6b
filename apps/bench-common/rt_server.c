/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * For the benches: a control-plane server over a runtime in this process,
 * and a client connected to it on loopback (rt_server.h).
 */
#include "rt_server.h"

int bench_server_open(struct rt_runtime *rt, struct bench_server *s)
{
	struct ctl_server_config scfg;
	struct dj_client_options copts;
	int rc;

	ctl_server_config_init(&scfg);
	scfg.port = 0;
	rc = ctl_server_create(&scfg, rt_backend(), rt, &s->srv);
	if (rc == 0)
		rc = ctl_server_start(s->srv);
	dj_client_options_init(&copts);
	copts.path = DJ_PATH_TCP;
	if (rc == 0) {
		copts.port = ctl_server_port(s->srv);
		rc = dj_client_create(&copts, &s->client);
	}
	if (rc == 0)
		rc = dj_connect(s->client, &s->conn);
	return rc;
}

void bench_server_close(struct bench_server *s)
{
	dj_disconnect(s->conn);
	dj_client_destroy(s->client);
	ctl_server_destroy(s->srv);
	s->conn = NULL;
	s->client = NULL;
	s->srv = NULL;
}
