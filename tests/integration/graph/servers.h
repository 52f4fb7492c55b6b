/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_GRAPH_SERVERS_H
#define DJINN_TEST_GRAPH_SERVERS_H

/*
 * Servers for the graph's integration tests: djinn-dp's runtime (host
 * memory, CPU operations) behind a real control-plane server on loopback,
 * one client session each. The backend is wrapped to count what reaches it:
 * uploads (write_begin: a PUT or a batch's put) and frees, and to stall.
 */
#include <stdatomic.h>

#include "djinn/djinn.h"
#include "runtime/runtime.h"

struct test_server {
	struct rt_runtime *rt;
	struct ctl_server *srv;
	struct dj_client *cl;
	struct dj_conn *conn;
	atomic_int uploads;
	atomic_int frees;
	/* Where set, every operation and every read (a GET) first sleeps this
	 * long: a server that stalls, its connection open. */
	atomic_int stall_ms;
};

int test_server_start(struct test_server *s);
/* A server whose runtime has the devices of @p gpu (rt_config.gpu: "none",
 * "sim:2:64M" for two simulated ones), named to clients. */
int test_server_start_on(struct test_server *s, const char *gpu);
void test_server_stop(struct test_server *s);
/* The server goes away (as if killed: its tensors are gone); the client
 * session stays, its requests fail from now on. test_server_stop() still
 * closes it. */
void test_server_kill(struct test_server *s);
/* Tensors the session holds now (the runtime's count, from STATS), after a
 * PING so that FREEs sent without waiting have been served. */
int test_server_tensors(struct test_server *s);

#endif
