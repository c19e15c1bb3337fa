/* meshmap: one binary, one subcommand per job. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <meshmap.h>

#include "cmd.h"

#ifdef MM_HAVE_JEMALLOC
/* jemalloc reads this at start (MALLOC_CONF in the environment overrides
 * it). Pages freed under a flood go back to the system after 100 ms
 * instead of 10 s: a relay of 4 KB direct messages peaked at 77 MB RSS
 * with the default and 28 MB with this, at the same throughput
 * (bench/README.md), and the budget is measured on the RSS. */
const char *malloc_conf = "dirty_decay_ms:100,muzzy_decay_ms:0";
#endif

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap <command> [options]\n"
	    "\n"
	    "commands:\n"
	    "  demo     run the actor runtime on a token ring and print its counters\n"
	    "  keygen   create a node identity (Ed25519 key + proof of work)\n"
	    "  node     run a node\n"
	    "  ctl      ask a running node (its admin interface): health, metrics, peers,\n"
	    "           bans; ban, connect, disconnect, protect\n"
	    "  map      the network as a running node sees it (JSON, or Graphviz DOT)\n"
	    "  flood    load a node with real traffic (and hostile traffic) and measure\n"
	    "           what it delivers\n"
	    "  probe    misbehave once towards a node (a bad frame, a bad hello, ...)\n"
	    "           and report how it answered; or ping it and time the answers\n"
	    "  sim      simulate thousands of nodes of the same logic on a virtual\n"
	    "           clock, deterministically (runs meshmap-sim)\n"
	    "\n"
	    "options:\n"
	    "  -h, --help     this help; 'meshmap <command> --help' for a command\n"
	    "  -V, --version  print the version\n"
	    "\n"
	    "examples:\n"
	    "  meshmap keygen --out node.key\n"
	    "  meshmap node --key node.key --listen 0.0.0.0:7946 --admin 127.0.0.1:7947\n"
	    "  meshmap ctl peers\n"
	    "  meshmap map --dot | dot -Tpng > map.png\n"
	    "\n"
	    "exit codes: 0 success, 1 failure, 2 bad command line\n");
}

int
mm_cmd_parse_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The simulator is its own binary (it links the simulated runtime instead
 * of the real one): meshmap-sim beside this one, else on PATH. */
static int
run_sim(int argc, char **argv)
{
	(void)argc;
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	argv[0] = "meshmap-sim";
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/meshmap-sim", self);
			execv(path, argv);
		}
	}
	execvp("meshmap-sim", argv);
	fprintf(stderr, "meshmap: cannot run meshmap-sim: %s\n", strerror(errno));
	return MM_EXIT_FAIL;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return MM_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return MM_EXIT_OK;
	}
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		printf("meshmap %s\n", MESHMAP_VERSION);
		return MM_EXIT_OK;
	}
	if (strcmp(cmd, "demo") == 0)
		return mm_cmd_demo(argc - 1, argv + 1);
	if (strcmp(cmd, "keygen") == 0)
		return mm_cmd_keygen(argc - 1, argv + 1);
	if (strcmp(cmd, "node") == 0)
		return mm_cmd_node(argc - 1, argv + 1);
	if (strcmp(cmd, "ctl") == 0)
		return mm_cmd_ctl(argc - 1, argv + 1);
	if (strcmp(cmd, "map") == 0)
		return mm_cmd_map(argc - 1, argv + 1);
	if (strcmp(cmd, "probe") == 0)
		return mm_cmd_probe(argc - 1, argv + 1);
	if (strcmp(cmd, "flood") == 0)
		return mm_cmd_flood(argc - 1, argv + 1);
	if (strcmp(cmd, "sim") == 0)
		return run_sim(argc - 1, argv + 1);
	fprintf(stderr, "meshmap: unknown command '%s' (try 'meshmap --help')\n",
	    cmd);
	return MM_EXIT_USAGE;
}
