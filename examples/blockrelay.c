/*
 * A small block relay on the meshmap embedding API (include/meshmap.h),
 * and nothing else: three nodes in one process on loopback.
 *   - "miner" listens; "relay" and "wallet" bootstrap to it;
 *   - everyone subscribes to "blocks"; the miner publishes three blocks,
 *     one every half second, then re-announces its tip every second (a
 *     broadcast reaches whoever is linked and subscribed at that moment:
 *     a node that joins later hears the next announcement);
 *   - the wallet asks the relay for its height (a request), and thanks
 *     the miner with a direct message.
 * Prints what happens and exits 0 once every block, the answer and the
 * thanks have arrived, 1 if they have not within 60 s.
 *
 *   cc blockrelay.c $(pkg-config --cflags --libs meshmap) -o blockrelay
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <meshmap.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct peer {
	const char *name;
	meshmap_t *m;
	atomic_int blocks;    /* blocks received */
	atomic_int height;    /* the last block's number */
};

static struct peer miner = {.name = "miner"}, relay = {.name = "relay"},
    wallet = {.name = "wallet"};
static atomic_int answered, thanked;

static void
on_block(void *arg, const char *topic, const uint8_t origin[32], const uint8_t *data,
    size_t len)
{
	struct peer *p = arg;
	(void)origin;
	int h = 0;
	if (len > 6 && memcmp(data, "block ", 6) == 0)
		sscanf((const char *)data + 6, "%d", &h);
	atomic_store(&p->height, h);
	atomic_fetch_add(&p->blocks, 1);
	printf("%s: %s: %.*s\n", p->name, topic, (int)len, (const char *)data);
}

/* the relay answers height requests */
static void
on_request(void *arg, const uint8_t from[32], uint64_t id, const uint8_t *data, size_t len)
{
	struct peer *p = arg;
	if (len == 7 && memcmp(data, "height?", 7) == 0) {
		char out[32];
		int n = snprintf(out, sizeof(out), "%d", atomic_load(&p->height));
		meshmap_respond(p->m, from, id, 0, out, (size_t)n);
	} else {
		meshmap_respond(p->m, from, id, 400, "unknown question", 16);
	}
}

static void
on_answer(void *arg, int status, const uint8_t *data, size_t len)
{
	(void)arg;
	if (status == 0) {
		printf("wallet: the relay is at height %.*s\n", (int)len, (const char *)data);
		atomic_store(&answered, 1);
	} else {
		printf("wallet: request failed (%d), asking again\n", status);
		atomic_store(&answered, -1);
	}
}

static void
on_thanks(void *arg, const uint8_t from[32], const uint8_t *data, size_t len)
{
	(void)arg;
	(void)from;
	printf("miner: direct message: %.*s\n", (int)len, (const char *)data);
	atomic_store(&thanked, 1);
}

static int
start(struct peer *p, const char *listen, const char *boot)
{
	meshmap_config_t c;
	meshmap_config_default(&c);
	c.network = "blockrelay-example";
	c.difficulty = 8; /* quick keys for an example */
	c.listen = listen;
	c.bootstrap[0] = boot;
	c.workers = 1;
	char err[256];
	if ((p->m = meshmap_new(&c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", p->name, err);
		return -1;
	}
	if (meshmap_subscribe(p->m, "blocks", on_block, p) != 0 || meshmap_start(p->m) != 0) {
		fprintf(stderr, "%s: cannot start\n", p->name);
		return -1;
	}
	return 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (start(&miner, "127.0.0.1:0", NULL) != 0)
		return 1;
	char boot[64];
	snprintf(boot, sizeof(boot), "127.0.0.1:%u", meshmap_port(miner.m));
	if (start(&relay, "127.0.0.1:0", boot) != 0 || start(&wallet, NULL, boot) != 0)
		return 1;
	meshmap_on_request(relay.m, on_request, &relay);
	meshmap_on_direct(miner.m, on_thanks, NULL);

	/* wait until the wallet's map shows the relay (a route to ask it) */
	uint8_t relay_id[32], miner_id[32];
	meshmap_id(relay.m, relay_id);
	meshmap_id(miner.m, miner_id);
	int ok = 0, asked = 0, mined = 0;
	for (int t = 0; t < 600 && !ok; t++) {
		meshmap_stats_t s;
		meshmap_stats(wallet.m, &s);
		int ready = s.map_edges >= 2 && meshmap_neighbours(wallet.m, relay_id, NULL, 0) >= 0;
		if (ready && ((mined < 3 && t % 5 == 0) || (mined == 3 && t % 10 == 0))) {
			char blk[32];
			if (mined < 3)
				mined++;
			int n = snprintf(blk, sizeof(blk), "block %d", mined);
			meshmap_publish(miner.m, "blocks", blk, (size_t)n);
		}
		if (atomic_load(&wallet.height) == 3 && atomic_load(&relay.height) == 3 &&
		    (!asked || atomic_load(&answered) == -1)) {
			atomic_store(&answered, 0);
			meshmap_request(wallet.m, relay_id, "height?", 7, 2000, on_answer, NULL);
			meshmap_send_direct(wallet.m, miner_id, "thanks for the blocks", 21);
			asked = 1;
		}
		ok = atomic_load(&answered) == 1 && atomic_load(&thanked) == 1;
		sleep_ms(100);
	}
	meshmap_stats_t s;
	meshmap_stats(wallet.m, &s);
	printf("wallet: %u links, %u peers and %llu links in its map, %llu blocks\n", s.links,
	    s.map_peers, (unsigned long long)s.map_edges,
	    (unsigned long long)s.broadcasts_delivered);
	meshmap_free(wallet.m);
	meshmap_free(relay.m);
	meshmap_free(miner.m);
	printf(ok ? "blockrelay: ok\n" : "blockrelay: FAILED\n");
	return ok ? 0 : 1;
}
