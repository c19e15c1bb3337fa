/* TLS backend: OpenSSL. TLS 1.3, or TLS 1.2 limited to ECDHE-ECDSA-AES-GCM
 * for peers that cannot do 1.3. Idle sessions give their buffers back
 * (SSL_MODE_RELEASE_BUFFERS); no session tickets, no renegotiation. */
#include "tls_internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

/* Open network: any certificate is acceptable (the identity is proven by
 * the binding in hello, checked after the handshake), so chain building and
 * the self-signature check are skipped altogether: they cost an ECDSA
 * verify per handshake and side for nothing. OpenSSL has already required
 * that a certificate was sent (SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and will
 * check the peer's CertificateVerify signature with its key. */
static int
accept_any(X509_STORE_CTX *x, void *arg)
{
	(void)arg;
	return X509_STORE_CTX_get0_cert(x) != NULL;
}

static void
ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[160] = "";
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "tls (openssl): %s%s%s", what, e ? ": " : "", buf);
	ERR_clear_error();
}

static int
o_ctx_init(mm_tls_ctx_t *c, const mm_tls_config_t *cfg, const char *cert,
    const char *key, char *err, size_t errlen)
{
	SSL_CTX *s = SSL_CTX_new(TLS_method());
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	if (s == NULL) {
		ossl_err(err, errlen, "SSL_CTX_new");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(s, cfg->tls12_only ? TLS1_2_VERSION :
	    TLS1_3_VERSION);
	SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_num_tickets(s, 0);
	/* Every handshake is a full one (no tickets, no resumption): the
	 * server's session cache would only take locks. */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read ahead: one read(2) fills the record buffer with as many records
	 * as have arrived, instead of a read for each record's header and
	 * another for its body (a relay under flood: ~2 reads per record
	 * before). The buffer is the same one either way (a maximal record);
	 * conn.c reads until TLS wants more, so nothing buffered is stranded. */
	SSL_CTX_set_read_ahead(s, 1);
	/* AES-128-GCM first in TLS 1.3 too: as strong as the record layer
	 * needs, and faster than AES-256 on small machines. */
	if (SSL_CTX_set_cipher_list(s, "ECDHE-ECDSA-AES128-GCM-SHA256:"
	        "ECDHE-ECDSA-AES256-GCM-SHA384") != 1 ||
	    SSL_CTX_set_ciphersuites(s, "TLS_AES_128_GCM_SHA256:"
	        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1 ||
	    SSL_CTX_set1_groups_list(s, "X25519:P-256") != 1) {
		ossl_err(err, errlen, "cipher or group list");
		goto fail;
	}
	b = BIO_new_mem_buf(cert, -1);
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	b = BIO_new_mem_buf(key, -1);
	k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (x == NULL || k == NULL || SSL_CTX_use_certificate(s, x) != 1 ||
	    SSL_CTX_use_PrivateKey(s, k) != 1 || SSL_CTX_check_private_key(s) != 1) {
		ossl_err(err, errlen, "our certificate or key");
		goto fail;
	}
	if (cfg->ca_pem != NULL) {
		X509_STORE *st = SSL_CTX_get_cert_store(s);
		b = BIO_new_mem_buf(cfg->ca_pem, -1);
		X509 *ca;
		int n = 0;
		while (b && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
			n += X509_STORE_add_cert(st, ca) == 1;
			X509_free(ca);
		}
		BIO_free(b);
		ERR_clear_error(); /* end of the PEM list */
		if (n == 0) {
			snprintf(err, errlen, "tls (openssl): no CA certificate in ca_pem");
			goto fail;
		}
		SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		    NULL);
	} else {
		SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		    NULL);
		SSL_CTX_set_cert_verify_callback(s, accept_any, NULL);
	}
	X509_free(x);
	EVP_PKEY_free(k);
	c->impl = s;
	return 0;
fail:
	X509_free(x);
	EVP_PKEY_free(k);
	SSL_CTX_free(s);
	return -EINVAL;
}

static void
o_ctx_free(mm_tls_ctx_t *c)
{
	SSL_CTX_free(c->impl);
}

static int
o_conn_init(mm_tls_t *t, int fd, int server)
{
	SSL *s = SSL_new(t->ctx->impl);
	if (s == NULL || SSL_set_fd(s, fd) != 1) {
		SSL_free(s);
		return -ENOMEM;
	}
	if (server)
		SSL_set_accept_state(s);
	else
		SSL_set_connect_state(s);
	t->impl = s;
	return 0;
}

static void
o_conn_free(mm_tls_t *t)
{
	SSL_free(t->impl);
}

static int
o_result(mm_tls_t *t, int r, const char *what)
{
	switch (SSL_get_error(t->impl, r)) {
	case SSL_ERROR_WANT_READ:
		return MM_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return MM_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return MM_TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(t->err, sizeof(t->err), "tls (openssl): %s: connection "
			    "closed or reset", what);
			return MM_TLS_ERROR;
		}
		/* fall through */
	default: {
		long v = SSL_get_verify_result(t->impl);
		ossl_err(t->err, sizeof(t->err), what);
		if (v != X509_V_OK) {
			size_t l = strlen(t->err);
			snprintf(t->err + l, sizeof(t->err) - l, " (certificate: %s)",
			    X509_verify_cert_error_string(v));
		}
		return MM_TLS_ERROR;
	}
	}
}

static int
o_handshake(mm_tls_t *t)
{
	int r = SSL_do_handshake(t->impl);
	return r == 1 ? MM_TLS_OK : o_result(t, r, "handshake");
}

static long
o_read(mm_tls_t *t, void *buf, size_t n)
{
	size_t got = 0;
	int r = SSL_read_ex(t->impl, buf, n, &got);
	return r == 1 ? (long)got : o_result(t, r, "read");
}

static long
o_write(mm_tls_t *t, const void *buf, size_t n)
{
	size_t put = 0;
	int r = SSL_write_ex(t->impl, buf, n, &put);
	return r == 1 ? (long)put : o_result(t, r, "write");
}

static void
o_close_notify(mm_tls_t *t)
{
	(void)SSL_shutdown(t->impl); /* sends close_notify; not waiting for theirs */
	ERR_clear_error();
}

static int
o_peer_spki(const mm_tls_t *t, uint8_t *der, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(t->impl);
	if (x == NULL)
		return -ENOENT;
	/* The certificate's own SubjectPublicKeyInfo, re-serialised as ASN.1:
	 * i2d_PUBKEY would go through OpenSSL 3's encoder framework, which
	 * cost more per handshake than the Ed25519 verify it feeds. */
	X509_PUBKEY *xp = X509_get_X509_PUBKEY(x);
	int n = i2d_X509_PUBKEY(xp, NULL);
	if (n <= 0 || (size_t)n > cap)
		return -ENOSPC;
	uint8_t *p = der;
	return i2d_X509_PUBKEY(xp, &p);
}

static int
o_peer_cn(const mm_tls_t *t, char *out, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(t->impl);
	if (x == NULL)
		return -ENOENT;
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	    out, (int)cap);
	return n < 0 ? -ENOENT : n;
}

static const char *
o_describe(const mm_tls_t *t, char *out, size_t cap)
{
	snprintf(out, cap, "%s %s", SSL_get_version(t->impl),
	    SSL_get_cipher_name(t->impl));
	return out;
}

const struct mm_tls_ops mm_tls__openssl_ops = {
    o_ctx_init, o_ctx_free, o_conn_init, o_conn_free, o_handshake, o_read,
    o_write, o_close_notify, o_peer_spki, o_peer_cn, o_describe};
