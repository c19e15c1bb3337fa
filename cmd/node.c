/* meshmap node: run a node. */
#include <arpa/inet.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "admin.h"
#include "node.h"
#include "psquery.h"

#define MAX_BOOTSTRAP 64
#define MAX_CFG_BANS 256

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
	    "      --announce-ms MS    send our own events at most once per MS; a burst\n"
	    "                          of link changes goes as one (default 500; 0: each)\n"
	    "      --gossip-eager N    lazy push: an event we relay goes whole to N\n"
	    "                          links picked at random, the others get its id\n"
	    "                          and ask for it if they lack it (default 4;\n"
	    "                          0: whole to every link)\n"
	    "      --ihave-ms MS       those ids wait at most MS, batched (default 100)\n"
	    "      --ttl HOPS          how far our events travel (default 6; the map's\n"
	    "                          reach: set it above the network's diameter)\n"
	    "  -c, --config FILE       settings, one 'name = value' per line, names as\n"
	    "                          the long options (flags after it override it)\n"
	    "      --max-conns-per-ip N  connections from one IP address (default 8;\n"
	    "                          raise it for many nodes on one host)\n"
	    "      --max-pending-per-ip N  handshakes in progress from one IP address\n"
	    "                          (default 4)\n"
	    "      --degree N          links the node aims for (default 12)\n"
	    "      --max-degree N      links it may hold while replacing (default 16)\n"
	    "      --select-ms MS      neighbour selection round (default 2000; 0: off,\n"
	    "                          keep only the bootstrap and inbound links)\n"
	    "      --min-link-ms MS    a link is never dropped younger (default 10000)\n"
	    "      --confirm-timeout S one-sided links and dead peers leave the map\n"
	    "                          after this (default 60)\n"
	    "      --unreachable-timeout S  peers we cannot reach over the map's\n"
	    "                          confirmed links leave it after this long silent\n"
	    "                          (default 180; 0: only after the record ttl)\n"
	    "      --idle-timeout S    a link that hears nothing for S seconds is closed;\n"
	    "                          a quiet link pings every S/3 (default 30)\n"
	    "      --snapshot FILE     keep known addresses and bans here across restarts\n"
	    "                          (loaded at start, saved every 5 min and at stop)\n"
	    "      --snapshot-ms MS    save it this often instead (default 300000)\n"
	    "      --map-max N         peers the map may hold (default 131072); events\n"
	    "                          that would pass it are dropped and counted\n"
	    "      --advertise HOST:PORT  where others can dial us (sent in connection\n"
	    "                          introductions; default: the --listen address\n"
	    "                          unless it is 0.0.0.0 or ::)\n"
	    "      --admin HOST:PORT   serve /health, /metrics, /peers, /map there (HTTP;\n"
	    "                          keep it on 127.0.0.1); meshmap ctl is its client\n"
	    "      --event-rate N      connection events a link may send a second\n"
	    "                          (default 1000)\n"
	    "      --event-burst N     and in one burst (default 4096; at least\n"
	    "                          --event-rate)\n"
	    "      --direct-rate N     direct and broadcast frames a link may send a\n"
	    "                          second, and in one burst (default 200000)\n"
	    "      --relay             relay/bootstrap mode: inbound links do not count\n"
	    "                          towards --degree and are kept (up to --max-inbound)\n"
	    "      --max-inbound N     inbound links in relay mode (default 16;\n"
	    "                          --max-degree + N <= 32)\n"
	    "      --young-inbound     at the target, refuse an inbound link while\n"
	    "                          another is younger than --min-link-ms (against\n"
	    "                          clustered eclipse attackers; not in relay mode)\n"
	    "      --ae-ms MS          anti-entropy round: a digest to one neighbour\n"
	    "                          (default 60000; 0: off)\n"
	    "      --px-ms MS          ask a random neighbour for addresses this often\n"
	    "                          (default 30000; 0: only when a link comes up)\n"
	    "      --protect ID        never drop this peer's link; admit it even when\n"
	    "                          full (64 hex digits; repeatable)\n"
	    "      --ban TARGET        refuse a peer id, an IP address or a CIDR range\n"
	    "                          (repeatable; lifted when a reload drops it)\n"
	    "      --recv-rate-kb N    bandwidth: kilobytes a second received over all\n"
	    "                          links (default 0: no limit; reloadable)\n"
	    "      --send-rate-kb N    kilobytes a second sent (default 0: no limit)\n"
	    "      --mem-budget MB     the memory budget the node sheds load to keep\n"
	    "                          (default 50)\n"
	    "      --shutdown-timeout S  on SIGTERM/SIGINT, wait at most S seconds for\n"
	    "                          the goodbyes to go out (default 5)\n"
	    "      --log-level LEVEL   error, warn (default), info or debug\n"
	    "      --log-format FMT    text (default) or json (one object per line)\n"
	    "      --log-file FILE     append the log there (default: stderr; reopened\n"
	    "                          on SIGHUP, for logrotate)\n"
	    "      --check-config      check the settings and the key, print them, exit\n"
	    "\n"
	    "Signals: SIGHUP reloads the config file (limits, bandwidth, timers, bootstrap list,\n"
	    "bans, protected peers, logging) and names what needs a restart;\n"
	    "SIGTERM/SIGINT stop gracefully (goodbye to peers, snapshot saved).\n"
	    "\n"
	    "examples:\n"
	    "  meshmap node --key node.key --listen 0.0.0.0:7946 \\\n"
	    "      --bootstrap seed.example.net:7946 --admin 127.0.0.1:7947\n"
	    "  meshmap node --config /etc/meshmap/meshmap.conf --check-config\n"
	    "  meshmap node --config relay.conf --relay --max-inbound 16 --log-format json\n",
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
	const char *log_file;
	const char *boots[MAX_BOOTSTRAP];
	unsigned nboot;
	unsigned long difficulty, workers, status, refresh, announce, unreach, idle_s, per_ip, ttl;
	unsigned long eager, ihave_ms, snap_ms, map_max;
	unsigned long degree, max_degree, select_ms, min_link_ms, confirm_s, px_ms, ae_ms;
	unsigned long max_inbound, direct_rate, shutdown_s, mem_mb, recv_kb, send_kb, event_rate,
	    event_burst, pending_ip;
	int relay, young_inbound, log_level, log_json, check;
	mm_tls_backend_t backend;
	uint8_t prot[MM_NODE_PROTECT_MAX][32];
	unsigned nprot;
	mm_ban_t bans[MAX_CFG_BANS];
	const char *ban_text[MAX_CFG_BANS];
	unsigned nban;
	/* filled by validate(): the addresses resolved */
	struct sockaddr_storage ba[MAX_BOOTSTRAP];
	socklen_t bl[MAX_BOOTSTRAP];
	char listen_host[INET6_ADDRSTRLEN];
	uint16_t listen_port;
	char *buf;          /* the config file's text: values point into it */
	const char *config; /* its path */
	int owned;          /* opts_own: every string is a copy of its own */
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
    {"announce-ms", required_argument, NULL, 'a'},
    {"gossip-eager", required_argument, NULL, 'g'},
    {"ihave-ms", required_argument, NULL, 'y'},
    {"unreachable-timeout", required_argument, NULL, 'u'},
    {"idle-timeout", required_argument, NULL, 'W'},
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
    {"snapshot-ms", required_argument, NULL, 'z'},
    {"map-max", required_argument, NULL, 'j'},
    {"ae-ms", required_argument, NULL, 'A'},
    {"relay", no_argument, NULL, 'R'},
    {"young-inbound", no_argument, NULL, 'Y'},
    {"advertise", required_argument, NULL, 'V'},
    {"direct-rate", required_argument, NULL, 'Q'},
    {"admin", required_argument, NULL, 'H'},
    {"max-inbound", required_argument, NULL, 'I'},
    {"protect", required_argument, NULL, 'p'},
    {"ban", required_argument, NULL, 'x'},
    {"mem-budget", required_argument, NULL, 'm'},
    {"shutdown-timeout", required_argument, NULL, 'U'},
    {"log-level", required_argument, NULL, 'G'},
    {"log-format", required_argument, NULL, 'F'},
    {"log-file", required_argument, NULL, 'O'},
    {"check-config", no_argument, NULL, 'K'},
    {"recv-rate-kb", required_argument, NULL, 'i'},
    {"event-rate", required_argument, NULL, 'e'},
    {"event-burst", required_argument, NULL, 'E'},
    {"max-pending-per-ip", required_argument, NULL, 'q'},
    {"send-rate-kb", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

static void
opts_default(struct node_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->network = "main";
	o->difficulty = MM_POW_DEFAULT;
	o->status = 10;
	o->refresh = 600000;
	o->announce = 500;
	o->eager = 4;
	o->ihave_ms = 100;
	o->unreach = 180;
	o->idle_s = 30;
	o->per_ip = 8;
	o->ttl = 6;
	o->degree = 12;
	o->max_degree = 16;
	o->select_ms = 2000;
	o->min_link_ms = 10000;
	o->confirm_s = 60;
	o->px_ms = 30000;
	o->ae_ms = 60000;
	o->snap_ms = 300000;
	o->map_max = 131072;
	o->max_inbound = 16;
	o->direct_rate = 200000;
	o->event_rate = 1000;
	o->event_burst = 4096;
	o->pending_ip = 4;
	o->shutdown_s = 5;
	o->mem_mb = 50;
	o->log_level = mm__log_level; /* MESHMAP_LOG, or warn */
	o->backend = MM_TLS_OPENSSL;
}

static int
parse_hex_id(const char *v, uint8_t id[32])
{
	if (strlen(v) != 64 || strspn(v, "0123456789abcdefABCDEF") != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		char h[3] = {v[2 * i], v[2 * i + 1], 0};
		id[i] = (uint8_t)strtoul(h, NULL, 16);
	}
	return 0;
}

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
	case 'a':
		return mm_cmd_parse_uint(v, 0, 60000, &o->announce) != 0 ?
		    "--announce-ms: milliseconds in [0, 60000]" : NULL;
	case 'g':
		return mm_cmd_parse_uint(v, 0, 32, &o->eager) != 0 ?
		    "--gossip-eager: links in [0, 32]" : NULL;
	case 'y':
		return mm_cmd_parse_uint(v, 1, 10000, &o->ihave_ms) != 0 ?
		    "--ihave-ms: milliseconds in [1, 10000]" : NULL;
	case 'u':
		return mm_cmd_parse_uint(v, 0, 86400, &o->unreach) != 0 ?
		    "--unreachable-timeout: seconds in [0, 86400]" : NULL;
	case 'W':
		return mm_cmd_parse_uint(v, 3, 3600, &o->idle_s) != 0 ?
		    "--idle-timeout: seconds in [3, 3600]" : NULL;
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
	case 'R': /* flags; in a config file: relay = yes | no */
	case 'Y': {
		int *f = c == 'R' ? &o->relay : &o->young_inbound;
		if (v == NULL || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0 ||
		    strcmp(v, "true") == 0)
			*f = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "0") == 0 ||
		    strcmp(v, "false") == 0)
			*f = 0;
		else
			return c == 'R' ? "relay: yes or no" : "young-inbound: yes or no";
		return NULL;
	}
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
	case 'z':
		return mm_cmd_parse_uint(v, 10, 86400000, &o->snap_ms) != 0 ?
		    "--snapshot-ms: milliseconds in [10, 86400000]" : NULL;
	case 'j':
		return mm_cmd_parse_uint(v, 256, 1u << 24, &o->map_max) != 0 ?
		    "--map-max: peers in [256, 16777216]" : NULL;
	case 'X':
		return mm_cmd_parse_uint(v, 0, 86400000, &o->px_ms) != 0 ?
		    "--px-ms: milliseconds in [0, 86400000] (0: only on new links)" : NULL;
	case 'C':
		return mm_cmd_parse_uint(v, 1, 86400, &o->confirm_s) != 0 ?
		    "--confirm-timeout: seconds in [1, 86400]" : NULL;
	case 'p':
		if (o->nprot == MM_NODE_PROTECT_MAX)
			return "--protect: at most 64";
		return parse_hex_id(v, o->prot[o->nprot++]) != 0 ?
		    "--protect: a peer id, 64 hex digits" : NULL;
	case 'x': {
		if (o->nban == MAX_CFG_BANS)
			return "--ban: at most 256";
		mm_ban_t *b = &o->bans[o->nban];
		memset(b, 0, sizeof(*b));
		if (parse_hex_id(v, b->key) == 0)
			b->kind = MM_BAN_ID;
		else if (mm_ban_parse_addr(v, b->key, &b->plen) == 0)
			b->kind = MM_BAN_ADDR;
		else
			return "--ban: a peer id (64 hex digits), an IP address or a CIDR range";
		snprintf(b->reason, sizeof(b->reason), "config");
		o->ban_text[o->nban++] = v;
		return NULL;
	}
	case 'm':
		return mm_cmd_parse_uint(v, 8, 1048576, &o->mem_mb) != 0 ?
		    "--mem-budget: megabytes in [8, 1048576]" : NULL;
	case 'U':
		return mm_cmd_parse_uint(v, 0, 600, &o->shutdown_s) != 0 ?
		    "--shutdown-timeout: seconds in [0, 600]" : NULL;
	case 'G':
		return (o->log_level = mm_log_parse_level(v)) < 0 ?
		    "--log-level: error, warn, info or debug" : NULL;
	case 'F':
		if (strcmp(v, "text") == 0 || strcmp(v, "json") == 0) {
			o->log_json = strcmp(v, "json") == 0;
			return NULL;
		}
		return "--log-format: text or json";
	case 'O':
		o->log_file = v;
		return strlen(v) == 0 ? "--log-file: a file path" : NULL;
	case 'K':
		o->check = 1;
		return NULL;
	case 'q':
		return mm_cmd_parse_uint(v, 1, 65536, &o->pending_ip) != 0 ?
		    "--max-pending-per-ip: a whole number in [1, 65536]" : NULL;
	case 'e':
		return mm_cmd_parse_uint(v, 1, 100000000, &o->event_rate) != 0 ?
		    "--event-rate: events a second in [1, 100000000]" : NULL;
	case 'E':
		return mm_cmd_parse_uint(v, 1, 100000000, &o->event_burst) != 0 ?
		    "--event-burst: events in [1, 100000000]" : NULL;
	case 'i':
		return mm_cmd_parse_uint(v, 0, 100000000, &o->recv_kb) != 0 ?
		    "--recv-rate-kb: kilobytes a second in [0, 100000000] (0: no limit)" : NULL;
	case 'o':
		return mm_cmd_parse_uint(v, 0, 100000000, &o->send_kb) != 0 ?
		    "--send-rate-kb: kilobytes a second in [0, 100000000] (0: no limit)" : NULL;
	default:
		return "unknown option";
	}
}

/* The config file: one "name = value" per line, names as the long flags
 * (bootstrap, protect and ban repeatable), '#' starts a comment. The text
 * is kept in o->buf: the values point into it. 0, or -1 with the problem
 * (file:line: what) in err. */
#define CONFIG_MAX 65536
static int
read_config(struct node_opts *o, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	free(o->buf);
	o->buf = malloc(CONFIG_MAX + 1);
	if (o->buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	char *text = o->buf;
	size_t n = fread(text, 1, CONFIG_MAX, f);
	int toolong = !feof(f);
	fclose(f);
	if (toolong) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX);
		return -1;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: not a text file (NUL byte)", path);
		return -1;
	}
	o->config = path;
	unsigned lineno = 0;
	for (char *line = text, *next; line != NULL; line = next) {
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
			snprintf(err, errlen, "%s:%u: expected 'name = value', got '%s'", path,
			    lineno, name);
			return -1;
		}
		char *val = eq + 1 + strspn(eq + 1, " \t");
		do
			*eq = '\0';
		while (eq > name && strchr(" \t", *--eq) != NULL);
		const struct option *opt = node_longopts;
		while (opt->name != NULL && (strcmp(opt->name, name) != 0 ||
		    opt->val == 'c' || opt->val == 'h' || opt->val == 'K'))
			opt++;
		if (opt->name == NULL) {
			snprintf(err, errlen, "%s:%u: unknown setting '%s'", path, lineno, name);
			return -1;
		}
		const char *bad = set_opt(o, opt->val, val);
		if (bad != NULL) {
			snprintf(err, errlen, "%s:%u: %s (got '%s')", path, lineno, bad, val);
			return -1;
		}
	}
	return 0;
}

/* The strings of o: the flags' (argv), the file's (o->buf), defaults. */
#define OPT_STRINGS(o)                                                                 \
	const char **strs_[] = {&(o)->key, &(o)->listen_at, &(o)->network, &(o)->snapshot, \
	    &(o)->advertise, &(o)->admin, &(o)->log_file, &(o)->config}

/* Make every string a copy of its own and drop the file's text: a reload
 * replaces the settings whole (struct copy), and what it keeps from the
 * old ones must not point into a buffer that is gone. */
static int
opts_own(struct node_opts *o)
{
	OPT_STRINGS(o);
	int bad = 0;
	for (size_t i = 0; i < sizeof(strs_) / sizeof(strs_[0]); i++)
		if (*strs_[i] != NULL && (*strs_[i] = strdup(*strs_[i])) == NULL)
			bad = 1;
	for (unsigned i = 0; i < o->nboot; i++)
		if ((o->boots[i] = strdup(o->boots[i])) == NULL)
			bad = 1;
	for (unsigned i = 0; i < o->nban; i++)
		if ((o->ban_text[i] = strdup(o->ban_text[i])) == NULL)
			bad = 1;
	free(o->buf);
	o->buf = NULL;
	o->owned = 1;
	return bad ? -1 : 0;
}

static void
opts_free(struct node_opts *o)
{
	free(o->buf);
	o->buf = NULL;
	if (!o->owned)
		return;
	OPT_STRINGS(o);
	for (size_t i = 0; i < sizeof(strs_) / sizeof(strs_[0]); i++) {
		free((char *)*strs_[i]);
		*strs_[i] = NULL;
	}
	for (unsigned i = 0; i < o->nboot; i++)
		free((char *)o->boots[i]);
	for (unsigned i = 0; i < o->nban; i++)
		free((char *)o->ban_text[i]);
	o->nboot = o->nban = 0;
	o->owned = 0;
}

enum { PARSE_OK = 0, PARSE_HELP = 1, PARSE_BAD = 2, PARSE_USAGE = 3 };

/* Defaults, then the arguments in order (a config file where --config
 * stands; flags after it override it). At startup and at every reload. */
static int
parse_args(int argc, char **argv, struct node_opts *o, char *err, size_t errlen)
{
	opts_default(o);
	int c, configs = 0;
	optind = 0; /* glibc: start over (a reload parses the same argv again) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:l:b:n:d:w:s:c:h", node_longopts,
	    NULL)) != -1) {
		if (c == 'h')
			return PARSE_HELP;
		if (c == '?' || c == ':') {
			const char *arg = argv[optind - 1];
			snprintf(err, errlen, c == ':' ? "%s: a value is needed" :
			    "unrecognized option '%s'", arg);
			return PARSE_USAGE;
		}
		if (c == 'c') {
			if (configs++ != 0) {
				snprintf(err, errlen, "--config: at most one file");
				return PARSE_BAD;
			}
			if (read_config(o, optarg, err, errlen) != 0)
				return PARSE_BAD;
			continue;
		}
		const char *bad = set_opt(o, c, optarg);
		if (bad != NULL) {
			snprintf(err, errlen, "%s (got '%s')", bad, optarg);
			return PARSE_BAD;
		}
	}
	if (optind != argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return PARSE_BAD;
	}
	if (opts_own(o) != 0) {
		snprintf(err, errlen, "out of memory");
		return PARSE_BAD;
	}
	return PARSE_OK;
}

/* What the settings mean together, and the addresses: 0, or -1 with err. */
static int
validate(struct node_opts *o, char *err, size_t errlen)
{
	if (o->key == NULL) {
		snprintf(err, errlen, "--key FILE is required (create one with meshmap keygen)");
		return -1;
	}
	if (o->max_degree < o->degree) {
		snprintf(err, errlen, "--max-degree (%lu) is below --degree (%lu)",
		    o->max_degree, o->degree);
		return -1;
	}
	if (o->listen_at != NULL &&
	    mm_parse_listen(o->listen_at, o->listen_host, &o->listen_port) != 0) {
		snprintf(err, errlen, "--listen: '%s' is not HOST:PORT", o->listen_at);
		return -1;
	}
	for (unsigned i = 0; i < o->nboot; i++)
		if (mm_parse_hostport(o->boots[i], &o->ba[i], &o->bl[i], 0) != 0) {
			snprintf(err, errlen, "--bootstrap: '%s' is not a reachable HOST:PORT",
			    o->boots[i]);
			return -1;
		}
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	if (o->advertise != NULL && (mm_parse_hostport(o->advertise, &ss, &sl, 0) != 0 ||
	    (ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port) == 0)) {
		snprintf(err, errlen, "--advertise: '%s' is not a HOST:PORT with a port",
		    o->advertise);
		return -1;
	}
	if (o->admin != NULL && mm_parse_listen(o->admin, host, &port) != 0) {
		snprintf(err, errlen, "--admin: '%s' is not HOST:PORT", o->admin);
		return -1;
	}
	return 0;
}

/* *dst (owned) becomes a copy of src. */
static void
take_str(const char **dst, const char *src)
{
	free((char *)*dst);
	*dst = src != NULL ? strdup(src) : NULL;
}

static void
tunables_of(const struct node_opts *o, mm_node_tunables_t *t)
{
	t->degree = (unsigned)o->degree;
	t->max_degree = (unsigned)o->max_degree;
	t->max_inbound = (unsigned)o->max_inbound;
	t->relay = o->relay;
	t->select_ms = (uint32_t)o->select_ms;
	t->min_link_ms = (uint32_t)o->min_link_ms;
	t->px_ms = (uint32_t)o->px_ms;
	t->ae_ms = (uint32_t)o->ae_ms;
	t->direct_rate = (uint32_t)o->direct_rate;
}

static int
apply_logging(const struct node_opts *o, char *err, size_t errlen)
{
	int e = mm_log_open(o->log_file);
	if (e != 0) {
		snprintf(err, errlen, "--log-file %s: %s", o->log_file, strerror(-e));
		return -1;
	}
	mm_log_set_level(o->log_level);
	mm_log_set_json(o->log_json);
	return 0;
}

static int
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
same_ban(const mm_ban_t *a, const mm_ban_t *b)
{
	return a->kind == b->kind && a->plen == b->plen && memcmp(a->key, b->key, 16) == 0 &&
	    (a->kind != MM_BAN_ID || memcmp(a->key, b->key, 32) == 0);
}

static const char *
level_name(int l)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	return names[l & 3];
}

static void
say(const char *fmt, const char *what)
{
	printf(fmt, what);
	printf("\n");
	fflush(stdout);
}

/* SIGHUP: read the settings again (the same flags, the config file as it
 * is now), apply what can change at run time, name what cannot. A file
 * with an error changes nothing. Returns how many settings changed. */
static int
reload(struct node_opts *cur, int argc, char **argv, mm_node_t *node)
{
	struct node_opts *nw = malloc(sizeof(*nw));
	char err[512];
	if (nw == NULL)
		return 0;
	if (parse_args(argc, argv, nw, err, sizeof(err)) != PARSE_OK ||
	    validate(nw, err, sizeof(err)) != 0) {
		printf("reload failed: %s; the running settings stay\n", err);
		fflush(stdout);
		mm_log(MM_LOG_ERROR, "reload failed: %s; the running settings stay", err);
		opts_free(nw);
		free(nw);
		return 0;
	}
	int changed = 0;
#define FIXED_S(f, name)                                                               \
	if (!str_same(cur->f, nw->f)) {                                                \
		say("reload: %s cannot change at run time (restart to apply)", name); \
		take_str(&nw->f, cur->f);                                              \
	}
#define FIXED_N(f, name)                                                               \
	if (cur->f != nw->f) {                                                         \
		say("reload: %s cannot change at run time (restart to apply)", name); \
		nw->f = cur->f;                                                        \
	}
	FIXED_S(key, "key");
	FIXED_S(listen_at, "listen");
	FIXED_S(network, "network");
	FIXED_S(snapshot, "snapshot");
	FIXED_S(advertise, "advertise");
	FIXED_S(admin, "admin");
	FIXED_N(difficulty, "difficulty");
	FIXED_N(workers, "workers");
	FIXED_N(backend, "backend");
	FIXED_N(refresh, "refresh-ms");
	FIXED_N(announce, "announce-ms");
	FIXED_N(eager, "gossip-eager");
	FIXED_N(ihave_ms, "ihave-ms");
	FIXED_N(unreach, "unreachable-timeout");
	FIXED_N(idle_s, "idle-timeout");
	FIXED_N(snap_ms, "snapshot-ms");
	FIXED_N(map_max, "map-max");
	FIXED_N(per_ip, "max-conns-per-ip");
	FIXED_N(ttl, "ttl");
	FIXED_N(confirm_s, "confirm-timeout");
	FIXED_N(mem_mb, "mem-budget");
	FIXED_N(young_inbound, "young-inbound");
	FIXED_N(event_rate, "event-rate");
	FIXED_N(event_burst, "event-burst");
	FIXED_N(pending_ip, "max-pending-per-ip");
#undef FIXED_S
#undef FIXED_N
	mm_node_tunables_t a, b;
	tunables_of(cur, &a);
	tunables_of(nw, &b);
	if (memcmp(&a, &b, sizeof(a)) != 0) {
		int e = mm_node_reconfigure(node, &b);
		if (e != 0) {
			printf("reload: limits refused (%s); the old ones stay\n", strerror(-e));
			nw->degree = cur->degree, nw->max_degree = cur->max_degree;
			nw->max_inbound = cur->max_inbound, nw->relay = cur->relay;
			nw->select_ms = cur->select_ms, nw->min_link_ms = cur->min_link_ms;
			nw->px_ms = cur->px_ms, nw->ae_ms = cur->ae_ms;
			nw->direct_rate = cur->direct_rate;
		} else {
			printf("reload: limits and timers: degree %lu, max-degree %lu, relay %s, "
			    "max-inbound %lu, select-ms %lu, min-link-ms %lu, px-ms %lu, "
			    "ae-ms %lu, direct-rate %lu\n", nw->degree, nw->max_degree,
			    nw->relay ? "yes" : "no", nw->max_inbound, nw->select_ms,
			    nw->min_link_ms, nw->px_ms, nw->ae_ms, nw->direct_rate);
			changed++;
		}
	}
	/* logging: the file is reopened every time (logrotate moves it) */
	if (apply_logging(nw, err, sizeof(err)) != 0) {
		printf("reload: %s; logging unchanged\n", err);
		take_str(&nw->log_file, cur->log_file);
		nw->log_level = cur->log_level;
		nw->log_json = cur->log_json;
		(void)apply_logging(cur, err, sizeof(err));
	} else if (nw->log_level != cur->log_level || nw->log_json != cur->log_json ||
	    !str_same(nw->log_file, cur->log_file)) {
		printf("reload: logging: level %s, %s, to %s\n", level_name(nw->log_level),
		    nw->log_json ? "json" : "text", nw->log_file ? nw->log_file : "stderr");
		changed++;
	}
	if (nw->status != cur->status)
		changed++;
	if (nw->recv_kb != cur->recv_kb || nw->send_kb != cur->send_kb) {
		mm_net_set_rates(mm_node_net(node), (uint64_t)nw->recv_kb * 1000,
		    (uint64_t)nw->send_kb * 1000);
		printf("reload: bandwidth: receive %lu kB/s, send %lu kB/s (0: no limit)\n",
		    nw->recv_kb, nw->send_kb);
		changed++;
	}
	/* the bootstrap list: by address */
	for (unsigned i = 0; i < cur->nboot; i++) {
		unsigned j = 0;
		while (j < nw->nboot && memcmp(&cur->ba[i], &nw->ba[j], sizeof(nw->ba[j])) != 0)
			j++;
		if (j == nw->nboot && mm_node_bootstrap_remove(node,
		    (struct sockaddr *)&cur->ba[i], cur->bl[i]) == 0) {
			say("reload: bootstrap %s removed", cur->boots[i]);
			changed++;
		}
	}
	for (unsigned j = 0; j < nw->nboot; j++) {
		unsigned i = 0;
		while (i < cur->nboot && memcmp(&cur->ba[i], &nw->ba[j], sizeof(nw->ba[j])) != 0)
			i++;
		if (i == cur->nboot && mm_node_bootstrap(node, (struct sockaddr *)&nw->ba[j],
		    nw->bl[j]) == 0) {
			say("reload: bootstrap %s added", nw->boots[j]);
			changed++;
		}
	}
	/* bans and protected peers from the settings: the ones dropped are
	 * lifted, the new ones applied (those set through the admin interface
	 * are left alone) */
	for (unsigned i = 0; i < cur->nban; i++) {
		unsigned j = 0;
		while (j < nw->nban && !same_ban(&cur->bans[i], &nw->bans[j]))
			j++;
		if (j == nw->nban && mm_node_unban(node, cur->bans[i].kind, cur->bans[i].key,
		    cur->bans[i].plen) == 0) {
			say("reload: ban on %s lifted", cur->ban_text[i]);
			changed++;
		}
	}
	for (unsigned j = 0; j < nw->nban; j++) {
		unsigned i = 0;
		while (i < cur->nban && !same_ban(&cur->bans[i], &nw->bans[j]))
			i++;
		if (i == cur->nban) {
			nw->bans[j].created = (uint64_t)time(NULL);
			if (mm_node_ban(node, &nw->bans[j]) == 0) {
				say("reload: %s banned", nw->ban_text[j]);
				changed++;
			}
		}
	}
	for (unsigned i = 0; i < cur->nprot; i++) {
		unsigned j = 0;
		while (j < nw->nprot && memcmp(cur->prot[i], nw->prot[j], 32) != 0)
			j++;
		if (j == nw->nprot && mm_node_protect(node, cur->prot[i], 0) == 0) {
			char hex[65];
			mm_hex(cur->prot[i], 32, hex);
			say("reload: %s no longer protected", hex);
			changed++;
		}
	}
	for (unsigned j = 0; j < nw->nprot; j++) {
		unsigned i = 0;
		while (i < cur->nprot && memcmp(cur->prot[i], nw->prot[j], 32) != 0)
			i++;
		if (i == cur->nprot && mm_node_protect(node, nw->prot[j], 1) == 0) {
			char hex[65];
			mm_hex(nw->prot[j], 32, hex);
			say("reload: %s protected", hex);
			changed++;
		}
	}
	printf("reloaded %s: %d change%s applied\n", nw->config ? nw->config : "the flags",
	    changed, changed == 1 ? "" : "s");
	fflush(stdout);
	mm_log(MM_LOG_WARN, "reloaded %s: %d change%s applied",
	    nw->config ? nw->config : "the flags", changed, changed == 1 ? "" : "s");
	opts_free(cur);
	*cur = *nw;
	free(nw);
	return changed;
}

static void
print_config(const struct node_opts *o)
{
	printf("configuration ok%s%s\n", o->config ? ": " : "", o->config ? o->config : "");
	printf("  key %s, network %s, difficulty %lu\n", o->key, o->network, o->difficulty);
	printf("  listen %s, admin %s, advertise %s\n", o->listen_at ? o->listen_at : "(none)",
	    o->admin ? o->admin : "(none)", o->advertise ? o->advertise : "(none)");
	for (unsigned i = 0; i < o->nboot; i++)
		printf("  bootstrap %s\n", o->boots[i]);
	printf("  degree %lu, max-degree %lu, relay %s, max-inbound %lu, young-inbound %s\n",
	    o->degree, o->max_degree, o->relay ? "yes" : "no", o->max_inbound,
	    o->young_inbound ? "yes" : "no");
	printf("  select-ms %lu, min-link-ms %lu, px-ms %lu, ae-ms %lu, refresh-ms %lu, "
	    "announce-ms %lu\n", o->select_ms, o->min_link_ms, o->px_ms, o->ae_ms, o->refresh,
	    o->announce);
	printf("  gossip-eager %lu, ihave-ms %lu\n", o->eager, o->ihave_ms);
	printf("  unreachable-timeout %lu s, idle-timeout %lu s\n", o->unreach, o->idle_s);
	printf("  map-max %lu peers\n", o->map_max);
	printf("  ttl %lu, confirm-timeout %lu s, max-conns-per-ip %lu, direct-rate %lu, "
	    "event-rate %lu, event-burst %lu\n", o->ttl, o->confirm_s, o->per_ip, o->direct_rate,
	    o->event_rate, o->event_burst < o->event_rate ? o->event_rate : o->event_burst);
	printf("  recv-rate-kb %lu, send-rate-kb %lu (0: no limit)\n", o->recv_kb, o->send_kb);
	printf("  mem-budget %lu MB, shutdown-timeout %lu s, snapshot %s every %lu ms\n",
	    o->mem_mb, o->shutdown_s, o->snapshot ? o->snapshot : "(none)", o->snap_ms);
	printf("  log level %s, format %s, to %s\n", level_name(o->log_level),
	    o->log_json ? "json" : "text",
	    o->log_file ? o->log_file : "stderr");
	printf("  %u bans, %u protected peers\n", o->nban, o->nprot);
}

/* ---- a crash leaves its stack in the log ----------------------------------------
 *
 * On SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT the faulting thread writes
 * the signal and its stack to stderr (backtrace_symbols_fd: static
 * functions appear as "meshmap(+0xOFFSET)", which `addr2line -f -e
 * meshmap 0xOFFSET` names), then the signal's default action follows (a
 * core, if enabled). Only async-signal-safe calls in the handler; the
 * unwinder is loaded at start (its first use may allocate). Not in
 * sanitizer builds, whose own handlers report more. */
#ifndef MM_SANITIZER_BUILD
extern char __executable_start;

static void
put_str(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(2, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void
put_hex(uintptr_t v)
{
	char b[2 + 2 * sizeof(v) + 1];
	int i = (int)sizeof(b) - 1;
	b[i] = 0;
	do {
		b[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v != 0 && i > 2);
	b[--i] = 'x';
	b[--i] = '0';
	put_str(b + i);
}

static void
on_fatal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	void *frames[64];
	int n = backtrace(frames, 64);
	char num[4] = {(char)('0' + sig / 10), (char)('0' + sig % 10), 0, 0};
	put_str("meshmap: fatal signal ");
	put_str(sig >= 10 ? num : num + 1);
	put_str(" at address ");
	put_hex((uintptr_t)si->si_addr);
	put_str("; the executable's base ");
	put_hex((uintptr_t)&__executable_start);
	put_str("; stack:\n");
	backtrace_symbols_fd(frames, n, 2);
	put_str("meshmap: end of stack\n");
	raise(sig); /* SA_RESETHAND: the default action now */
}
#endif

static void
crash_handlers(void)
{
#ifndef MM_SANITIZER_BUILD
	void *warm[1];
	(void)backtrace(warm, 1);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)sigaction(sigs[i], &sa, NULL);
#endif
}

int
mm_cmd_node(int argc, char **argv)
{
	static struct node_opts o; /* large (bans, addresses): not on the stack */
	char err[512];
	switch (parse_args(argc, argv, &o, err, sizeof(err))) {
	case PARSE_HELP:
		node_usage(stdout);
		opts_free(&o);
		return MM_EXIT_OK;
	case PARSE_USAGE:
		fprintf(stderr, "meshmap node: %s\n", err);
		node_usage(stderr);
		opts_free(&o);
		return MM_EXIT_USAGE;
	case PARSE_BAD:
		fprintf(stderr, "meshmap node: %s\n", err);
		opts_free(&o);
		return MM_EXIT_USAGE;
	default:
		break;
	}
	if (validate(&o, err, sizeof(err)) != 0) {
		fprintf(stderr, "meshmap node: %s\n", err);
		opts_free(&o);
		return MM_EXIT_USAGE;
	}
	mm_identity_t id;
	if (mm_id_load(&id, o.key, err, sizeof(err)) != 0) {
		fprintf(stderr, "meshmap node: %s\n", err);
		opts_free(&o);
		return MM_EXIT_FAIL;
	}
	if (!mm_pow_ok(id.pub, id.nonce, (unsigned)o.difficulty)) {
		fprintf(stderr, "meshmap node: %s: proof of work has %u bits, the "
		    "network requires %lu\n", o.key, mm_pow_bits(id.pub, id.nonce),
		    o.difficulty);
		mm_id_free(&id);
		opts_free(&o);
		return MM_EXIT_FAIL;
	}
	if (o.relay && o.max_degree + o.max_inbound > MM_PS_MAX_NB) {
		fprintf(stderr, "meshmap node: relay mode: max_degree %lu + max_inbound %lu above "
		    "the map's claim limit %d\n", o.max_degree, o.max_inbound, MM_PS_MAX_NB);
		mm_id_free(&id);
		opts_free(&o);
		return MM_EXIT_FAIL;
	}
	if (o.check) {
		print_config(&o);
		mm_id_free(&id);
		opts_free(&o);
		return MM_EXIT_OK;
	}
	if (apply_logging(&o, err, sizeof(err)) != 0) {
		fprintf(stderr, "meshmap node: %s\n", err);
		mm_id_free(&id);
		opts_free(&o);
		return MM_EXIT_FAIL;
	}

	/* Signals are taken by this thread only (the workers block them). */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	crash_handlers();

	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = (unsigned)o.workers;
	rc.mem_budget = (size_t)o.mem_mb * 1000 * 1000;
#ifdef MM_SANITIZER_BUILD
	/* The sanitizers' shadow memory and quarantine are in the RSS the
	 * budget is measured on (a TSan node idles at ~70 MB): their builds
	 * scale it, or every node would refuse links from the start. */
	rc.mem_budget *= 8;
#endif
	mm_rt_t *rt;
	int e = mm_rt_create(&rc, &rt);
	if (e != 0) {
		fprintf(stderr, "meshmap node: runtime: %s\n", strerror(-e));
		mm_id_free(&id);
		opts_free(&o);
		return MM_EXIT_FAIL;
	}
	mm_node_config_t nc;
	mm_node_config_default(&nc);
	nc.net.id = &id;
	nc.net.network = o.network;
	nc.net.difficulty = (unsigned)o.difficulty;
	nc.net.backend = o.backend;
	nc.gossip.difficulty = (unsigned)o.difficulty;
	nc.refresh_ms = (uint32_t)o.refresh;
	nc.announce_ms = (uint32_t)o.announce;
	nc.gossip_eager = (unsigned)o.eager;
	nc.ihave_ms = (uint32_t)o.ihave_ms;
	nc.unreachable_s = (uint32_t)o.unreach;
	nc.net.idle_timeout_ms = (uint32_t)o.idle_s * 1000;
	nc.net.ping_interval_ms = nc.net.idle_timeout_ms / 3;
	nc.net.max_conns_per_ip = (uint32_t)o.per_ip;
	nc.net.max_pending_per_ip = (uint32_t)o.pending_ip;
	nc.gossip.ttl = (uint8_t)o.ttl;
	nc.degree = (unsigned)o.degree;
	nc.max_degree = (unsigned)o.max_degree;
	nc.map.confirm_timeout_s = (uint32_t)o.confirm_s;
	nc.map.max_peers = (uint32_t)o.map_max;
	nc.select_ms = (uint32_t)o.select_ms;
	nc.min_link_ms = (uint32_t)o.min_link_ms;
	nc.px_ms = (uint32_t)o.px_ms;
	nc.snapshot_path = o.snapshot;
	nc.snapshot_ms = (uint32_t)o.snap_ms;
	nc.ae_ms = (uint32_t)o.ae_ms;
	nc.relay = o.relay;
	nc.young_inbound = (uint8_t)o.young_inbound;
	nc.direct_rate = nc.direct_burst = (uint32_t)o.direct_rate;
	nc.event_rate = (uint32_t)o.event_rate;
	nc.event_burst = (uint32_t)o.event_burst;
	if (nc.event_burst < nc.event_rate)
		nc.event_burst = nc.event_rate;
	nc.max_inbound = (unsigned)o.max_inbound;
	nc.net.recv_rate = (uint64_t)o.recv_kb * 1000;
	nc.net.send_rate = (uint64_t)o.send_kb * 1000;
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
	printf("node %s network %s difficulty %lu\n", hex, o.network, o.difficulty);
	if (o.listen_at != NULL) {
		uint16_t bound = 0;
		e = mm_node_listen(node, o.listen_host, o.listen_port, &bound);
		if (e != 0) {
			fprintf(stderr, "meshmap node: --listen %s: %s\n", o.listen_at,
			    strerror(-e));
			rc_exit = MM_EXIT_FAIL;
			goto out;
		}
		printf("listening on %s:%u\n", o.listen_host, bound);
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
		(void)mm_parse_listen(o.admin, host, &aport); /* validated */
		e = mm_admin_start(node, host, aport, &bound, &admin);
		if (e != 0) {
			fprintf(stderr, "meshmap node: --admin %s: %s\n", o.admin, strerror(-e));
			rc_exit = MM_EXIT_FAIL;
			goto out;
		}
		printf("admin on %s:%u\n", host, bound);
	}
	for (unsigned i = 0; i < o.nban; i++) {
		o.bans[i].created = (uint64_t)time(NULL);
		if (mm_node_ban(node, &o.bans[i]) != 0)
			fprintf(stderr, "meshmap node: --ban %s: the ban list is full\n",
			    o.ban_text[i]);
	}
	for (unsigned i = 0; i < o.nprot; i++)
		(void)mm_node_protect(node, o.prot[i], 1); /* at most 64, as the node */
	for (unsigned i = 0; i < o.nboot; i++)
		mm_node_bootstrap(node, (struct sockaddr *)&o.ba[i], o.bl[i]);
	fflush(stdout);

	mm_psq_t *q = mm_psq_new();
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int sig = 0;
	for (;;) {
		struct timespec wait = {o.status ? (time_t)o.status : 3600, 0};
		sig = sigtimedwait(&sigs, NULL, &wait);
		clock_gettime(CLOCK_MONOTONIC, &now);
		double t = (double)(now.tv_sec - t0.tv_sec) +
		    (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
		if (sig == SIGHUP) {
			printf("reloading (SIGHUP)\n");
			(void)reload(&o, argc, argv, node);
			continue;
		}
		if (sig > 0) {
			printf("stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
			print_status(node, q, t);
			break;
		}
		if (o.status)
			print_status(node, q, t);
	}
	mm_psq_free(q);
	/* Graceful: goodbye to every peer, snapshot saved, then wait (at most
	 * shutdown_s; a second signal cuts it short) for the links to close. */
	unsigned had = mm_node_peers(node);
	struct timespec g0;
	clock_gettime(CLOCK_MONOTONIC, &g0);
	if (mm_node_goodbye(node) == 0) {
		uint64_t limit_ms = (uint64_t)o.shutdown_s * 1000;
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			uint64_t el = (uint64_t)(now.tv_sec - g0.tv_sec) * 1000 +
			    (uint64_t)((now.tv_nsec - g0.tv_nsec) / 1000000);
			if (mm_node_peers(node) == 0 || el >= limit_ms)
				break;
			struct timespec tick = {0, 20 * 1000 * 1000};
			if (sigtimedwait(&sigs, NULL, &tick) > 0) {
				printf("second signal: stopping now\n");
				break;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	printf("goodbye: %u of %u links closed in %.2f s\n", had - mm_node_peers(node), had,
	    (double)(now.tv_sec - g0.tv_sec) + (double)(now.tv_nsec - g0.tv_nsec) / 1e9);
	fflush(stdout);
out:
	mm_admin_stop(admin);
	mm_rt_stop(rt);
	if (node != NULL && o.snapshot != NULL) {
		mm_node_stats_t ns;
		mm_node_stats(node, &ns);
		printf("snapshot: %s, saved %llu times\n", o.snapshot,
		    (unsigned long long)ns.snapshots_saved);
	}
	mm_node_destroy(node);
	mm_rt_destroy(rt);
	mm_id_free(&id);
	fflush(stdout);
	opts_free(&o);
	(void)mm_log_open(NULL);
	return rc_exit;
}
