#include "identity.h"

#include "mm_rt.h"
#include "siphash.h"

#include <fcntl.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

void
mm_hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256 fetched once: EVP_sha256() in OpenSSL 3 makes EVP_Digest fetch
 * the implementation on every call (locks, name lookups), which cost more
 * than the hash of 40 bytes itself. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_init);
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

void
mm_sha256(const void *p, size_t len, uint8_t out[32])
{
	static const uint8_t empty[1];
	unsigned int n = 0;
	EVP_Digest(len ? p : empty, len, out, &n, sha256(), NULL);
}

void
mm_id_of(const uint8_t pub[32], uint8_t id[32])
{
	mm_sha256(pub, 32, id);
}

static unsigned
lead_zero_bits(const uint8_t h[32])
{
	unsigned bits = 0;
	for (int i = 0; i < 32; i++) {
		if (h[i] == 0) {
			bits += 8;
			continue;
		}
		return bits + (unsigned)__builtin_clz(h[i]) - 24;
	}
	return bits;
}

static void
pow_input(uint8_t in[40], const uint8_t pub[32], uint64_t nonce)
{
	memcpy(in, pub, 32);
	for (int i = 0; i < 8; i++)
		in[32 + i] = (uint8_t)(nonce >> (8 * i));
}

unsigned
mm_pow_bits(const uint8_t pub[32], uint64_t nonce)
{
	uint8_t in[40], h[32];
	unsigned int n = 0;
	pow_input(in, pub, nonce);
	EVP_Digest(in, sizeof(in), h, &n, sha256(), NULL);
	return lead_zero_bits(h);
}

void
mm_id_free(mm_identity_t *id)
{
	EVP_PKEY_free(id->pkey);
	id->pkey = NULL;
}

static int
fill_from_key(mm_identity_t *out, EVP_PKEY *k)
{
	size_t n = 32;
	if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, out->pub, &n) != 1 || n != 32)
		return -EINVAL;
	out->pkey = k;
	mm_id_of(out->pub, out->id);
	return 0;
}

/* The nonce search, from `nonce` up. */
static int
find_nonce(mm_identity_t *out, unsigned difficulty, uint64_t nonce, uint64_t *tries)
{
	/* One digest context reused for every try (EVP_Digest would allocate
	 * one per call). */
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const EVP_MD *md = sha256();
	uint8_t in[40], h[32];
	unsigned int hn;
	uint64_t n = 0;
	if (c == NULL) {
		mm_id_free(out);
		return -ENOMEM;
	}
	for (;; nonce++, n++) {
		pow_input(in, out->pub, nonce);
		if (EVP_DigestInit_ex(c, md, NULL) != 1 ||
		    EVP_DigestUpdate(c, in, sizeof(in)) != 1 ||
		    EVP_DigestFinal_ex(c, h, &hn) != 1) {
			EVP_MD_CTX_free(c);
			mm_id_free(out);
			return -EIO;
		}
		if (lead_zero_bits(h) >= difficulty)
			break;
	}
	EVP_MD_CTX_free(c);
	out->nonce = nonce;
	out->difficulty = difficulty;
	if (tries != NULL)
		*tries = n + 1;
	return 0;
}

int
mm_id_generate(mm_identity_t *out, unsigned difficulty, uint64_t *tries)
{
	if (difficulty > MM_POW_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (kc == NULL || EVP_PKEY_keygen_init(kc) != 1 ||
	    EVP_PKEY_keygen(kc, &k) != 1) {
		EVP_PKEY_CTX_free(kc);
		return -EIO;
	}
	EVP_PKEY_CTX_free(kc);
	if (fill_from_key(out, k) != 0) {
		EVP_PKEY_free(k);
		return -EIO;
	}
	/* a random start: two keygens never scan the same nonces */
	uint64_t nonce = 0;
	if (mm_secure_random(&nonce, sizeof(nonce)) != 0)
		nonce = 0;
	return find_nonce(out, difficulty, nonce, tries);
}

int
mm_id_from_seed(mm_identity_t *out, const uint8_t seed[32], unsigned difficulty)
{
	if (difficulty > MM_POW_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (k == NULL)
		return -EIO;
	if (fill_from_key(out, k) != 0) {
		EVP_PKEY_free(k);
		return -EIO;
	}
	return find_nonce(out, difficulty, 0, NULL);
}

int
mm_id_save(const mm_identity_t *id, const char *path, int force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC |
	    (force ? O_TRUNC : O_EXCL), 0600);
	if (fd < 0)
		return -errno;
	/* O_CREAT's mode only applies to a new file: make sure. */
	if (fchmod(fd, 0600) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		int e = -errno;
		close(fd);
		return e;
	}
	char hex[65];
	mm_hex(id->id, 32, hex);
	int ok = fprintf(f, "meshmap-identity 1\ndifficulty %u\nnonce %llu\nid %s\n",
	    id->difficulty, (unsigned long long)id->nonce, hex) > 0 &&
	    PEM_write_PrivateKey(f, id->pkey, NULL, NULL, 0, NULL, NULL) == 1;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -EIO;
}

static int
fail(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		int n = line > 0 ? snprintf(err, errlen, "%s:%d: ", path, line) :
		    snprintf(err, errlen, "%s: ", path);
		if (n > 0 && (size_t)n < errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

int
mm_id_load(mm_identity_t *out, const char *path, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int e = -errno;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return e;
	}
	char line[256], idhex[65] = "";
	unsigned difficulty = 0;
	unsigned long long nonce = 0;
	int rc = 0;
	const char *keys[4] = {"meshmap-identity", "difficulty", "nonce", "id"};
	for (int ln = 1; ln <= 4; ln++) {
		if (fgets(line, sizeof(line), f) == NULL) {
			rc = fail(err, errlen, path, ln, "file ends before the '%s' line",
			    keys[ln - 1]);
			goto out;
		}
		char extra;
		int ok = 0;
		switch (ln) {
		case 1: ok = strcmp(line, "meshmap-identity 1\n") == 0; break;
		case 2: ok = sscanf(line, "difficulty %u %c", &difficulty, &extra) == 1 &&
		            difficulty <= MM_POW_MAX; break;
		case 3: ok = sscanf(line, "nonce %llu %c", &nonce, &extra) == 1; break;
		case 4: ok = sscanf(line, "id %64[0-9a-f] %c", idhex, &extra) == 1 &&
		            strlen(idhex) == 64; break;
		}
		if (!ok) {
			rc = fail(err, errlen, path, ln, "expected '%s ...'%s", keys[ln - 1],
			    ln == 1 ? " (version 1)" : ln == 2 ? " (0..40)" :
			    ln == 4 ? " (64 lower-case hex digits)" : "");
			goto out;
		}
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	if (k == NULL) {
		rc = fail(err, errlen, path, 5, "no PEM private key after the header");
		goto out;
	}
	if (fill_from_key(out, k) != 0) {
		EVP_PKEY_free(k);
		rc = fail(err, errlen, path, 5, "the key is not an Ed25519 key");
		goto out;
	}
	out->nonce = nonce;
	out->difficulty = difficulty;
	char hex[65];
	mm_hex(out->id, 32, hex);
	if (strcmp(hex, idhex) != 0) {
		rc = fail(err, errlen, path, 4, "id does not match the key (key gives %s)",
		    hex);
		mm_id_free(out);
		goto out;
	}
	if (!mm_pow_ok(out->pub, out->nonce, difficulty)) {
		rc = fail(err, errlen, path, 3, "proof of work has %u zero bits, %u needed",
		    mm_pow_bits(out->pub, out->nonce), difficulty);
		mm_id_free(out);
		goto out;
	}
out:
	fclose(f);
	return rc;
}

int
mm_id_sign(const mm_identity_t *id, const void *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t n = 64;
	int ok = c != NULL &&
	    EVP_DigestSignInit(c, NULL, NULL, NULL, id->pkey) == 1 &&
	    EVP_DigestSign(c, sig, &n, msg, len) == 1 && n == 64;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* The simulator's memo (identity.h): direct-mapped, tagged by two
 * SipHash-1-3 values over pub || msg || sig under fixed keys. */
struct vmemo {
	uint64_t a, b;
	int8_t r; /* 0: empty, 1: valid, 2: invalid */
};
static struct vmemo *memo;
static uint64_t memo_mask, memo_hits;
static uint8_t *memo_buf;
static size_t memo_cap;

int
mm_id_verify_memo(unsigned log2_slots)
{
	free(memo);
	memo = NULL;
	memo_mask = 0;
	if (log2_slots == 0) {
		free(memo_buf);
		memo_buf = NULL;
		memo_cap = 0;
		return 0;
	}
	if (log2_slots > 28)
		return -EINVAL;
	if ((memo = calloc((size_t)1 << log2_slots, sizeof(*memo))) == NULL)
		return -ENOMEM;
	memo_mask = ((uint64_t)1 << log2_slots) - 1;
	return 0;
}

uint64_t mm_id_verify_memo_hits(void) { return memo_hits; }

static int verify_real(const uint8_t pub[32], const void *msg, size_t len,
    const uint8_t sig[64]);

int
mm_id_verify(const uint8_t pub[32], const void *msg, size_t len,
    const uint8_t sig[64])
{
	if (memo == NULL)
		return verify_real(pub, msg, len, sig);
	size_t need = 96 + len;
	if (need > memo_cap) {
		uint8_t *nb = realloc(memo_buf, need);
		if (nb == NULL)
			return verify_real(pub, msg, len, sig);
		memo_buf = nb;
		memo_cap = need;
	}
	memcpy(memo_buf, pub, 32);
	memcpy(memo_buf + 32, sig, 64);
	memcpy(memo_buf + 96, msg, len);
	uint64_t a = mm_siphash13(0x6d656d6f31ull, 0x6b657931ull, memo_buf, need);
	uint64_t b = mm_siphash13(0x6d656d6f32ull, 0x6b657932ull, memo_buf, need);
	struct vmemo *e = &memo[a & memo_mask];
	if (e->r != 0 && e->a == a && e->b == b) {
		memo_hits++;
		return e->r == 1;
	}
	int r = verify_real(pub, msg, len, sig);
	if (r >= 0) {
		e->a = a;
		e->b = b;
		e->r = r == 1 ? 1 : 2;
	}
	return r;
}

/* Each thread keeps the public keys it verified lately as EVP_PKEYs, each
 * with a digest context bound to it. In OpenSSL 3.0 making an EVP_PKEY
 * from raw bytes looks the key manager up by name (hash table walks,
 * locks), and a fresh EVP_MD_CTX makes a key context (another fetch):
 * together about 5% of a verify here (109.9 against 104.7 us, interleaved
 * runs on this machine). A context is only ever used with its own key:
 * EVP_DigestVerifyInit on a used context keeps the key context it has, so
 * it would verify with the previous key. Events come in runs from the same
 * origins (a peer's link changes, a flood's sources), so a small
 * direct-mapped table by the key's first byte keeps most of them; a
 * collision only costs the uncached path. 256 entries of about 1 KB (an
 * Ed25519 EVP_PKEY is ~424 bytes, its contexts the rest) are ~256 KB a
 * thread, allocated at the thread's first verify. */
#define VKEYS 256
struct vkey {
	uint8_t pub[32];
	EVP_PKEY *k;
	EVP_MD_CTX *md;
};
static pthread_key_t vcache_key;
static pthread_once_t vcache_once = PTHREAD_ONCE_INIT;
static int vcache_ok;

static void
vkey_clear(struct vkey *e)
{
	EVP_MD_CTX_free(e->md);
	EVP_PKEY_free(e->k);
	e->md = NULL;
	e->k = NULL;
}

static void
vcache_free(void *p)
{
	struct vkey *c = p;
	for (size_t i = 0; i < VKEYS; i++)
		vkey_clear(&c[i]);
	free(c);
}

static void
vcache_init(void)
{
	vcache_ok = pthread_key_create(&vcache_key, vcache_free) == 0;
}

/* The entry for pub, made if needed; NULL if it cannot be. */
static struct vkey *
vcache_get(const uint8_t pub[32])
{
	pthread_once(&vcache_once, vcache_init);
	if (!vcache_ok)
		return NULL;
	struct vkey *c = pthread_getspecific(vcache_key);
	if (c == NULL) {
		if ((c = calloc(VKEYS, sizeof(*c))) == NULL)
			return NULL;
		if (pthread_setspecific(vcache_key, c) != 0) {
			free(c);
			return NULL;
		}
	}
	struct vkey *e = &c[pub[0] % VKEYS];
	if (e->k != NULL && memcmp(e->pub, pub, 32) == 0)
		return e;
	vkey_clear(e);
	if ((e->k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32)) == NULL ||
	    (e->md = EVP_MD_CTX_new()) == NULL) {
		vkey_clear(e);
		return NULL;
	}
	memcpy(e->pub, pub, 32);
	return e;
}

static int
verify_real(const uint8_t pub[32], const void *msg, size_t len,
    const uint8_t sig[64])
{
	struct vkey *e = vcache_get(pub);
	if (e != NULL) {
		if (EVP_DigestVerifyInit(e->md, NULL, NULL, NULL, e->k) != 1) {
			vkey_clear(e);
			return -ENOMEM;
		}
		return EVP_DigestVerify(e->md, sig, 64, msg, len) == 1;
	}
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	if (k == NULL)
		return 0; /* not a valid point: cannot have signed anything */
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int r = -ENOMEM;
	if (c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1)
		r = EVP_DigestVerify(c, sig, 64, msg, len) == 1;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return r;
}
