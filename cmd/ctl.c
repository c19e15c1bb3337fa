/* meshmap ctl: the client of a node's admin interface (actors/admin.h). */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"
#include "conn.h"

static void
ctl_usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap ctl [--admin HOST:PORT] [--json] COMMAND\n"
	    "\n"
	    "Asks a running node (started with --admin) and prints the answer.\n"
	    "\n"
	    "  health     is it up: links, map size, components\n"
	    "  metrics    every counter, in Prometheus text format\n"
	    "  peers      the peer table (a table; --json for JSON)\n"
	    "  map        the map as JSON (peers, edges and their state)\n"
	    "  map --dot  the map for Graphviz: meshmap ctl map --dot | dot -Tpng > map.png\n"
	    "  bans       the ban list (a table; --json for JSON)\n"
	    "  ban TARGET [--seconds N] [--reason TEXT]\n"
	    "             ban a peer id (64 hex digits), an IP address or a CIDR range,\n"
	    "             for N seconds (default 0: until unbanned); links close at once\n"
	    "  unban TARGET\n"
	    "  connect HOST:PORT  dial that address now (an ordinary link: protect it to\n"
	    "             keep it)\n"
	    "  disconnect PEER    close the link to PEER (it is not redialled for a minute)\n"
	    "  protect PEER       never drop PEER's link; admit it even when full\n"
	    "  unprotect PEER\n"
	    "  protected  the protected peers\n"
	    "  PEER is a peer id (64 hex digits) or a prefix of 8 or more, as the peers\n"
	    "  table prints it.\n"
	    "\n"
	    "  -a, --admin HOST:PORT   the node's admin address (default 127.0.0.1:7947)\n"
	    "      --json              JSON instead of a table (peers, bans, protected)\n"
	    "\n"
	    "examples:\n"
	    "  meshmap ctl peers\n"
	    "  meshmap ctl --admin 127.0.0.1:9000 ban 10.0.0.0/8 --seconds 3600 --reason spam\n"
	    "  meshmap ctl protect 3fa4c2d1e0b9\n"
	    "  meshmap ctl metrics | grep meshmap_links\n"
	    "\n"
	    "Exit status: 0 answered, 1 the node could not be reached or refused, 2 usage.\n");
}

/* GET path from the admin address; the body goes to stdout. */
static int
request(const char *admin, const char *method, const char *path)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (mm_parse_hostport(admin, &ss, &sl, 0) != 0) {
		fprintf(stderr, "meshmap ctl: --admin: '%s' is not HOST:PORT\n", admin);
		return MM_EXIT_USAGE;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) != 0) {
		fprintf(stderr, "meshmap ctl: cannot reach %s: %s (is the node running with "
		    "--admin?)\n", admin, strerror(errno));
		if (fd >= 0)
			close(fd);
		return MM_EXIT_FAIL;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", method, path, admin);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return MM_EXIT_FAIL;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (;;) {
		if (poll(&p, 1, 10000) != 1) {
			fprintf(stderr, "meshmap ctl: %s: no answer within 10 s\n", admin);
			free(buf);
			close(fd);
			return MM_EXIT_FAIL;
		}
		if (len == cap) {
			char *nb = realloc(buf, 2 * cap + 1);
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	int code = 0;
	if (body == NULL || sscanf(buf, "HTTP/1.1 %d", &code) != 1) {
		fprintf(stderr, "meshmap ctl: %s: not an HTTP answer\n", admin);
		free(buf);
		return MM_EXIT_FAIL;
	}
	body += 4;
	fwrite(body, 1, len - (size_t)(body - buf), code == 200 ? stdout : stderr);
	free(buf);
	return code == 200 ? MM_EXIT_OK : MM_EXIT_FAIL;
}

static int
get(const char *admin, const char *path)
{
	return request(admin, "GET", path);
}

/* A query value: letters, digits and -._:/ as they are, the rest %XX. */
static void
qenc(char *out, size_t cap, const char *v)
{
	size_t o = 0;
	for (; *v && o + 4 < cap; v++) {
		unsigned char c = (unsigned char)*v;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._:/", c) != NULL)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
}

int
mm_cmd_ctl(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"admin", required_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'j'},
	    {"dot", no_argument, NULL, 'd'},
	    {"seconds", required_argument, NULL, 's'},
	    {"reason", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *admin = "127.0.0.1:7947", *reason = NULL;
	unsigned long seconds = 0;
	int json = 0, dot = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': admin = optarg; break;
		case 'j': json = 1; break;
		case 'd': dot = 1; break;
		case 'r': reason = optarg; break;
		case 's':
			if (mm_cmd_parse_uint(optarg, 0, 100u * 365 * 86400, &seconds) != 0) {
				fprintf(stderr, "meshmap ctl: --seconds: a whole number (0: never "
				    "expires)\n");
				return MM_EXIT_USAGE;
			}
			break;
		case 'h': ctl_usage(stdout); return MM_EXIT_OK;
		default: ctl_usage(stderr); return MM_EXIT_USAGE;
		}
	}
	/* commands with one argument: POST /<command>?<key>=<argument> */
	static const struct {
		const char *cmd, *key, *what;
	} posts[] = {
	    {"ban", "target", "TARGET (a peer id, an IP or a CIDR range)"},
	    {"unban", "target", "TARGET (a peer id, an IP or a CIDR range)"},
	    {"connect", "addr", "HOST:PORT"},
	    {"disconnect", "target", "PEER (an id or a prefix of 8+ hex digits)"},
	    {"protect", "target", "PEER (an id or a prefix of 8+ hex digits)"},
	    {"unprotect", "target", "PEER (an id or a prefix of 8+ hex digits)"},
	};
	for (size_t k = 0; optind < argc && k < sizeof(posts) / sizeof(posts[0]); k++) {
		if (strcmp(argv[optind], posts[k].cmd) != 0)
			continue;
		if (optind + 2 != argc) {
			fprintf(stderr, "meshmap ctl: %s %s\n", posts[k].cmd, posts[k].what);
			return MM_EXIT_USAGE;
		}
		char t[200], r[200] = "", path[512];
		qenc(t, sizeof(t), argv[optind + 1]);
		if (reason != NULL)
			qenc(r, sizeof(r), reason);
		if (k == 0)
			snprintf(path, sizeof(path), "/ban?target=%s&seconds=%lu%s%s", t, seconds,
			    reason != NULL ? "&reason=" : "", r);
		else
			snprintf(path, sizeof(path), "/%s?%s=%s", posts[k].cmd, posts[k].key, t);
		return request(admin, "POST", path);
	}
	if (optind != argc - 1) {
		fprintf(stderr, "meshmap ctl: one command: health, metrics, peers, map, bans, "
		    "protected, ban, unban, connect, disconnect, protect, unprotect\n");
		return MM_EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "bans") == 0)
		return get(admin, json ? "/bans" : "/bans?format=text");
	if (strcmp(cmd, "health") == 0)
		return get(admin, "/health");
	if (strcmp(cmd, "metrics") == 0)
		return get(admin, "/metrics");
	if (strcmp(cmd, "peers") == 0)
		return get(admin, json ? "/peers" : "/peers?format=text");
	if (strcmp(cmd, "map") == 0)
		return get(admin, dot ? "/map?format=dot" : "/map");
	if (strcmp(cmd, "protected") == 0)
		return get(admin, json ? "/protected" : "/protected?format=text");
	fprintf(stderr, "meshmap ctl: unknown command '%s' (meshmap ctl --help lists them)\n",
	    cmd);
	return MM_EXIT_USAGE;
}

static void
map_usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap map [--admin HOST:PORT] [--dot | --json]\n"
	    "\n"
	    "The network as a running node sees it, from its admin interface.\n"
	    "  --json   peers and edges: {\"peers\":[{\"id\",\"seq\"}],\n"
	    "           \"edges\":[{\"a\",\"b\",\"state\",\"bridge\"}]} (the default)\n"
	    "  --dot    Graphviz: confirmed edges solid, one-sided (phantom) dashed,\n"
	    "           bridges red and thick; peers by the first 8 hex digits of their id\n"
	    "  -a, --admin HOST:PORT   the node's admin address (default 127.0.0.1:7947)\n"
	    "\n"
	    "examples:\n"
	    "  meshmap map --dot | dot -Tpng > map.png\n"
	    "  meshmap map --json | jq '.edges | map(select(.bridge)) | length'\n"
	    "\n"
	    "Exit status: 0 answered, 1 the node could not be reached, 2 usage.\n");
}

int
mm_cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"admin", required_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'j'},
	    {"dot", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *admin = "127.0.0.1:7947";
	int dot = 0, json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': admin = optarg; break;
		case 'j': json = 1; break;
		case 'd': dot = 1; break;
		case 'h': map_usage(stdout); return MM_EXIT_OK;
		default: map_usage(stderr); return MM_EXIT_USAGE;
		}
	}
	if (optind != argc || (dot && json)) {
		fprintf(stderr, "meshmap map: %s\n", dot && json ? "--dot or --json, not both" :
		    "unexpected argument");
		return MM_EXIT_USAGE;
	}
	return get(admin, dot ? "/map?format=dot" : "/map");
}
