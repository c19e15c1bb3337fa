/* The node's snapshot: addresses and bans from the last run are loaded at
 * create (the node redials a peer it knew with no bootstrap given, and a
 * ban holds), saved at stop (the file then holds the peer's verified
 * address and the bans), and a damaged file is ignored, not trusted. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node.h"
#include "snapshot.h"
#include "test.h"

#define DIFF 8

static mm_node_t *
mk(mm_rt_t *rt, mm_identity_t *id, const char *snap)
{
	CHECK_EQ(mm_id_generate(id, DIFF, NULL), 0);
	mm_node_config_t c;
	mm_node_config_default(&c);
	c.mem_shed = 0; /* several nodes share this process */
	c.net.id = id;
	c.net.network = "persist";
	c.net.difficulty = DIFF;
	c.gossip.difficulty = DIFF;
	c.select_ms = 100;
	c.snapshot_path = snap;
	mm_node_t *n;
	char err[256] = "";
	int rc = mm_node_create(rt, &c, &n, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	CHECK_EQ(rc, 0);
	return n;
}

int
main(void)
{
	char dir[] = "/tmp/mm_persist_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256], bad[256];
	snprintf(path, sizeof(path), "%s/node.snap", dir);
	snprintf(bad, sizeof(bad), "%s/bad.snap", dir);

	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);

	mm_identity_t ib, ia, ic;
	mm_node_t *b = mk(rt, &ib, NULL);
	uint16_t bport;
	CHECK_EQ(mm_node_listen(b, "127.0.0.1", 0, &bport), 0);

	/* Last run's file: B's address, a banned id, a banned range. */
	uint8_t liar[32];
	memset(liar, 0x77, sizeof(liar));
	{
		mm_ps_config_t pc;
		mm_ps_config_default(&pc);
		pc.max_peers = 64;
		mm_ps_t *ps;
		CHECK_EQ(mm_ps_create(&pc, &ps), 0);
		mm_ps_addr_t a = {.port = bport};
		a.ip[10] = a.ip[11] = 0xff;
		a.ip[12] = 127;
		a.ip[15] = 1;
		CHECK_EQ(mm_ps_set_addr(ps, ib.id, &a, 1), 0);
		mm_bans_t *bans = mm_bans_new(16);
		mm_ban_t x = {.kind = MM_BAN_ID, .created = 1, .expires = 0};
		memcpy(x.key, liar, 32);
		snprintf(x.reason, sizeof(x.reason), "bad signature");
		CHECK_EQ(mm_bans_add(bans, &x), 0);
		mm_ban_t r = {.kind = MM_BAN_ADDR, .created = 1, .expires = 0};
		CHECK_EQ(mm_ban_parse_addr("10.9.0.0/16", r.key, &r.plen), 0);
		CHECK_EQ(mm_bans_add(bans, &r), 0);
		CHECK_EQ(mm_snap_save(path, ps, bans, (uint64_t)time(NULL), 1), 0);
		mm_bans_free(bans);
		mm_ps_destroy(ps);
	}
	FILE *f = fopen(bad, "w");
	CHECK(f != NULL);
	fputs("MMSNAP\r\n this is not a snapshot", f);
	fclose(f);

	/* A: no bootstrap, only the snapshot. */
	mm_node_t *a = mk(rt, &ia, path);
	mm_node_stats_t s;
	mm_node_stats(a, &s);
	CHECK_EQ(s.snapshot_peers_loaded, 1);
	CHECK_EQ(s.snapshot_bans_loaded, 2);
	CHECK(mm_node_banned_id(a, liar));
	CHECK(!mm_node_banned_id(a, ib.id));
	WAIT_FOR(mm_node_peers(a) == 1 && mm_node_peers(b) == 1);
	fprintf(stderr, "   restarted node redialled the peer it knew (no bootstrap)\n");

	/* C: a damaged file is refused as a whole; the node starts clean. */
	mm_node_t *c = mk(rt, &ic, bad);
	mm_node_stats(c, &s);
	CHECK_EQ(s.snapshot_peers_loaded, 0);
	CHECK_EQ(s.snapshot_bans_loaded, 0);
	CHECK_EQ(mm_node_peers(c), 0);

	mm_rt_stop(rt);
	mm_node_stats(a, &s);
	CHECK_GE(s.snapshots_saved, 1);
	mm_node_destroy(a);
	mm_node_destroy(b);
	mm_node_destroy(c);
	mm_rt_destroy(rt);

	/* What A saved at stop: B's verified address and both bans. */
	mm_ps_config_t pc;
	mm_ps_config_default(&pc);
	pc.max_peers = 64;
	mm_ps_t *ps;
	CHECK_EQ(mm_ps_create(&pc, &ps), 0);
	mm_bans_t *bans = mm_bans_new(16);
	char err[256];
	uint32_t np = 0, nb = 0;
	CHECK_EQ(mm_snap_load(path, ps, bans, (uint64_t)time(NULL), 1, err, sizeof(err),
	    &np, &nb), 0);
	CHECK_EQ(np, 1);
	CHECK_EQ(nb, 2);
	mm_pidx_t bi = mm_ps_lookup(ps, ib.id);
	CHECK(bi != MM_PIDX_NONE);
	mm_ps_addr_t got;
	CHECK_EQ(mm_ps_get_addr(ps, bi, &got), 0);
	CHECK_EQ(got.port, bport);
	CHECK(mm_bans_match_id(bans, liar, (uint64_t)time(NULL)) != NULL);
	mm_bans_free(bans);
	mm_ps_destroy(ps);
	/* The damaged file was moved aside (kept for a look), and C saved its
	 * own clean state in its place at stop. */
	char aside[300];
	snprintf(aside, sizeof(aside), "%s.bad", bad);
	CHECK_EQ(access(aside, F_OK), 0);
	CHECK_EQ(mm_ps_create(&pc, &ps), 0);
	bans = mm_bans_new(16);
	CHECK_EQ(mm_snap_load(bad, ps, bans, (uint64_t)time(NULL), 1, err, sizeof(err),
	    &np, &nb), 0);
	CHECK_EQ(nb, 0);
	mm_bans_free(bans);
	mm_ps_destroy(ps);
	unlink(aside);
	mm_id_free(&ia);
	mm_id_free(&ib);
	mm_id_free(&ic);
	unlink(path);
	unlink(bad);
	rmdir(dir);
	fprintf(stderr, "test_persist: ok\n");
	return 0;
}
