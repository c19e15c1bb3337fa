/* meshmap keygen: a new identity (Ed25519 key + proof of work), written to
 * a key file with mode 0600; prints the peer id. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "identity.h"

static void
keygen_usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap keygen [--out FILE] [--difficulty BITS] [--force]\n"
	    "\n"
	    "Creates a node identity: an Ed25519 key whose proof of work,\n"
	    "SHA-256(public key || nonce), starts with BITS zero bits, written to\n"
	    "FILE with mode 0600. Prints the peer id (SHA-256 of the public key).\n"
	    "\n"
	    "  -o, --out FILE         key file (default: meshmap.key)\n"
	    "  -d, --difficulty BITS  proof-of-work bits, 0..40 (default %d, the\n"
	    "                         network's; each extra bit doubles the time)\n"
	    "  -f, --force            replace FILE if it exists\n"
	    "\n"
	    "example: meshmap keygen --out /var/lib/meshmap/node.key\n",
	    MM_POW_DEFAULT);
}

int
mm_cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"difficulty", required_argument, NULL, 'd'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *out = "meshmap.key";
	unsigned long difficulty = MM_POW_DEFAULT;
	int force = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:d:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'f': force = 1; break;
		case 'd':
			if (mm_cmd_parse_uint(optarg, 0, MM_POW_MAX, &difficulty) != 0) {
				fprintf(stderr, "meshmap keygen: --difficulty: '%s' is not a "
				    "whole number in [0, %d]\n", optarg, MM_POW_MAX);
				return MM_EXIT_USAGE;
			}
			break;
		case 'h': keygen_usage(stdout); return MM_EXIT_OK;
		default: keygen_usage(stderr); return MM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "meshmap keygen: unexpected argument '%s'\n", argv[optind]);
		return MM_EXIT_USAGE;
	}
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	mm_identity_t id;
	uint64_t tries = 0;
	int err = mm_id_generate(&id, (unsigned)difficulty, &tries);
	if (err != 0) {
		fprintf(stderr, "meshmap keygen: key generation failed: %s\n",
		    strerror(-err));
		return MM_EXIT_FAIL;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	err = mm_id_save(&id, out, force);
	if (err != 0) {
		fprintf(stderr, "meshmap keygen: %s: %s%s\n", out, strerror(-err),
		    err == -EEXIST ? " (use --force to replace it)" : "");
		mm_id_free(&id);
		return MM_EXIT_FAIL;
	}
	char hex[65];
	mm_hex(id.id, 32, hex);
	double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%s\n", hex);
	fprintf(stderr, "meshmap keygen: wrote %s (proof of work: %lu bits, %llu "
	    "tries, %.2f s)\n", out, difficulty, (unsigned long long)tries, dt);
	mm_id_free(&id);
	return MM_EXIT_OK;
}
