/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NUMA topology and the placement plan made from it (topo.h): nodes from
 * libnuma or sysfs, devices' nodes from sysfs, a JSON description that
 * replaces any of them (tests, and machines that misreport), and the plan:
 * staging buffers on each GPU's node, mempools and polling lcores on the
 * port's node, warnings for every pairing across sockets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <numa.h>

#include "common/djc.h"
#include "runtime/topo.h"

#define MAX_FILE (1u << 20)

void tp_topology_init(struct tp_topology *t)
{
	memset(t, 0, sizeof(*t));
}

static void cpu_set(struct tp_node *n, unsigned int cpu)
{
	if (cpu >= TP_MAX_CPUS || (n->cpus[cpu / 64] >> (cpu % 64)) & 1)
		return;
	n->cpus[cpu / 64] |= UINT64_C(1) << (cpu % 64);
	n->n_cpus++;
}

static int cpu_isset(const struct tp_node *n, unsigned int cpu)
{
	return cpu < TP_MAX_CPUS && ((n->cpus[cpu / 64] >> (cpu % 64)) & 1);
}

/* "0-31,64-95" into n's CPUs; -EINVAL where it is not such a list. */
static int cpulist_parse(const char *text, struct tp_node *n)
{
	const char *p = text;

	while (*p != '\0' && *p != '\n') {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (end == p)
			return -EINVAL;
		p = end;
		if (*p == '-') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1 || hi < lo)
				return -EINVAL;
			p = end;
		}
		if (hi >= TP_MAX_CPUS)
			return -EINVAL;
		for (unsigned long c = lo; c <= hi; c++)
			cpu_set(n, (unsigned int)c);
		if (*p == ',')
			p++;
		else if (*p != '\0' && *p != '\n')
			return -EINVAL;
	}
	return 0;
}

/* First line of a small sysfs file into buf; 0 or -errno. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (f == NULL)
		return -errno;
	if (fgets(buf, (int)len, f) == NULL)
		rc = -EIO;
	fclose(f);
	return rc;
}

static int nodes_from_libnuma(struct tp_topology *t)
{
	int max = numa_max_node(), rc = 0;
	struct bitmask *cpus = numa_allocate_cpumask();

	if (cpus == NULL)
		return -ENOMEM;
	for (int id = 0; id <= max; id++) {
		struct tp_node *n;

		if (numa_node_to_cpus(id, cpus) != 0 || numa_bitmask_weight(cpus) == 0)
			continue; /* a node without CPUs (memory only) polls nothing */
		if (t->n_nodes == TP_MAX_NODES) {
			rc = -ENOSPC;
			break;
		}
		n = &t->nodes[t->n_nodes++];
		memset(n, 0, sizeof(*n));
		n->id = id;
		for (unsigned int c = 0; c < cpus->size && c < TP_MAX_CPUS; c++)
			if (numa_bitmask_isbitset(cpus, c))
				cpu_set(n, c);
	}
	numa_free_cpumask(cpus);
	return rc;
}

static int nodes_from_sysfs(struct tp_topology *t)
{
	char path[96], line[4096];

	for (int id = 0; id < 1024; id++) {
		struct tp_node *n;

		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", id);
		if (read_line(path, line, sizeof(line)) != 0)
			continue;
		if (t->n_nodes == TP_MAX_NODES)
			return -ENOSPC;
		n = &t->nodes[t->n_nodes];
		memset(n, 0, sizeof(*n));
		n->id = id;
		if (cpulist_parse(line, n) == 0 && n->n_cpus > 0)
			t->n_nodes++;
	}
	return 0;
}

int tp_read_nodes(struct tp_topology *t)
{
	int rc;

	t->n_nodes = 0;
	if (numa_available() >= 0) {
		rc = nodes_from_libnuma(t);
		snprintf(t->source, sizeof(t->source), "libnuma");
	} else {
		rc = nodes_from_sysfs(t);
		snprintf(t->source, sizeof(t->source), "sysfs");
	}
	if (t->n_nodes == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		t->n_nodes = 1;
		memset(&t->nodes[0], 0, sizeof(t->nodes[0]));
		for (long c = 0; c < n && c < TP_MAX_CPUS; c++)
			cpu_set(&t->nodes[0], (unsigned int)c);
		snprintf(t->source, sizeof(t->source), "no NUMA information: one node");
	}
	return rc;
}

int tp_pci_node(const char *pci)
{
	char path[160], line[32];

	if (pci == NULL || pci[0] == '\0' || strchr(pci, '/') != NULL)
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", pci);
	if (read_line(path, line, sizeof(line)) != 0)
		return -1;
	return atoi(line) >= 0 ? atoi(line) : -1;
}

int tp_add_gpu(struct tp_topology *t, const char *name, const char *pci, int node)
{
	struct tp_gpu *g;

	if (t->n_gpus == TP_MAX_GPUS)
		return -ENOSPC;
	g = &t->gpus[t->n_gpus++];
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->pci, sizeof(g->pci), "%s", pci != NULL ? pci : "");
	g->node = node >= 0 ? node : tp_pci_node(pci);
	return 0;
}

int tp_add_port(struct tp_topology *t, const char *name, int node)
{
	if (t->n_ports == TP_MAX_PORTS)
		return -ENOSPC;
	snprintf(t->ports[t->n_ports].name, sizeof(t->ports[0].name), "%s", name);
	t->ports[t->n_ports++].node = node >= 0 ? node : -1;
	return 0;
}

int tp_add_lcore(struct tp_topology *t, unsigned int id, int node)
{
	if (t->n_lcores == TP_MAX_LCORES)
		return -ENOSPC;
	t->lcores[t->n_lcores++] = (struct tp_lcore){.id = id, .node = node >= 0 ? node : -1};
	return 0;
}

int tp_cpu_node(const struct tp_topology *t, unsigned int cpu)
{
	for (int i = 0; i < t->n_nodes; i++)
		if (cpu_isset(&t->nodes[i], cpu))
			return t->nodes[i].id;
	return -1;
}

const struct tp_gpu *tp_gpu_find(const struct tp_topology *t, const char *name)
{
	size_t len = strcspn(name, ".");

	for (int i = 0; i < t->n_gpus; i++)
		if (strlen(t->gpus[i].name) == len && strncmp(t->gpus[i].name, name, len) == 0)
			return &t->gpus[i];
	return NULL;
}

/* ---- JSON description -------------------------------------------------- */

/* A whole small file, NUL-terminated; the caller frees. */
static int slurp(const char *path, char **out)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return -errno;
	buf = malloc(MAX_FILE + 1);
	n = buf != NULL ? fread(buf, 1, MAX_FILE, f) : 0;
	fclose(f);
	if (buf == NULL)
		return -ENOMEM;
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* obj[key] as an integer >= -1 into *v. */
static int json_node(const cJSON *obj, const char *key, int *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(it) || it->valuedouble < -1 || it->valuedouble > 1e6 ||
	    it->valuedouble != (double)(int)it->valuedouble)
		return -EINVAL;
	*v = (int)it->valuedouble;
	return 0;
}

static const char *json_text(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int load_nodes(const cJSON *list, struct tp_topology *t, char *err, size_t len)
{
	const cJSON *it;
	int i = 0;

	t->n_nodes = 0;
	cJSON_ArrayForEach(it, list) {
		const char *cpus = json_text(it, "cpus");
		struct tp_node *n;
		int id;

		if (t->n_nodes == TP_MAX_NODES)
			return djc_errf(-ENOSPC, err, len, NULL, "nodes: more than %d", TP_MAX_NODES);
		n = &t->nodes[t->n_nodes];
		memset(n, 0, sizeof(*n));
		if (json_node(it, "id", &id) != 0 || id < 0 || cpus == NULL ||
		    cpulist_parse(cpus, n) != 0)
			return djc_errf(-EINVAL, err, len, NULL, "nodes[%d]: needs \"id\" (>= 0) and "
					 "\"cpus\" (a list such as \"0-31,64-95\", CPUs below %d)",
					 i, TP_MAX_CPUS);
		n->id = id;
		t->n_nodes++;
		i++;
	}
	return 0;
}

static int load_devices(const cJSON *list, const char *what, struct tp_topology *t, char *err,
			size_t len)
{
	int is_gpu = strcmp(what, "gpus") == 0;
	const cJSON *it;
	int i = 0;

	if (is_gpu)
		t->n_gpus = 0;
	else
		t->n_ports = 0;
	cJSON_ArrayForEach(it, list) {
		const char *name = json_text(it, "name");
		int node, rc;

		if (name == NULL || name[0] == '\0' || strlen(name) >= TP_NAME_MAX ||
		    json_node(it, "node", &node) != 0)
			return djc_errf(-EINVAL, err, len, NULL, "%s[%d]: needs \"name\" (1 to %d "
					 "characters) and \"node\" (an integer, -1: unknown)", what,
					 i, TP_NAME_MAX - 1);
		rc = is_gpu ? tp_add_gpu(t, name, json_text(it, "pci"), node)
			    : tp_add_port(t, name, node);
		if (rc != 0)
			return djc_errf(rc, err, len, NULL, "%s: more than %d", what,
					 is_gpu ? TP_MAX_GPUS : TP_MAX_PORTS);
		if (is_gpu && node < 0)
			t->gpus[t->n_gpus - 1].node = -1; /* as written, not sysfs' reading */
		i++;
	}
	return 0;
}

static int load_lcores(const cJSON *list, struct tp_topology *t, char *err, size_t len)
{
	const cJSON *it;
	int i = 0;

	t->n_lcores = 0;
	cJSON_ArrayForEach(it, list) {
		int id, node;

		if (json_node(it, "id", &id) != 0 || id < 0 || json_node(it, "node", &node) != 0)
			return djc_errf(-EINVAL, err, len, NULL, "lcores[%d]: needs \"id\" (>= 0) and "
					 "\"node\"", i);
		if (tp_add_lcore(t, (unsigned int)id, node) != 0)
			return djc_errf(-ENOSPC, err, len, NULL, "lcores: more than %d", TP_MAX_LCORES);
		i++;
	}
	return 0;
}

/* Every CPU of the nodes but CPU 0, in CPU order. */
static void lcores_from_nodes(struct tp_topology *t)
{
	t->n_lcores = 0;
	for (unsigned int c = 1; c < TP_MAX_CPUS && t->n_lcores < TP_MAX_LCORES; c++) {
		int node = tp_cpu_node(t, c);

		if (node >= 0)
			tp_add_lcore(t, c, node);
	}
}

static int section(const cJSON *root, const char *key, const cJSON **out, char *err, size_t len)
{
	*out = cJSON_GetObjectItemCaseSensitive(root, key);
	if (*out != NULL && !cJSON_IsArray(*out))
		return djc_errf(-EINVAL, err, len, NULL, "\"%s\" must be an array", key);
	return 0;
}

int tp_load_json(const char *path, struct tp_topology *t, char *err, size_t errlen)
{
	const cJSON *nodes, *gpus, *ports, *lcores;
	char *text = NULL;
	cJSON *root;
	int rc = slurp(path, &text);

	if (rc != 0)
		return djc_errf(rc, err, errlen, NULL, "%s: %s", path, strerror(-rc));
	root = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return djc_errf(-EINVAL, err, errlen, NULL, "%s: not a JSON object", path);
	}
	rc = section(root, "nodes", &nodes, err, errlen);
	if (rc == 0)
		rc = section(root, "gpus", &gpus, err, errlen);
	if (rc == 0)
		rc = section(root, "ports", &ports, err, errlen);
	if (rc == 0)
		rc = section(root, "lcores", &lcores, err, errlen);
	if (rc == 0 && nodes != NULL)
		rc = load_nodes(nodes, t, err, errlen);
	if (rc == 0 && gpus != NULL)
		rc = load_devices(gpus, "gpus", t, err, errlen);
	if (rc == 0 && ports != NULL)
		rc = load_devices(ports, "ports", t, err, errlen);
	if (rc == 0 && lcores != NULL)
		rc = load_lcores(lcores, t, err, errlen);
	else if (rc == 0 && nodes != NULL)
		lcores_from_nodes(t);
	cJSON_Delete(root);
	if (rc == 0)
		snprintf(t->source, sizeof(t->source), "%.150s", path);
	return rc;
}

int tp_from_env(struct tp_topology *t, char *err, size_t errlen)
{
	const char *path = getenv("DJINN_TOPOLOGY");
	int rc;

	if (path == NULL || path[0] == '\0')
		return 0;
	rc = tp_load_json(path, t, err, errlen);
	return rc == 0 ? 1 : rc;
}

/* ---- the plan ---------------------------------------------------------- */

static void warn(struct tp_plan *p, const char *fmt, ...)
{
	va_list ap;

	if (p->n_warnings == TP_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(p->warnings[p->n_warnings++], TP_WARNING_MAX, fmt, ap);
	va_end(ap);
}

/* n lcores from t's, those on node first (in EAL order), then the rest. */
static void choose_lcores(const struct tp_topology *t, int node, struct tp_plan *p)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < t->n_lcores && p->n_chosen < p->n_queues; i++) {
			int local = node < 0 || t->lcores[i].node == node;

			if (local != (pass == 0))
				continue;
			p->lcores[p->n_chosen++] = t->lcores[i].id;
			p->n_local += local;
		}
}

/* "-l M,a,b" with a main lcore and n_queues workers all on node, from the
 * node's CPUs; "" where the node has too few. */
static void suggest(const struct tp_topology *t, int node, struct tp_plan *p)
{
	const struct tp_node *n = NULL;
	int want = p->n_queues + 1, used = 0;
	size_t off;

	for (int i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].id == node)
			n = &t->nodes[i];
	if (n == NULL || n->n_cpus < want)
		return;
	off = (size_t)snprintf(p->suggest_lcores, sizeof(p->suggest_lcores), "-l ");
	for (unsigned int c = 0; c < TP_MAX_CPUS && used < want; c++) {
		if (!cpu_isset(n, c))
			continue;
		off += (size_t)snprintf(p->suggest_lcores + off, sizeof(p->suggest_lcores) - off,
					"%s%u", used > 0 ? "," : "", c);
		used++;
		if (off >= sizeof(p->suggest_lcores)) {
			p->suggest_lcores[0] = '\0';
			return;
		}
	}
}

static void plan_gpus(const struct tp_topology *t, const char *const *gpus, int n_gpus,
		      struct tp_plan *p)
{
	const char *port_name = p->port >= 0 ? t->ports[p->port].name : NULL;

	for (int i = 0; i < n_gpus && i < TP_MAX_GPUS; i++) {
		const struct tp_gpu *g = tp_gpu_find(t, gpus[i]);

		snprintf(p->gpus[i].name, sizeof(p->gpus[i].name), "%s", gpus[i]);
		p->gpus[i].node = g != NULL ? g->node : -1;
		p->n_gpus++;
		if (p->gpus[i].node < 0) {
			if (t->n_nodes > 1)
				warn(p, "%s: NUMA node unknown on a machine of %d nodes: its staging "
				     "buffers may land on the other socket", gpus[i], t->n_nodes);
			continue;
		}
		p->gpus[i].crosses = p->port_node >= 0 && p->gpus[i].node != p->port_node;
		if (p->gpus[i].crosses && port_name != NULL)
			warn(p, "%s (node %d) and port %s (node %d) cross sockets: its receives read "
			     "mbufs and its sends fill staging memory across the interconnect",
			     gpus[i], p->gpus[i].node, port_name, p->port_node);
	}
}

int tp_plan_make(const struct tp_topology *t, int port, int n_queues, const char *const *gpus,
		 int n_gpus, struct tp_plan *p)
{
	if (t == NULL || p == NULL || port >= t->n_ports || n_gpus < 0 ||
	    (n_gpus > 0 && gpus == NULL) || (port >= 0 && (n_queues < 1 || n_queues > 16)))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->port = port;
	p->port_node = port >= 0 ? t->ports[port].node : -1;
	p->n_queues = port >= 0 ? n_queues : 0;
	if (port >= 0 && p->port_node < 0 && n_gpus > 0) {
		/* A virtual port (memif) has no node: serve the first GPU's. */
		const struct tp_gpu *g = tp_gpu_find(t, gpus[0]);

		p->port_node = g != NULL ? g->node : -1;
	}
	plan_gpus(t, gpus, n_gpus, p);
	if (port < 0)
		return 0;
	choose_lcores(t, p->port_node, p);
	if (p->n_chosen < p->n_queues)
		warn(p, "%d polling lcore(s) asked for, %d available", p->n_queues, p->n_chosen);
	if (p->port_node >= 0 && p->n_local < p->n_chosen) {
		suggest(t, p->port_node, p);
		warn(p, "%d of %d polling lcore(s) are off the port's node %d%s%s",
		     p->n_chosen - p->n_local, p->n_chosen, p->port_node,
		     p->suggest_lcores[0] != '\0' ? ": run with EAL " : "", p->suggest_lcores);
	}
	if (p->port_node < 0 && t->n_nodes > 1)
		warn(p, "port %s: NUMA node unknown on a machine of %d nodes", t->ports[port].name,
		     t->n_nodes);
	return 0;
}

int tp_stage_node(const struct tp_topology *t, const char *src, const char *dst)
{
	const struct tp_gpu *d = dst != NULL ? tp_gpu_find(t, dst) : NULL;
	const struct tp_gpu *s = src != NULL ? tp_gpu_find(t, src) : NULL;

	if (d != NULL && d->node >= 0)
		return d->node;
	return s != NULL ? s->node : -1;
}

/* ---- printout ------------------------------------------------------------- */

/* A node's CPUs as a compact list ("0-31,64-95"). */
static void cpulist_format(const struct tp_node *n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned int c = 0; c < TP_MAX_CPUS && off < len; c++) {
		unsigned int end = c;

		if (!cpu_isset(n, c))
			continue;
		while (end + 1 < TP_MAX_CPUS && cpu_isset(n, end + 1))
			end++;
		off += (size_t)snprintf(buf + off, len - off, off > 0 ? ",%u" : "%u", c);
		if (end > c && off < len)
			off += (size_t)snprintf(buf + off, len - off, "-%u", end);
		c = end;
	}
}

static void print_topology(const struct tp_topology *t, FILE *f)
{
	char cpus[256];

	fprintf(f, "topology: %d NUMA node(s) (%s)\n", t->n_nodes, t->source);
	for (int i = 0; i < t->n_nodes; i++) {
		int lcores = 0;

		for (int k = 0; k < t->n_lcores; k++)
			lcores += t->lcores[k].node == t->nodes[i].id;
		cpulist_format(&t->nodes[i], cpus, sizeof(cpus));
		fprintf(f, "  node %d: %d CPUs (%s), %d data-plane lcore(s)\n", t->nodes[i].id,
			t->nodes[i].n_cpus, cpus, lcores);
	}
	for (int i = 0; i < t->n_gpus; i++)
		fprintf(f, "  gpu %s (%s): node %d\n", t->gpus[i].name,
			t->gpus[i].pci[0] != '\0' ? t->gpus[i].pci : "pci unknown", t->gpus[i].node);
	for (int i = 0; i < t->n_ports; i++)
		fprintf(f, "  port %s: node %d\n", t->ports[i].name, t->ports[i].node);
}

static void print_plan(const struct tp_topology *t, const struct tp_plan *p, FILE *f)
{
	if (p->port >= 0) {
		fprintf(f, "placement: port %s: mempools and send staging on node %d; polling "
			"lcore(s)", t->ports[p->port].name, p->port_node);
		for (int i = 0; i < p->n_chosen; i++)
			fprintf(f, "%s%u", i == 0 ? " " : ",", p->lcores[i]);
		fprintf(f, " (%d on node %d)\n", p->n_local, p->port_node);
	}
	for (int i = 0; i < p->n_gpus; i++)
		fprintf(f, "placement: %s: staging buffers on node %d%s\n", p->gpus[i].name,
			p->gpus[i].node, p->gpus[i].crosses ? " (crosses the port's socket)" : "");
	for (int i = 0; i < p->n_warnings; i++)
		fprintf(f, "warning: %s\n", p->warnings[i]);
	if (p->n_warnings == 0)
		fprintf(f, "placement: no pairing crosses sockets\n");
}

void tp_print(const struct tp_topology *t, const struct tp_plan *plan, FILE *f)
{
	print_topology(t, f);
	if (plan != NULL)
		print_plan(t, plan, f);
}

/* ---- memory ---------------------------------------------------------------- */

void *tp_alloc_onnode(size_t bytes, int node)
{
	void *p;

	if (bytes == 0)
		return NULL;
	if (node >= 0 && numa_available() >= 0 && node <= numa_max_node())
		return numa_alloc_onnode(bytes, node);
	if (numa_available() >= 0)
		return numa_alloc_local(bytes);
	p = NULL;
	if (posix_memalign(&p, (size_t)sysconf(_SC_PAGESIZE), bytes) != 0)
		return NULL;
	return p;
}

void tp_free(void *ptr, size_t bytes)
{
	if (ptr == NULL)
		return;
	if (numa_available() >= 0)
		numa_free(ptr, bytes);
	else
		free(ptr);
}
