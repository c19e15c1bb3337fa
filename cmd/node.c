/* meshmap node: run a node. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "log.h"
#include "admin.h"
#include "node.h"
#include "psquery.h"

#define MAX_BOOTSTRAP 64

static void
node_usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap node --key FILE [options]\n"
	    "\n"
	    "Runs a node: listens, keeps its bootstrap connections, gossips its links\n"
	    "and builds the map of the network. Prints a status line every interval;\n"
	    "stops cleanly on SIGINT or SIGTERM.\n"
	    "\n"
	    "  -k, --key FILE          identity key (meshmap keygen)\n"
	    "  -l, --listen HOST:PORT  address to accept connections on (port 0: any;\n"
	    "                          default: do not accept)\n"
	    "  -b, --bootstrap HOST:PORT  a node to stay connected to (repeatable)\n"
	    "  -n, --network NAME      network name (default main)\n"
	    "  -d, --difficulty BITS   proof of work the network requires (default %d)\n"
	    "  -w, --workers N         worker threads (default: one per core)\n"
	    "      --backend NAME      TLS backend: openssl (default) or mbedtls\n"
	    "  -s, --status SECONDS    status line interval (default 10; 0: none)\n"
	    "      --refresh-ms MS     re-announce live links this often (default 600000)\n"
	    "      --ttl HOPS          how far our events travel (default 6; the map's\n"
	    "                          reach: set it above the network's diameter)\n"
	    "  -c, --config FILE       settings, one 'name = value' per line, names as\n"
	    "                          the long options (flags after it override it)\n"
	    "      --max-conns-per-ip N  connections from one IP address (default 8;\n"
	    "                          raise it for many nodes on one host)\n"
	    "      --degree N          links the node aims for (default 12)\n"
	    "      --max-degree N      links it may hold while replacing (default 16)\n"
	    "      --select-ms MS      neighbour selection round (default 2000; 0: off,\n"
	    "                          keep only the bootstrap and inbound links)\n"
	    "      --min-link-ms MS    a link is never dropped younger (default 10000)\n"
	    "      --confirm-timeout S one-sided links and dead peers leave the map\n"
	    "                          after this (default 60)\n"
	    "      --snapshot FILE     keep known addresses and bans here across restarts\n"
	    "                          (loaded at start, saved every 5 min and at stop)\n"
	    "      --advertise HOST:PORT  where others can dial us (sent in connection\n"
	    "                          introductions; default: the --listen address\n"
	    "                          unless it is 0.0.0.0 or ::)\n"
	    "      --admin HOST:PORT   serve /health, /metrics, /peers, /map there (HTTP;\n"
	    "                          keep it on 127.0.0.1); meshmap ctl is its client\n"
	    "      --direct-rate N     direct and broadcast frames a link may send a\n"
	    "                          second, and in one burst (default 200000)\n"
	    "      --relay             relay/bootstrap mode: inbound links do not count\n"
	    "                          towards --degree and are kept (up to --max-inbound)\n"
	    "      --max-inbound N     inbound links in relay mode (default 16;\n"
	    "                          --max-degree + N <= 32)\n"
	    "      --ae-ms MS          anti-entropy round: a digest to one neighbour\n"
	    "                          (default 60000; 0: off)\n"
	    "      --px-ms MS          ask a random neighbour for addresses this often\n"
	    "                          (default 30000; 0: only when a link comes up)\n"
	    "\n"
	    "example: meshmap node --key node.key --listen 0.0.0.0:7946 \\\n"
	    "             --bootstrap seed.example.net:7946\n",
	    MM_POW_DEFAULT);
}


static void
print_status(mm_node_t *node, mm_psq_t *q, double t)
{
	const mm_ps_t *ps = mm_node_map(node);
	mm_ps_stats_t s;
	mm_ps_graph_t g;
	mm_node_stats_t ns;
	mm_ps_stats(ps, &s);
	mm_node_stats(node, &ns);
	if (mm_ps_analyse(ps, q, 0, &g) != 0)
		memset(&g, 0, sizeof(g));
	/* The digests as signed 64-bit numbers: shell arithmetic adds them
	 * modulo 2^64 (localnet checks sum(links) == 2 x map). */
	int64_t md = (int64_t)mm_ps_edges_digest(ps, NULL);
	printf("status t=%.1fs peers=%u map_records=%u claims=%llu "
	    "confirmed_edges=%llu components=%u largest=%u events_in=%llu "
	    "events_bad=%llu dropped=%llu dials=%llu bans=%llu kicks=%llu "
	    "addresses=%llu refused_full=%llu links_digest=%lld map_digest=%lld\n",
	    t, mm_node_peers(node),
	    s.records, (unsigned long long)s.claims, (unsigned long long)g.edges,
	    g.components, g.largest, (unsigned long long)ns.events_in,
	    (unsigned long long)ns.events_bad, (unsigned long long)ns.frames_dropped,
	    (unsigned long long)ns.dials, (unsigned long long)ns.bans,
	    (unsigned long long)ns.kicks, (unsigned long long)ns.addr_known,
	    (unsigned long long)ns.refused_full, (long long)(int64_t)ns.links_digest,
	    (long long)md);
	fflush(stdout);
}

struct node_opts {
	const char *key, *listen_at, *network, *snapshot, *advertise, *admin;
	const char *boots[MAX_BOOTSTRAP];
	unsigned nboot;
	unsigned long difficulty, workers, status, refresh, per_ip, ttl;
	unsigned long degree, max_degree, select_ms, min_link_ms, confirm_s, px_ms, ae_ms;
	unsigned long max_inbound, direct_rate;
	int relay;
	mm_tls_backend_t backend;
};

static const struct option node_longopts[] = {
    {"key", required_argument, NULL, 'k'},
    {"listen", required_argument, NULL, 'l'},
    {"bootstrap", required_argument, NULL, 'b'},
    {"network", required_argument, NULL, 'n'},
    {"difficulty", required_argument, NULL, 'd'},
    {"workers", required_argument, NULL, 'w'},
    {"backend", required_argument, NULL, 'B'},
    {"status", required_argument, NULL, 's'},
    {"refresh-ms", required_argument, NULL, 'r'},
    {"max-conns-per-ip", required_argument, NULL, 'P'},
    {"ttl", required_argument, NULL, 'T'},
    {"config", required_argument, NULL, 'c'},
    {"degree", required_argument, NULL, 'D'},
    {"max-degree", required_argument, NULL, 'M'},
    {"select-ms", required_argument, NULL, 'S'},
    {"min-link-ms", required_argument, NULL, 'L'},
    {"confirm-timeout", required_argument, NULL, 'C'},
    {"px-ms", required_argument, NULL, 'X'},
    {"snapshot", required_argument, NULL, 'Z'},
    {"ae-ms", required_argument, NULL, 'A'},
    {"relay", no_argument, NULL, 'R'},
    {"advertise", required_argument, NULL, 'V'},
    {"direct-rate", required_argument, NULL, 'Q'},
    {"admin", required_argument, NULL, 'H'},
    {"max-inbound", required_argument, NULL, 'I'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* One setting, from a flag or a config line: NULL, or what is wrong. */
static const char *
set_opt(struct node_opts *o, int c, const char *v)
{
	switch (c) {
	case 'k': o->key = v; return NULL;
	case 'l': o->listen_at = v; return NULL;
	case 'b':
		if (o->nboot == MAX_BOOTSTRAP)
			return "--bootstrap: at most 64";
		o->boots[o->nboot++] = v;
		return NULL;
	case 'n':
		o->network = v;
		return strlen(v) == 0 || strlen(v) > 32 ? "--network: 1 to 32 bytes" : NULL;
	case 'd':
		return mm_cmd_parse_uint(v, 0, MM_POW_MAX, &o->difficulty) != 0 ?
		    "--difficulty: a whole number in [0, 40]" : NULL;
	case 'w':
		return mm_cmd_parse_uint(v, 1, 256, &o->workers) != 0 ?
		    "--workers: a whole number in [1, 256]" : NULL;
	case 'B':
		if (strcmp(v, "openssl") == 0)
			o->backend = MM_TLS_OPENSSL;
		else if (strcmp(v, "mbedtls") == 0)
			o->backend = MM_TLS_MBEDTLS;
		else
			return "--backend: openssl or mbedtls";
		return NULL;
	case 's':
		return mm_cmd_parse_uint(v, 0, 86400, &o->status) != 0 ?
		    "--status: seconds in [0, 86400]" : NULL;
	case 'r':
		return mm_cmd_parse_uint(v, 10, 86400000, &o->refresh) != 0 ?
		    "--refresh-ms: milliseconds in [10, 86400000]" : NULL;
	case 'P':
		return mm_cmd_parse_uint(v, 1, 65536, &o->per_ip) != 0 ?
		    "--max-conns-per-ip: a whole number in [1, 65536]" : NULL;
	case 'T':
		return mm_cmd_parse_uint(v, 1, 255, &o->ttl) != 0 ?
		    "--ttl: hops in [1, 255]" : NULL;
	case 'D':
		return mm_cmd_parse_uint(v, 1, MM_PS_MAX_NB, &o->degree) != 0 ?
		    "--degree: links in [1, 32]" : NULL;
	case 'M':
		return mm_cmd_parse_uint(v, 1, MM_PS_MAX_NB, &o->max_degree) != 0 ?
		    "--max-degree: links in [1, 32]" : NULL;
	case 'S':
		return mm_cmd_parse_uint(v, 0, 3600000, &o->select_ms) != 0 ?
		    "--select-ms: milliseconds in [0, 3600000] (0: no selection)" : NULL;
	case 'L':
		return mm_cmd_parse_uint(v, 0, 86400000, &o->min_link_ms) != 0 ?
		    "--min-link-ms: milliseconds in [0, 86400000]" : NULL;
	case 'R': /* a flag; in a config file: relay = yes | no */
		if (v == NULL || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0 ||
		    strcmp(v, "true") == 0)
			o->relay = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "0") == 0 ||
		    strcmp(v, "false") == 0)
			o->relay = 0;
		else
			return "relay: yes or no";
		return NULL;
	case 'I':
		return mm_cmd_parse_uint(v, 0, MM_PS_MAX_NB, &o->max_inbound) != 0 ?
		    "--max-inbound: links in [0, 32]" : NULL;
	case 'A':
		return mm_cmd_parse_uint(v, 0, 86400000, &o->ae_ms) != 0 ?
		    "--ae-ms: milliseconds in [0, 86400000] (0: no anti-entropy)" : NULL;
	case 'H':
		o->admin = v;
		return NULL;
	case 'Q':
		return mm_cmd_parse_uint(v, 1, 100000000, &o->direct_rate) != 0 ?
		    "--direct-rate: messages a second in [1, 100000000]" : NULL;
	case 'V':
		o->advertise = v;
		return NULL;
	case 'Z':
		o->snapshot = v;
		return strlen(v) == 0 ? "--snapshot: a file path" : NULL;
	case 'X':
		return mm_cmd_parse_uint(v, 0, 86400000, &o->px_ms) != 0 ?
		    "--px-ms: milliseconds in [0, 86400000] (0: only on new links)" : NULL;
	case 'C':
		return mm_cmd_parse_uint(v, 1, 86400, &o->confirm_s) != 0 ?
		    "--confirm-timeout: seconds in [1, 86400]" : NULL;
	default:
		return "unknown option";
	}
}

/* The config file: one "name = value" per line, names as the long flags
 * (bootstrap repeatable), '#' starts a comment. Values point into a
 * static buffer, so they live as long as the flags do; one file per run. */
static char config_buf[65536];

static int
read_config(struct node_opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "meshmap node: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(config_buf, 1, sizeof(config_buf) - 1, f);
	int toolong = !feof(f);
	fclose(f);
	if (toolong) {
		fprintf(stderr, "meshmap node: %s: larger than %zu bytes\n", path,
		    sizeof(config_buf) - 1);
		return -1;
	}
	config_buf[n] = '\0';
	if (memchr(config_buf, '\0', n) != NULL) {
		fprintf(stderr, "meshmap node: %s: not a text file (NUL byte)\n", path);
		return -1;
	}
	unsigned lineno = 0;
	for (char *line = config_buf, *next; line != NULL; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *name = line + strspn(line, " \t\r");
		char *end = name + strlen(name);
		while (end > name && strchr(" \t\r", end[-1]) != NULL)
			*--end = '\0';
		if (*name == '\0')
			continue;
		char *eq = strchr(name, '=');
		if (eq == NULL) {
			fprintf(stderr, "meshmap node: %s:%u: expected 'name = value', "
			    "got '%s'\n", path, lineno, name);
			return -1;
		}
		char *val = eq + 1 + strspn(eq + 1, " \t");
		do
			*eq = '\0';
		while (eq > name && strchr(" \t", *--eq) != NULL);
		const struct option *opt = node_longopts;
		while (opt->name != NULL && (strcmp(opt->name, name) != 0 ||
		    opt->val == 'c' || opt->val == 'h'))
			opt++;
		if (opt->name == NULL) {
			fprintf(stderr, "meshmap node: %s:%u: unknown setting '%s'\n",
			    path, lineno, name);
			return -1;
		}
		const char *bad = set_opt(o, opt->val, val);
		if (bad != NULL) {
			fprintf(stderr, "meshmap node: %s:%u: %s (got '%s')\n", path,
			    lineno, bad, val);
			return -1;
		}
	}
	return 0;
}

int
mm_cmd_node(int argc, char **argv)
{
	struct node_opts o = {.network = "main", .difficulty = MM_POW_DEFAULT,
	    .status = 10, .refresh = 600000, .per_ip = 8, .ttl = 6,
	    .degree = 12, .max_degree = 16, .select_ms = 2000, .min_link_ms = 10000,
	    .confirm_s = 60, .px_ms = 30000, .ae_ms = 60000, .max_inbound = 16, .direct_rate = 200000, .backend = MM_TLS_OPENSSL};
	int c, configs = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "k:l:b:n:d:w:s:c:h", node_longopts,
	    NULL)) != -1) {
		if (c == 'h') {
			node_usage(stdout);
			return MM_EXIT_OK;
		}
		if (c == '?' || c == ':') {
			node_usage(stderr);
			return MM_EXIT_USAGE;
		}
		if (c == 'c') {
			/* Settings apply in order: flags after --config override it. */
			if (configs++ != 0) {
				fprintf(stderr, "meshmap node: --config: at most one file\n");
				return MM_EXIT_USAGE;
			}
			if (read_config(&o, optarg) != 0)
				return MM_EXIT_USAGE;
			continue;
		}
		const char *bad = set_opt(&o, c, optarg);
		if (bad != NULL) {
			fprintf(stderr, "meshmap node: %s (got '%s')\n", bad, optarg);
			return MM_EXIT_USAGE;
		}
	}
	const char *key = o.key, *listen_at = o.listen_at, *network = o.network;
	const char **boots = o.boots;
	unsigned nboot = o.nboot;
	unsigned long difficulty = o.difficulty, workers = o.workers,
	    status = o.status, refresh = o.refresh, per_ip = o.per_ip, ttl = o.ttl;
	mm_tls_backend_t backend = o.backend;
	if (o.max_degree < o.degree) {
		fprintf(stderr, "meshmap node: --max-degree (%lu) is below --degree "
		    "(%lu)\n", o.max_degree, o.degree);
		return MM_EXIT_USAGE;
	}
	if (optind != argc || key == NULL) {
		fprintf(stderr, "meshmap node: %s\n", key == NULL ?
		    "--key FILE is required (create one with meshmap keygen)" :
		    "unexpected argument");
		return MM_EXIT_USAGE;
	}
	struct sockaddr_storage ba[MAX_BOOTSTRAP];
	socklen_t bl[MAX_BOOTSTRAP];
	char listen_host[INET6_ADDRSTRLEN] = "";
	uint16_t listen_port = 0;
	if (listen_at != NULL && mm_parse_listen(listen_at, listen_host, &listen_port) != 0) {
		fprintf(stderr, "meshmap node: --listen: '%s' is not HOST:PORT\n", listen_at);
		return MM_EXIT_USAGE;
	}
	for (unsigned i = 0; i < nboot; i++)
		if (mm_parse_hostport(boots[i], &ba[i], &bl[i], 0) != 0) {
			fprintf(stderr, "meshmap node: --bootstrap: '%s' is not a "
			    "reachable HOST:PORT\n", boots[i]);
			return MM_EXIT_USAGE;
		}

	char err[512];
	mm_identity_t id;
	if (mm_id_load(&id, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "meshmap node: %s\n", err);
		return MM_EXIT_FAIL;
	}
	if (!mm_pow_ok(id.pub, id.nonce, (unsigned)difficulty)) {
		fprintf(stderr, "meshmap node: %s: proof of work has %u bits, the "
		    "network requires %lu\n", key, mm_pow_bits(id.pub, id.nonce),
		    difficulty);
		mm_id_free(&id);
		return MM_EXIT_FAIL;
	}

	/* Signals are taken by this thread only (the workers block them). */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = (unsigned)workers;
	mm_rt_t *rt;
	int e = mm_rt_create(&rc, &rt);
	if (e != 0) {
		fprintf(stderr, "meshmap node: runtime: %s\n", strerror(-e));
		mm_id_free(&id);
		return MM_EXIT_FAIL;
	}
	mm_node_config_t nc;
	mm_node_config_default(&nc);
	nc.net.id = &id;
	nc.net.network = network;
	nc.net.difficulty = (unsigned)difficulty;
	nc.net.backend = backend;
	nc.gossip.difficulty = (unsigned)difficulty;
	nc.refresh_ms = (uint32_t)refresh;
	nc.net.max_conns_per_ip = (uint32_t)per_ip;
	nc.gossip.ttl = (uint8_t)ttl;
	nc.degree = (unsigned)o.degree;
	nc.max_degree = (unsigned)o.max_degree;
	nc.map.confirm_timeout_s = (uint32_t)o.confirm_s;
	nc.select_ms = (uint32_t)o.select_ms;
	nc.min_link_ms = (uint32_t)o.min_link_ms;
	nc.px_ms = (uint32_t)o.px_ms;
	nc.snapshot_path = o.snapshot;
	nc.ae_ms = (uint32_t)o.ae_ms;
	nc.relay = o.relay;
	nc.direct_rate = nc.direct_burst = (uint32_t)o.direct_rate;
	nc.max_inbound = (unsigned)o.max_inbound;
	mm_node_t *node = NULL;
	mm_admin_t *admin = NULL;
	int rc_exit = MM_EXIT_OK;
	if (mm_node_create(rt, &nc, &node, err, sizeof(err)) != 0) {
		fprintf(stderr, "meshmap node: %s\n", err);
		rc_exit = MM_EXIT_FAIL;
		goto out;
	}
	char hex[65];
	mm_hex(id.id, 32, hex);
	printf("node %s network %s difficulty %lu\n", hex, network, difficulty);
	if (listen_at != NULL) {
		uint16_t bound = 0;
		e = mm_node_listen(node, listen_host, listen_port, &bound);
		if (e != 0) {
			fprintf(stderr, "meshmap node: --listen %s: %s\n", listen_at,
			    strerror(-e));
			rc_exit = MM_EXIT_FAIL;
			goto out;
		}
		printf("listening on %s:%u\n", listen_host, bound);
	}
	if (o.advertise != NULL) {
		struct sockaddr_storage aa;
		socklen_t al;
		if (mm_parse_hostport(o.advertise, &aa, &al, 0) != 0 ||
		    mm_node_advertise(node, (struct sockaddr *)&aa) != 0) {
			fprintf(stderr, "meshmap node: --advertise: '%s' is not a HOST:PORT "
			    "with a port\n", o.advertise);
			rc_exit = MM_EXIT_USAGE;
			goto out;
		}
	}
	if (o.admin != NULL) {
		char host[INET6_ADDRSTRLEN] = "";
		uint16_t aport = 0, bound = 0;
		if (mm_parse_listen(o.admin, host, &aport) != 0) {
			fprintf(stderr, "meshmap node: --admin: '%s' is not HOST:PORT\n", o.admin);
			rc_exit = MM_EXIT_USAGE;
			goto out;
		}
		e = mm_admin_start(node, host, aport, &bound, &admin);
		if (e != 0) {
			fprintf(stderr, "meshmap node: --admin %s: %s\n", o.admin, strerror(-e));
			rc_exit = MM_EXIT_FAIL;
			goto out;
		}
		printf("admin on %s:%u\n", host, bound);
	}
	for (unsigned i = 0; i < nboot; i++)
		mm_node_bootstrap(node, (struct sockaddr *)&ba[i], bl[i]);
	fflush(stdout);

	mm_psq_t *q = mm_psq_new();
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec wait = {status ? (time_t)status : 3600, 0};
		int sig = sigtimedwait(&sigs, NULL, &wait);
		clock_gettime(CLOCK_MONOTONIC, &now);
		double t = (double)(now.tv_sec - t0.tv_sec) +
		    (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
		if (sig > 0) {
			printf("stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
			print_status(node, q, t);
			break;
		}
		if (status)
			print_status(node, q, t);
	}
	mm_psq_free(q);
out:
	mm_admin_stop(admin);
	mm_rt_stop(rt);
	mm_node_destroy(node);
	mm_rt_destroy(rt);
	mm_id_free(&id);
	return rc_exit;
}
