/* meshmap: one binary, one subcommand per job. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (strcmp(cmd, "flood") == 0)
		return mm_cmd_flood(argc - 1, argv + 1);
	fprintf(stderr, "meshmap: unknown command '%s' (try 'meshmap --help')\n",
	    cmd);
	return MM_EXIT_USAGE;
}
