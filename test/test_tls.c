/* TLS and the hello that follows it, over non-blocking socketpairs:
 * OpenSSL <-> OpenSSL (TLS 1.3), mbedTLS <-> mbedTLS and both interop
 * directions (TLS 1.2, ECDHE-ECDSA-AES-GCM), in the open network (self-
 * signed certificates + identity binding) and a private network (CA-signed,
 * peer id as CN); and each failure: a replayed hello on another certificate,
 * short proof of work, wrong network, wrong expected id, expired or foreign
 * certificate, CN mismatch, no client certificate. */
#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "hello.h"
#include "test.h"
#include "tls.h"

static const char *NET = "testnet";
static const unsigned DIFF = 8;

struct side {
	mm_tls_ctx_t *ctx;
	mm_tls_t *t;
	int fd;
	mm_identity_t id;
};

static void
nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static mm_tls_ctx_t *
ctx_new(mm_tls_backend_t b, const char *cert, const char *key, const char *ca)
{
	mm_tls_config_t c = {.backend = b, .cert_pem = cert, .key_pem = key,
	    .ca_pem = ca};
	mm_tls_ctx_t *ctx;
	char err[256] = "";
	int rc = mm_tls_ctx_new(&c, &ctx, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "ctx: %s\n", err);
	CHECK_EQ(rc, 0);
	return ctx;
}

/* Run both handshakes to the end; returns 0 if both finished. */
static int
handshake(struct side *c, struct side *s, char *why, size_t whylen)
{
	int rc_c = MM_TLS_WANT_WRITE, rc_s = MM_TLS_WANT_READ;
	for (int i = 0; i < 10000; i++) {
		if (rc_c != MM_TLS_OK && rc_c != MM_TLS_ERROR)
			rc_c = mm_tls_handshake(c->t);
		if (rc_s != MM_TLS_OK && rc_s != MM_TLS_ERROR)
			rc_s = mm_tls_handshake(s->t);
		if (rc_c == MM_TLS_ERROR || rc_s == MM_TLS_ERROR) {
			snprintf(why, whylen, "%s", rc_s == MM_TLS_ERROR ?
			    mm_tls_error(s->t) : mm_tls_error(c->t));
			return -1;
		}
		if (rc_c == MM_TLS_OK && rc_s == MM_TLS_OK)
			return 0;
		struct pollfd p[2] = {{c->fd, rc_c == MM_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0},
		    {s->fd, rc_s == MM_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0}};
		poll(p, 2, 100);
	}
	snprintf(why, whylen, "handshake did not finish");
	return -1;
}

static void
setup(struct side *c, struct side *s, mm_tls_ctx_t *cctx, mm_tls_ctx_t *sctx)
{
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	c->ctx = cctx;
	s->ctx = sctx;
	c->fd = sv[0];
	s->fd = sv[1];
	c->t = mm_tls_new(cctx, sv[0], 0);
	s->t = mm_tls_new(sctx, sv[1], 1);
	CHECK(c->t != NULL && s->t != NULL);
}

static void
teardown(struct side *c, struct side *s)
{
	mm_tls_free(c->t);
	mm_tls_free(s->t);
	close(c->fd);
	close(s->fd);
}

/* Send a whole buffer through TLS while the other side drains it. */
static void
transfer(struct side *from, struct side *to, size_t total)
{
	uint8_t *out = malloc(total), *in = malloc(total);
	for (size_t i = 0; i < total; i++)
		out[i] = (uint8_t)(i * 131 + 7);
	size_t sent = 0, got = 0;
	while (got < total) {
		if (sent < total) {
			long w = mm_tls_write(from->t, out + sent, total - sent);
			if (w > 0)
				sent += (size_t)w;
			else
				CHECK(w == MM_TLS_WANT_WRITE || w == MM_TLS_WANT_READ);
		}
		long r = mm_tls_read(to->t, in + got, total - got);
		if (r > 0)
			got += (size_t)r;
		else
			CHECK(r == MM_TLS_WANT_READ || r == MM_TLS_WANT_WRITE);
	}
	CHECK_EQ(memcmp(in, out, total), 0);
	free(out);
	free(in);
}

/* One frame through TLS: write it whole, read it whole. */
static void
send_frame(struct side *from, struct side *to, const uint8_t *frame, size_t n,
    uint8_t *rx, size_t rxcap, size_t *rxlen)
{
	size_t sent = 0, got = 0;
	while (got < n) {
		if (sent < n) {
			long w = mm_tls_write(from->t, frame + sent, n - sent);
			if (w > 0)
				sent += (size_t)w;
		}
		long r = mm_tls_read(to->t, rx + got, rxcap - got);
		if (r > 0)
			got += (size_t)r;
	}
	*rxlen = got;
}

/* Exchange hellos; return the receiver's verdict on the sender's hello. */
static int
hello_one_way(struct side *from, struct side *to, const mm_wire_msg_t *h,
    int private_net, const uint8_t *expect, const char **why)
{
	static uint8_t buf[4096], rx[4096];
	int n = mm_wire_encode(h, buf, sizeof(buf));
	CHECK_GT(n, 0);
	size_t got;
	send_frame(from, to, buf, (size_t)n, rx, sizeof(rx), &got);
	CHECK_EQ(got, (size_t)n);
	mm_wire_dec_t *d = mm_wire_dec_new();
	mm_wire_msg_t m;
	CHECK_EQ(mm_wire_decode(d, rx + 4, (uint32_t)got - 4, &m, why), MM_WIRE_OK);
	CHECK_EQ(m.type, MM_W_HELLO);
	uint8_t id[32];
	int rc = mm_hello_check(&m.u.hello, to->t, private_net, NET, DIFF, expect, id,
	    why);
	if (rc == 0)
		CHECK_EQ(memcmp(id, from->id.id, 32), 0);
	mm_wire_dec_free(d);
	return rc;
}

static const char *
bname(mm_tls_backend_t b)
{
	return b == MM_TLS_OPENSSL ? "openssl" : "mbedtls";
}

static void
test_open_network(void)
{
	mm_tls_backend_t bs[2] = {MM_TLS_OPENSSL, MM_TLS_MBEDTLS};
	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 2; j++) {
			struct side c = {0}, s = {0};
			CHECK_EQ(mm_id_generate(&c.id, DIFF, NULL), 0);
			CHECK_EQ(mm_id_generate(&s.id, DIFF, NULL), 0);
			setup(&c, &s, ctx_new(bs[i], NULL, NULL, NULL),
			    ctx_new(bs[j], NULL, NULL, NULL));
			char why[256];
			int rc = handshake(&c, &s, why, sizeof(why));
			if (rc != 0)
				fprintf(stderr, "%s -> %s: %s\n", bname(bs[i]), bname(bs[j]), why);
			CHECK_EQ(rc, 0);
			char d1[96], d2[96];
			mm_tls_describe(c.t, d1, sizeof(d1));
			mm_tls_describe(s.t, d2, sizeof(d2));
			fprintf(stderr, "   %s client -> %s server: %s\n", bname(bs[i]),
			    bname(bs[j]), d1);
			if (bs[i] == MM_TLS_OPENSSL && bs[j] == MM_TLS_OPENSSL) {
				CHECK(strncmp(d1, "TLSv1.3", 7) == 0);
			} else {
				CHECK(strncmp(d1, "TLSv1.2", 7) == 0);
				CHECK(strstr(d1, "ECDHE") != NULL && strstr(d1, "GCM") != NULL);
			}
			/* hellos both ways, each checked against its session */
			mm_wire_msg_t hc, hs;
			const char *w;
			CHECK_EQ(mm_hello_make(&hc, &c.id, c.ctx, NET, 0, 1), 0);
			CHECK_EQ(mm_hello_make(&hs, &s.id, s.ctx, NET, 7946, 1), 0);
			CHECK_EQ(hello_one_way(&c, &s, &hc, 0, NULL, &w), 0);
			CHECK_EQ(hello_one_way(&s, &c, &hs, 0, s.id.id, &w), 0);
			transfer(&c, &s, 1 << 20);
			transfer(&s, &c, 300000);
			teardown(&c, &s);
			mm_tls_ctx_free(c.ctx);
			mm_tls_ctx_free(s.ctx);
			mm_id_free(&c.id);
			mm_id_free(&s.id);
		}
	}
}

static void
test_hello_failures(void)
{
	struct side c = {0}, s = {0}, m = {0};
	CHECK_EQ(mm_id_generate(&c.id, DIFF, NULL), 0);
	CHECK_EQ(mm_id_generate(&s.id, DIFF, NULL), 0);
	setup(&c, &s, ctx_new(MM_TLS_OPENSSL, NULL, NULL, NULL),
	    ctx_new(MM_TLS_MBEDTLS, NULL, NULL, NULL));
	char why[256];
	CHECK_EQ(handshake(&c, &s, why, sizeof(why)), 0);
	const char *w;
	mm_wire_msg_t h;

	/* A replayed hello: made for another TLS certificate (another
	 * context), sent over this session. The binding does not hold. */
	m.ctx = ctx_new(MM_TLS_OPENSSL, NULL, NULL, NULL);
	CHECK_EQ(mm_hello_make(&h, &c.id, m.ctx, NET, 0, 1), 0);
	CHECK_EQ(hello_one_way(&c, &s, &h, 0, NULL, &w), MM_WERR_BAD_ID);
	/* Another network. */
	CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, "othernet", 0, 1), 0);
	CHECK_EQ(hello_one_way(&c, &s, &h, 0, NULL, &w), MM_WERR_NETWORK);
	/* Another version. */
	CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, NET, 0, 1), 0);
	h.u.hello.version = 2;
	CHECK_EQ(hello_one_way(&c, &s, &h, 0, NULL, &w), MM_WERR_VERSION);
	/* Proof of work short of the network's difficulty. */
	CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, NET, 0, 1), 0);
	while (mm_pow_ok(h.u.hello.pub, h.u.hello.pow, DIFF))
		h.u.hello.pow++;
	CHECK_EQ(hello_one_way(&c, &s, &h, 0, NULL, &w), MM_WERR_BAD_POW);
	/* Not the peer we dialled. */
	CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, NET, 0, 1), 0);
	CHECK_EQ(hello_one_way(&c, &s, &h, 0, s.id.id, &w), MM_WERR_BAD_ID);
	/* Another key claiming c's binding signature. */
	mm_identity_t x;
	CHECK_EQ(mm_id_generate(&x, DIFF, NULL), 0);
	CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, NET, 0, 1), 0);
	memcpy(h.u.hello.pub, x.pub, 32);
	h.u.hello.pow = x.nonce;
	CHECK_EQ(hello_one_way(&c, &s, &h, 0, NULL, &w), MM_WERR_BAD_ID);
	mm_id_free(&x);
	teardown(&c, &s);
	mm_tls_ctx_free(c.ctx);
	mm_tls_ctx_free(s.ctx);
	mm_tls_ctx_free(m.ctx);
	mm_id_free(&c.id);
	mm_id_free(&s.id);
}

static void
test_private_network(void)
{
	char *ca, *cak, *ca2, *ca2k;
	CHECK_EQ(mm_tls_make_ca("meshmap test CA", &ca, &cak), 0);
	CHECK_EQ(mm_tls_make_ca("someone else's CA", &ca2, &ca2k), 0);
	mm_tls_backend_t bs[2] = {MM_TLS_OPENSSL, MM_TLS_MBEDTLS};
	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 2; j++) {
			struct side c = {0}, s = {0};
			CHECK_EQ(mm_id_generate(&c.id, DIFF, NULL), 0);
			CHECK_EQ(mm_id_generate(&s.id, DIFF, NULL), 0);
			char hc[65], hs[65], *cc, *ck, *sc, *sk;
			mm_hex(c.id.id, 32, hc);
			mm_hex(s.id.id, 32, hs);
			CHECK_EQ(mm_tls_make_signed(ca, cak, hc, -60, 30, &cc, &ck), 0);
			CHECK_EQ(mm_tls_make_signed(ca, cak, hs, -60, 30, &sc, &sk), 0);
			setup(&c, &s, ctx_new(bs[i], cc, ck, ca), ctx_new(bs[j], sc, sk, ca));
			char why[256];
			int rc = handshake(&c, &s, why, sizeof(why));
			if (rc != 0)
				fprintf(stderr, "private %s -> %s: %s\n", bname(bs[i]),
				    bname(bs[j]), why);
			CHECK_EQ(rc, 0);
			mm_wire_msg_t h;
			const char *w;
			CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, NET, 0, 1), 0);
			CHECK_EQ(hello_one_way(&c, &s, &h, 1, NULL, &w), 0);
			CHECK_EQ(mm_hello_make(&h, &s.id, s.ctx, NET, 0, 1), 0);
			CHECK_EQ(hello_one_way(&s, &c, &h, 1, s.id.id, &w), 0);
			teardown(&c, &s);
			mm_tls_ctx_free(c.ctx);
			mm_tls_ctx_free(s.ctx);

			/* Failures, each against a valid server: */
			struct {
				const char *what;
				const char *ca_of_client;
				long nb, days;
				int cn_mismatch;
			} bad[] = {{"expired certificate", ca, -40L * 86400, 10, 0},
			    {"certificate from a foreign CA", ca2, -60, 30, 0},
			    {"CN is not the peer id", ca, -60, 30, 1}};
			for (int k = 0; k < 3; k++) {
				char *bc, *bk;
				const char *sign = bad[k].ca_of_client;
				CHECK_EQ(mm_tls_make_signed(sign, sign == ca ? cak : ca2k,
				    bad[k].cn_mismatch ? hs : hc, bad[k].nb, bad[k].days, &bc,
				    &bk), 0);
				setup(&c, &s, ctx_new(bs[i], bc, bk, ca),
				    ctx_new(bs[j], sc, sk, ca));
				rc = handshake(&c, &s, why, sizeof(why));
				if (bad[k].cn_mismatch) {
					/* TLS accepts it (valid chain); the hello check
					 * does not. */
					CHECK_EQ(rc, 0);
					CHECK_EQ(mm_hello_make(&h, &c.id, c.ctx, NET, 0, 1), 0);
					CHECK_EQ(hello_one_way(&c, &s, &h, 1, NULL, &w),
					    MM_WERR_BAD_ID);
				} else {
					if (rc == 0)
						fprintf(stderr, "%s accepted (%s -> %s)\n",
						    bad[k].what, bname(bs[i]), bname(bs[j]));
					CHECK_EQ(rc, -1);
					CHECK(why[0] != '\0');
				}
				teardown(&c, &s);
				mm_tls_ctx_free(c.ctx);
				mm_tls_ctx_free(s.ctx);
				free(bc);
				free(bk);
			}
			free(cc);
			free(ck);
			free(sc);
			free(sk);
			mm_id_free(&c.id);
			mm_id_free(&s.id);
		}
	}
	fprintf(stderr, "   private network: 4 backend pairs, expired, foreign "
	    "CA and CN mismatch refused\n");
	free(ca);
	free(cak);
	free(ca2);
	free(ca2k);
}

/* A client without a certificate (plain OpenSSL): both servers refuse. */
static void
test_no_client_cert(void)
{
	mm_tls_backend_t bs[2] = {MM_TLS_OPENSSL, MM_TLS_MBEDTLS};
	for (int j = 0; j < 2; j++) {
		mm_tls_ctx_t *sctx = ctx_new(bs[j], NULL, NULL, NULL);
		int sv[2];
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		nonblock(sv[0]);
		nonblock(sv[1]);
		SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, NULL);
		SSL *cs = SSL_new(raw);
		SSL_set_fd(cs, sv[0]);
		SSL_set_connect_state(cs);
		mm_tls_t *st = mm_tls_new(sctx, sv[1], 1);
		int rs = MM_TLS_WANT_READ, done = 0;
		for (int k = 0; k < 2000 && rs != MM_TLS_ERROR && !done; k++) {
			(void)SSL_do_handshake(cs);
			rs = mm_tls_handshake(st);
			if (rs == MM_TLS_OK) {
				/* TLS 1.3: the server learns of the missing
				 * certificate after its own Finished; the first read
				 * reports it. */
				char b[8];
				long r = mm_tls_read(st, b, sizeof(b));
				if (r == MM_TLS_ERROR)
					rs = MM_TLS_ERROR;
				done = r != MM_TLS_WANT_READ;
			}
			struct pollfd p[2] = {{sv[0], POLLIN, 0}, {sv[1], POLLIN, 0}};
			poll(p, 2, 20);
		}
		if (rs != MM_TLS_ERROR)
			fprintf(stderr, "%s server accepted a client without a certificate\n",
			    bname(bs[j]));
		CHECK_EQ(rs, MM_TLS_ERROR);
		fprintf(stderr, "   no client certificate, %s server: %s\n", bname(bs[j]),
		    mm_tls_error(st));
		mm_tls_free(st);
		SSL_free(cs);
		SSL_CTX_free(raw);
		close(sv[0]);
		close(sv[1]);
		mm_tls_ctx_free(sctx);
	}
}

int
main(void)
{
	RUN(test_open_network);
	RUN(test_hello_failures);
	RUN(test_private_network);
	RUN(test_no_client_cert);
	fprintf(stderr, "test_tls: ok\n");
	return 0;
}
