/*
 * meshmap-sim (run as `meshmap sim`): thousands of nodes of the real logic
 * (actors/node.c and everything under it, unchanged) in one process, on the
 * simulated runtime (runtime/mm_sim.h) and simulated links (net/simnet.h),
 * from one seed. docs/RESULTS-SIM.md has the commands and the results.
 *
 * A scenario: `--bootstrap` nodes start at time 0, the others join one
 * every `--join-ms`, each given one bootstrap address (picked by the seed);
 * the run goes on `--duration` seconds after the last join. Faults at a time
 * after the last join: `--kill FRAC@S` (a random FRAC of the nodes crash at
 * once, or go silent with --kill-silent) and `--partition S1:S2` (two halves
 * cut apart from S1 to S2). Churn (`--churn MEAN[:SHAPE]`): every honest
 * node but the bootstraps (and the victims of an attack) leaves after a
 * session drawn from a Weibull law of that mean (shape 1: exponential) and
 * comes back after an offline time drawn from an exponential law of mean
 * `--offline`, with the same identity and an empty map, through one
 * bootstrap (a node restarted without its snapshot); a leave is a process
 * exit: its peers see the connections close. `--topology line|ring|star` instead builds
 * exactly that graph (no neighbour selection, no bootstrap): the known
 * answers of the tests.
 *
 * Every `--sample-ms` one CSV row: the true links (both ends ready), the
 * discovery of the observers (the fraction of the true links each one's
 * map holds confirmed, and how many hold exactly the true map), gossip
 * frames and bytes per node per second, map memory per node, the true
 * graph's largest component and degrees, and how many observers' own
 * analyses report a split. Only simulated quantities go to the CSV, so the
 * same seed gives the same file byte for byte; wall time goes to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "log.h"
#include "mm_sim.h"
#include "node.h"
#include "psquery.h"
#include "selector.h"
#include "simnet.h"

enum { TOPO_MESH = 0, TOPO_LINE, TOPO_RING, TOPO_STAR };

struct opts {
	unsigned nodes, bootstrap, degree, difficulty, observers, topology;
	uint64_t seed, join_ms, duration_ms, sample_ms, announce_ms, eager, ihave_ms, sync_events,
	    sync_max;
	double kill_frac;
	uint64_t kill_at_ms;
	int kill_silent, kill_region, policy;
	uint64_t part_on_ms, part_off_ms;
	double attack_frac;
	uint64_t attack_at_ms;
	unsigned attackers, victims;
	int attack_lone;
	int young_inbound;
	double churn_mean_s, churn_shape, offline_mean_s;
	mm_simnet_config_t net;
	const char *csv, *inexact;
	int quiet;
};

struct snode {
	mm_node_t *node;
	mm_identity_t id;
	bool up, attacker, victim;
	uint64_t frames_in, bytes_in, events_in;
	/* churn: when the node leaves (up) or comes back (down); NEVER: not */
	uint64_t leave_at, back_at;
};
#define NEVER UINT64_MAX

static struct snode *S;
static mm_psq_t *QCTX; /* the map queries' scratch, shared by every node (node.h) */
static struct opts O;
static unsigned NT; /* hosts in all: the nodes, then the attackers */
static bool PARTED; /* the partition is on: a node that starts takes its zone */
/* churn: leaves and returns since the last sample, and in all */
static unsigned CH_LEFT, CH_BACK;
static uint64_t CH_LEFT_ALL, CH_BACK_ALL;
/* --inexact: where the maps that are not exact differ from the truth */
static FILE *INX;
static uint64_t INX_T;

static double
now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap sim [options]\n"
	    "\n"
	    "Runs N nodes of the real node logic in one process on a virtual clock,\n"
	    "deterministically from one seed, and writes one CSV row of measures per\n"
	    "sample.\n"
	    "\n"
	    "scenario:\n"
	    "  --nodes N            nodes in all (default 100, at most 100000)\n"
	    "  --seed S             everything derives from it (default 1)\n"
	    "  --bootstrap K        nodes up at time 0; each later node is given one\n"
	    "                       of their addresses (default 1)\n"
	    "  --join-ms MS         one join every MS (default 100)\n"
	    "  --duration S         seconds simulated after the last join (default 120)\n"
	    "  --degree D           the nodes' target degree (default 12)\n"
	    "  --difficulty BITS    proof of work of identities and events (default 8)\n"
	    "  --topology T         mesh (default: joins and neighbour selection), or\n"
	    "                       line, ring, star: exactly those links, no selection\n"
	    "  --announce-ms MS     the nodes' own-event throttle (default 500; 0: off)\n"
	    "  --eager E            lazy push: relayed events go whole to E links\n"
	    "                       at random, the rest get an ihave (default 4;\n"
	    "                       0: whole to every link, a pure flood)\n"
	    "  --ihave-ms MS        ihave batches wait at most MS (default 100)\n"
	    "  --sync-events N      the join sync log's frames per node (default 2048)\n"
	    "  --sync-events-max N  ... growing up to N while more origins are active\n"
	    "                       than it holds (default 4096)\n"
	    "  --policy P           neighbour selection: overlap (default, ours), random\n"
	    "                       (random regular) or kademlia (XOR buckets)\n"
	    "  --young-inbound      every node at its target refuses an inbound link\n"
	    "                       while another is younger than min_link_ms (10 s)\n"
	    "faults (S: seconds after the last join):\n"
	    "  --kill FRAC@S        FRAC (0..1) of the nodes, picked by the seed, crash\n"
	    "  --kill-silent        ... their hosts go silent instead (peers notice at\n"
	    "                       their idle timeout, not at once)\n"
	    "  --kill-region        ... a region: a node picked by the seed and its\n"
	    "                       nearest nodes in the true graph (breadth first)\n"
	    "  --partition S1:S2    two halves cannot reach each other from S1 to S2\n"
	    "  --attack FRAC@S      FRAC x N attacker identities (proof of work paid)\n"
	    "                       join at once and try to eclipse the victims: they\n"
	    "                       run the node logic, dial every victim and never\n"
	    "                       drop it, accept and dial nobody else but each\n"
	    "                       other, so they fill the maps with their cluster\n"
	    "  --victims K          honest nodes attacked, picked by the seed (default 1)\n"
	    "  --attack-lone        the attackers do not link to each other either (no\n"
	    "                       cluster: each looks like a fresh leaf)\n"
	    "  --churn MEAN[:SHAPE] every honest node but the bootstraps and victims\n"
	    "                       leaves after a session of MEAN seconds on average\n"
	    "                       (Weibull of that SHAPE; default 1, exponential;\n"
	    "                       below 1, a heavy tail), counted from its start\n"
	    "  --offline MEAN       ... and comes back after MEAN seconds on average\n"
	    "                       (exponential; default 60; 0: never), same identity,\n"
	    "                       empty map, through a bootstrap\n"
	    "links:\n"
	    "  --latency MIN-MAX    one-way latency per link, ms (default 10-100)\n"
	    "  --jitter MS          per segment (default 0)\n"
	    "  --loss P             per segment, retransmitted as TCP would (default 0)\n"
	    "  --bandwidth B        bytes/s per link direction (default unlimited)\n"
	    "output:\n"
	    "  --sample-ms MS       one CSV row every MS of simulated time (default 5000)\n"
	    "  --observers K        nodes whose maps are measured (default all up to\n"
	    "                       1000 nodes, else 200, spread evenly)\n"
	    "  --csv FILE           the CSV (default: standard output)\n"
	    "  --inexact FILE       at each sample, for each observer whose map is\n"
	    "                       not exact: the true links it lacks (at most 16),\n"
	    "                       with both ends' records in its map against\n"
	    "                       their own (sequence numbers, claims)\n"
	    "  --quiet              no progress line\n"
	    "\n"
	    "exit codes: 0 done, 1 failure, 2 bad command line\n");
}

static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* FRAC@SECONDS, FRAC in (0, 1), or (0, 1] with one_ok. */
static int
parse_frac_at(const char *s, int one_ok, double *frac, uint64_t *at_ms)
{
	char *at = strchr(s, '@'), *end;
	double f = strtod(s, &end);
	uint64_t v;
	if (at == NULL || end != at || !(f > 0 && (f < 1 || (one_ok && f == 1))) ||
	    parse_u64(at + 1, 0, 864000, &v) != 0)
		return -1;
	*frac = f;
	*at_ms = v * 1000;
	return 0;
}

static int
bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "meshmap sim: %s '%s': %s\n", opt, val, want);
	return -1;
}

static int
parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{"nodes", 1, 0, 'n'}, {"seed", 1, 0, 's'}, {"bootstrap", 1, 0, 'b'},
		{"join-ms", 1, 0, 'j'}, {"duration", 1, 0, 'd'}, {"degree", 1, 0, 'D'},
		{"difficulty", 1, 0, 'p'}, {"topology", 1, 0, 't'}, {"kill", 1, 0, 'k'},
		{"kill-silent", 0, 0, 'K'}, {"partition", 1, 0, 'P'},
		{"latency", 1, 0, 'l'}, {"jitter", 1, 0, 'J'}, {"loss", 1, 0, 'L'},
		{"bandwidth", 1, 0, 'B'}, {"sample-ms", 1, 0, 'S'},
		{"observers", 1, 0, 'o'}, {"csv", 1, 0, 'c'}, {"quiet", 0, 0, 'q'},
		{"announce-ms", 1, 0, 'a'}, {"policy", 1, 0, 'y'}, {"kill-region", 0, 0, 'R'},
		{"attack", 1, 0, 'A'}, {"victims", 1, 0, 'V'}, {"attack-lone", 0, 0, 'Z'},
		{"eager", 1, 0, 'E'}, {"ihave-ms", 1, 0, 'I'}, {"sync-events", 1, 0, 'Y'},
		{"sync-events-max", 1, 0, 'X'}, {"young-inbound", 0, 0, 'G'},
		{"churn", 1, 0, 'C'}, {"offline", 1, 0, 'F'}, {"inexact", 1, 0, 'W'},
		{"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	memset(&O, 0, sizeof(O));
	O.nodes = 100;
	O.seed = 1;
	O.bootstrap = 1;
	O.join_ms = 100;
	O.duration_ms = 120000;
	O.degree = 12;
	O.difficulty = 8;
	O.sample_ms = 5000;
	O.announce_ms = 500;
	O.victims = 1;
	O.churn_shape = 1;
	O.offline_mean_s = 60;
	mm_node_config_t dc;
	mm_node_config_default(&dc);
	O.eager = dc.gossip_eager;
	O.ihave_ms = dc.ihave_ms;
	O.sync_events = dc.sync_events;
	O.sync_max = dc.sync_events_max;
	mm_simnet_config_default(&O.net);
	int c;
	uint64_t v;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		const char *a = optarg;
		switch (c) {
		case 'n':
			if (parse_u64(a, 2, 100000, &v) != 0)
				return bad("--nodes", a, "a count in [2, 100000]");
			O.nodes = (unsigned)v;
			break;
		case 's':
			if (parse_u64(a, 0, UINT64_MAX, &O.seed) != 0)
				return bad("--seed", a, "an unsigned integer");
			break;
		case 'b':
			if (parse_u64(a, 1, 64, &v) != 0)
				return bad("--bootstrap", a, "a count in [1, 64]");
			O.bootstrap = (unsigned)v;
			break;
		case 'j':
			if (parse_u64(a, 0, 3600000, &O.join_ms) != 0)
				return bad("--join-ms", a, "milliseconds in [0, 3600000]");
			break;
		case 'd':
			if (parse_u64(a, 1, 864000, &v) != 0)
				return bad("--duration", a, "seconds in [1, 864000]");
			O.duration_ms = v * 1000;
			break;
		case 'D':
			if (parse_u64(a, 1, 16, &v) != 0)
				return bad("--degree", a, "a degree in [1, 16]");
			O.degree = (unsigned)v;
			break;
		case 'p':
			if (parse_u64(a, 0, 24, &v) != 0)
				return bad("--difficulty", a, "bits in [0, 24]");
			O.difficulty = (unsigned)v;
			break;
		case 't':
			if (strcmp(a, "mesh") == 0)
				O.topology = TOPO_MESH;
			else if (strcmp(a, "line") == 0)
				O.topology = TOPO_LINE;
			else if (strcmp(a, "ring") == 0)
				O.topology = TOPO_RING;
			else if (strcmp(a, "star") == 0)
				O.topology = TOPO_STAR;
			else
				return bad("--topology", a, "mesh, line, ring or star");
			break;
		case 'k':
			if (parse_frac_at(a, 0, &O.kill_frac, &O.kill_at_ms) != 0)
				return bad("--kill", a, "FRAC@SECONDS, FRAC in (0, 1)");
			break;
		case 'K':
			O.kill_silent = 1;
			break;
		case 'A':
			if (parse_frac_at(a, 1, &O.attack_frac, &O.attack_at_ms) != 0)
				return bad("--attack", a, "FRAC@SECONDS, FRAC in (0, 1]");
			break;
		case 'V':
			if (parse_u64(a, 1, 16, &v) != 0)
				return bad("--victims", a, "a count in [1, 16]");
			O.victims = (unsigned)v;
			break;
		case 'Z':
			O.attack_lone = 1;
			break;
		case 'G':
			O.young_inbound = 1;
			break;
		case 'R':
			O.kill_region = 1;
			break;
		case 'y':
			if (strcmp(a, "overlap") == 0)
				O.policy = MM_SEL_OVERLAP;
			else if (strcmp(a, "random") == 0)
				O.policy = MM_SEL_RANDOM;
			else if (strcmp(a, "kademlia") == 0)
				O.policy = MM_SEL_KADEMLIA;
			else
				return bad("--policy", a, "overlap, random or kademlia");
			break;
		case 'P': {
			unsigned long s1, s2;
			char tail;
			if (sscanf(a, "%lu:%lu%c", &s1, &s2, &tail) != 2 || s2 <= s1 ||
			    s2 > 864000)
				return bad("--partition", a, "S1:S2 seconds, S1 < S2");
			O.part_on_ms = s1 * 1000;
			O.part_off_ms = s2 * 1000;
			break;
		}
		case 'l': {
			unsigned long x, y;
			char tail;
			if (sscanf(a, "%lu-%lu%c", &x, &y, &tail) != 2 || x > y || y > 60000)
				return bad("--latency", a, "MIN-MAX milliseconds, MIN <= MAX <= 60000");
			O.net.lat_min_ms = (uint32_t)x;
			O.net.lat_max_ms = (uint32_t)y;
			break;
		}
		case 'J':
			if (parse_u64(a, 0, 60000, &v) != 0)
				return bad("--jitter", a, "milliseconds in [0, 60000]");
			O.net.jitter_ms = (uint32_t)v;
			break;
		case 'L': {
			char *end;
			double p = strtod(a, &end);
			if (*a == '\0' || *end != '\0' || !(p >= 0 && p <= 0.9))
				return bad("--loss", a, "a probability in [0, 0.9]");
			O.net.loss = p;
			break;
		}
		case 'B':
			if (parse_u64(a, 1000, UINT64_MAX, &O.net.bandwidth) != 0)
				return bad("--bandwidth", a, "bytes a second, at least 1000");
			break;
		case 'S':
			if (parse_u64(a, 100, 3600000, &O.sample_ms) != 0)
				return bad("--sample-ms", a, "milliseconds in [100, 3600000]");
			break;
		case 'o':
			if (parse_u64(a, 1, 100000, &v) != 0)
				return bad("--observers", a, "a count in [1, 100000]");
			O.observers = (unsigned)v;
			break;
		case 'a':
			if (parse_u64(a, 0, 60000, &O.announce_ms) != 0)
				return bad("--announce-ms", a, "milliseconds in [0, 60000]");
			break;
		case 'E':
			if (parse_u64(a, 0, 32, &O.eager) != 0)
				return bad("--eager", a, "a count of links in [0, 32]");
			break;
		case 'I':
			if (parse_u64(a, 1, 10000, &O.ihave_ms) != 0)
				return bad("--ihave-ms", a, "milliseconds in [1, 10000]");
			break;
		case 'Y':
			if (parse_u64(a, 1, 1u << 20, &O.sync_events) != 0)
				return bad("--sync-events", a, "a count of frames in [1, 1048576]");
			break;
		case 'X':
			if (parse_u64(a, 1, 1u << 20, &O.sync_max) != 0)
				return bad("--sync-events-max", a, "a count of frames in [1, 1048576]");
			break;
		case 'C': {
			char *end;
			double m = strtod(a, &end), k = 1;
			if (*end == ':')
				k = strtod(end + 1, &end);
			if (end == a || *end != '\0' || !(m >= 1 && m <= 864000) ||
			    !(k >= 0.2 && k <= 10))
				return bad("--churn", a, "MEAN[:SHAPE], MEAN seconds in [1, 864000], "
				    "SHAPE in [0.2, 10]");
			O.churn_mean_s = m;
			O.churn_shape = k;
			break;
		}
		case 'F': {
			char *end;
			double m = strtod(a, &end);
			if (end == a || *end != '\0' || !(m >= 0 && m <= 864000))
				return bad("--offline", a, "seconds in [0, 864000]");
			O.offline_mean_s = m;
			break;
		}
		case 'c':
			O.csv = a;
			break;
		case 'W':
			O.inexact = a;
			break;
		case 'q':
			O.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "meshmap sim: unknown or incomplete option '%s' "
			    "(try --help)\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "meshmap sim: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (O.bootstrap > O.nodes) {
		fprintf(stderr, "meshmap sim: --bootstrap %u is more than --nodes %u\n",
		    O.bootstrap, O.nodes);
		return -1;
	}
	if (O.churn_mean_s > 0 && (O.topology != TOPO_MESH || O.bootstrap >= O.nodes)) {
		fprintf(stderr, "meshmap sim: --churn needs the mesh topology and nodes that "
		    "are not bootstraps\n");
		return -1;
	}
	if (O.observers == 0 || O.observers > O.nodes)
		O.observers = O.nodes <= 1000 ? O.nodes : 200;
	if (O.attack_frac > 0) {
		if (O.topology != TOPO_MESH) {
			fprintf(stderr, "meshmap sim: --attack needs the mesh topology\n");
			return -1;
		}
		if (O.victims + O.bootstrap > O.nodes) {
			fprintf(stderr, "meshmap sim: --victims %u: only %u nodes are not "
			    "bootstraps\n", O.victims, O.nodes - O.bootstrap);
			return -1;
		}
		O.attackers = (unsigned)llround(O.attack_frac * O.nodes);
		if (O.attackers == 0)
			O.attackers = 1;
		if (O.nodes + O.attackers > 100000) {
			fprintf(stderr, "meshmap sim: %u nodes and %u attackers: at most "
			    "100000 in all\n", O.nodes, O.attackers);
			return -1;
		}
	}
	NT = O.nodes + O.attackers;
	return 0;
}

/* ---- nodes ----------------------------------------------------------------- */

static void
node_addr(unsigned i, char *host, size_t hl, struct sockaddr_in *sa)
{
	uint32_t a = (10u << 24) | (i + 1);
	snprintf(host, hl, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(7000);
	sa->sin_addr.s_addr = htonl(a);
}

static int
start_node(mm_rt_t *rt, unsigned i)
{
	struct snode *s = &S[i];
	mm_node_config_t c;
	mm_node_config_default(&c);
	c.net.id = &s->id;
	c.net.network = "sim";
	c.net.difficulty = O.difficulty;
	c.gossip.difficulty = O.difficulty;
	c.mem_shed = 0;
	c.dedup_capacity = 16384; /* 128 KB a ring, not 2 MB (node.h) */
	c.query_ctx = QCTX;       /* one thread: one scratch for all (node.h) */
	c.degree = O.degree;
	c.announce_ms = (uint32_t)O.announce_ms;
	c.gossip_eager = (unsigned)O.eager;
	c.ihave_ms = (uint32_t)O.ihave_ms;
	c.sync_events = (uint32_t)O.sync_events;
	c.sync_events_max = (uint32_t)O.sync_max;
	c.select_policy = O.policy;
	c.young_inbound = (uint8_t)O.young_inbound;
	c.max_degree = O.degree + 4 > 32 ? 32 : O.degree + 4;
	uint32_t mp = 1024;
	while (mp < 4 * NT)
		mp *= 2;
	c.map.max_peers = mp;
	if (O.topology != TOPO_MESH)
		c.select_ms = 0; /* exactly the links given */
	char err[256] = "", host[32];
	struct sockaddr_in sa;
	node_addr(i, host, sizeof(host), &sa);
	mm_sim_set_group(rt, i);
	int rc = mm_node_create(rt, &c, &s->node, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "meshmap sim: node %u: %s (%d)\n", i, err, rc);
		return -1;
	}
	if ((rc = mm_node_listen(s->node, host, 7000, NULL)) != 0) {
		fprintf(stderr, "meshmap sim: node %u: listen %s: %d\n", i, host, rc);
		return -1;
	}
	s->up = true;
	s->frames_in = s->bytes_in = s->events_in = 0; /* a new net counts from 0 */
	if (PARTED)
		mm_simnet_set_zone(mm_node_net(s->node), i & 1);
	if (s->attacker) {
		/* every victim, held (protected: never dropped); the cluster
		 * meets at the first attacker */
		for (unsigned v = 0; v < O.nodes; v++)
			if (S[v].victim) {
				node_addr(v, host, sizeof(host), &sa);
				mm_node_bootstrap(s->node, (struct sockaddr *)&sa, sizeof(sa));
				mm_node_protect(s->node, S[v].id.id, 1);
			}
		if (!O.attack_lone && i > O.nodes) {
			node_addr(O.nodes, host, sizeof(host), &sa);
			mm_node_bootstrap(s->node, (struct sockaddr *)&sa, sizeof(sa));
		}
	} else if (O.topology == TOPO_MESH && i >= O.bootstrap) {
		unsigned b = (unsigned)(mm_random() % O.bootstrap);
		node_addr(b, host, sizeof(host), &sa);
		mm_node_bootstrap(s->node, (struct sockaddr *)&sa, sizeof(sa));
	} else if (O.topology == TOPO_MESH && i > 0) {
		node_addr(0, host, sizeof(host), &sa);
		mm_node_bootstrap(s->node, (struct sockaddr *)&sa, sizeof(sa));
	}
	return 0;
}

/* The fixed topologies: node i dials the nodes it links to with a lower
 * index (so each link is dialled once). */
static void
dial_fixed(unsigned i)
{
	unsigned to[2], k = 0;
	char host[32];
	struct sockaddr_in sa;
	if (O.topology == TOPO_LINE && i > 0)
		to[k++] = i - 1;
	if (O.topology == TOPO_RING && i > 0)
		to[k++] = i - 1;
	if (O.topology == TOPO_RING && i == O.nodes - 1 && O.nodes > 2)
		to[k++] = 0;
	if (O.topology == TOPO_STAR && i > 0)
		to[k++] = 0;
	for (unsigned j = 0; j < k; j++) {
		node_addr(to[j], host, sizeof(host), &sa);
		mm_node_bootstrap(S[i].node, (struct sockaddr *)&sa, sizeof(sa));
	}
}

/* The attackers' rule (mm_simnet_set_reach): they accept and dial only
 * each other (not with --attack-lone) and the victims. */
static int
reach(uint32_t a, uint32_t b, void *arg)
{
	(void)arg;
	if (a >= NT || b >= NT)
		return 1;
	const struct snode *x = &S[a], *y = &S[b];
	if (x->attacker && y->attacker)
		return !O.attack_lone;
	if (x->attacker)
		return y->victim;
	if (y->attacker)
		return x->victim;
	return 1;
}

/* The victims (honest nodes up, not bootstraps, picked by the seed), then
 * every attacker at once. */
static int
start_attack(mm_rt_t *rt)
{
	unsigned n = 0, span = O.nodes - O.bootstrap;
	for (unsigned tries = 0; n < O.victims && tries < 100 * span; tries++) {
		unsigned v = O.bootstrap + (unsigned)(mm_random() % span);
		if (S[v].up && !S[v].victim) {
			S[v].victim = true;
			S[v].leave_at = NEVER;
			n++;
		}
	}
	for (unsigned i = O.nodes; i < NT; i++)
		if (start_node(rt, i) != 0)
			return -1;
	return 0;
}

/* Nodes gs[n] go down: their hosts first (crash: the peers see resets at
 * once; else the hosts go silent), then their actors and state. */
static void
down_nodes(mm_rt_t *rt, const uint32_t *gs, unsigned n, int crash)
{
	for (unsigned i = 0; i < n; i++)
		mm_simnet_host_down(mm_node_net(S[gs[i]].node), crash);
	if (n > 0)
		mm_sim_kill_groups(rt, gs, n);
	for (unsigned i = 0; i < n; i++) {
		mm_node_destroy(S[gs[i]].node);
		S[gs[i]].node = NULL;
		S[gs[i]].up = false;
	}
}

static void
kill_nodes(mm_rt_t *rt)
{
	unsigned want = (unsigned)llround(O.kill_frac * O.nodes), n = 0;
	uint32_t *gs = calloc(O.nodes, sizeof(*gs));
	/* a partial Fisher-Yates over the node indices, from the seed */
	uint32_t *perm = malloc(O.nodes * sizeof(*perm));
	if (gs == NULL || perm == NULL) {
		fprintf(stderr, "meshmap sim: no memory for the kill\n");
		exit(1);
	}
	for (unsigned i = 0; i < O.nodes; i++)
		perm[i] = i;
	if (O.kill_region) {
		/* a region: breadth first over the true links from a node the
		 * seed picks among those up, until want nodes */
		uint32_t *adj = malloc((size_t)NT * 32 * sizeof(uint32_t));
		uint8_t *seen = calloc(NT, 1), *deg = calloc(NT, 1);
		if (adj == NULL || seen == NULL || deg == NULL) {
			fprintf(stderr, "meshmap sim: no memory for the kill\n");
			exit(1);
		}
		unsigned up = 0;
		for (unsigned i = 0; i < O.nodes; i++)
			if (S[i].up) {
				up++;
				deg[i] = (uint8_t)mm_simnet_links(mm_node_net(S[i].node),
				    adj + (size_t)i * 32, 32);
			}
		unsigned pick = up ? (unsigned)(mm_random() % up) : 0, h = 0;
		for (unsigned i = 0; i < O.nodes && up; i++)
			if (S[i].up && pick-- == 0) {
				perm[n++] = i;
				seen[i] = 1;
				break;
			}
		while (h < n && n < want)
			for (unsigned i = perm[h++], j = 0; j < deg[i] && n < want; j++) {
				unsigned k = adj[(size_t)i * 32 + j];
				if (k < O.nodes && !seen[k] && S[k].up) { /* honest only */
					seen[k] = 1;
					perm[n++] = k;
				}
			}
		memcpy(gs, perm, n * sizeof(*gs));
		free(adj);
		free(seen);
		free(deg);
	} else {
		for (unsigned i = 0; i < want; i++) {
			unsigned j = i + (unsigned)(mm_random() % (O.nodes - i));
			uint32_t t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
			if (S[perm[i]].up)
				gs[n++] = perm[i];
		}
	}
	down_nodes(rt, gs, n, !O.kill_silent);
	for (unsigned i = 0; i < n; i++)
		S[gs[i]].leave_at = S[gs[i]].back_at = NEVER; /* crashed for good */
	free(perm);
	free(gs);
}

/* ---- churn ------------------------------------------------------------------ */

/* Uniform in (0, 1), from the simulation's stream. */
static double
unit(void)
{
	return ((double)(mm_random() >> 11) + 0.5) * 0x1p-53;
}

/* A session: Weibull of shape k and mean churn_mean_s (scale mean /
 * Gamma(1 + 1/k)), in ms, at least 1. */
static uint64_t
draw_session_ms(void)
{
	double k = O.churn_shape, scale = O.churn_mean_s / tgamma(1 + 1 / k);
	double x = scale * pow(-log(unit()), 1 / k) * 1000;
	return x < 1 ? 1 : x > 1e12 ? (uint64_t)1e12 : (uint64_t)x;
}

/* An offline time: exponential of mean offline_mean_s, in ms; NEVER with
 * a mean of 0. */
static uint64_t
draw_offline_ms(void)
{
	if (O.offline_mean_s <= 0)
		return NEVER;
	double x = -log(unit()) * O.offline_mean_s * 1000;
	return x < 1 ? 1 : x > 1e12 ? (uint64_t)1e12 : (uint64_t)x;
}

static bool
churns(unsigned i)
{
	return O.churn_mean_s > 0 && i >= O.bootstrap && i < O.nodes && !S[i].victim;
}

/* The earliest leave or return. */
static uint64_t
churn_next(void)
{
	uint64_t m = NEVER;
	if (O.churn_mean_s <= 0)
		return m;
	for (unsigned i = O.bootstrap; i < O.nodes; i++) {
		uint64_t x = S[i].up ? S[i].leave_at : S[i].back_at;
		if (x < m)
			m = x;
	}
	return m;
}

/* Every leave and return due at t: the sessions that ended go down as a
 * process exit does (their peers see the connections close), the nodes
 * whose offline time ended start again. */
static int
churn_at(mm_rt_t *rt, uint64_t t)
{
	uint32_t *gs = malloc(O.nodes * sizeof(*gs));
	unsigned n = 0;
	if (gs == NULL) {
		fprintf(stderr, "meshmap sim: no memory for the churn\n");
		return -1;
	}
	for (unsigned i = O.bootstrap; i < O.nodes; i++)
		if (S[i].up && S[i].leave_at <= t)
			gs[n++] = i;
		else if (!S[i].up && S[i].back_at <= t) {
			if (start_node(rt, i) != 0) {
				free(gs);
				return -1;
			}
			S[i].back_at = NEVER;
			S[i].leave_at = t + draw_session_ms();
			CH_BACK++;
			CH_BACK_ALL++;
		}
	down_nodes(rt, gs, n, 1);
	for (unsigned j = 0; j < n; j++) {
		S[gs[j]].leave_at = NEVER;
		uint64_t off = draw_offline_ms();
		S[gs[j]].back_at = off == NEVER ? NEVER : t + off;
	}
	CH_LEFT += n;
	CH_LEFT_ALL += n;
	free(gs);
	return 0;
}

/* ---- measures --------------------------------------------------------------- */

struct sample {
	unsigned up, links, largest, deg_max, splits_seen, exact, diameter;
	double deg_mean, disc_mean, disc_min, frames_s, bytes_s, events_s, map_bytes,
	    map_bytes_peer, path_mean, clustering;
	/* the attack: attackers up, the victims' links held by attackers (a
	 * fraction), victims and honest nodes with links but none honest
	 * (eclipsed), the attackers' share of the observers' maps */
	unsigned att_up, victims_eclipsed, eclipsed;
	double victim_att_share, map_sybil_share;
	/* churn: leaves and returns in the interval; in the observers' maps,
	 * the share of live records whose node is down, and of confirmed
	 * links that are not true links */
	unsigned left, back;
	double map_dead, map_phantom;
	/* observers whose own analysis shows two groups of linked peers or
	 * more (observers_split counts any second component, a peer alone
	 * included: one that left, until the map forgets it) */
	unsigned splits_groups;
};

/* The true graph's shape: mean shortest path and the largest distance
 * seen, by breadth first search from up to 64 sources spread evenly over
 * the nodes up (every pair within the largest component when it has 64
 * nodes or fewer), and the mean local clustering coefficient over the
 * nodes up with two links or more. */
static void
graph_shape(const uint32_t *adj, const uint8_t *deg, struct sample *out)
{
	unsigned N = NT, up = 0;
	uint32_t *dist = malloc(N * sizeof(uint32_t)), *q = malloc(N * sizeof(uint32_t));
	uint8_t *mark = calloc(N, 1);
	if (dist == NULL || q == NULL || mark == NULL) {
		fprintf(stderr, "meshmap sim: no memory to measure\n");
		exit(1);
	}
	for (unsigned i = 0; i < N; i++)
		up += S[i].up;
	unsigned step = up > 64 ? up / 64 : 1, seen = 0;
	double psum = 0, pairs = 0;
	for (unsigned s = 0; s < N; s++) {
		if (!S[s].up || seen++ % step != 0)
			continue;
		for (unsigned i = 0; i < N; i++)
			dist[i] = UINT32_MAX;
		unsigned h = 0, t = 0;
		dist[s] = 0;
		q[t++] = s;
		while (h < t) {
			unsigned u = q[h++];
			for (unsigned j = 0; j < deg[u]; j++) {
				unsigned v = adj[(size_t)u * 32 + j];
				if (S[v].up && dist[v] == UINT32_MAX) {
					dist[v] = dist[u] + 1;
					q[t++] = v;
					psum += dist[v];
					pairs++;
					if (dist[v] > out->diameter)
						out->diameter = dist[v];
				}
			}
		}
	}
	out->path_mean = pairs ? psum / pairs : 0;
	double csum = 0;
	unsigned cn = 0;
	for (unsigned u = 0; u < N; u++) {
		if (!S[u].up || deg[u] < 2)
			continue;
		unsigned tri = 0, k = 0;
		for (unsigned j = 0; j < deg[u]; j++)
			if (S[adj[(size_t)u * 32 + j]].up)
				mark[adj[(size_t)u * 32 + j]] = 1, k++;
		for (unsigned j = 0; j < deg[u]; j++) {
			unsigned v = adj[(size_t)u * 32 + j];
			if (!S[v].up)
				continue;
			for (unsigned x = 0; x < deg[v]; x++)
				tri += mark[adj[(size_t)v * 32 + x]];
		}
		for (unsigned j = 0; j < deg[u]; j++)
			mark[adj[(size_t)u * 32 + j]] = 0;
		if (k >= 2) {
			csum += (double)tri / ((double)k * (k - 1)); /* each triangle twice */
			cn++;
		}
	}
	out->clustering = cn ? csum / cn : 0;
	free(dist);
	free(q);
	free(mark);
}

static unsigned
uf_find(uint32_t *p, unsigned x)
{
	while (p[x] != x) {
		p[x] = p[p[x]];
		x = p[x];
	}
	return x;
}

/* A node's own record of itself: its sequence number (0: none). */
static uint32_t
own_seq(unsigned i)
{
	const mm_ps_t *ps = mm_node_map(S[i].node);
	mm_pidx_t me = mm_ps_lookup(ps, S[i].id.id);
	return me == MM_PIDX_NONE ? 0 : mm_ps_seq(ps, me);
}

/* --inexact: observer o's map against the true links (adj, deg). */
static void
explain(unsigned o, const mm_ps_t *ps, const uint32_t *idx, const uint32_t *adj,
    const uint8_t *deg, unsigned have, uint64_t ne, unsigned links)
{
	fprintf(INX, "%.1f observer %u (%02x%02x%02x%02x): %u of %u true links, %llu "
	    "edges in its map\n", INX_T / 1000.0, o, S[o].id.id[0], S[o].id.id[1],
	    S[o].id.id[2], S[o].id.id[3], have, links, (unsigned long long)ne);
	mm_pidx_t nb[64];
	unsigned shown = 0;
	for (unsigned i = 0; i < NT && shown < 16; i++) {
		if (!S[i].up)
			continue;
		unsigned nc = idx[i] == MM_PIDX_NONE ? 0 : mm_ps_confirmed(ps, idx[i], nb, 64);
		for (unsigned j = 0; j < deg[i] && shown < 16; j++) {
			unsigned k = adj[(size_t)i * 32 + j];
			if (k <= i || !S[k].up)
				continue;
			unsigned x = 0;
			while (x < nc && (idx[k] == MM_PIDX_NONE || nb[x] != idx[k]))
				x++;
			if (x < nc)
				continue;
			shown++;
			fprintf(INX, "  lacks %u-%u:", i, k);
			unsigned e[2] = {i, k};
			for (int s = 0; s < 2; s++) {
				unsigned a = e[s], b = e[1 - s];
				fprintf(INX, " %u: seq %u here, %u own; claims %d here, %d own;", a,
				    idx[a] == MM_PIDX_NONE ? 0 : mm_ps_seq(ps, idx[a]), own_seq(a),
				    idx[a] == MM_PIDX_NONE || idx[b] == MM_PIDX_NONE ? -2 :
				    mm_ps_claim_dir(ps, idx[a], idx[b]),
				    mm_ps_claim_dir(mm_node_map(S[a].node),
				        mm_ps_lookup(mm_node_map(S[a].node), S[a].id.id),
				        mm_ps_lookup(mm_node_map(S[a].node), S[b].id.id)));
			}
			fputc('\n', INX);
		}
	}
}

static void
measure(uint64_t dt_ms, struct sample *out)
{
	memset(out, 0, sizeof(*out));
	unsigned N = NT;
	/* the true map: links ready at both ends, kept as sorted lists */
	uint32_t *adj = malloc((size_t)N * 32 * sizeof(uint32_t));
	uint8_t *deg = calloc(N, 1);
	uint32_t *uf = malloc(N * sizeof(uint32_t)), *csize = calloc(N, sizeof(uint32_t));
	uint32_t *idx = malloc(N * sizeof(uint32_t)), nb[64];
	if (adj == NULL || deg == NULL || uf == NULL || csize == NULL || idx == NULL) {
		fprintf(stderr, "meshmap sim: no memory to measure\n");
		exit(1);
	}
	uint64_t truth_digest = 0, frames = 0, bytes = 0, events = 0;
	for (unsigned i = 0; i < N; i++) {
		uf[i] = i;
		if (!S[i].up)
			continue;
		out->up++;
		unsigned k = mm_simnet_links(mm_node_net(S[i].node), adj + (size_t)i * 32, 32);
		deg[i] = (uint8_t)k;
		mm_net_stats_t ns;
		mm_net_stats(mm_node_net(S[i].node), &ns);
		frames += ns.frames_in - S[i].frames_in;
		bytes += ns.bytes_in - S[i].bytes_in;
		events += ns.type_frames[0][MM_W_EVENT] - S[i].events_in;
		S[i].events_in = ns.type_frames[0][MM_W_EVENT];
		S[i].frames_in = ns.frames_in;
		S[i].bytes_in = ns.bytes_in;
	}
	uint64_t ev_d = events;
	for (unsigned i = 0; i < N; i++) {
		for (unsigned j = 0; j < deg[i]; j++) {
			unsigned k = adj[(size_t)i * 32 + j];
			if (k <= i || !S[k].up)
				continue;
			out->links++;
			truth_digest += mm_ps_edge_hash(S[i].id.id, S[k].id.id);
			unsigned a = uf_find(uf, i), b = uf_find(uf, k);
			if (a != b)
				uf[a] = b;
		}
		if (deg[i] > out->deg_max)
			out->deg_max = deg[i];
	}
	for (unsigned i = 0; i < N; i++)
		if (S[i].up) {
			unsigned r = uf_find(uf, i);
			if (++csize[r] > out->largest)
				out->largest = csize[r];
		}
	out->deg_mean = out->up ? 2.0 * out->links / out->up : 0;
	graph_shape(adj, deg, out);
	/* eclipses: honest nodes up with links, none of them honest */
	unsigned nvict = 0;
	for (unsigned i = 0; i < O.nodes; i++) {
		if (!S[i].up)
			continue;
		unsigned att = 0;
		for (unsigned j = 0; j < deg[i]; j++)
			att += S[adj[(size_t)i * 32 + j]].attacker;
		bool ecl = deg[i] > 0 && att == deg[i];
		out->eclipsed += ecl;
		if (S[i].victim) {
			nvict++;
			out->victims_eclipsed += ecl;
			out->victim_att_share += deg[i] ? (double)att / deg[i] : 0;
		}
	}
	if (nvict)
		out->victim_att_share /= nvict;
	for (unsigned i = O.nodes; i < N; i++)
		out->att_up += S[i].up;
	if (out->up && dt_ms) {
		out->frames_s = (double)frames * 1000 / dt_ms / out->up;
		out->bytes_s = (double)bytes * 1000 / dt_ms / out->up;
		out->events_s = (double)ev_d * 1000 / dt_ms / out->up;
	}
	/* the observers: every (N / K)-th honest node that is up */
	unsigned nobs = 0, step = O.nodes / O.observers;
	out->disc_min = 1;
	double disc_sum = 0, mb = 0, syb = 0, dead = 0, phantom = 0;
	for (unsigned o = 0; o < O.nodes && nobs < O.observers; o += step ? step : 1) {
		if (!S[o].up)
			continue;
		nobs++;
		const mm_ps_t *ps = mm_node_map(S[o].node);
		unsigned have = 0, known = 0, known_att = 0, known_dead = 0;
		for (unsigned i = 0; i < N; i++) {
			idx[i] = mm_ps_lookup(ps, S[i].id.id);
			if (!S[i].up && idx[i] != MM_PIDX_NONE) {
				known_dead += mm_ps_live(ps, idx[i]);
				idx[i] = MM_PIDX_NONE; /* the down ones end here */
			}
		}
		for (unsigned i = 0; i < N; i++) {
			if (idx[i] == MM_PIDX_NONE)
				continue;
			if (mm_ps_live(ps, idx[i])) {
				known++;
				known_att += S[i].attacker;
			}
			unsigned nc = mm_ps_confirmed(ps, idx[i], nb, 64);
			for (unsigned j = 0; j < deg[i]; j++) {
				unsigned k = adj[(size_t)i * 32 + j];
				if (k <= i || !S[k].up || idx[k] == MM_PIDX_NONE)
					continue;
				for (unsigned x = 0; x < nc; x++)
					if (nb[x] == idx[k]) {
						have++;
						break;
					}
			}
		}
		syb += known ? (double)known_att / known : 0;
		double d = out->links ? (double)have / out->links : 1;
		disc_sum += d;
		if (d < out->disc_min)
			out->disc_min = d;
		dead += known + known_dead ? (double)known_dead / (known + known_dead) : 0;
		uint64_t ne = 0;
		if (mm_ps_edges_digest(ps, &ne) == truth_digest && ne == out->links)
			out->exact++;
		else if (INX != NULL)
			explain(o, ps, idx, adj, deg, have, ne, out->links);
		phantom += ne > have ? (double)(ne - have) / (double)ne : 0;
		mm_ps_stats_t st;
		mm_ps_stats(ps, &st);
		mb += (double)st.bytes;
		mm_node_stats_t nst;
		mm_node_stats(S[o].node, &nst);
		if (nst.components > 1)
			out->splits_seen++;
		if (nst.components - nst.isolated > 1)
			out->splits_groups++;
	}
	out->disc_mean = nobs ? disc_sum / nobs : 0;
	out->map_sybil_share = nobs ? syb / nobs : 0;
	out->map_dead = nobs ? dead / nobs : 0;
	out->map_phantom = nobs ? phantom / nobs : 0;
	out->left = CH_LEFT;
	out->back = CH_BACK;
	CH_LEFT = CH_BACK = 0;
	out->map_bytes = nobs ? mb / nobs : 0;
	out->map_bytes_peer = out->up ? out->map_bytes / out->up : 0;
	free(adj);
	free(deg);
	free(uf);
	free(csize);
	free(idx);
}

/* ---- main ------------------------------------------------------------------- */

/* The simulator's state is gigabytes touched at random (every node's map,
 * dedup ring, log and links), so TLB misses cost as much as cache misses.
 * glibc's malloc backs its heap with transparent huge pages when the
 * tunable glibc.malloc.hugetlb=1 is set (glibc 2.35 and later; the
 * machine's THP mode "madvise" or "always"), and reads tunables only at
 * start: so the process starts itself again with it, once.
 * `meshmap-sim --nodes 400 --duration 30 --sample-ms 10000 --quiet`:
 * 57.1 and 57.4 s of CPU with it, 64.9 and 65.1 s without (12% less),
 * peak RSS 976 MB against 896 MB, the same CSV (docs/RESULTS-SIM.md).
 * jemalloc, with or without its thp:always, did no better than plain
 * glibc (66.1 and 65.7 s). MESHMAP_SIM_HUGEPAGES=0 leaves the
 * environment alone. */
static void
hugepages(char **argv)
{
	const char *t = getenv("GLIBC_TUNABLES"), *off = getenv("MESHMAP_SIM_HUGEPAGES");
	if ((off != NULL && strcmp(off, "0") == 0) ||
	    (t != NULL && strstr(t, "glibc.malloc.hugetlb") != NULL))
		return;
	char v[1024];
	int n = snprintf(v, sizeof(v), "%s%sglibc.malloc.hugetlb=1", t ? t : "",
	    t && *t ? ":" : "");
	if (n < 0 || (size_t)n >= sizeof(v) || setenv("GLIBC_TUNABLES", v, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* not started again (no /proc?): run as we are; the tunable stays set,
	 * so a child would not try again */
}

int
main(int argc, char **argv)
{
	hugepages(argv);
	if (parse(argc, argv) != 0)
		return 2;
	if (getenv("MESHMAP_LOG") == NULL) /* else the nodes log at that level */
		mm_log_set_level(MM_LOG_ERROR);
	if (O.inexact != NULL && (INX = fopen(O.inexact, "w")) == NULL) {
		fprintf(stderr, "meshmap sim: %s: %s\n", O.inexact, strerror(errno));
		return 1;
	}
	FILE *csv = stdout;
	if (O.csv != NULL && (csv = fopen(O.csv, "w")) == NULL) {
		fprintf(stderr, "meshmap sim: %s: %s\n", O.csv, strerror(errno));
		return 1;
	}
	mm_rt_t *rt;
	mm_sim_config_t sc = {.seed = O.seed};
	if (mm_sim_create(&sc, &rt) != 0 || mm_simnet_configure(&O.net) != 0 ||
	    mm_id_verify_memo(20) != 0 || (QCTX = mm_psq_new()) == NULL) {
		fprintf(stderr, "meshmap sim: cannot set up the simulation\n");
		return 1;
	}
	double w0 = now_wall();
	S = calloc(NT, sizeof(*S));
	if (S == NULL) {
		fprintf(stderr, "meshmap sim: no memory for %u nodes\n", O.nodes);
		return 1;
	}
	for (unsigned i = 0; i < NT; i++) {
		uint8_t seed[32];
		S[i].attacker = i >= O.nodes;
		S[i].leave_at = S[i].back_at = NEVER; /* set when it joins */
		mm_secure_random(seed, sizeof(seed)); /* the simulation's: from --seed */
		if (mm_id_from_seed(&S[i].id, seed, O.difficulty) != 0) {
			fprintf(stderr, "meshmap sim: cannot make identity %u\n", i);
			return 1;
		}
	}
	/* fixed topologies start together; a mesh grows from its bootstraps */
	unsigned first = O.topology == TOPO_MESH ? O.bootstrap : O.nodes;
	uint64_t last_join = O.topology == TOPO_MESH ? (uint64_t)(O.nodes - first) * O.join_ms : 0;
	uint64_t end = last_join + O.duration_ms;
	for (unsigned i = 0; i < first; i++)
		if (start_node(rt, i) != 0)
			return 1;
	if (O.topology != TOPO_MESH)
		for (unsigned i = 0; i < O.nodes; i++)
			dial_fixed(i);
	fprintf(csv, "t_s,up,links,largest,deg_mean,deg_max,disc_mean,disc_min,"
	    "exact,observers_split,frames_node_s,events_node_s,bytes_node_s,"
	    "map_bytes_node,map_bytes_peer,path_mean,diameter,clustering,"
	    "attackers,victim_att_share,victims_eclipsed,eclipsed,map_sybil_share,"
	    "left,back,map_dead,map_phantom,observers_split_groups\n");
	if (O.attackers > 0)
		mm_simnet_set_reach(reach, NULL);
	unsigned next_join = first;
	uint64_t t = 0, last_sample = 0, next_sample = O.sample_ms;
	bool attacked = O.attackers == 0, killed = O.kill_frac == 0, parted = O.part_on_ms == 0, healed = O.part_on_ms == 0;
	int tty = !O.quiet && isatty(2);
	while (t < end) {
		uint64_t nt = next_sample;
		uint64_t jt = next_join < O.nodes ? (uint64_t)(next_join - first + 1) * O.join_ms : UINT64_MAX;
		if (jt < nt)
			nt = jt;
		if (!killed && last_join + O.kill_at_ms < nt)
			nt = last_join + O.kill_at_ms;
		if (!attacked && last_join + O.attack_at_ms < nt)
			nt = last_join + O.attack_at_ms;
		if (!parted && last_join + O.part_on_ms < nt)
			nt = last_join + O.part_on_ms;
		if (!healed && last_join + O.part_off_ms < nt)
			nt = last_join + O.part_off_ms;
		uint64_t ct = churn_next();
		if (ct < nt)
			nt = ct;
		if (nt > end)
			nt = end;
		mm_sim_run_until(rt, nt);
		t = nt;
		if (ct <= t && churn_at(rt, t) != 0)
			return 1;
		while (next_join < O.nodes && (uint64_t)(next_join - first + 1) * O.join_ms <= t) {
			if (start_node(rt, next_join) != 0)
				return 1;
			S[next_join].leave_at = churns(next_join) ? t + draw_session_ms() : NEVER;
			S[next_join++].back_at = NEVER;
		}
		if (!attacked && t >= last_join + O.attack_at_ms) {
			if (start_attack(rt) != 0)
				return 1;
			attacked = true;
		}
		if (!killed && t >= last_join + O.kill_at_ms) {
			kill_nodes(rt);
			killed = true;
		}
		if (!parted && t >= last_join + O.part_on_ms) {
			/* the halves: even and odd node indices */
			for (unsigned i = 0; i < O.nodes; i++)
				if (S[i].up)
					mm_simnet_set_zone(mm_node_net(S[i].node), i & 1);
			mm_simnet_partition(1);
			parted = PARTED = true;
		}
		if (!healed && t >= last_join + O.part_off_ms) {
			mm_simnet_partition(0);
			healed = true;
			PARTED = false;
		}
		if (t >= next_sample || t == end) {
			struct sample s;
			INX_T = t;
			measure(t - last_sample, &s);
			if (INX != NULL)
				fflush(INX);
			last_sample = t;
			next_sample = t + O.sample_ms;
			fprintf(csv, "%.1f,%u,%u,%u,%.2f,%u,%.6f,%.6f,%u,%u,%.2f,%.2f,%.1f,"
			    "%.0f,%.1f,%.3f,%u,%.4f,%u,%.4f,%u,%u,%.4f,%u,%u,%.4f,%.4f,%u\n", t / 1000.0, s.up, s.links, s.largest,
			    s.deg_mean, s.deg_max, s.disc_mean, s.disc_min, s.exact, s.splits_seen,
			    s.frames_s, s.events_s, s.bytes_s, s.map_bytes, s.map_bytes_peer,
			    s.path_mean, s.diameter, s.clustering, s.att_up, s.victim_att_share,
			    s.victims_eclipsed, s.eclipsed, s.map_sybil_share, s.left, s.back,
			    s.map_dead, s.map_phantom, s.splits_groups);
			fflush(csv);
			if (tty)
				fprintf(stderr, "\r[%-30.*s] %5.0f/%.0f s  up %u  links %u  "
				    "discovery %.4f (min %.4f)  wall %.0f s   ",
				    (int)(30 * t / end), "##############################",
				    t / 1000.0, end / 1000.0, s.up, s.links, s.disc_mean,
				    s.disc_min, now_wall() - w0);
		}
	}
	if (tty)
		fputc('\n', stderr);
	mm_sim_stats_t st;
	mm_sim_stats(rt, &st);
	mm_simnet_stats_t ns;
	mm_simnet_stats(&ns);
	fprintf(stderr, "meshmap sim: %u nodes, %.0f s simulated in %.1f s wall; "
	    "%llu messages, %llu timers, %llu segments, %llu signature checks "
	    "answered by the memo\n", O.nodes, end / 1000.0, now_wall() - w0,
	    (unsigned long long)st.msgs, (unsigned long long)st.timers,
	    (unsigned long long)ns.segments, (unsigned long long)mm_id_verify_memo_hits());
	/* where the traffic came from, over the nodes still up */
	mm_node_stats_t tot = {0};
	uint64_t log_min = UINT64_MAX, log_max = 0, log_grown = 0;
	for (unsigned i = 0; i < O.nodes; i++) {
		if (!S[i].up)
			continue;
		mm_node_stats_t x;
		mm_node_stats(S[i].node, &x);
		log_min = x.sync_log_cap < log_min ? x.sync_log_cap : log_min;
		log_max = x.sync_log_cap > log_max ? x.sync_log_cap : log_max;
		log_grown += x.sync_log_cap > O.sync_events;
#define ADD(f) tot.f += x.f
		ADD(events_local); ADD(events_coalesced); ADD(events_signed); ADD(events_in); ADD(events_dup);
		ADD(events_stale); ADD(events_bad); ADD(events_forwarded); ADD(syncs);
		ADD(sync_events_sent); ADD(sync_announced); ADD(served_paced); ADD(ae_served); ADD(peers_up); ADD(peers_down);
		ADD(frames_dropped); ADD(refused_full); ADD(gc_unreachable);
		ADD(ihave_sent); ADD(iwant_sent); ADD(iwant_served);
		ADD(kicks); ADD(kicks_thin); ADD(refused_barred); ADD(refused_thin); ADD(refused_young);
		ADD(dials_room); ADD(dials_full); ADD(dials_thin); ADD(dials_comp);
		ADD(dials_replace); ADD(dials); ADD(dials_comp_failed);
#undef ADD
	}
	fprintf(stderr, "meshmap sim: nodes up: %llu own events (%llu coalesced), %llu signed, %llu events in "
	    "(%llu duplicate, %llu stale, %llu refused), %llu forwarded; %llu join syncs sent "
	    "%llu events and announced %llu (%llu served paced); anti-entropy sent %llu; %llu links up, %llu down; "
	    "%llu refused (no slot); %llu peers forgotten as unreachable; "
	    "%llu frames dropped; lazy push: %llu ihave entries, %llu asked, "
	    "%llu served; selector: %llu links dropped (%llu thin); refused: %llu "
	    "barred, %llu thin, %llu young\n", (unsigned long long)tot.events_local,
	    (unsigned long long)tot.events_coalesced,
	    (unsigned long long)tot.events_signed, (unsigned long long)tot.events_in, (unsigned long long)tot.events_dup,
	    (unsigned long long)tot.events_stale,
	    (unsigned long long)tot.events_bad, (unsigned long long)tot.events_forwarded,
	    (unsigned long long)tot.syncs, (unsigned long long)tot.sync_events_sent,
	    (unsigned long long)tot.sync_announced, (unsigned long long)tot.served_paced,
	    (unsigned long long)tot.ae_served, (unsigned long long)tot.peers_up,
	    (unsigned long long)tot.peers_down, (unsigned long long)tot.refused_full,
	    (unsigned long long)tot.gc_unreachable, (unsigned long long)tot.frames_dropped,
	    (unsigned long long)tot.ihave_sent, (unsigned long long)tot.iwant_sent,
	    (unsigned long long)tot.iwant_served, (unsigned long long)tot.kicks,
	    (unsigned long long)tot.kicks_thin, (unsigned long long)tot.refused_barred,
	    (unsigned long long)tot.refused_thin, (unsigned long long)tot.refused_young);
	fprintf(stderr, "meshmap sim: dials: %llu in all; the selector's: %llu to room, "
	    "%llu to full, %llu to thin, %llu to another component (%llu failed), %llu "
	    "replacements\n",
	    (unsigned long long)tot.dials, (unsigned long long)tot.dials_room,
	    (unsigned long long)tot.dials_full, (unsigned long long)tot.dials_thin,
	    (unsigned long long)tot.dials_comp, (unsigned long long)tot.dials_comp_failed,
	    (unsigned long long)tot.dials_replace);
	if (log_max > 0)
		fprintf(stderr, "meshmap sim: join sync logs: %llu to %llu frames, %llu "
		    "grown beyond %llu\n", (unsigned long long)log_min,
		    (unsigned long long)log_max, (unsigned long long)log_grown,
		    (unsigned long long)O.sync_events);
	if (O.churn_mean_s > 0)
		fprintf(stderr, "meshmap sim: churn: %llu leaves, %llu returns\n",
		    (unsigned long long)CH_LEFT_ALL, (unsigned long long)CH_BACK_ALL);
	if (O.attackers > 0) {
		fprintf(stderr, "meshmap sim: attack: %u attackers%s; victims (links held by "
		    "attackers at the end):", O.attackers, O.attack_lone ? " (lone)" : "");
		for (unsigned v = 0; v < O.nodes; v++) {
			if (!S[v].victim)
				continue;
			uint32_t l[32];
			unsigned k = S[v].up ? mm_simnet_links(mm_node_net(S[v].node), l, 32) : 0, a = 0;
			for (unsigned j = 0; j < k; j++)
				a += S[l[j]].attacker;
			fprintf(stderr, " node %u %u/%u%s", v, a, k, S[v].up ? "" : " (down)");
		}
		fputc('\n', stderr);
	}
	mm_rt_stop(rt);
	for (unsigned i = 0; i < NT; i++) {
		mm_node_destroy(S[i].node);
		mm_id_free(&S[i].id);
	}
	mm_rt_destroy(rt);
	free(S);
	mm_psq_free(QCTX);
	mm_id_verify_memo(0);
	if (csv != stdout)
		fclose(csv);
	return 0;
}
