/* Connection introductions: A - B - C, where C does not listen (nobody
 * can dial it, so nobody can give A its address) and picks no neighbours
 * itself. A's selector finds C in its map, not in its address book, and
 * asks it, by a direct message through B, to dial A back; C does, and A -
 * C becomes a confirmed link. */
#include <errno.h>
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8

int
main(void)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	mm_identity_t ids[3];
	mm_node_t *nodes[3];
	uint16_t ports[3] = {0};
	for (int i = 0; i < 3; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "intro");
		c.select_ms = i == 0 ? 100 : 0; /* only A chooses */
		char err[256] = "";
		CHECK_EQ(mm_node_create(rt, &c, &nodes[i], err, sizeof(err)), 0);
		if (i < 2) /* C does not listen */
			CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
	}
	/* A's advertised address, set explicitly (as --advertise does; port 0
	 * is refused) */
	struct sockaddr_in adv = {.sin_family = AF_INET, .sin_port = 0};
	adv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(mm_node_advertise(nodes[0], (struct sockaddr *)&adv), -EINVAL);
	adv.sin_port = htons(ports[0]);
	CHECK_EQ(mm_node_advertise(nodes[0], (struct sockaddr *)&adv), 0);
	node_dial(nodes[0], ports[1]);
	node_dial(nodes[2], ports[1]);
	WAIT_FOR(node_edge(nodes[0], ids[0].id, ids[2].id) == MM_EDGE_CONFIRMED);
	mm_node_stats_t a, c;
	mm_node_stats(nodes[0], &a);
	mm_node_stats(nodes[2], &c);
	CHECK_GE(a.intros_sent, 1);
	CHECK_GE(c.intros_dialled, 1);
	CHECK_EQ(mm_node_peers(nodes[2]), 2);
	fprintf(stderr, "   A introduced itself to C through B; C dialled A "
	    "(%llu introduction(s) sent)\n", (unsigned long long)a.intros_sent);
	mm_rt_stop(rt);
	for (int i = 0; i < 3; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
	fprintf(stderr, "test_intro: ok\n");
	return 0;
}
