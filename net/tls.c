#include "tls_internal.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm_rt.h"

/* ---- certificates ------------------------------------------------------- */

static char *
bio_to_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = malloc((size_t)n + 1);
	if (s != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

static int
to_pem(X509 *x, EVP_PKEY *k, char **cert_pem, char **key_pem)
{
	BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
	int ok = bc && bk && PEM_write_bio_X509(bc, x) == 1 &&
	    PEM_write_bio_PrivateKey(bk, k, NULL, NULL, 0, NULL, NULL) == 1;
	*cert_pem = ok ? bio_to_string(bc) : NULL;
	*key_pem = ok ? bio_to_string(bk) : NULL;
	BIO_free(bc);
	BIO_free(bk);
	if (*cert_pem == NULL || *key_pem == NULL) {
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A P-256 certificate for cn, signed by (issuer, ikey) or by itself. */
static int
make_cert(const char *cn, X509 *issuer, EVP_PKEY *ikey, int ca,
    long not_before, long days, X509 **out, EVP_PKEY **key_out)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	uint64_t serial;
	if (k == NULL || x == NULL || mm_secure_random(&serial, sizeof(serial)) != 0)
		goto fail;
	serial &= INT64_MAX;
	X509_set_version(x, 2);
	ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), not_before);
	X509_gmtime_adj(X509_getm_notAfter(x), not_before + days * 86400L);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_set_pubkey(x, k);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (bc == NULL || X509_add_ext(x, bc, -1) != 1) {
		X509_EXTENSION_free(bc);
		goto fail;
	}
	X509_EXTENSION_free(bc);
	if (X509_sign(x, ikey ? ikey : k, EVP_sha256()) <= 0)
		goto fail;
	*out = x;
	*key_out = k;
	return 0;
fail:
	X509_free(x);
	EVP_PKEY_free(k);
	return -EIO;
}

/* A self-signed certificate (a node's, or a CA's) as PEM, valid from an
 * hour ago (clock skew) for ten years. */
static int
self_signed_pem(const char *cn, int ca, char **cert_pem, char **key_pem)
{
	X509 *x;
	EVP_PKEY *k;
	int rc = make_cert(cn, NULL, NULL, ca, -3600, 3650, &x, &k);
	if (rc != 0)
		return rc;
	rc = to_pem(x, k, cert_pem, key_pem);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int
mm_tls_selfsigned(char **cert_pem, char **key_pem)
{
	/* Made at every start; identity comes from the binding, not from the
	 * name or the dates. */
	return self_signed_pem("meshmap", 0, cert_pem, key_pem);
}

int
mm_tls_make_ca(const char *cn, char **cert_pem, char **key_pem)
{
	return self_signed_pem(cn, 1, cert_pem, key_pem);
}

int
mm_tls_make_signed(const char *ca_cert_pem, const char *ca_key_pem,
    const char *cn, long not_before, long days, char **cert_pem, char **key_pem)
{
	BIO *bc = BIO_new_mem_buf(ca_cert_pem, -1), *bk = BIO_new_mem_buf(ca_key_pem, -1);
	X509 *ca = bc ? PEM_read_bio_X509(bc, NULL, NULL, NULL) : NULL;
	EVP_PKEY *cak = bk ? PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL) : NULL;
	BIO_free(bc);
	BIO_free(bk);
	int rc = -EINVAL;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	if (ca != NULL && cak != NULL &&
	    (rc = make_cert(cn, ca, cak, 0, not_before, days, &x, &k)) == 0) {
		rc = to_pem(x, k, cert_pem, key_pem);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	X509_free(ca);
	EVP_PKEY_free(cak);
	return rc;
}

static int
cert_spki(const char *cert_pem, uint8_t *der, size_t cap)
{
	BIO *b = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (x == NULL)
		return -EINVAL;
	/* Same serialisation as the backends' peer_spki (i2d_X509_PUBKEY). */
	X509_PUBKEY *xp = X509_get_X509_PUBKEY(x);
	int n = i2d_X509_PUBKEY(xp, NULL);
	int rc = -ENOSPC;
	if (n > 0 && (size_t)n <= cap) {
		uint8_t *p = der;
		rc = i2d_X509_PUBKEY(xp, &p);
	}
	X509_free(x);
	return rc;
}

/* ---- binding --------------------------------------------------------------- */

static size_t
bind_msg(uint8_t *out, size_t cap, const uint8_t *spki, size_t n)
{
	size_t l = sizeof(MM_TLS_BIND_LABEL) - 1;
	if (l + n > cap)
		return 0;
	memcpy(out, MM_TLS_BIND_LABEL, l);
	memcpy(out + l, spki, n);
	return l + n;
}

int
mm_tls_bind_sign(const mm_identity_t *id, const uint8_t *spki, size_t n,
    uint8_t sig[64])
{
	uint8_t m[512];
	size_t ml = bind_msg(m, sizeof(m), spki, n);
	return ml ? mm_id_sign(id, m, ml, sig) : -ENOSPC;
}

int
mm_tls_bind_verify(const uint8_t pub[32], const uint8_t *spki, size_t n,
    const uint8_t sig[64])
{
	uint8_t m[512];
	size_t ml = bind_msg(m, sizeof(m), spki, n);
	return ml ? mm_id_verify(pub, m, ml, sig) == 1 : 0;
}

int
mm_tls_ctx_binding(mm_tls_ctx_t *c, const mm_identity_t *id, uint8_t sig[64])
{
	if (!c->bound || memcmp(c->bound_pub, id->pub, 32) != 0) {
		int rc = mm_tls_bind_sign(id, c->spki, c->spki_len, c->bind_sig);
		if (rc != 0)
			return rc;
		memcpy(c->bound_pub, id->pub, 32);
		c->bound = 1;
	}
	memcpy(sig, c->bind_sig, 64);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------- */

int
mm_tls_ctx_new(const mm_tls_config_t *cfg, mm_tls_ctx_t **out, char *err,
    size_t errlen)
{
	const struct mm_tls_ops *ops = cfg->backend == MM_TLS_MBEDTLS ?
	    &mm_tls__mbedtls_ops : cfg->backend == MM_TLS_OPENSSL ?
	    &mm_tls__openssl_ops : NULL;
	if (ops == NULL || (cfg->cert_pem == NULL) != (cfg->key_pem == NULL)) {
		snprintf(err, errlen, "tls: %s", ops == NULL ? "unknown backend" :
		    "a certificate needs its key and a key its certificate");
		return -EINVAL;
	}
	mm_tls_ctx_t *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->ops = ops;
	c->private_net = cfg->ca_pem != NULL;
	char *cert = NULL, *key = NULL;
	const char *cp = cfg->cert_pem, *kp = cfg->key_pem;
	int rc = 0;
	if (cp == NULL) {
		if ((rc = mm_tls_selfsigned(&cert, &key)) != 0) {
			snprintf(err, errlen, "tls: cannot make a self-signed certificate");
			free(c);
			return rc;
		}
		cp = cert;
		kp = key;
	}
	int n = cert_spki(cp, c->spki, sizeof(c->spki));
	if (n < 0) {
		snprintf(err, errlen, "tls: cannot read our certificate's public key");
		rc = -EINVAL;
	} else {
		c->spki_len = (size_t)n;
		rc = ops->ctx_init(c, cfg, cp, kp, err, errlen);
	}
	free(cert);
	free(key);
	if (rc != 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
mm_tls_ctx_free(mm_tls_ctx_t *c)
{
	if (c == NULL)
		return;
	c->ops->ctx_free(c);
	free(c);
}

int
mm_tls_ctx_spki(const mm_tls_ctx_t *c, uint8_t *der, size_t cap)
{
	if (c->spki_len > cap)
		return -ENOSPC;
	memcpy(der, c->spki, c->spki_len);
	return (int)c->spki_len;
}

mm_tls_t *
mm_tls_new(mm_tls_ctx_t *c, int fd, int server)
{
	mm_tls_t *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->ctx = c;
	t->fd = fd;
	if (c->ops->conn_init(t, fd, server) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

void
mm_tls_free(mm_tls_t *t)
{
	if (t == NULL)
		return;
	t->ctx->ops->conn_free(t);
	free(t);
}

int mm_tls_handshake(mm_tls_t *t) { return t->ctx->ops->handshake(t); }
long mm_tls_read(mm_tls_t *t, void *b, size_t n) { return t->ctx->ops->read(t, b, n); }
long mm_tls_write(mm_tls_t *t, const void *b, size_t n) { return t->ctx->ops->write(t, b, n); }
void mm_tls_close_notify(mm_tls_t *t) { t->ctx->ops->close_notify(t); }
const char *mm_tls_error(const mm_tls_t *t) { return t->err; }

const char *
mm_tls_describe(const mm_tls_t *t, char *out, size_t cap)
{
	return t->ctx->ops->describe(t, out, cap);
}

int
mm_tls_peer_spki(const mm_tls_t *t, uint8_t *der, size_t cap)
{
	return t->ctx->ops->peer_spki(t, der, cap);
}

int
mm_tls_peer_cn(const mm_tls_t *t, char *out, size_t cap)
{
	return t->ctx->ops->peer_cn(t, out, cap);
}
