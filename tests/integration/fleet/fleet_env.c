/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fleet tests' processes and data (fleet_env.h): djinn-dp servers and a
 * real etcd, each started with its own log and stopped at exit, and tensors
 * of a seeded pattern checked byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>

#include "fleet_env.h"
#include "harness.h"

const char *fe_dp_bin;

#define MAX_TRACKED 32
#define MAX_LOGS 64
static pid_t tracked[MAX_TRACKED];
static char etcd_dirs[8][128];
static char logs[MAX_LOGS][128];

/* Logs go once every test passed; after a failure they stay, named. */
static void log_remember(const char *path)
{
	for (int i = 0; i < MAX_LOGS; i++) {
		if (strcmp(logs[i], path) == 0)
			return;
		if (logs[i][0] == '\0') {
			snprintf(logs[i], sizeof(logs[i]), "%s", path);
			return;
		}
	}
}

static void logs_settle(void)
{
	/* At exit the registry is gone: the harness says how the run ended.
	 * A run that did not finish (crash, exit from a test) keeps them. */
	int keep = CU_get_registry() != NULL ? CU_get_number_of_failures() > 0 ||
						      CU_get_number_of_suites_failed() > 0 :
					      dj_test_outcome() != 0;

	for (int i = 0; i < MAX_LOGS && logs[i][0] != '\0'; i++) {
		if (keep)
			fprintf(stderr, "log kept: %s\n", logs[i]);
		else
			unlink(logs[i]);
		logs[i][0] = '\0';
	}
}

static void track(pid_t pid)
{
	for (int i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
	}
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

static void (*after_cleanup)(void);

void fe_at_cleanup(void (*fn)(void))
{
	after_cleanup = fn;
}

static void on_signal(int sig)
{
	fe_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

void fe_init(const char *dp_bin)
{
	fe_dp_bin = dp_bin;
	atexit(fe_cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
}

void fe_cleanup(void)
{
	for (int i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i] > 0) {
			kill(tracked[i], SIGKILL);
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
	}
	for (int i = 0; i < 8; i++) {
		if (etcd_dirs[i][0] != '\0') {
			char cmd[200];

			snprintf(cmd, sizeof(cmd), "rm -rf '%.150s'", etcd_dirs[i]);
			if (system(cmd) != 0)
				fprintf(stderr, "could not remove %s\n", etcd_dirs[i]);
			etcd_dirs[i][0] = '\0';
		}
	}
	logs_settle();
	if (after_cleanup != NULL) {
		void (*fn)(void) = after_cleanup;

		after_cleanup = NULL;
		fn();
	}
}

uint64_t fe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void fe_sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

uint16_t fe_free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int fe_token_file(const char *token, char *path)
{
	int fd;

	snprintf(path, 128, "/tmp/djinn-fleet-token-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	if (write(fd, token, strlen(token)) != (ssize_t)strlen(token)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

void fe_server_arg(struct fe_server *s, const char *arg)
{
	if (s->n_args < FE_MAX_ARGS - 1)
		s->args[s->n_args++] = strdup(arg);
}

/* fork + exec argv (inside netns where given) with stdout/stderr to log. */
static pid_t spawn(const char *netns, const char *const *argv, const char *log)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	const char *full[FE_MAX_ARGS + 8];
	int n = 0;

	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	/* In the test's process group: a test killed by meson takes them along. */
	if (netns != NULL && netns[0] != '\0') {
		full[n++] = "ip";
		full[n++] = "netns";
		full[n++] = "exec";
		full[n++] = netns;
	}
	for (int i = 0; argv[i] != NULL && n < FE_MAX_ARGS + 7; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	execvp(full[0], (char *const *)full);
	_exit(127);
}

static int log_has(const char *log, const char *what)
{
	char cmd[320];

	snprintf(cmd, sizeof(cmd), "grep -q '%s' '%s' 2>/dev/null", what, log);
	return system(cmd) == 0;
}

static void log_print(const char *log)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "echo '--- %s'; tail -n 40 '%s'", log, log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
}

int fe_server_start(struct fe_server *s, int timeout_s)
{
	const char *argv[FE_MAX_ARGS + 2];
	uint64_t deadline = fe_now_ms() + (uint64_t)timeout_s * 1000;
	int status;

	argv[0] = fe_dp_bin;
	for (int i = 0; i < s->n_args; i++)
		argv[i + 1] = s->args[i];
	argv[s->n_args + 1] = NULL;
	if (s->log[0] == '\0')
		snprintf(s->log, sizeof(s->log), "/tmp/djinn-fleet-%d-%u.log", (int)getpid(), s->port);
	snprintf(s->endpoint, sizeof(s->endpoint), "%s:%u", s->host, s->port);
	s->pid = spawn(s->netns, argv, s->log);
	log_remember(s->log);
	if (s->pid < 0)
		return -1;
	track(s->pid);
	while (fe_now_ms() < deadline) {
		if (log_has(s->log, "control plane: listening"))
			return 0;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			untrack(s->pid);
			s->pid = 0;
			break;
		}
		fe_sleep_ms(50);
	}
	fprintf(stderr, "djinn-dp on %s did not come up\n", s->endpoint);
	log_print(s->log);
	return -1;
}

void fe_server_kill(struct fe_server *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	waitpid(s->pid, NULL, 0);
	untrack(s->pid);
	s->pid = 0;
}

int64_t fe_server_store_bytes(const struct fe_server *s)
{
	struct dj_client_options o;
	struct dj_client *cl = NULL;
	struct dj_conn *conn = NULL;
	char *json = NULL;
	int64_t bytes = -1;

	dj_client_options_init(&o);
	o.host = s->host;
	o.port = s->port;
	o.path = DJ_PATH_TCP;
	o.max_retries = 0;
	o.request_timeout_ms = 3000;
	if (dj_client_create(&o, &cl) == 0 && dj_connect(cl, &conn) == 0 &&
	    dj_stats(conn, &json) == 0) {
		cJSON *st = cJSON_Parse(json);
		const cJSON *load = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(st, "member"), "load");
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(load, "store_bytes");

		if (cJSON_IsNumber(b))
			bytes = (int64_t)b->valuedouble;
		cJSON_Delete(st);
	}
	free(json);
	if (conn != NULL)
		dj_conn_close(conn);
	dj_client_destroy(cl);
	return bytes;
}

/* ---- etcd ---------------------------------------------------------------------- */

static int etcd_spawn(struct fe_etcd *e)
{
	char client[64], peer[64], cluster[96], log[160];
	const char *argv[] = {"etcd", "--name", "fleet-test", "--data-dir", e->dir,
			      "--listen-client-urls", client, "--advertise-client-urls", client,
			      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			      "--initial-cluster", cluster, NULL};
	uint64_t deadline = fe_now_ms() + 15000;

	snprintf(client, sizeof(client), "http://%s:%u", e->ip, e->client_port);
	snprintf(peer, sizeof(peer), "http://%s:%u", e->ip, e->peer_port);
	snprintf(cluster, sizeof(cluster), "fleet-test=%s", peer);
	snprintf(log, sizeof(log), "%s.log", e->dir);
	e->pid = spawn(e->netns, argv, log);
	log_remember(log);
	if (e->pid < 0)
		return -1;
	track(e->pid);
	while (fe_now_ms() < deadline) {
		if (log_has(log, "ready to serve client requests"))
			return 0;
		if (waitpid(e->pid, NULL, WNOHANG) == e->pid) {
			untrack(e->pid);
			e->pid = 0;
			break;
		}
		fe_sleep_ms(50);
	}
	log_print(log);
	return -1;
}

int fe_etcd_start(struct fe_etcd *e, const char *ip, const char *netns)
{
	if (system("command -v etcd >/dev/null 2>&1") != 0)
		return -ENOENT;
	memset(e, 0, sizeof(*e));
	snprintf(e->ip, sizeof(e->ip), "%s", ip);
	snprintf(e->netns, sizeof(e->netns), "%s", netns != NULL ? netns : "");
	snprintf(e->dir, sizeof(e->dir), "/tmp/djinn-fleet-etcd-XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		return -errno;
	for (int i = 0; i < 8; i++) {
		if (etcd_dirs[i][0] == '\0') {
			snprintf(etcd_dirs[i], sizeof(etcd_dirs[i]), "%s", e->dir);
			break;
		}
	}
	/* etcd refuses a data dir it did not make itself. */
	rmdir(e->dir);
	e->client_port = fe_free_port();
	e->peer_port = fe_free_port();
	snprintf(e->url, sizeof(e->url), "http://%s:%u", e->ip, e->client_port);
	return etcd_spawn(e);
}

void fe_etcd_stop(struct fe_etcd *e)
{
	if (e->pid <= 0)
		return;
	kill(e->pid, SIGTERM);
	waitpid(e->pid, NULL, 0);
	untrack(e->pid);
	e->pid = 0;
}

int fe_etcd_restart(struct fe_etcd *e)
{
	return etcd_spawn(e);
}

void fe_etcd_destroy(struct fe_etcd *e)
{
	char cmd[300];

	fe_etcd_stop(e);
	if (e->dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.log'", e->dir, e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
	for (int i = 0; i < 8; i++)
		if (strcmp(etcd_dirs[i], e->dir) == 0)
			etcd_dirs[i][0] = '\0';
	e->dir[0] = '\0';
}

/* ---- tensors --------------------------------------------------------------------- */

/* Eight bytes of the pattern at once: byte i is byte i % 8 of word(i / 8). */
static uint64_t word(uint64_t w, uint32_t seed)
{
	uint64_t x = w * 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 32 | seed);

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 32);
}

static void pattern_fill(uint8_t *p, uint64_t n, uint32_t seed)
{
	uint64_t w = 0;

	for (; (w + 1) * 8 <= n; w++) {
		uint64_t x = word(w, seed);

		memcpy(p + w * 8, &x, 8);
	}
	if (w * 8 < n) {
		uint64_t x = word(w, seed);

		memcpy(p + w * 8, &x, n - w * 8);
	}
}

int fe_tensor_make(struct dj_tensor *t, uint64_t bytes, uint32_t seed)
{
	uint8_t *p = malloc(bytes > 0 ? bytes : 1);

	if (p == NULL || bytes % 2 != 0) {
		free(p);
		return -EINVAL;
	}
	pattern_fill(p, bytes, seed);
	t->desc = (struct dj_tensor_desc){.dtype = DJ_DTYPE_FLOAT16, .ndim = 1,
					  .shape = {(int64_t)(bytes / 2)}};
	t->data = p;
	t->mem = DJ_MEM_HOST;
	return 0;
}

int fe_tensor_check(const struct dj_tensor *t, uint32_t seed)
{
	uint64_t n = dj_tensor_nbytes(&t->desc);
	uint8_t *want = malloc(n > 0 ? n : 1);
	int same;

	if (want == NULL)
		return 0;
	pattern_fill(want, n, seed);
	same = memcmp(want, t->data, n) == 0;
	free(want);
	if (!same)
		fprintf(stderr, "a tensor of %llu bytes differs from its pattern\n",
			(unsigned long long)n);
	return same;
}
