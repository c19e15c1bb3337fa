/*
 * TLS behind one small internal API, two backends:
 *   OpenSSL - TLS 1.3 between OpenSSL nodes; TLS 1.2 with ECDHE-ECDSA-AES-GCM
 *             only when the peer cannot do 1.3 (an mbedTLS node);
 *   mbedTLS - TLS 1.2, ECDHE-ECDSA-AES-GCM only (Debian's mbedTLS 2.28 has
 *             no TLS 1.3), smaller records negotiated (max_fragment_length).
 * Both are compiled in and chosen per context (config), so that one process
 * can test that the two interoperate; DESIGN.md suggests a build-time pick,
 * docs/ARCHITECTURE.md says why not.
 *
 * Authentication is mutual, in two modes:
 *   open network    - each side presents a self-signed ECDSA P-256
 *                     certificate (generated at start). TLS proves the peer
 *                     holds that certificate's key; its `hello` then carries
 *                     an Ed25519 signature by its identity key over the
 *                     certificate's public key (mm_tls_bind_*), which ties
 *                     the identity to this TLS session;
 *   private network - certificates signed by the operator's CA, with the
 *                     peer id (64 hex digits) as the subject's common name.
 *
 * Non-blocking: handshake, read and write return MM_TLS_WANT_READ/WRITE when
 * the socket would block. A context and its connections belong to one
 * thread (a worker): mbedTLS's random generator is per context.
 */
#ifndef MM_TLS_H
#define MM_TLS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mm_tls_backend {
	MM_TLS_OPENSSL = 1,
	MM_TLS_MBEDTLS = 2
} mm_tls_backend_t;

typedef struct mm_tls_config {
	mm_tls_backend_t backend;
	/* Our certificate and its key, PEM. NULL: a self-signed P-256
	 * certificate is generated (open network). */
	const char *cert_pem;
	const char *key_pem;
	/* Private network: accept only certificates signed by this CA (PEM).
	 * NULL: open network. */
	const char *ca_pem;
	int tls12_only;   /* OpenSSL: offer TLS 1.2 only (tests, interop) */
} mm_tls_config_t;

typedef struct mm_tls_ctx mm_tls_ctx_t;
typedef struct mm_tls mm_tls_t;

enum {
	MM_TLS_OK = 0,
	MM_TLS_WANT_READ = -2001,
	MM_TLS_WANT_WRITE = -2002,
	MM_TLS_CLOSED = -2003,   /* the peer closed the TLS session */
	MM_TLS_ERROR = -2004     /* see mm_tls_error() */
};

int mm_tls_ctx_new(const mm_tls_config_t *cfg, mm_tls_ctx_t **out, char *err,
    size_t errlen);
void mm_tls_ctx_free(mm_tls_ctx_t *ctx);
/* Our certificate's public key (SubjectPublicKeyInfo, DER). Returns its
 * length, or -ENOSPC. */
int mm_tls_ctx_spki(const mm_tls_ctx_t *ctx, uint8_t *der, size_t cap);

/* A TLS session over a connected non-blocking socket. */
mm_tls_t *mm_tls_new(mm_tls_ctx_t *ctx, int fd, int server);
void mm_tls_free(mm_tls_t *t);
int mm_tls_handshake(mm_tls_t *t);               /* MM_TLS_OK when done */
long mm_tls_read(mm_tls_t *t, void *buf, size_t n);  /* > 0 or MM_TLS_* */
long mm_tls_write(mm_tls_t *t, const void *buf, size_t n);
/* Best effort, without waiting: tell the peer we close (TLS close_notify),
 * so that it reads an orderly end, not a truncation. After the handshake. */
void mm_tls_close_notify(mm_tls_t *t);
const char *mm_tls_error(const mm_tls_t *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" etc., after the handshake. */
const char *mm_tls_describe(const mm_tls_t *t, char *out, size_t cap);
/* The peer's certificate public key (DER) / subject common name. */
int mm_tls_peer_spki(const mm_tls_t *t, uint8_t *der, size_t cap);
int mm_tls_peer_cn(const mm_tls_t *t, char *out, size_t cap);

/* ---- identity binding (open network) ---- */
#define MM_TLS_BIND_LABEL "meshmap-tls-v1"
int mm_tls_bind_sign(const mm_identity_t *id, const uint8_t *spki, size_t n,
    uint8_t sig[64]);
/* Our binding for this context's certificate, signed on first use and then
 * reused (the certificate does not change). One context per thread. */
int mm_tls_ctx_binding(mm_tls_ctx_t *ctx, const mm_identity_t *id,
    uint8_t sig[64]);
/* 1 if sig is pub's binding of spki, else 0. */
int mm_tls_bind_verify(const uint8_t pub[32], const uint8_t *spki, size_t n,
    const uint8_t sig[64]);

/* ---- certificates (OpenSSL's libcrypto, whatever the backend) ---- */
/* Self-signed P-256 certificate; PEM strings to free(). */
int mm_tls_selfsigned(char **cert_pem, char **key_pem);
/* A CA (P-256, self-signed, CA:TRUE) and node certificates it signs with
 * the given common name, valid from not_before for days (tests and the
 * operator guide). */
int mm_tls_make_ca(const char *cn, char **cert_pem, char **key_pem);
int mm_tls_make_signed(const char *ca_cert_pem, const char *ca_key_pem,
    const char *cn, long not_before_offset_s, long days, char **cert_pem,
    char **key_pem);

#ifdef __cplusplus
}
#endif
#endif
