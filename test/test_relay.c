/* Relay mode: inbound links do not count towards the degree and are kept.
 * Five nodes dial one hub. A relay hub (degree 1, max_inbound 4) keeps 4
 * inbound links for good, turns the fifth away ("no slot", with a peers
 * list), and dials one link of its own; a normal hub (degree 1,
 * max_degree 4) takes 4 but its selector trims them back to its degree. */
#include <string.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8

static void
run(int relay)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	mm_identity_t ids[6];
	mm_node_t *nodes[6];
	uint16_t ports[6];
	for (int i = 0; i < 6; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "relay");
		c.select_ms = 0; /* the spokes keep exactly their one link */
		if (i == 0) {
			c.degree = 1;
			c.max_degree = relay ? 1 : 4;
			c.relay = relay;
			c.max_inbound = 4;
			c.select_ms = 100;
			c.min_link_ms = 0;
		}
		char err[256] = "";
		int r = mm_node_create(rt, &c, &nodes[i], err, sizeof(err));
		if (r != 0)
			fprintf(stderr, "%s\n", err);
		CHECK_EQ(r, 0);
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
	}
	for (int i = 1; i <= 4; i++) {
		node_dial(nodes[i], ports[0]);
		WAIT_FOR(mm_node_peers(nodes[0]) == (unsigned)i || !relay);
	}
	mm_node_stats_t s;
	if (relay) {
		/* the fifth is turned away with addresses of the others */
		node_dial(nodes[5], ports[0]);
		WAIT_FOR((mm_node_stats(nodes[0], &s), s.refused_full >= 1));
		mm_node_stats_t r5;
		WAIT_FOR((mm_node_stats(nodes[5], &r5), r5.px_received >= 1));
		/* Its own degree (1 link it dials) is apart from the inbound
		 * ones: it dials the one peer it knows and is not linked to
		 * (the fifth), and keeps all 5 through many selection rounds. */
		WAIT_FOR(mm_node_peers(nodes[0]) == 5);
		test_sleep_ms(1000); /* ten selection rounds of 100 ms */
		CHECK_EQ(mm_node_peers(nodes[0]), 5);
		mm_node_stats(nodes[0], &s);
		CHECK_EQ(s.kicks, 0);
		CHECK_GE(s.dials, 1);
		fprintf(stderr, "   relay hub: 4 inbound links kept, the fifth refused, "
		    "then dialled as its own link\n");
	} else {
		/* a normal hub takes all 4 (max_degree) and trims them back to
		 * its degree: 3 dropped (the spokes do not dial again) */
		WAIT_FOR((mm_node_stats(nodes[0], &s), s.kicks == 3 &&
		    mm_node_peers(nodes[0]) == 1));
		CHECK_EQ(s.peers_up, 4);
		fprintf(stderr, "   normal hub: trimmed to 1 link (%llu dropped)\n",
		    (unsigned long long)s.kicks);
	}
	mm_rt_stop(rt);
	for (int i = 0; i < 6; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
}

int
main(void)
{
	run(1);
	run(0);
	/* a relay's links must all fit the map's claim limit */
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 1;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	mm_identity_t id;
	CHECK_EQ(mm_id_generate(&id, DIFF, NULL), 0);
	mm_node_config_t c;
	mm_node_config_default(&c);
	c.mem_shed = 0; /* several nodes share this process */
	c.net.id = &id;
	c.net.network = "relay";
	c.net.difficulty = DIFF;
	c.relay = 1;
	c.max_inbound = 20; /* + max_degree 16 > 32 */
	mm_node_t *n = NULL;
	char err[256] = "";
	CHECK_EQ(mm_node_create(rt, &c, &n, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "claim limit") != NULL);
	mm_rt_stop(rt);
	mm_id_free(&id);
	mm_rt_destroy(rt);
	fprintf(stderr, "test_relay: ok\n");
	return 0;
}
