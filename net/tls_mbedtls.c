/* TLS backend: mbedTLS 2.28 (Debian 12). TLS 1.2, ECDHE-ECDSA with AES-GCM
 * only; as a client it negotiates 4 KiB records (max_fragment_length), so
 * that peers can keep their records small. Debian's build fixes the record
 * buffers at 16 KiB in and out (no MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH).
 *
 * Open network: authmode OPTIONAL, as mbedTLS refuses REQUIRED without a CA
 * chain; the handshake then fails here unless the peer sent a certificate,
 * and the identity is checked with the binding in hello. */
#include "tls_internal.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct mb_ctx {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt own, ca;
	mbedtls_pk_context key;
	mbedtls_ssl_config srv, cli;
	int ciphers[3];
	int have_ca;
};

struct mb_conn {
	mbedtls_ssl_context ssl;
	int fd;
};

static void
mb_err(char *err, size_t errlen, const char *what, int rc)
{
	char buf[128];
	mbedtls_strerror(rc, buf, sizeof(buf));
	snprintf(err, errlen, "tls (mbedtls): %s: %s (-0x%04x)", what, buf,
	    (unsigned)-rc);
}

static int
conf_init(struct mb_ctx *m, mbedtls_ssl_config *c, int endpoint, char *err,
    size_t errlen)
{
	mbedtls_ssl_config_init(c);
	int rc = mbedtls_ssl_config_defaults(c, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
	    MBEDTLS_SSL_PRESET_DEFAULT);
	if (rc != 0) {
		mb_err(err, errlen, "config", rc);
		return -EINVAL;
	}
	mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &m->drbg);
	mbedtls_ssl_conf_ciphersuites(c, m->ciphers);
	mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(c, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_renegotiation(c, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	if (m->have_ca) {
		mbedtls_ssl_conf_ca_chain(c, &m->ca, NULL);
		mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
	} else {
		mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_OPTIONAL);
	}
	if (endpoint == MBEDTLS_SSL_IS_CLIENT)
		mbedtls_ssl_conf_max_frag_len(c, MBEDTLS_SSL_MAX_FRAG_LEN_4096);
	rc = mbedtls_ssl_conf_own_cert(c, &m->own, &m->key);
	if (rc != 0) {
		mb_err(err, errlen, "own certificate", rc);
		return -EINVAL;
	}
	return 0;
}

static void
m_ctx_free(mm_tls_ctx_t *c)
{
	struct mb_ctx *m = c->impl;
	if (m == NULL)
		return;
	mbedtls_ssl_config_free(&m->srv);
	mbedtls_ssl_config_free(&m->cli);
	mbedtls_x509_crt_free(&m->own);
	mbedtls_x509_crt_free(&m->ca);
	mbedtls_pk_free(&m->key);
	mbedtls_ctr_drbg_free(&m->drbg);
	mbedtls_entropy_free(&m->entropy);
	free(m);
	c->impl = NULL;
}

static int
m_ctx_init(mm_tls_ctx_t *c, const mm_tls_config_t *cfg, const char *cert,
    const char *key, char *err, size_t errlen)
{
	struct mb_ctx *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	c->impl = m;
	mbedtls_entropy_init(&m->entropy);
	mbedtls_ctr_drbg_init(&m->drbg);
	mbedtls_x509_crt_init(&m->own);
	mbedtls_x509_crt_init(&m->ca);
	mbedtls_pk_init(&m->key);
	mbedtls_ssl_config_init(&m->srv);
	mbedtls_ssl_config_init(&m->cli);
	m->ciphers[0] = MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
	m->ciphers[1] = MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384;
	m->ciphers[2] = 0;
	int rc = mbedtls_ctr_drbg_seed(&m->drbg, mbedtls_entropy_func, &m->entropy,
	    (const unsigned char *)"meshmap", 7);
	if (rc != 0) {
		mb_err(err, errlen, "random seed", rc);
		goto fail;
	}
	/* PEM parsing wants the terminating NUL counted. */
	rc = mbedtls_x509_crt_parse(&m->own, (const unsigned char *)cert,
	    strlen(cert) + 1);
	if (rc == 0)
		rc = mbedtls_pk_parse_key(&m->key, (const unsigned char *)key,
		    strlen(key) + 1, NULL, 0);
	if (rc != 0) {
		mb_err(err, errlen, "our certificate or key", rc);
		goto fail;
	}
	if (cfg->ca_pem != NULL) {
		rc = mbedtls_x509_crt_parse(&m->ca, (const unsigned char *)cfg->ca_pem,
		    strlen(cfg->ca_pem) + 1);
		if (rc < 0) {
			mb_err(err, errlen, "CA certificate", rc);
			goto fail;
		}
		m->have_ca = 1;
	}
	if (conf_init(m, &m->srv, MBEDTLS_SSL_IS_SERVER, err, errlen) != 0 ||
	    conf_init(m, &m->cli, MBEDTLS_SSL_IS_CLIENT, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	m_ctx_free(c);
	return -EINVAL;
}

static int
net_send(void *p, const unsigned char *buf, size_t n)
{
	ssize_t r = send(*(int *)p, buf, n, MSG_NOSIGNAL);
	if (r >= 0)
		return (int)r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int
net_recv(void *p, unsigned char *buf, size_t n)
{
	ssize_t r = recv(*(int *)p, buf, n, 0);
	if (r > 0)
		return (int)r;
	if (r == 0)
		return MBEDTLS_ERR_NET_CONN_RESET;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static int
m_conn_init(mm_tls_t *t, int fd, int server)
{
	struct mb_ctx *m = t->ctx->impl;
	struct mb_conn *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	mbedtls_ssl_init(&k->ssl);
	if (mbedtls_ssl_setup(&k->ssl, server ? &m->srv : &m->cli) != 0) {
		mbedtls_ssl_free(&k->ssl);
		free(k);
		return -ENOMEM;
	}
	k->fd = fd;
	mbedtls_ssl_set_bio(&k->ssl, &k->fd, net_send, net_recv, NULL);
	t->impl = k;
	return 0;
}

static void
m_conn_free(mm_tls_t *t)
{
	struct mb_conn *k = t->impl;
	mbedtls_ssl_free(&k->ssl);
	free(k);
}

static int
m_result(mm_tls_t *t, int rc, const char *what)
{
	struct mb_conn *k = t->impl;
	if (rc == MBEDTLS_ERR_SSL_WANT_READ)
		return MM_TLS_WANT_READ;
	if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
		return MM_TLS_WANT_WRITE;
	if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0)
		return MM_TLS_CLOSED;
	mb_err(t->err, sizeof(t->err), what, rc);
	uint32_t flags = mbedtls_ssl_get_verify_result(&k->ssl);
	if (flags != 0 && flags != (uint32_t)-1) {
		char vb[160];
		if (mbedtls_x509_crt_verify_info(vb, sizeof(vb), "", flags) > 0) {
			vb[strcspn(vb, "\n")] = '\0';
			size_t l = strlen(t->err);
			snprintf(t->err + l, sizeof(t->err) - l, " (certificate:%s)", vb);
		}
	}
	return MM_TLS_ERROR;
}

static int
m_handshake(mm_tls_t *t)
{
	struct mb_conn *k = t->impl;
	int rc = mbedtls_ssl_handshake(&k->ssl);
	if (rc != 0)
		return m_result(t, rc, "handshake");
	if (mbedtls_ssl_get_peer_cert(&k->ssl) == NULL) {
		snprintf(t->err, sizeof(t->err),
		    "tls (mbedtls): handshake: the peer sent no certificate");
		return MM_TLS_ERROR;
	}
	return MM_TLS_OK;
}

static long
m_read(mm_tls_t *t, void *buf, size_t n)
{
	struct mb_conn *k = t->impl;
	int rc = mbedtls_ssl_read(&k->ssl, buf, n);
	return rc > 0 ? rc : m_result(t, rc, "read");
}

static long
m_write(mm_tls_t *t, const void *buf, size_t n)
{
	struct mb_conn *k = t->impl;
	int rc = mbedtls_ssl_write(&k->ssl, buf, n);
	return rc > 0 ? rc : m_result(t, rc == 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : rc,
	    "write");
}

static void
m_close_notify(mm_tls_t *t)
{
	struct mb_conn *k = t->impl;
	(void)mbedtls_ssl_close_notify(&k->ssl);
}

static int
m_peer_spki(const mm_tls_t *t, uint8_t *der, size_t cap)
{
	const struct mb_conn *k = t->impl;
	const mbedtls_x509_crt *c = mbedtls_ssl_get_peer_cert(&k->ssl);
	if (c == NULL)
		return -ENOENT;
	if (c->pk_raw.len > cap)
		return -ENOSPC;
	memcpy(der, c->pk_raw.p, c->pk_raw.len);
	return (int)c->pk_raw.len;
}

static int
m_peer_cn(const mm_tls_t *t, char *out, size_t cap)
{
	const struct mb_conn *k = t->impl;
	const mbedtls_x509_crt *c = mbedtls_ssl_get_peer_cert(&k->ssl);
	if (c == NULL)
		return -ENOENT;
	for (const mbedtls_x509_name *n = &c->subject; n != NULL; n = n->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
			if (n->val.len >= cap)
				return -ENOSPC;
			memcpy(out, n->val.p, n->val.len);
			out[n->val.len] = '\0';
			return (int)n->val.len;
		}
	}
	return -ENOENT;
}

static const char *
m_describe(const mm_tls_t *t, char *out, size_t cap)
{
	const struct mb_conn *k = t->impl;
	snprintf(out, cap, "%s %s", mbedtls_ssl_get_version(&k->ssl),
	    mbedtls_ssl_get_ciphersuite(&k->ssl));
	return out;
}

const struct mm_tls_ops mm_tls__mbedtls_ops = {
    m_ctx_init, m_ctx_free, m_conn_init, m_conn_free, m_handshake, m_read,
    m_write, m_close_notify, m_peer_spki, m_peer_cn, m_describe};
