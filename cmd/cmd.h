#ifndef MESHMAP_CMD_H
#define MESHMAP_CMD_H

/* Exit codes of the meshmap command (documented in docs/OPERATIONS.md). */
enum {
	MM_EXIT_OK = 0,
	MM_EXIT_FAIL = 1,  /* the command ran and failed */
	MM_EXIT_USAGE = 2  /* bad command line */
};

int mm_cmd_demo(int argc, char **argv);
int mm_cmd_keygen(int argc, char **argv);
int mm_cmd_node(int argc, char **argv);
int mm_cmd_ctl(int argc, char **argv);
int mm_cmd_map(int argc, char **argv);
int mm_cmd_flood(int argc, char **argv);
int mm_cmd_probe(int argc, char **argv);

/* Parse an unsigned decimal in [min, max]; 0 on success, -1 if invalid. */
int mm_cmd_parse_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out);

#endif
