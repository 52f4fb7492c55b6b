/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_FLEET_ENV_H
#define DJINN_TEST_FLEET_ENV_H

/*
 * What the fleet tests run: djinn-dp servers (processes, optionally inside a
 * network namespace), a real etcd on free ports with a temporary data dir,
 * token files, tensors of a seeded pattern, and waiting for conditions with
 * a deadline. Everything a test starts is stopped at exit, also after a
 * failed assertion (fe_cleanup, registered with atexit).
 */
#include <stdint.h>
#include <sys/types.h>

#include "djinn/fleet.h"

#define FE_MAX_ARGS 48

struct fe_server {
	pid_t pid;
	uint16_t port;
	char host[32];             /* control address ("127.0.0.1", a netns address) */
	char endpoint[48];         /* host:port */
	char log[128];
	char netns[32];            /* "" : the test's own */
	const char *args[FE_MAX_ARGS]; /* djinn-dp's arguments (after argv[0]) */
	int n_args;
};

struct fe_etcd {
	pid_t pid;
	char ip[32];
	uint16_t client_port, peer_port;
	char dir[128];
	char url[64];
	char netns[32];
};

/* The djinn-dp binary the tests start (argv[1] of the test). */
extern const char *fe_dp_bin;

/* A TCP port nobody listens on now (bound to 0 and closed). */
uint16_t fe_free_port(void);
/* A file holding token; path receives its name (128 bytes). */
int fe_token_file(const char *token, char *path);

/* Start s (its args filled by the caller, port and host too), wait until it
 * listens (at most timeout_s); 0 or -1 (its log printed). */
int fe_server_start(struct fe_server *s, int timeout_s);
/* Send sig and wait for the process to end. */
void fe_server_kill(struct fe_server *s, int sig);
/* Add one argument (copied). */
void fe_server_arg(struct fe_server *s, const char *arg);
/* Bytes of the server's resident tensors, from its STATS (-1: unreachable). */
int64_t fe_server_store_bytes(const struct fe_server *s);

/* Start etcd listening on ip (in netns where not ""), free ports, a new
 * temporary data dir; 0, or 77-worthy -ENOENT where etcd is not installed. */
int fe_etcd_start(struct fe_etcd *e, const char *ip, const char *netns);
/* Stop (SIGTERM) keeping the data dir; fe_etcd_restart starts it again. */
void fe_etcd_stop(struct fe_etcd *e);
int fe_etcd_restart(struct fe_etcd *e);
/* Stop and remove the data dir. */
void fe_etcd_destroy(struct fe_etcd *e);

/* Remember the binary; stop everything at exit and on SIGTERM / SIGINT. */
void fe_init(const char *dp_bin);
/* Stop every server and etcd still running (atexit), then run the
 * function given to fe_at_cleanup (once), e.g. removing namespaces. */
void fe_cleanup(void);
void fe_at_cleanup(void (*fn)(void));

/* A host tensor of bytes bytes (float16, or int32 where bytes % 4 == 0
 * and shape2 asks for [rows, cols]) filled with a pattern of seed. */
int fe_tensor_make(struct dj_tensor *t, uint64_t bytes, uint32_t seed);
/* 1 where t holds the pattern of seed. */
int fe_tensor_check(const struct dj_tensor *t, uint32_t seed);

/* Milliseconds since an arbitrary start. */
uint64_t fe_now_ms(void);
void fe_sleep_ms(unsigned int ms);

#endif
