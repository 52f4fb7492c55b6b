/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NUMA plan on injected topologies (our machines have one node): a
 * 2-socket server with 8 GPUs and its NIC on socket 1, a 2-socket server
 * with 4 GPUs (one of unknown node), EAL lcores on the wrong socket, a
 * virtual port; the printout; malformed descriptions named; and this
 * machine's own reading (libnuma), allocation on a node.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/topo.h"
#include "harness.h"

static const char *const all8[] = {"cuda:0", "cuda:1", "cuda:2", "cuda:3",
				   "cuda:4", "cuda:5", "cuda:6", "cuda:7"};

static void load(const char *name, struct tp_topology *t)
{
	const char *dir = getenv("DJ_TOPO_DIR");
	char path[512], err[200] = "";

	snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : "topologies", name);
	tp_topology_init(t);
	if (tp_load_json(path, t, err, sizeof(err)) != 0)
		printf("\n  %s: %s\n", path, err);
	CU_ASSERT_EQUAL_FATAL(tp_load_json(path, t, err, sizeof(err)), 0);
}

static int warned(const struct tp_plan *p, const char *words)
{
	for (int i = 0; i < p->n_warnings; i++)
		if (strstr(p->warnings[i], words) != NULL)
			return 1;
	return 0;
}

/* 8 GPUs, 4 per socket, the NIC on socket 1; lcores from the nodes. */
static void test_two_sockets_eight_gpus(void)
{
	struct tp_topology t;
	struct tp_plan p;

	load("2s8g.json", &t);
	CU_ASSERT_EQUAL(t.n_nodes, 2);
	CU_ASSERT_EQUAL(t.nodes[1].n_cpus, 32);
	CU_ASSERT_EQUAL(t.n_gpus, 8);
	CU_ASSERT_EQUAL(t.n_lcores, 63); /* every CPU but 0 */
	CU_ASSERT_EQUAL(tp_cpu_node(&t, 40), 1);
	CU_ASSERT_EQUAL(tp_cpu_node(&t, 64), -1);
	CU_ASSERT_EQUAL_FATAL(tp_plan_make(&t, 0, 2, all8, 8, &p), 0);
	CU_ASSERT_EQUAL(p.port_node, 1);
	CU_ASSERT_EQUAL(p.n_chosen, 2);
	CU_ASSERT_EQUAL(p.lcores[0], 32);
	CU_ASSERT_EQUAL(p.lcores[1], 33);
	CU_ASSERT_EQUAL(p.n_local, 2);
	CU_ASSERT_STRING_EQUAL(p.suggest_lcores, "");
	/* Every GPU's staging on its own node; those of socket 0 cross. */
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(p.gpus[i].node, i < 4 ? 0 : 1);
		CU_ASSERT_EQUAL(p.gpus[i].crosses, i < 4);
	}
	CU_ASSERT_EQUAL(p.n_warnings, 4);
	CU_ASSERT_TRUE(warned(&p, "cuda:2 (node 0) and port 0000:c1:00.0 (node 1) cross sockets"));
	CU_ASSERT_FALSE(warned(&p, "cuda:5"));
	/* Serving only the GPUs of the NIC's socket: nothing crosses. */
	CU_ASSERT_EQUAL(tp_plan_make(&t, 0, 4, all8 + 4, 4, &p), 0);
	CU_ASSERT_EQUAL(p.n_warnings, 0);
	CU_ASSERT_EQUAL(p.n_local, 4);
	/* A logical alias is its GPU. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(tp_gpu_find(&t, "cuda:6.1"));
	CU_ASSERT_EQUAL(tp_gpu_find(&t, "cuda:6.1")->node, 1);
	CU_ASSERT_PTR_NULL(tp_gpu_find(&t, "cuda:8"));
	CU_ASSERT_PTR_NULL(tp_gpu_find(&t, "cuda:"));
	/* Moves stage on the destination's node, else the source's. */
	CU_ASSERT_EQUAL(tp_stage_node(&t, "cuda:0", "cuda:5"), 1);
	CU_ASSERT_EQUAL(tp_stage_node(&t, "cuda:5", "cuda:0"), 0);
	CU_ASSERT_EQUAL(tp_stage_node(&t, "cuda:6", "cuda:9"), 1);
	CU_ASSERT_EQUAL(tp_stage_node(&t, "cuda:9", "cuda:9"), -1);
	/* No data plane: GPUs only. */
	CU_ASSERT_EQUAL(tp_plan_make(&t, -1, 0, all8, 8, &p), 0);
	CU_ASSERT_EQUAL(p.n_chosen, 0);
	CU_ASSERT_EQUAL(p.n_warnings, 0);
	CU_ASSERT_EQUAL(tp_plan_make(&t, 1, 2, all8, 8, &p), -EINVAL);
	CU_ASSERT_EQUAL(tp_plan_make(&t, 0, 0, all8, 8, &p), -EINVAL);
}

/* EAL gave lcores 16, 17 (node 1) and 2 (node 0); the NIC is on node 0. */
static void test_lcores_on_the_wrong_socket(void)
{
	struct tp_topology t;
	struct tp_plan p;

	load("2s4g-eal.json", &t);
	CU_ASSERT_EQUAL(t.n_lcores, 3);
	CU_ASSERT_EQUAL_FATAL(tp_plan_make(&t, 0, 2, all8, 4, &p), 0);
	CU_ASSERT_EQUAL(p.port_node, 0);
	CU_ASSERT_EQUAL(p.lcores[0], 2);  /* the port's node first */
	CU_ASSERT_EQUAL(p.lcores[1], 16);
	CU_ASSERT_EQUAL(p.n_local, 1);
	CU_ASSERT_STRING_EQUAL(p.suggest_lcores, "-l 0,1,2");
	CU_ASSERT_TRUE(warned(&p, "1 of 2 polling lcore(s) are off the port's node 0: run with "
			      "EAL -l 0,1,2"));
	CU_ASSERT_TRUE(warned(&p, "cuda:2 (node 1) and port 0000:31:00.0 (node 0)"));
	CU_ASSERT_TRUE(warned(&p, "cuda:3: NUMA node unknown on a machine of 2 nodes"));
	CU_ASSERT_EQUAL(p.gpus[3].node, -1);
	/* More queues than lcores. */
	CU_ASSERT_EQUAL(tp_plan_make(&t, 0, 4, all8, 1, &p), 0);
	CU_ASSERT_EQUAL(p.n_chosen, 3);
	CU_ASSERT_TRUE(warned(&p, "4 polling lcore(s) asked for, 3 available"));
	/* A memif port has no node: it serves the first GPU's. */
	CU_ASSERT_EQUAL(tp_plan_make(&t, 1, 1, all8 + 2, 1, &p), 0);
	CU_ASSERT_EQUAL(p.port_node, 1);
	CU_ASSERT_EQUAL(p.lcores[0], 16);
	CU_ASSERT_EQUAL(p.n_warnings, 0);
	/* ...and with a GPU of unknown node first, it has none. */
	CU_ASSERT_EQUAL(tp_plan_make(&t, 1, 1, all8 + 3, 1, &p), 0);
	CU_ASSERT_EQUAL(p.port_node, -1);
	CU_ASSERT_TRUE(warned(&p, "port net_memif0: NUMA node unknown"));
}

static void test_printout(void)
{
	struct tp_topology t;
	struct tp_plan p;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	load("2s8g.json", &t);
	tp_plan_make(&t, 0, 2, all8, 8, &p);
	tp_print(&t, &p, f);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "topology: 2 NUMA node(s)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "2s8g.json"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "node 1: 32 CPUs (32-63), 32 data-plane lcore(s)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "node 0: 32 CPUs (0-31), 31 data-plane lcore(s)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "gpu cuda:7 (0000:db:00.0): node 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "placement: port 0000:c1:00.0: mempools and send "
				      "staging on node 1; polling lcore(s) 32,33 (2 on node 1)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "placement: cuda:1: staging buffers on node 0 "
				      "(crosses the port's socket)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "warning: cuda:3 (node 0)"));
	free(text);
}

/* A description written to a file of its own; the load's result and error. */
static int load_text(const char *json, char *err, size_t len)
{
	char path[] = "/tmp/dj_topo_XXXXXX";
	int fd = mkstemp(path), rc;
	struct tp_topology t;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	tp_topology_init(&t);
	rc = tp_load_json(path, &t, err, len);
	unlink(path);
	return rc;
}

static void test_malformed(void)
{
	static const struct { const char *json; int rc; const char *words; } cases[] = {
		{"[1, 2]", -EINVAL, "not a JSON object"},
		{"{\"nodes\": 3}", -EINVAL, "\"nodes\" must be an array"},
		{"{\"nodes\": [{\"id\": 0}]}", -EINVAL, "nodes[0]: needs \"id\""},
		{"{\"nodes\": [{\"id\": 0, \"cpus\": \"5-2\"}]}", -EINVAL, "nodes[0]"},
		{"{\"nodes\": [{\"id\": 0, \"cpus\": \"0-4096\"}]}", -EINVAL, "CPUs below 1024"},
		{"{\"nodes\": [{\"id\": -1, \"cpus\": \"0\"}]}", -EINVAL, "nodes[0]"},
		{"{\"gpus\": [{\"node\": 0}]}", -EINVAL, "gpus[0]: needs \"name\""},
		{"{\"gpus\": [{\"name\": \"cuda:0\", \"node\": 0.5}]}", -EINVAL, "gpus[0]"},
		{"{\"ports\": [{\"name\": \"\", \"node\": 0}]}", -EINVAL, "ports[0]"},
		{"{\"lcores\": [{\"id\": 3}]}", -EINVAL, "lcores[0]"},
		{"{\"gpus\": [" "{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},"
		 "{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},"
		 "{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},"
		 "{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},"
		 "{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},"
		 "{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0},{\"name\":\"a\",\"node\":0}]}",
		 -ENOSPC, "gpus: more than 16"},
		{"{}", 0, ""},
	};
	char err[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(load_text(cases[i].json, err, sizeof(err)), cases[i].rc);
		if (strstr(err, cases[i].words) == NULL)
			printf("\n  case %zu: \"%s\" lacks \"%s\"\n", i, err, cases[i].words);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].words));
	}
	struct tp_topology t;

	tp_topology_init(&t);
	CU_ASSERT_EQUAL(tp_load_json("/nonexistent/topo.json", &t, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/topo.json"));
}

/* This machine, and DJINN_TOPOLOGY over it. */
static void test_machine_and_env(void)
{
	const char *dir = getenv("DJ_TOPO_DIR");
	char path[512], err[200];
	struct tp_topology t;
	void *p;

	tp_topology_init(&t);
	CU_ASSERT_EQUAL(tp_read_nodes(&t), 0);
	CU_ASSERT_TRUE(t.n_nodes >= 1);
	CU_ASSERT_TRUE(t.nodes[0].n_cpus >= 1);
	CU_ASSERT_EQUAL(tp_cpu_node(&t, 0), t.nodes[0].id);
	CU_ASSERT_EQUAL(tp_pci_node("no-such-device"), -1);
	CU_ASSERT_EQUAL(tp_pci_node("../../etc"), -1);
	unsetenv("DJINN_TOPOLOGY");
	CU_ASSERT_EQUAL(tp_from_env(&t, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/2s8g.json", dir != NULL ? dir : "topologies");
	setenv("DJINN_TOPOLOGY", path, 1);
	CU_ASSERT_EQUAL(tp_from_env(&t, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(t.n_nodes, 2);
	setenv("DJINN_TOPOLOGY", "/nonexistent.json", 1);
	CU_ASSERT_EQUAL(tp_from_env(&t, err, sizeof(err)), -ENOENT);
	unsetenv("DJINN_TOPOLOGY");
	/* Memory on node 0 (every machine has it), and on any node. */
	p = tp_alloc_onnode(1 << 20, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 0xab, 1 << 20);
	tp_free(p, 1 << 20);
	p = tp_alloc_onnode(4096, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	tp_free(p, 4096);
	CU_ASSERT_PTR_NULL(tp_alloc_onnode(0, 0));
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"2 sockets, 8 GPUs, the NIC on socket 1", test_two_sockets_eight_gpus},
		{"EAL lcores on the wrong socket, unknown nodes, memif", test_lcores_on_the_wrong_socket},
		{"the printout", test_printout},
		{"malformed descriptions are named", test_malformed},
		{"this machine, DJINN_TOPOLOGY, memory on a node", test_machine_and_env},
		{NULL, NULL},
	};

	dj_test_add_suite("topology", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
