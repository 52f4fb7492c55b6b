/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * For the benches: a control-plane server in this process over a runtime,
 * on a loopback port the OS picks, and a client connected to it over TCP.
 */
#ifndef DJINN_BENCH_RT_SERVER_H
#define DJINN_BENCH_RT_SERVER_H

#include "djinn/djinn.h"
#include "controlplane/ctl.h"
#include "runtime/runtime.h"

struct bench_server {
	struct ctl_server *srv;
	struct dj_client *client;
	struct dj_conn *conn;
};

/**
 * Start a server backed by @p rt and connect to it.
 * @return 0, or the server's or the client's error (what was made is
 * undone by bench_server_close(), which the caller calls either way).
 */
int bench_server_open(struct rt_runtime *rt, struct bench_server *s);
/** Disconnect and stop the server; a zeroed or half-open one too. */
void bench_server_close(struct bench_server *s);

#endif
