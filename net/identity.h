/*
 * Node identity: an Ed25519 key pair (OpenSSL EVP), the peer id
 * SHA-256(public key), and a proof of work against Sybils (seeds 000, 004;
 * S/Kademlia style): the identity is valid only if
 *     SHA-256(public key (32 bytes) || nonce (8 bytes, little-endian))
 * starts with at least D zero bits. D is a network parameter: the default,
 * 22, costs 2^22 = 4.2 M hashes on average, about 1 s on the development
 * machine (ten keygens: 4.22 M tries/s, 0.87 s mean; docs/PROTOCOL.md).
 *
 * Key file (mode 0600), text:
 *     meshmap-identity 1
 *     difficulty <D>
 *     nonce <decimal>
 *     id <64 hex digits>
 *     -----BEGIN PRIVATE KEY-----   (PKCS#8 PEM, Ed25519)
 *     ...
 */
#ifndef MM_IDENTITY_H
#define MM_IDENTITY_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MM_POW_DEFAULT 22
#define MM_POW_MAX 40

typedef struct mm_identity {
	void *pkey;          /* EVP_PKEY * */
	uint8_t pub[32];
	uint8_t id[32];
	uint64_t nonce;
	unsigned difficulty;
} mm_identity_t;

/* New key, then a nonce meeting `difficulty`. *tries (if not NULL) gets the
 * number of hashes tried. 0 or -errno. */
int mm_id_generate(mm_identity_t *out, unsigned difficulty, uint64_t *tries);
void mm_id_free(mm_identity_t *id);
/* The key whose Ed25519 private seed is seed[32], and the first nonce from
 * 0 meeting `difficulty`: the same identity every time (the simulator's
 * nodes). 0 or -errno. */
int mm_id_from_seed(mm_identity_t *out, const uint8_t seed[32], unsigned difficulty);

/* Write the key file, mode 0600; refuses to replace a file unless force. */
int mm_id_save(const mm_identity_t *id, const char *path, int force);
/* Read and check a key file (format, key type, id, proof of work). On
 * -EINVAL, err names the file, the line and the problem. */
int mm_id_load(mm_identity_t *out, const char *path, char *err, size_t errlen);

void mm_id_of(const uint8_t pub[32], uint8_t id[32]);
/* SHA-256 of len bytes at p (len 0: p may be NULL) into out, with the
 * implementation fetched once (OpenSSL's one-shot SHA256() fetches it by
 * name on every call). */
void mm_sha256(const void *p, size_t len, uint8_t out[32]);
/* Leading zero bits of SHA-256(pub || nonce_le64). */
unsigned mm_pow_bits(const uint8_t pub[32], uint64_t nonce);
static inline int
mm_pow_ok(const uint8_t pub[32], uint64_t nonce, unsigned difficulty)
{
	return mm_pow_bits(pub, nonce) >= difficulty;
}

int mm_id_sign(const mm_identity_t *id, const void *msg, size_t len,
    uint8_t sig[64]);
/* 1 if sig is pub's signature of msg, 0 if not, -errno on failure. */
int mm_id_verify(const uint8_t pub[32], const void *msg, size_t len,
    const uint8_t sig[64]);
/* The simulator's verify memo: thousands of simulated nodes verify the
 * same signed events, and one verification per distinct (pub, msg, sig)
 * gives each of them the same answer. 2^log2_slots entries (24 bytes
 * each), direct-mapped, keyed by 128 bits of SipHash over the whole input;
 * 0 turns it off. NOT thread-safe: single-threaded processes only (the
 * simulator); the server never turns it on. 0 or -errno. */
int mm_id_verify_memo(unsigned log2_slots);
uint64_t mm_id_verify_memo_hits(void);

void mm_hex(const uint8_t *b, size_t n, char *out); /* 2n + 1 bytes */

#ifdef __cplusplus
}
#endif
#endif
