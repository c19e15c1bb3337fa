/* Between tls.c and the backends (mm_tls__ prefix). */
#ifndef MM_TLS_INTERNAL_H
#define MM_TLS_INTERNAL_H

#include "tls.h"

struct mm_tls_ops {
	int (*ctx_init)(mm_tls_ctx_t *c, const mm_tls_config_t *cfg,
	    const char *cert, const char *key, char *err, size_t errlen);
	void (*ctx_free)(mm_tls_ctx_t *c);
	int (*conn_init)(mm_tls_t *t, int fd, int server);
	void (*conn_free)(mm_tls_t *t);
	int (*handshake)(mm_tls_t *t);
	long (*read)(mm_tls_t *t, void *buf, size_t n);
	long (*write)(mm_tls_t *t, const void *buf, size_t n);
	void (*close_notify)(mm_tls_t *t);
	int (*peer_spki)(const mm_tls_t *t, uint8_t *der, size_t cap);
	int (*peer_cn)(const mm_tls_t *t, char *out, size_t cap);
	const char *(*describe)(const mm_tls_t *t, char *out, size_t cap);
};

struct mm_tls_ctx {
	const struct mm_tls_ops *ops;
	void *impl;
	int private_net;
	uint8_t spki[256];
	size_t spki_len;
	/* Our identity's binding of this context's certificate, signed once
	 * (mm_tls_ctx_binding): every hello carries the same one. */
	int bound;
	uint8_t bound_pub[32];
	uint8_t bind_sig[64];
};

struct mm_tls {
	mm_tls_ctx_t *ctx;
	void *impl;
	int fd;
	char err[200];
};

extern const struct mm_tls_ops mm_tls__openssl_ops;
extern const struct mm_tls_ops mm_tls__mbedtls_ops;

#endif
