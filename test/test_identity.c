/* Identity: generation meets the proof of work, the id is SHA-256 of the
 * public key, key files round-trip with mode 0600 and are never silently
 * replaced, every corruption of a key file is refused naming file and line,
 * signatures verify and tampering is caught. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity.h"
#include "wire.h"
#include "test.h"

static char dir[] = "/tmp/mm_id_XXXXXX";
static char path[256];

static void
write_file(const char *p, const char *content)
{
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	fputs(content, f);
	fclose(f);
}

static char *
read_file(const char *p)
{
	FILE *f = fopen(p, "r");
	CHECK(f != NULL);
	static char b[1024];
	size_t n = fread(b, 1, sizeof(b) - 1, f);
	b[n] = 0;
	fclose(f);
	return b;
}

static void
test_generate_and_pow(void)
{
	mm_identity_t id;
	uint64_t tries;
	CHECK_EQ(mm_id_generate(&id, 14, &tries), 0);
	CHECK_GE(mm_pow_bits(id.pub, id.nonce), 14);
	CHECK(mm_pow_ok(id.pub, id.nonce, 14));
	CHECK_GE(tries, 1);
	uint8_t want[32];
	unsigned int n;
	EVP_Digest(id.pub, 32, want, &n, EVP_sha256(), NULL);
	CHECK_EQ(memcmp(want, id.id, 32), 0);
	/* Another nonce almost surely falls short of 14 bits. */
	unsigned short_count = 0;
	for (uint64_t k = 1; k <= 64; k++)
		short_count += !mm_pow_ok(id.pub, id.nonce + k, 14);
	CHECK_GE(short_count, 60);
	CHECK_EQ(mm_id_generate(&id, 41, NULL) == -EINVAL, 1);
	mm_id_free(&id);
}

static void
test_sign_verify(void)
{
	mm_identity_t a, b;
	CHECK_EQ(mm_id_generate(&a, 0, NULL), 0);
	CHECK_EQ(mm_id_generate(&b, 0, NULL), 0);
	uint8_t sig[64];
	const char msg[] = "connect A-B seq 7";
	CHECK_EQ(mm_id_sign(&a, msg, sizeof(msg), sig), 0);
	CHECK_EQ(mm_id_verify(a.pub, msg, sizeof(msg), sig), 1);
	CHECK_EQ(mm_id_verify(b.pub, msg, sizeof(msg), sig), 0); /* wrong key */
	char tampered[sizeof(msg)];
	memcpy(tampered, msg, sizeof(msg));
	tampered[8] ^= 1;
	CHECK_EQ(mm_id_verify(a.pub, tampered, sizeof(msg), sig), 0);
	sig[5] ^= 0x40;
	CHECK_EQ(mm_id_verify(a.pub, msg, sizeof(msg), sig), 0);
	uint8_t junk[32];
	memset(junk, 0xff, sizeof(junk)); /* not a curve point */
	CHECK_EQ(mm_id_verify(junk, msg, sizeof(msg), sig), 0);
	mm_id_free(&a);
	mm_id_free(&b);
}

/* Verifies keep each thread's recent keys, each with its own digest
 * context (net/identity.c). Two keys that share a slot, alternated, with
 * good and bad signatures in between, must each be judged by its own key;
 * so must 600 keys through a 256-slot table, and verifies on a thread that
 * then exits (its table freed: the sanitizer builds check that). */
static void *
verify_on_thread(void *arg)
{
	const mm_identity_t *k = arg;
	const char msg[] = "from a worker";
	uint8_t sig[64];
	if (mm_id_sign(k, msg, sizeof(msg), sig) != 0)
		return NULL;
	int good = mm_id_verify(k->pub, msg, sizeof(msg), sig);
	sig[0] ^= 1;
	int bad = mm_id_verify(k->pub, msg, sizeof(msg), sig);
	return (void *)(intptr_t)(good == 1 && bad == 0 ? 1 : 2);
}

static void
test_verify_cache(void)
{
	mm_identity_t a, b;
	CHECK_EQ(mm_id_generate(&a, 0, NULL), 0);
	int tries = 0;
	do {
		if (tries++)
			mm_id_free(&b);
		CHECK_EQ(mm_id_generate(&b, 0, NULL), 0);
	} while (b.pub[0] != a.pub[0] || memcmp(a.pub, b.pub, 32) == 0);
	const char msg[] = "connect A-B seq 8";
	uint8_t sa[64], sb[64];
	CHECK_EQ(mm_id_sign(&a, msg, sizeof(msg), sa), 0);
	CHECK_EQ(mm_id_sign(&b, msg, sizeof(msg), sb), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(mm_id_verify(a.pub, msg, sizeof(msg), sa), 1);
		CHECK_EQ(mm_id_verify(a.pub, msg, sizeof(msg), sb), 0);
		CHECK_EQ(mm_id_verify(b.pub, msg, sizeof(msg), sa), 0);
		CHECK_EQ(mm_id_verify(b.pub, msg, sizeof(msg), sb), 1);
		CHECK_EQ(mm_id_verify(a.pub, msg, sizeof(msg), sa), 1);
		CHECK_EQ(mm_id_verify(b.pub, msg, sizeof(msg), sb), 1);
	}
	enum { NK = 600 };
	static mm_identity_t k[NK];
	static uint8_t sig[NK][64];
	for (int i = 0; i < NK; i++) {
		CHECK_EQ(mm_id_generate(&k[i], 0, NULL), 0);
		CHECK_EQ(mm_id_sign(&k[i], msg, sizeof(msg), sig[i]), 0);
	}
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < NK; i++) {
			CHECK_EQ(mm_id_verify(k[i].pub, msg, sizeof(msg), sig[i]), 1);
			CHECK_EQ(mm_id_verify(k[i].pub, msg, sizeof(msg), sig[(i + 1) % NK]), 0);
		}
	pthread_t t;
	void *r = NULL;
	CHECK_EQ(pthread_create(&t, NULL, verify_on_thread, &a), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK_EQ((intptr_t)r, 1);
	for (int i = 0; i < NK; i++)
		mm_id_free(&k[i]);
	mm_id_free(&a);
	mm_id_free(&b);
}

static void
test_key_file(void)
{
	mm_identity_t id, back;
	char err[512];
	CHECK_EQ(mm_id_generate(&id, 10, NULL), 0);
	CHECK_EQ(mm_id_save(&id, path, 0), 0);
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(mm_id_save(&id, path, 0), -EEXIST); /* never silently replaced */
	CHECK_EQ(mm_id_load(&back, path, err, sizeof(err)), 0);
	CHECK_EQ(memcmp(back.id, id.id, 32), 0);
	CHECK_EQ(memcmp(back.pub, id.pub, 32), 0);
	CHECK(back.nonce == id.nonce);
	CHECK_EQ(back.difficulty, 10);
	uint8_t sig[64];
	CHECK_EQ(mm_id_sign(&back, "x", 1, sig), 0); /* the private key works */
	CHECK_EQ(mm_id_verify(id.pub, "x", 1, sig), 1);
	mm_id_free(&back);

	/* A file with mode 0644 is rewritten 0600 by a forced save. */
	chmod(path, 0644);
	CHECK_EQ(mm_id_save(&id, path, 1), 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);

	/* Corruptions, each refused with file:line and a reason. */
	char good[1024];
	strcpy(good, read_file(path));
	char *lines[4];
	char copy[1024];
	strcpy(copy, good);
	char *p = copy;
	for (int i = 0; i < 4; i++) {
		lines[i] = p;
		p = strchr(p, '\n');
		*p++ = 0;
	}
	const char *pem = p;
	char bad[300], idhex[65];
	mm_hex(id.id, 32, idhex);
	struct {
		const char *what, *expect;
		char content[8192];
	} *c = calloc(8, sizeof(*c));
	int nc = 0;
	snprintf(c[nc].content, sizeof(c[0].content), "meshmap-identity 2\n%s\n%s\n%s\n%s",
	    lines[1], lines[2], lines[3], pem);
	c[nc].expect = ":1: ";
	nc++;
	snprintf(c[nc].content, sizeof(c[0].content), "%s\ndifficulty 99\n%s\n%s\n%s",
	    lines[0], lines[2], lines[3], pem);
	c[nc].expect = ":2: ";
	nc++;
	/* A nonce that provably falls short (another may meet 10 bits by
	 * chance, 1 in 1024). */
	uint64_t shortn = id.nonce + 1;
	while (mm_pow_ok(id.pub, shortn, 10))
		shortn++;
	snprintf(c[nc].content, sizeof(c[0].content), "%s\n%s\nnonce %llu\n%s\n%s",
	    lines[0], lines[1], (unsigned long long)shortn, lines[3], pem);
	c[nc].expect = "proof of work";
	nc++;
	char wrongid[65];
	strcpy(wrongid, idhex);
	wrongid[0] = wrongid[0] == 'a' ? 'b' : 'a';
	snprintf(c[nc].content, sizeof(c[0].content), "%s\n%s\n%s\nid %s\n%s",
	    lines[0], lines[1], lines[2], wrongid, pem);
	c[nc].expect = "id does not match";
	nc++;
	snprintf(c[nc].content, sizeof(c[0].content), "%s\n%s\n%s\n%s\n", lines[0],
	    lines[1], lines[2], lines[3]);
	c[nc].expect = "no PEM private key";
	nc++;
	snprintf(c[nc].content, sizeof(c[0].content), "%s\n%s\n", lines[0], lines[1]);
	c[nc].expect = "file ends before";
	nc++;
	/* an EC P-256 key where an Ed25519 key belongs */
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	CHECK(ec != NULL);
	char ecpath[300];
	snprintf(ecpath, sizeof(ecpath), "%s/ec.pem", dir);
	FILE *f = fopen(ecpath, "w");
	PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	EVP_PKEY_free(ec);
	snprintf(c[nc].content, sizeof(c[0].content), "%s\n%s\n%s\n%s\n%s", lines[0],
	    lines[1], lines[2], lines[3], read_file(ecpath));
	c[nc].expect = "not an Ed25519 key";
	nc++;
	for (int i = 0; i < nc; i++) {
		snprintf(bad, sizeof(bad), "%s/bad%d.key", dir, i);
		write_file(bad, c[i].content);
		err[0] = 0;
		int lrc = mm_id_load(&back, bad, err, sizeof(err));
		if (lrc != -EINVAL)
			fprintf(stderr, "case %d loaded (rc %d):\n%s\n", i, lrc, c[i].content);
		CHECK_EQ(lrc, -EINVAL);
		if (strstr(err, c[i].expect) == NULL || strstr(err, bad) == NULL) {
			fprintf(stderr, "case %d: got '%s', want '%s'\n", i, err, c[i].expect);
			CHECK(0);
		}
		unlink(bad);
	}
	unlink(ecpath);
	free(c);
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/none.key", dir);
	CHECK_EQ(mm_id_load(&back, missing, err, sizeof(err)), -ENOENT);
	mm_id_free(&id);
}

/* An event signed by its origin verifies after a relay lowered its ttl,
 * and fails once any signed field changes. */
static void
test_event_signature(void)
{
	mm_identity_t o;
	CHECK_EQ(mm_id_generate(&o, 0, NULL), 0);
	mm_w_event_t e = {.kind = 1, .dir = 1, .seq = 42, .ts = 1763700000000ull,
	    .ttl = 6};
	memcpy(e.pub, o.pub, 32);
	e.pow = o.nonce;
	memset(e.peer, 0x5a, 32);
	uint8_t b[MM_WIRE_EVENT_SIGNED_LEN];
	mm_wire_event_signed_bytes(&e, b);
	CHECK_EQ(memcmp(b, "meshmap-event-v1", 16), 0);
	CHECK_EQ(b[82], 0);
	CHECK_EQ(b[85], 42); /* big-endian seq */
	CHECK_EQ(mm_id_sign(&o, b, sizeof(b), e.sig), 0);
	e.ttl = 2; /* relays decrement ttl: still valid */
	e.pow += 1; /* pow is not signed either (checked on its own) */
	mm_wire_event_signed_bytes(&e, b);
	CHECK_EQ(mm_id_verify(o.pub, b, sizeof(b), e.sig), 1);
	e.seq = 43; /* a replay with a new seq is not */
	mm_wire_event_signed_bytes(&e, b);
	CHECK_EQ(mm_id_verify(o.pub, b, sizeof(b), e.sig), 0);
	e.seq = 42;
	e.dir = 0;
	mm_wire_event_signed_bytes(&e, b);
	CHECK_EQ(mm_id_verify(o.pub, b, sizeof(b), e.sig), 0);
	mm_id_free(&o);
}

int
main(void)
{
	/* mm_sha256 against FIPS 180-2's vectors: "abc", and the empty
	 * message (with a NULL pointer too, as the signed-bytes builders
	 * pass an empty field) */
	static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf,
	    0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61,
	    0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15,
	    0xad};
	static const uint8_t none[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c,
	    0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
	    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8,
	    0x55};
	uint8_t dg[32];
	mm_sha256("abc", 3, dg);
	CHECK(memcmp(dg, abc, 32) == 0);
	mm_sha256("x", 0, dg);
	CHECK(memcmp(dg, none, 32) == 0);
	memset(dg, 0, sizeof(dg));
	mm_sha256(NULL, 0, dg);
	CHECK(memcmp(dg, none, 32) == 0);

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/node.key", dir);
	RUN(test_generate_and_pow);
	RUN(test_sign_verify);
	RUN(test_verify_cache);
	RUN(test_key_file);
	RUN(test_event_signature);
	unlink(path);
	rmdir(dir);
	fprintf(stderr, "test_identity: ok\n");
	return 0;
}
