/* Broadcast on topics between 50 nodes over TLS (a ring with chords).
 * "blocks": 40 subscribers, 10 relays that subscribe to nothing but pass
 * everything on; 5 publishers send 4 messages each: every subscriber's
 * application gets all 20, each exactly once. "chat": 5 subscribers; 3
 * nodes that neither subscribe nor relay never receive a chat frame.
 * Then a raw peer sends a broadcast into node 7 and checks that it never
 * comes back to it. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "node_util.h"
#include "test.h"

#define DIFF 8
#define N 50
#define PUBS 5
#define PER 4

static mm_identity_t ids[N];
static mm_node_t *nodes[N];
static uint16_t ports[N];
static atomic_int got[N], dups[N], chat[N];
static atomic_uchar seen[N][PUBS * PER];

static int
role_relay_only(int i) { return i % 5 == 4; }   /* 10 nodes: no topic, relay */
static int
role_mute(int i) { return i == 13 || i == 27 || i == 41; } /* no topic, no relay */

static void
on_bcast(void *arg, const char *topic, uint32_t tl, const uint8_t origin[32],
    const uint8_t *data, uint32_t len)
{
	int i = (int)(intptr_t)arg;
	(void)origin;
	if (tl == 4 && memcmp(topic, "chat", 4) == 0) {
		atomic_fetch_add(&chat[i], 1);
		return;
	}
	CHECK(tl == 6 && memcmp(topic, "blocks", 6) == 0 && len == 1 && data[0] < PUBS * PER);
	if (atomic_exchange(&seen[i][data[0]], 1))
		atomic_fetch_add(&dups[i], 1);
	atomic_fetch_add(&got[i], 1);
}

static int
all_got(int want)
{
	for (int i = 0; i < N; i++)
		if (!role_relay_only(i) && !role_mute(i) && atomic_load(&got[i]) < want)
			return 0;
	return 1;
}

/* the raw peer */
static mm_identity_t raw;
static atomic_int raw_ready, raw_echo;
static uint64_t raw_nonce = 0x5eed;

static void
raw_on_ready(mm_conn_t *c, const uint8_t id[32], void *arg)
{
	(void)id;
	(void)arg;
	mm_wire_msg_t m = {.type = MM_W_SUBS};
	m.u.subs.count = 1;
	m.u.subs.topic[0] = (mm_bytes_t){(const uint8_t *)"*", 1};
	CHECK_EQ(mm_conn_send(c, &m), 0);
	memset(&m, 0, sizeof(m));
	m.type = MM_W_BCAST;
	mm_w_bcast_t *b = &m.u.bcast;
	static const uint8_t one = 0;
	b->topic = (mm_bytes_t){(const uint8_t *)"blocks", 6};
	b->data = (mm_bytes_t){&one, 1};
	memcpy(b->pub, raw.pub, 32);
	b->pow = raw.nonce;
	b->nonce = raw_nonce;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	b->ts = (uint64_t)ts.tv_sec * 1000u;
	b->ttl = 16;
	uint8_t sb[MM_WIRE_BCAST_SIGNED_LEN];
	mm_wire_bcast_signed_bytes(b, sb);
	CHECK_EQ(mm_id_sign(&raw, sb, sizeof(sb), b->sig), 0);
	CHECK_EQ(mm_conn_send(c, &m), 0);
	atomic_store(&raw_ready, 1);
}

static void
raw_on_message(mm_conn_t *c, const mm_wire_msg_t *m, void *arg)
{
	(void)c;
	(void)arg;
	if (m->type == MM_W_BCAST && m->u.bcast.nonce == raw_nonce)
		atomic_fetch_add(&raw_echo, 1);
}

int
main(void)
{
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	rc.workers = 2;
	mm_rt_t *rt;
	CHECK_EQ(mm_rt_create(&rc, &rt), 0);
	for (int i = 0; i < N; i++) {
		mm_node_config_t c;
		node_test_config(&c, &ids[i], DIFF, "bcast");
		c.select_ms = 0;
		c.sync_events = 256;
		c.on_bcast = on_bcast;
		c.direct_arg = (void *)(intptr_t)i;
		c.relay_topics = !role_mute(i);
		char err[256] = "";
		CHECK_EQ(mm_node_create(rt, &c, &nodes[i], err, sizeof(err)), 0);
		CHECK_EQ(mm_node_listen(nodes[i], "127.0.0.1", 0, &ports[i]), 0);
		if (!role_relay_only(i) && !role_mute(i))
			CHECK_EQ(mm_node_subscribe(nodes[i], "blocks"), 0);
		if (i % 10 == 0)
			CHECK_EQ(mm_node_subscribe(nodes[i], "chat"), 0);
	}
	/* a ring, and chords i -> i + 7 on even i: 75 links, every node 2..4 */
	unsigned links = 0;
	for (int i = 0; i < N; i++) {
		node_dial(nodes[i], ports[(i + 1) % N]);
		links++;
		if (i % 2 == 0) {
			node_dial(nodes[i], ports[(i + 7) % N]);
			links++;
		}
	}
	unsigned total;
	do {
		total = 0;
		for (int i = 0; i < N; i++)
			total += mm_node_peers(nodes[i]);
		test_sleep_ms(20);
	} while (total < 2 * links);
	/* both ends of every link have the other's subscriptions (each node
	 * subscribed before dialling, so one subs message per link end) */
	uint64_t subs;
	do {
		subs = 0;
		for (int i = 0; i < N; i++) {
			mm_node_stats_t st;
			mm_node_stats(nodes[i], &st);
			subs += st.subs_received;
		}
		test_sleep_ms(20);
	} while (subs < 2 * links);

	for (int p = 0; p < PUBS; p++)
		for (int k = 0; k < PER; k++) {
			uint8_t v = (uint8_t)(p * PER + k);
			CHECK_EQ(mm_node_publish(nodes[p * 9 + 1], "blocks", &v, 1), 0);
		}
	CHECK_EQ(mm_node_publish(nodes[20], "chat", "hi", 2), 0);
	WAIT_FOR(all_got(PUBS * PER - PER)); /* a publisher does not get its own */
	test_sleep_ms(300); /* late duplicates would show up here */
	for (int i = 0; i < N; i++) {
		int pub = i % 9 == 1 && i / 9 < PUBS;
		if (role_relay_only(i) || role_mute(i)) {
			CHECK_EQ(atomic_load(&got[i]), 0);
			continue;
		}
		CHECK_EQ(atomic_load(&got[i]), pub ? PUBS * PER - PER : PUBS * PER);
		CHECK_EQ(atomic_load(&dups[i]), 0);
	}
	uint64_t fwd = 0, dupdrop = 0;
	for (int i = 0; i < N; i++) {
		mm_node_stats_t s;
		mm_node_stats(nodes[i], &s);
		fwd += s.bcast_forwarded;
		dupdrop += s.bcast_dup;
		if (role_mute(i))
			CHECK_EQ(s.bcast_received, 0); /* wanted nothing: sent nothing */
		CHECK_EQ(s.bcast_refused, 0);
	}
	WAIT_FOR(atomic_load(&chat[0]) + atomic_load(&chat[10]) + atomic_load(&chat[30]) +
	    atomic_load(&chat[40]) == 4);
	fprintf(stderr, "   50 nodes: 20 broadcasts, every subscriber got each once "
	    "(%llu frames sent, %llu duplicates dropped by the nodes)\n",
	    (unsigned long long)fwd, (unsigned long long)dupdrop);

	/* never back to the neighbour it came from */
	CHECK_EQ(mm_id_generate(&raw, DIFF, NULL), 0);
	mm_net_config_t nc;
	mm_net_config_default(&nc);
	nc.id = &raw;
	nc.network = "bcast";
	nc.difficulty = DIFF;
	nc.on_ready = raw_on_ready;
	nc.on_message = raw_on_message;
	mm_net_t *rn;
	char err[256];
	CHECK_EQ(mm_net_create(rt, &nc, &rn, err, sizeof(err)), 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[7])};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int before = atomic_load(&got[8]);
	CHECK_EQ(mm_net_dial(rn, (struct sockaddr *)&a, sizeof(a), NULL), 0);
	WAIT_FOR(atomic_load(&got[8]) == before + 1); /* it spread */
	test_sleep_ms(300);
	CHECK_EQ(atomic_load(&raw_echo), 0);
	fprintf(stderr, "   a broadcast into node 7 spread and never came back to its sender\n");

	mm_rt_stop(rt);
	mm_net_destroy(rn);
	mm_id_free(&raw);
	for (int i = 0; i < N; i++) {
		mm_node_destroy(nodes[i]);
		mm_id_free(&ids[i]);
	}
	mm_rt_destroy(rt);
	fprintf(stderr, "test_bcast: ok\n");
	return 0;
}
