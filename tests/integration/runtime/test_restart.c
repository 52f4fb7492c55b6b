/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Restart after a crash, with the real server: djinn-dp on a memif socket is
 * killed with SIGKILL and started again with the same arguments, while this
 * process is a long-lived client with a DPDK data path of its own (memif
 * client, its own EAL).
 *
 *  - the killed server leaves its socket file and run-time folder; the
 *    restart removes both and comes up with its data plane (before: TCP
 *    only, "Address already in use");
 *  - the client notices its memif link went down and came back, opens a
 *    new session, and is on the DPDK data path again: PUT and GET over it,
 *    byte-exact; what it saw in between is printed, and the times from the
 *    kill to the server serving and to the client back on DPDK;
 *  - a second server on the same socket is refused, naming the path;
 *  - a djinn client whose own memif server socket is stale starts its data
 *    plane (the same rule on the client side);
 *  - SIGINT: the server exits 0 and leaves no socket file and no run-time
 *    folder, nor does this client after dp_eal_cleanup().
 *
 *   test_restart DJINN_DP DJINN
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "harness.h"

#define MIB (1u << 20)
#define UP_TIMEOUT_S 60
#define BACK_TIMEOUT_NS (60ull * 1000 * 1000 * 1000)

static const char *dp_bin, *client_bin;
static char sock[96], vdev_srv[192], vdev_cli[192], prefix[48], logpath[128];
static uint16_t ctl_port;
static pid_t server = -1;

/* The client side: EAL, engine, control-plane client. */
static struct dp_engine *engine;
static struct dj_datapath datapath;
static struct dj_client *client;

/* A TCP port nobody listens on now. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* djinn-dp with the same arguments every time, output to log. */
static pid_t server_spawn(const char *log, uint16_t port)
{
	char p[16];
	pid_t pid;

	snprintf(p, sizeof(p), "%u", port);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(dp_bin, dp_bin, "-l", "0,1", "--main-lcore", "0", "--no-pci",
		      "--log-level=lib.eal:warning", "--vdev", vdev_srv, "--", "--ctl-port", p,
		      "--stats-interval", "0", "--gpu", "none", "--dp-idle-sleep-us", "50",
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static bool log_has(const char *log, const char *what)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(log, "r");

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, what) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

/* The server listens (true), or died / never did. */
static bool server_up(pid_t pid, const char *log)
{
	uint64_t until = djc_time_ns() + UP_TIMEOUT_S * 1000000000ull;

	while (djc_time_ns() < until) {
		if (log_has(log, "control plane: listening"))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(20000);
	}
	return false;
}

static void dump(const char *log)
{
	char line[512];
	FILE *f = fopen(log, "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "EAL:", 4) != 0)
			printf("    | %s", line);
	if (f != NULL)
		fclose(f);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* ---- the client's data path ---------------------------------------------------- */

static int client_start(void)
{
	char pfx[64];
	char *argv[] = {"test_restart", "-l", "0,1", "--main-lcore", "1", "--no-pci",
			"--no-huge", "-m", "512", "--log-level=lib.eal:warning", pfx,
			"--vdev", vdev_cli, NULL};
	struct dp_engine_config cfg = {0};
	struct dj_client_options o;
	char **app_argv;
	int app_argc, rc;

	snprintf(pfx, sizeof(pfx), "--file-prefix=%s", prefix);
	rc = dp_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv, NULL, &app_argc,
			 &app_argv);
	if (rc != 0)
		return rc;
	cfg.port.frame_size = 9014;
	cfg.port.promiscuous = 1;
	cfg.local.ipv4 = 0xc6120002; /* 198.18.0.2 */
	cfg.idle_sleep_us = 50;
	rc = dp_engine_create(&cfg, &engine);
	if (rc != 0)
		return rc;
	dp_engine_datapath(engine, &datapath);
	dj_client_options_init(&o);
	o.port = ctl_port;
	o.datapath = &datapath;
	return dj_client_create(&o, &client);
}

/* PUT n bytes, GET them back, compare: 0, or the first error. */
static int round_trip(struct dj_conn *conn, size_t n, unsigned int salt)
{
	float *src = malloc(n), *dst = calloc(1, n);
	struct dj_tensor t = {.data = src, .mem = DJ_MEM_HOST}, back = {.data = dst, .mem = DJ_MEM_HOST};
	uint64_t h = 0;
	int rc;

	t.desc.dtype = DJ_DTYPE_FLOAT32;
	t.desc.ndim = 1;
	t.desc.shape[0] = (int64_t)(n / sizeof(float));
	back.desc = t.desc;
	for (size_t i = 0; i < n / sizeof(float); i++)
		src[i] = (float)(i * 7 + salt);
	rc = dj_put(conn, &t, &h);
	if (rc == 0)
		rc = dj_get(conn, h, &back);
	if (rc == 0 && memcmp(src, dst, n) != 0)
		rc = -EBADMSG;
	if (h != 0)
		dj_free(conn, h);
	free(src);
	free(dst);
	return rc;
}

static bool on_dpdk(struct dj_conn *conn)
{
	return dj_conn_path(conn, NULL) == DJ_PATH_DPDK;
}

/* ---- cases ----------------------------------------------------------------------- */

/* When the restarted server said it listens (its data plane is up by
 * then), seen by a thread that reads its log every 5 ms while the client
 * keeps trying. */
struct listen_watch {
	const char *log;
	pid_t pid;
	uint64_t at_ns;
	atomic_int done;
};

static void *listen_watch(void *arg)
{
	struct listen_watch *w = arg;
	uint64_t until = djc_time_ns() + UP_TIMEOUT_S * 1000000000ull;

	while (!atomic_load(&w->done) && djc_time_ns() < until) {
		if (log_has(w->log, "control plane: listening")) {
			w->at_ns = djc_time_ns();
			break;
		}
		usleep(5000);
	}
	return NULL;
}

/* What the client sees while its server is gone, counted by kind. */
struct gap_view {
	unsigned int errors[8];
	const char *names[8];
	unsigned int tcp_round_trips;
};

static void gap_note(struct gap_view *g, int rc)
{
	const char *name = dj_strerror(rc);

	for (int i = 0; i < 8; i++) {
		if (g->names[i] == NULL)
			g->names[i] = name;
		if (g->names[i] == name || strcmp(g->names[i], name) == 0) {
			g->errors[i]++;
			return;
		}
	}
}

static void test_kill_and_restart(void)
{
	struct dj_conn *conn = NULL;
	struct gap_view gap = {0};
	char killed_prefix[48], log2[144];
	struct listen_watch lw = {0};
	uint64_t t_kill, t_listen, t_back = 0;
	pthread_t watcher;
	int rc;

	/* Up, and the client on DPDK. */
	CU_ASSERT_FATAL(dj_connect(client, &conn) == 0);
	CU_ASSERT(on_dpdk(conn));
	CU_ASSERT_EQUAL(round_trip(conn, MIB, 1), 0);

	snprintf(killed_prefix, sizeof(killed_prefix), "djinn-%d", (int)server);
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	t_kill = djc_time_ns();
	/* What the kill leaves (the run-time folder under /var/run/dpdk, the
	 * socket file), as on main: */
	CU_ASSERT_TRUE(exists(sock));
	CU_ASSERT_TRUE(dp_eal_prefix_exists(killed_prefix));

	snprintf(log2, sizeof(log2), "%s.2", logpath);
	server = server_spawn(log2, ctl_port);
	CU_ASSERT_FATAL(server > 0);
	lw.log = log2;
	CU_ASSERT_FATAL(pthread_create(&watcher, NULL, listen_watch, &lw) == 0);
	/* The client keeps asking meanwhile: that is the gap it sees. */
	while (djc_time_ns() - t_kill < BACK_TIMEOUT_NS) {
		if (conn == NULL && (rc = dj_connect(client, &conn)) != 0) {
			conn = NULL;
			gap_note(&gap, rc);
			usleep(50000);
			continue;
		}
		rc = round_trip(conn, MIB, 2);
		if (rc == 0 && on_dpdk(conn)) {
			t_back = djc_time_ns();
			break;
		}
		if (rc == 0) {
			gap.tcp_round_trips++;
		} else {
			gap_note(&gap, rc);
			dj_disconnect(conn); /* broken: closed, a new one next time */
			conn = NULL;
		}
		usleep(50000);
	}
	atomic_store(&lw.done, 1);
	pthread_join(watcher, NULL);
	t_listen = lw.at_ns;
	printf("\n    kill -9 -> restarted server listening: %.0f ms\n",
	       t_listen ? (double)(t_listen - t_kill) / 1e6 : -1.0);
	printf("    kill -9 -> this client back on DPDK (PUT+GET 1 MiB byte-exact): %.0f ms\n",
	       t_back ? (double)(t_back - t_kill) / 1e6 : -1.0);
	printf("    in between the client saw:");
	for (int i = 0; i < 8 && gap.names[i] != NULL; i++)
		printf(" %u x \"%s\";", gap.errors[i], gap.names[i]);
	printf(" %u round trips over TCP\n", gap.tcp_round_trips);
	/* The restart came up with its data plane, having removed the stale
	 * socket and the killed process's folder. */
	CU_ASSERT_TRUE(log_has(log2, "removed the stale memif socket"));
	CU_ASSERT_TRUE(log_has(log2, "data plane: port"));
	CU_ASSERT_FALSE(log_has(log2, "DPDK unavailable"));
	CU_ASSERT_FALSE(dp_eal_prefix_exists(killed_prefix));
	CU_ASSERT(t_back != 0);
	if (t_back == 0)
		dump(log2);
	if (conn != NULL) {
		CU_ASSERT(on_dpdk(conn));
		CU_ASSERT_EQUAL(round_trip(conn, 16 * MIB, 3), 0);
		dj_disconnect(conn);
	}
}

/* The socket is the running server's: another server with the same
 * socket is refused, by path; the running one keeps serving. */
static void test_live_socket_refused(void)
{
	char log3[144];
	struct dj_conn *conn;
	int status = 0;
	pid_t second;

	snprintf(log3, sizeof(log3), "%s.3", logpath);
	second = server_spawn(log3, free_port());
	CU_ASSERT_FATAL(second > 0);
	waitpid(second, &status, 0);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CU_ASSERT_TRUE(log_has(log3, sock));
	CU_ASSERT_TRUE(log_has(log3, "in use"));
	unlink(log3);
	CU_ASSERT_TRUE(exists(sock));
	CU_ASSERT_FATAL(dj_connect(client, &conn) == 0);
	CU_ASSERT_EQUAL(round_trip(conn, MIB, 4), 0);
	CU_ASSERT(on_dpdk(conn));
	dj_disconnect(conn);
}

/* Run argv with stdout and stderr into out (cap bytes, NUL-terminated);
 * the exit status, or -1. Not popen(): the child must not inherit this
 * process's EAL descriptors (its memif connection, interrupt epoll,
 * eventfds). */
static int run_capture(char *const argv[], char *out, size_t cap)
{
	int fds[2], status = -1;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		closefrom(3);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while (pid > 0 && (n = read(fds[0], out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The djinn tool with a memif *server* vdev on a stale socket (its own,
 * left by a killed run): the socket is removed and its data plane starts,
 * then goes with it. */
static void test_client_side_stale_socket(void)
{
	char csock[96], vdev[192], port[16], out[4096] = "";
	char *argv[] = {(char *)client_bin, "-l", "0,1", "--no-pci", "--no-huge", "-m", "256",
			"--vdev", vdev, "--", "--port", port, "--path", "tcp", "ping", "-n", "1",
			NULL};
	int fd;
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	snprintf(csock, sizeof(csock), "/tmp/djinn-restart-%d-cli.memif", (int)getpid());
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", csock);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&un, sizeof(un)) == 0);
	close(fd); /* left as a killed process leaves it */
	snprintf(vdev, sizeof(vdev), "net_memif0,role=server,socket=%s,socket-abstract=no", csock);
	snprintf(port, sizeof(port), "%u", ctl_port);
	CU_ASSERT_EQUAL(run_capture(argv, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "no DPDK data path"));
	if (strstr(out, "no DPDK data path") != NULL)
		printf("\n%s\n", out);
	CU_ASSERT_FALSE(exists(csock)); /* removed, then its port took the new one */
	unlink(csock);
}

/* The client goes first (its memif client port, its EAL), then the server
 * on SIGINT: neither leaves a run-time folder, nor the server its socket. */
static void test_clean_shutdown(void)
{
	char pfx[48];
	int status = 0;

	dj_client_destroy(client);
	client = NULL;
	dp_engine_quiesce(engine);
	dp_engine_destroy(engine);
	engine = NULL;
	dp_eal_cleanup();
	CU_ASSERT_FALSE(dp_eal_prefix_exists(prefix));
	kill(server, SIGINT);
	waitpid(server, &status, 0);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_FALSE(exists(sock));
	snprintf(pfx, sizeof(pfx), "djinn-%d", (int)server);
	CU_ASSERT_FALSE(dp_eal_prefix_exists(pfx));
	server = -1;
}

static int suite_init(void)
{
	int pid = (int)getpid();

	snprintf(sock, sizeof(sock), "/tmp/djinn-restart-%d.memif", pid);
	snprintf(vdev_srv, sizeof(vdev_srv),
		 "net_memif0,role=server,socket=%s,socket-abstract=no,bsize=9216", sock);
	snprintf(vdev_cli, sizeof(vdev_cli),
		 "net_memif0,role=client,socket=%s,socket-abstract=no,bsize=9216", sock);
	snprintf(prefix, sizeof(prefix), "djrestart%dc", pid);
	snprintf(logpath, sizeof(logpath), "/tmp/djinn-restart-%d.log", pid);
	ctl_port = free_port();
	unlink(sock);
	server = server_spawn(logpath, ctl_port);
	if (server <= 0 || !server_up(server, logpath) || !log_has(logpath, "data plane: port")) {
		dump(logpath);
		return -1;
	}
	return client_start();
}

static int suite_cleanup(void)
{
	char log[112];

	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	dj_client_destroy(client);
	if (engine != NULL) {
		dp_engine_quiesce(engine);
		dp_engine_destroy(engine);
		dp_eal_cleanup();
	}
	dp_eal_prefix_remove(prefix);
	unlink(sock);
	snprintf(log, sizeof(log), "/tmp/djinn-restart-%d.log", (int)getpid());
	unlink(log);
	strcat(log, ".2");
	unlink(log);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"kill -9, restart: DPDK again, client back on it", test_kill_and_restart},
		{"a second server on a live socket is refused by path", test_live_socket_refused},
		{"client side: its stale memif socket removed", test_client_side_stale_socket},
		{"SIGINT leaves no socket file and no run-time folder", test_clean_shutdown},
		{NULL, NULL},
	};

	if (argc < 3)
		dj_test_skip("usage: test_restart DJINN_DP DJINN");
	if (geteuid() != 0)
		dj_test_skip("memif sockets and EAL need root here");
	dp_bin = argv[1];
	client_bin = argv[2];
	dj_test_add_suite("restart", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
