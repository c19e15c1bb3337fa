/* Helpers for tests that run nodes in one process. */
#ifndef MM_TEST_NODE_UTIL_H
#define MM_TEST_NODE_UTIL_H

#include <arpa/inet.h>

#include "node.h"
#include "test.h"

/* A node config for tests: a fresh identity of `diff` bits on network
 * `net`, the same difficulty for keys and events. */
static inline void
node_test_config(mm_node_config_t *c, mm_identity_t *id, unsigned diff, const char *net)
{
	CHECK_EQ(mm_id_generate(id, diff, NULL), 0);
	mm_node_config_default(c);
	c->net.id = id;
	c->net.network = net;
	c->net.difficulty = diff;
	c->gossip.difficulty = diff;
	c->mem_shed = 0; /* many nodes share this process's RSS */
}

/* from dials 127.0.0.1:port */
static inline void
node_dial(mm_node_t *from, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(mm_node_dial(from, (struct sockaddr *)&a, sizeof(a)), 0);
}

/* The state of edge x - y in at's map (NONE if either is unknown). */
static inline enum mm_ps_edge
node_edge(const mm_node_t *at, const uint8_t *x, const uint8_t *y)
{
	const mm_ps_t *ps = mm_node_map(at);
	mm_pidx_t a = mm_ps_lookup(ps, x), b = mm_ps_lookup(ps, y);
	if (a == MM_PIDX_NONE || b == MM_PIDX_NONE)
		return MM_EDGE_NONE;
	return mm_ps_edge_state(ps, a, b);
}

#endif
