/* Dedup ring: duplicates within the window are caught, expired ones are
 * not, memory is constant under a flood, and the false-positive rate
 * matches the formula (measured at 8 fingerprint bits, bounded at 32). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "dedup.h"
#include "test.h"

static void
mkid(uint8_t id[32], uint64_t n, uint64_t salt)
{
	for (int i = 0; i < 4; i++) {
		uint64_t v = (n + 1) * 0x9e3779b97f4a7c15ull ^ (salt + (uint64_t)i) * 0xbf58476d1ce4e5b9ull;
		v ^= v >> 29;
		memcpy(id + 8 * i, &v, 8);
	}
}

static mm_dedup_t *
mk(uint32_t cap, uint32_t window, unsigned fp_bits)
{
	mm_dedup_config_t c;
	mm_dedup_config_default(&c);
	c.capacity = cap;
	c.window_ms = window;
	c.fp_bits = fp_bits;
	c.key[0] = 42;
	c.key[1] = 7;
	mm_dedup_t *d;
	CHECK_EQ(mm_dedup_create(&c, &d), 0);
	return d;
}

static void
test_basic(void)
{
	mm_dedup_t *d = mk(1024, 1000, 32);
	uint8_t a[32], b[32];
	mkid(a, 1, 0);
	mkid(b, 2, 0);
	CHECK_EQ(mm_dedup_check(d, a, 100), 0);  /* new */
	CHECK_EQ(mm_dedup_check(d, a, 200), 1);  /* duplicate */
	CHECK_EQ(mm_dedup_check(d, b, 200), 0);
	CHECK_EQ(mm_dedup_check(d, a, 1099), 1); /* still within 1000 ms */
	CHECK_EQ(mm_dedup_check(d, a, 1100), 0); /* window over: new again */
	CHECK_EQ(mm_dedup_check(d, a, 1101), 1);
	/* The clock wraps (uint32 ms, 49 days) without confusion. */
	CHECK_EQ(mm_dedup_check(d, b, UINT32_MAX - 10), 0);
	CHECK_EQ(mm_dedup_check(d, b, 20), 1);
	mm_dedup_stats_t st;
	mm_dedup_stats(d, &st);
	CHECK_EQ(st.checks, 8);
	CHECK_EQ(st.duplicates, 4);
	mm_dedup_destroy(d);
	mm_dedup_config_t bad;
	mm_dedup_config_default(&bad);
	bad.fp_bits = 4;
	CHECK_EQ(mm_dedup_create(&bad, &d), -EINVAL);
}

static void
test_flood_constant_memory(void)
{
	/* 2M distinct ids into a 64k ring within one window: memory stays
	 * what it was, the overflow shows as evicted_live, and recent ids
	 * are still caught. */
	mm_dedup_t *d = mk(65536, 60000, 32);
	mm_dedup_stats_t before, after;
	mm_dedup_stats(d, &before);
	uint8_t id[32];
	for (uint64_t n = 0; n < 2000000; n++) {
		mkid(id, n, 1);
		CHECK_EQ(mm_dedup_check(d, id, (uint32_t)(n / 100)), 0);
	}
	mm_dedup_stats(d, &after);
	CHECK_EQ(after.bytes, before.bytes);
	CHECK_GT(after.evicted_live, 2000000 - 65536 - 1);
	/* The last 1000 ids are each in the newest slots of their buckets. */
	unsigned caught = 0;
	for (uint64_t n = 2000000 - 1000; n < 2000000; n++) {
		mkid(id, n, 1);
		caught += mm_dedup_check(d, id, 20000);
	}
	CHECK_GE(caught, 990);
	mm_dedup_destroy(d);
}

static double
fp_rate(unsigned fp_bits, uint64_t probes)
{
	/* Fill to capacity within the window (every slot live), then probe
	 * with ids never inserted. */
	mm_dedup_t *d = mk(65536, 1000000, fp_bits);
	uint8_t id[32];
	for (uint64_t n = 0; n < 65536 * 4; n++) {
		mkid(id, n, 2);
		mm_dedup_check(d, id, 1);
	}
	uint64_t fps = 0;
	for (uint64_t n = 0; n < probes; n++) {
		mkid(id, n, 3);
		fps += (uint64_t)mm_dedup_check(d, id, 2);
	}
	mm_dedup_destroy(d);
	return (double)fps / (double)probes;
}

static void
test_false_positive_rate(void)
{
	/* Theory at full load: 1 - (1 - 2^-f)^8 ~= 8 / 2^f. The probes
	 * themselves take slots as they go (they are "new"), which keeps
	 * every bucket full. */
	double r8 = fp_rate(8, 400000), expect8 = 8.0 / 256.0;
	fprintf(stderr, "   false positives at 8 bits: %.4f (theory %.4f)\n", r8,
	    expect8);
	CHECK(r8 > expect8 * 0.85 && r8 < expect8 * 1.15);
	double r32 = fp_rate(32, 4000000);
	fprintf(stderr, "   false positives at 32 bits: %.2e over 4M probes "
	    "(theory %.1e)\n", r32, 8.0 / 4294967296.0);
	CHECK(r32 <= 2.0 / 4000000.0);
}

/* Probes from another thread while the owner records: an id is probed
 * as seen only once recorded (never before), and once its recording is
 * published, always (the ring is large enough that nothing is evicted). */
#define PROBE_IDS 50000
static mm_dedup_t *pd;
static atomic_uint recorded; /* ids [0, recorded) are in the ring */
static atomic_int probe_done;

static void
probe_id(uint32_t i, uint8_t msg[40])
{
	memset(msg, 0xab, 40);
	memcpy(msg, &i, sizeof(i));
}

static void *
owner(void *arg)
{
	(void)arg;
	uint8_t msg[40];
	for (uint32_t i = 0; i < PROBE_IDS; i++) {
		probe_id(i, msg);
		mm_dedup_add_bytes(pd, msg, sizeof(msg), 1000);
		atomic_store_explicit(&recorded, i + 1, memory_order_release);
	}
	atomic_store(&probe_done, 1);
	return NULL;
}

static void
test_concurrent_probe(void)
{
	mm_dedup_config_t c;
	mm_dedup_config_default(&c);
	c.capacity = 1u << 20;
	CHECK_EQ(mm_dedup_create(&c, &pd), 0);
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, owner, NULL), 0);
	uint8_t msg[40];
	uint64_t seen_ok = 0, unseen_ok = 0;
	uint32_t x = 12345;
	while (!atomic_load(&probe_done) || seen_ok < 1000) {
		uint32_t r = atomic_load_explicit(&recorded, memory_order_acquire);
		x = x * 1103515245u + 12345u;
		if (r > 0) { /* a published one: seen */
			probe_id(x % r, msg);
			CHECK_EQ(mm_dedup_probe_bytes(pd, msg, sizeof(msg), 1500), 1);
			seen_ok++;
		}
		/* one far ahead of the owner: not seen */
		uint32_t ahead = PROBE_IDS + (x % 1000u);
		probe_id(ahead, msg);
		CHECK_EQ(mm_dedup_probe_bytes(pd, msg, sizeof(msg), 1500), 0);
		unseen_ok++;
		if (atomic_load(&probe_done) && seen_ok >= 1000)
			break;
	}
	pthread_join(t, NULL);
	/* outside the window: not seen */
	probe_id(7, msg);
	CHECK_EQ(mm_dedup_probe_bytes(pd, msg, sizeof(msg), 1000 + c.window_ms + 1), 0);
	mm_dedup_destroy(pd);
	fprintf(stderr, "   %llu probes of recorded ids seen, %llu of unrecorded ones not\n",
	    (unsigned long long)seen_ok, (unsigned long long)unseen_ok);
}

int
main(void)
{
	RUN(test_basic);
	RUN(test_flood_constant_memory);
	RUN(test_false_positive_rate);
	RUN(test_concurrent_probe);
	fprintf(stderr, "test_dedup: ok\n");
	return 0;
}
