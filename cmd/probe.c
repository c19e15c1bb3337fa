/*
 * meshmap probe: misbehave once towards a node, as a hostile peer would,
 * and report how the node answered: the error it sent, how long after the
 * fault it closed the connection, and (--again) how a new connection from
 * this host is then received. Or, with --kind ping, an honest link that
 * pings and reports the round trips (the junk-flood test's witness).
 *
 * It speaks the protocol byte by byte over its own TLS connection (not
 * through the node's connection layer, which would refuse to send these
 * faults); the faults are built with msgpack-c or the wire encoder.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "cmd.h"
#include "conn.h"
#include "frame.h"
#include "hello.h"
#include "identity.h"
#include "tls.h"
#include "wire.h"

enum kind {
	P_OVERSIZE, P_ZERO, P_TRUNCATED, P_BADPACK, P_BADPARAMS, P_UNKNOWN, P_ORDER,
	P_EARLY, P_SHORTPOW, P_WRONGID, P_BADSIG, P_CONNECT, P_PING, P_JUNK, P__N
};
static const char *const kind_name[P__N] = {"oversize", "zero", "truncated", "badpack",
    "badparams", "unknown", "order", "early", "shortpow", "wrongid", "badsig", "connect",
    "ping", "junk"};

struct opts {
	const char *target, *network, *key;
	unsigned long difficulty, timeout_s, interval_ms, duration_s;
	int kind, again, json;
};

/* one raw connection */
struct raw {
	int fd;
	mm_tls_ctx_t *ctx;
	mm_tls_t *t;
	mm_framer_t rx;
	mm_wire_dec_t *dec;
	int closed;         /* the node ended it (EOF, reset, TLS close) */
	int err_code;       /* the last error message's code, 0: none */
	char err_msg[128];
};

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
raw_free(struct raw *r)
{
	if (r->t != NULL)
		mm_tls_free(r->t);
	if (r->ctx != NULL)
		mm_tls_ctx_free(r->ctx);
	if (r->dec != NULL)
		mm_wire_dec_free(r->dec);
	mm_framer_free(&r->rx);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* TCP connect, within the timeout. 0, or -1 with *why. */
static int
raw_tcp(struct raw *r, const struct sockaddr_storage *ss, socklen_t sl, double deadline,
    const char **why)
{
	memset(r, 0, sizeof(*r));
	r->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mm_framer_init(&r->rx, MM_FRAME_MAX_DEFAULT);
	if (r->fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (connect(r->fd, (const struct sockaddr *)ss, sl) != 0 && errno != EINPROGRESS) {
		*why = strerror(errno);
		return -1;
	}
	struct pollfd p = {r->fd, POLLOUT, 0};
	int left = (int)(deadline - mono_ms());
	if (poll(&p, 1, left > 0 ? left : 0) != 1) {
		*why = "connect timed out";
		return -1;
	}
	int err = 0;
	socklen_t l = sizeof(err);
	getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err != 0) {
		*why = strerror(err);
		return -1;
	}
	return 0;
}

/* The TLS handshake as a client. 0; -1: the node ended the connection
 * during it (a refusal at accept looks like this); -2: it did not finish
 * in time. */
static int
raw_tls(struct raw *r, double deadline, const char **why)
{
	mm_tls_config_t c = {.backend = MM_TLS_OPENSSL};
	char err[256];
	if (mm_tls_ctx_new(&c, &r->ctx, err, sizeof(err)) != 0) {
		*why = "cannot make a TLS context";
		return -2;
	}
	r->t = mm_tls_new(r->ctx, r->fd, 0);
	r->dec = mm_wire_dec_new();
	if (r->t == NULL || r->dec == NULL) {
		*why = "out of memory";
		return -2;
	}
	for (;;) {
		int rc = mm_tls_handshake(r->t);
		if (rc == MM_TLS_OK)
			return 0;
		if (rc != MM_TLS_WANT_READ && rc != MM_TLS_WANT_WRITE) {
			*why = mm_tls_error(r->t);
			return -1;
		}
		int left = (int)(deadline - mono_ms());
		if (left <= 0) {
			*why = "TLS handshake timed out";
			return -2;
		}
		struct pollfd p = {r->fd, rc == MM_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0};
		poll(&p, 1, left);
	}
}

static int
raw_send(struct raw *r, const void *p, size_t n, double deadline)
{
	size_t off = 0;
	while (off < n) {
		long w = mm_tls_write(r->t, (const uint8_t *)p + off, n - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w != MM_TLS_WANT_WRITE && w != MM_TLS_WANT_READ)
			return -1;
		int left = (int)(deadline - mono_ms());
		if (left <= 0)
			return -1;
		poll(&(struct pollfd){r->fd, w == MM_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0}, 1,
		    left);
	}
	return 0;
}

static int
raw_send_msg(struct raw *r, const mm_wire_msg_t *m, double deadline)
{
	static uint8_t b[MM_FRAME_MAX_DEFAULT + 64];
	int n = mm_wire_encode(m, b, sizeof(b));
	return n > 0 ? raw_send(r, b, (size_t)n, deadline) : -1;
}

/* Next message from the node until the deadline: 1; 0 once it has ended
 * the connection (r->closed); -1 at the deadline. A ping is answered (we
 * are a live peer) and not returned; an error message is noted. */
static int
raw_next(struct raw *r, mm_wire_msg_t *m, double deadline)
{
	for (;;) {
		const uint8_t *f;
		uint32_t len;
		int fr = mm_framer_next(&r->rx, &f, &len);
		if (fr == MM_FRAME_OK) {
			const char *why;
			if (mm_wire_decode(r->dec, f, len, m, &why) != MM_WIRE_OK)
				continue; /* not ours to judge */
			if (m->type == MM_W_PING) {
				mm_wire_msg_t p = {.type = MM_W_PONG, .req = m->req};
				p.u.ping.ts = m->u.ping.ts;
				/* whole or not at all: a frame cut short would
				 * garble the stream (a second to get it out) */
				(void)raw_send_msg(r, &p, mono_ms() + 1000);
				continue;
			}
			if (m->type == MM_W_ERROR) {
				r->err_code = (int)m->u.error.code;
				snprintf(r->err_msg, sizeof(r->err_msg), "%.*s",
				    (int)m->u.error.msg.len, (const char *)m->u.error.msg.ptr);
			}
			return 1;
		}
		if (fr < 0) { /* the node's framing is not ours to judge either */
			r->closed = 1;
			return 0;
		}
		size_t avail;
		uint8_t *p = mm_framer_space(&r->rx, 16384, &avail);
		long n = p != NULL ? mm_tls_read(r->t, p, avail) : MM_TLS_ERROR;
		if (n > 0) {
			mm_framer_commit(&r->rx, (size_t)n);
			continue;
		}
		if (n != MM_TLS_WANT_READ && n != MM_TLS_WANT_WRITE) {
			r->closed = 1;
			return 0;
		}
		int left = (int)(deadline - mono_ms());
		if (left <= 0)
			return -1;
		poll(&(struct pollfd){r->fd, n == MM_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0}, 1,
		    left);
	}
}

/* Our hello: made for `bind_ctx`'s certificate (another context than the
 * connection's: an identity that does not match the TLS session), with its
 * proof of work broken if asked. */
static int
raw_hello(struct raw *r, const mm_identity_t *id, mm_tls_ctx_t *bind_ctx,
    const char *net, unsigned difficulty, int break_pow, double deadline)
{
	mm_wire_msg_t h;
	if (mm_hello_make(&h, id, bind_ctx, net, 0, (uint64_t)time(NULL) * 1000u) != 0)
		return -1;
	if (break_pow)
		while (mm_pow_ok(h.u.hello.pub, h.u.hello.pow, difficulty))
			h.u.hello.pow++;
	return raw_send_msg(r, &h, deadline);
}

/* ---- the faults ---------------------------------------------------------------- */

/* A frame of msgpack-c's making: {"cmd": cmd, "req": 1, "params": {key: value}},
 * value a string when `as_text`, else the unsigned v. `entries` is the map
 * size the header announces (3 for a true one; more: truncated). */
static int
pack_frame(msgpack_sbuffer *sb, const char *cmd, const char *key, int as_text,
    uint64_t v, uint32_t entries)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_sbuffer_write(sb, "\0\0\0\0", MM_FRAME_HDR); /* the length, below */
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, entries);
	msgpack_pack_str_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, cmd, strlen(cmd));
	msgpack_pack_str_with_body(&pk, "req", 3);
	msgpack_pack_uint32(&pk, 1);
	msgpack_pack_str_with_body(&pk, "params", 6);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, key, strlen(key));
	if (as_text)
		msgpack_pack_str_with_body(&pk, "x", 1);
	else
		msgpack_pack_uint64(&pk, v);
	mm_frame_put_len((uint8_t *)sb->data, (uint32_t)(sb->size - MM_FRAME_HDR));
	return 0;
}

/* Send the fault of `kind` on a connection past both hellos (or, for the
 * hello faults, instead of a valid hello). 0, or -1. */
static int
send_fault(struct raw *r, int kind, const mm_identity_t *id, const uint8_t node_id[32],
    double deadline)
{
	msgpack_sbuffer sb;
	uint8_t b[MM_FRAME_HDR + 1];
	int rc = 0;
	switch (kind) {
	case P_OVERSIZE: /* 4 GB - 1 announced: over any maximum */
		memset(b, 0xff, MM_FRAME_HDR);
		return raw_send(r, b, MM_FRAME_HDR, deadline);
	case P_ZERO:
		memset(b, 0, MM_FRAME_HDR);
		return raw_send(r, b, MM_FRAME_HDR, deadline);
	case P_BADPACK: /* 0xc1: the one byte msgpack never uses */
		mm_frame_put_len(b, 1);
		b[MM_FRAME_HDR] = 0xc1;
		return raw_send(r, b, sizeof(b), deadline);
	case P_TRUNCATED: /* a ping whose map announces a 4th entry it lacks */
		pack_frame(&sb, "ping", "ts", 0, 1, 4);
		break;
	case P_BADPARAMS: /* a ping whose ts is text */
		pack_frame(&sb, "ping", "ts", 1, 0, 3);
		break;
	case P_UNKNOWN: /* answered up to the node's budget, then closed */
		pack_frame(&sb, "teleport", "to", 0, 42, 3);
		for (int i = 0; i < 64 && rc == 0; i++)
			rc = raw_send(r, sb.data, sb.size, deadline);
		msgpack_sbuffer_destroy(&sb);
		return rc;
	case P_BADSIG: { /* an event about us and the node, signed by no one */
		mm_wire_msg_t m = {.type = MM_W_EVENT};
		memcpy(m.u.event.pub, id->pub, 32);
		m.u.event.pow = id->nonce;
		memcpy(m.u.event.peer, node_id, 32);
		m.u.event.kind = 1;
		m.u.event.dir = 1;
		m.u.event.seq = 1;
		m.u.event.ts = (uint64_t)time(NULL) * 1000u;
		m.u.event.ttl = 2;
		memset(m.u.event.sig, 0x5a, 64);
		return raw_send_msg(r, &m, deadline);
	}
	default:
		return -1;
	}
	rc = raw_send(r, sb.data, sb.size, deadline);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* ---- one probe ----------------------------------------------------------------- */

struct result {
	int connected;      /* TCP and TLS done */
	int accepted;       /* the node's hello came */
	int closed;         /* the node ended the connection in time */
	double close_ms;    /* after the fault */
	double fault_at;    /* a hello fault: when it was sent */
	int err_code;
	char err_msg[128];
	const char *fail;   /* why the probe itself failed */
	uint8_t node_id[32];
};

/* Connect and say hello (or the hello fault), read the node's hello. */
static void
open_link(struct raw *r, const struct opts *o, const struct sockaddr_storage *ss,
    socklen_t sl, const mm_identity_t *id, int kind, double deadline, struct result *res)
{
	const char *why = "";
	if (raw_tcp(r, ss, sl, deadline, &why) != 0) {
		res->fail = why;
		return;
	}
	int t = raw_tls(r, deadline, &why);
	if (t != 0) {
		/* ended by the node before TLS was done: refused at accept */
		res->closed = t == -1;
		if (t == -2)
			res->fail = why;
		return;
	}
	res->connected = 1;
	mm_tls_ctx_t *other = NULL;
	int rc;
	res->fault_at = mono_ms();
	if (kind == P_EARLY) {
		mm_wire_msg_t p = {.type = MM_W_PING, .req = 1};
		p.u.ping.ts = 1;
		rc = raw_send_msg(r, &p, deadline);
	} else if (kind == P_WRONGID) {
		mm_tls_config_t c = {.backend = MM_TLS_OPENSSL};
		char err[256];
		rc = mm_tls_ctx_new(&c, &other, err, sizeof(err));
		res->fault_at = mono_ms(); /* not the certificate's making */
		if (rc == 0)
			rc = raw_hello(r, id, other, o->network, (unsigned)o->difficulty, 0,
			    deadline);
		mm_tls_ctx_free(other);
	} else {
		rc = raw_hello(r, id, r->ctx, o->network, (unsigned)o->difficulty,
		    kind == P_SHORTPOW, deadline);
	}
	if (rc != 0) {
		res->closed = 1;
		return;
	}
	if (kind == P_EARLY || kind == P_WRONGID || kind == P_SHORTPOW)
		return; /* the fault is sent; the node's hello may come or not */
	mm_wire_msg_t m;
	while ((rc = raw_next(r, &m, deadline)) == 1) {
		if (m.type == MM_W_HELLO) {
			mm_id_of(m.u.hello.pub, res->node_id);
			res->accepted = 1;
			return;
		}
		if (m.type == MM_W_ERROR)
			break;
	}
	res->closed = r->closed || rc == 0;
	res->err_code = r->err_code;
	snprintf(res->err_msg, sizeof(res->err_msg), "%s", r->err_msg);
	if (rc < 0)
		res->fail = "no hello from the node in time";
}

/* Wait for the node to end the connection; fills close_ms from t0. */
static void
await_close(struct raw *r, double t0, double deadline, struct result *res)
{
	mm_wire_msg_t m;
	int rc;
	while ((rc = raw_next(r, &m, deadline)) == 1)
		;
	res->closed = rc == 0;
	res->close_ms = mono_ms() - t0;
	res->err_code = r->err_code;
	snprintf(res->err_msg, sizeof(res->err_msg), "%s", r->err_msg);
}

/* How a fresh connection is received: "refused at accept" (ended before
 * TLS was done), "refused at hello: <error>", "accepted", or why not known. */
static void
receive_text(const struct opts *o, const struct sockaddr_storage *ss, socklen_t sl,
    const mm_identity_t *id, char *out, size_t cap)
{
	struct raw r;
	struct result res = {0};
	double deadline = mono_ms() + (double)o->timeout_s * 1e3;
	open_link(&r, o, ss, sl, id, P_CONNECT, deadline, &res);
	if (res.accepted) {
		/* the node may still refuse us once its actor sees the link */
		mm_wire_msg_t m;
		double until = mono_ms() + 500;
		while (raw_next(&r, &m, until) == 1 && m.type != MM_W_ERROR)
			;
		if (r.err_code != 0) {
			res.err_code = r.err_code;
			snprintf(res.err_msg, sizeof(res.err_msg), "%s", r.err_msg);
		}
	}
	if (res.err_code != 0)
		snprintf(out, cap, "refused at hello: error %d (%s)", res.err_code,
		    mm_close_reason_name(res.err_code));
	else if (res.accepted)
		snprintf(out, cap, "accepted");
	else if (!res.connected && res.closed)
		snprintf(out, cap, "refused at accept");
	else
		snprintf(out, cap, "unknown: %s", res.fail != NULL ? res.fail : "closed");
	raw_free(&r);
}

/* ---- ping ------------------------------------------------------------------------ */

/* An honest link, both hellos done: 0; or -1, said on stderr. */
static int
open_accepted(struct raw *r, const struct opts *o, const struct sockaddr_storage *ss,
    socklen_t sl, const mm_identity_t *id)
{
	struct result res = {0};
	double deadline = mono_ms() + (double)o->timeout_s * 1e3;
	open_link(r, o, ss, sl, id, P_CONNECT, deadline, &res);
	if (res.accepted)
		return 0;
	fprintf(stderr, "meshmap probe: %s: not accepted (%s)\n", o->target,
	    res.fail != NULL ? res.fail : res.err_code ? res.err_msg : "closed");
	raw_free(r);
	return -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int
run_ping(const struct opts *o, const struct sockaddr_storage *ss, socklen_t sl,
    const mm_identity_t *id)
{
	struct raw r;
	if (open_accepted(&r, o, ss, sl, id) != 0)
		return MM_EXIT_FAIL;
	unsigned cap = (unsigned)(o->duration_s * 1000 / o->interval_ms) + 1, n = 0,
	    lost = 0;
	double *rtt = calloc(cap, sizeof(double));
	double end = mono_ms() + (double)o->duration_s * 1e3;
	int gone = 0;
	for (uint32_t req = 1; n + lost < cap && mono_ms() < end && !gone; req++) {
		double t0 = mono_ms();
		mm_wire_msg_t p = {.type = MM_W_PING, .req = req}, m;
		p.u.ping.ts = (uint64_t)(t0 * 1e3);
		if (raw_send_msg(&r, &p, t0 + (double)o->timeout_s * 1e3) != 0) {
			gone = 1;
			break;
		}
		/* the answer, within the timeout; what else comes is read past */
		int got = 0, rc;
		while (!got && (rc = raw_next(&r, &m, t0 + (double)o->timeout_s * 1e3)) == 1)
			got = m.type == MM_W_PONG && m.req == req;
		if (got)
			rtt[n++] = mono_ms() - t0;
		else if (r.closed)
			gone = 1;
		else
			lost++;
		double next = t0 + (double)o->interval_ms;
		while (mono_ms() < next && !r.closed) /* answer its pings meanwhile */
			(void)raw_next(&r, &m, next);
		gone |= r.closed;
	}
	qsort(rtt, n, sizeof(double), cmp_double);
	double mx = n ? rtt[n - 1] : 0, p50 = n ? rtt[n / 2] : 0,
	       p99 = n ? rtt[(size_t)floor(0.99 * (n - 1))] : 0;
	if (o->json)
		printf("{\"kind\":\"ping\",\"answered\":%u,\"unanswered\":%u,\"closed\":%s,"
		    "\"rtt_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n", n, lost,
		    gone ? "true" : "false", p50, p99, mx);
	else
		printf("probe ping: %u answered, %u unanswered within %lus%s; round trip "
		    "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", n, lost, o->timeout_s,
		    gone ? ", then closed by the node" : "", p50, p99, mx);
	free(rtt);
	raw_free(&r);
	return lost == 0 && !gone && n > 0 ? MM_EXIT_OK : MM_EXIT_FAIL;
}

/* ---- junk ------------------------------------------------------------------------ */

/* Valid frames of the largest size, as fast as the node reads them, for
 * --duration: broadcasts on a topic no one wants, each with a new nonce
 * and payload and a true signature (the node must read, decode and dedup
 * every one, and finds no fault to close the link for). What the node
 * sends meanwhile is read, and its pings answered. */
static int
run_junk(const struct opts *o, const struct sockaddr_storage *ss, socklen_t sl,
    const mm_identity_t *id)
{
	struct raw r;
	if (open_accepted(&r, o, ss, sl, id) != 0)
		return MM_EXIT_FAIL;
	static uint8_t data[MM_WIRE_DATA_MAX], frame[MM_FRAME_MAX_DEFAULT + 64];
	uint64_t frames = 0, bytes = 0, seed = (uint64_t)mono_ms();
	size_t off = 0, len = 0;
	double t0 = mono_ms(), end = t0 + (double)o->duration_s * 1e3;
	int gone = 0;
	while (!gone && mono_ms() < end) {
		if (off == len) { /* the next frame */
			for (size_t i = 0; i < sizeof(data); i += 8) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				memcpy(data + i, &seed, 8);
			}
			mm_wire_msg_t m = {.type = MM_W_BCAST};
			m.u.bcast.topic = (mm_bytes_t){(const uint8_t *)"junk", 4};
			memcpy(m.u.bcast.pub, id->pub, 32);
			m.u.bcast.pow = id->nonce;
			m.u.bcast.nonce = frames + 1;
			m.u.bcast.ts = (uint64_t)time(NULL) * 1000u;
			m.u.bcast.ttl = 1;
			m.u.bcast.data = (mm_bytes_t){data, sizeof(data)};
			uint8_t sb[MM_WIRE_BCAST_SIGNED_LEN];
			mm_wire_bcast_signed_bytes(&m.u.bcast, sb);
			mm_id_sign(id, sb, sizeof(sb), m.u.bcast.sig);
			int n = mm_wire_encode(&m, frame, sizeof(frame));
			if (n <= 0) {
				fprintf(stderr, "meshmap probe: cannot encode a broadcast\n");
				break;
			}
			len = (size_t)n;
			off = 0;
		}
		long w = mm_tls_write(r.t, frame + off, len - off);
		if (w > 0) {
			off += (size_t)w;
			bytes += (uint64_t)w;
			frames += off == len;
		} else if (w != MM_TLS_WANT_WRITE && w != MM_TLS_WANT_READ) {
			gone = 1;
			break;
		} else {
			poll(&(struct pollfd){r.fd, POLLIN | POLLOUT, 0}, 1, 100);
		}
		mm_wire_msg_t m;
		/* what the node sent: read past, between our frames only (a
		 * pong must not land inside one) */
		while (off == len && raw_next(&r, &m, 0) == 1)
			;
		gone |= r.closed;
	}
	double s = (mono_ms() - t0) / 1e3;
	if (o->json)
		printf("{\"kind\":\"junk\",\"frames\":%llu,\"bytes\":%llu,\"seconds\":%.2f,"
		    "\"mb_per_s\":%.2f,\"closed\":%s,\"error\":%d}\n",
		    (unsigned long long)frames, (unsigned long long)bytes, s, (double)bytes / 1e6 / s,
		    gone ? "true" : "false", r.err_code);
	else
		printf("probe junk: %llu frames of %zu bytes (%.1f MB/s) in %.1f s%s%s\n",
		    (unsigned long long)frames, len, (double)bytes / 1e6 / s, s,
		    gone ? ", then closed by the node: " : "", gone ? r.err_msg : "");
	raw_free(&r);
	return MM_EXIT_OK;
}

/* ---- the command ----------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: meshmap probe --target HOST:PORT --kind KIND [options]\n"
	    "\n"
	    "Misbehaves once towards a node, the way a hostile peer would, and\n"
	    "reports how the node answered: the error it sent and how long after\n"
	    "the fault it closed the connection; with --again, how a new connection\n"
	    "from this host is then received. For testing your own nodes.\n"
	    "\n"
	    "kinds (after both hellos unless said):\n"
	    "  oversize   a length prefix over the maximum frame (4 GB - 1)\n"
	    "  zero       a zero length prefix\n"
	    "  truncated  a frame whose msgpack map announces an entry it lacks\n"
	    "  badpack    a frame that is not msgpack (the byte 0xc1)\n"
	    "  badparams  a ping whose ts is text\n"
	    "  unknown    unknown commands, 64 of them (the node answers some, then\n"
	    "             closes)\n"
	    "  order      a second hello\n"
	    "  early      a ping instead of our hello\n"
	    "  shortpow   a hello whose proof of work is short\n"
	    "  wrongid    a hello bound to another TLS certificate than ours\n"
	    "  badsig     an event with a forged signature\n"
	    "  connect    no fault: only report how a connection is received\n"
	    "  ping       no fault: ping every --interval ms for --duration s and\n"
	    "             report the round trips (fails if one goes unanswered\n"
	    "             within --timeout)\n"
	    "  junk       no fault either: valid frames of the largest size (signed\n"
	    "             broadcasts on a topic no one wants), as fast as the node\n"
	    "             reads them, for --duration s; reports what was sent\n"
	    "\n"
	    "  -t, --target HOST:PORT  the node (required)\n"
	    "  -k, --kind KIND         what to do (required)\n"
	    "  -n, --network NAME      its network name (default main)\n"
	    "  -d, --difficulty BITS   its proof of work (default 22)\n"
	    "      --key FILE          our identity (default: a new one at\n"
	    "                          --difficulty, about a second at 22)\n"
	    "      --again             then connect once more, same key, and say how\n"
	    "                          the node received it\n"
	    "      --timeout S         wait at most S for each answer (default 10)\n"
	    "      --interval MS       ping: between pings (default 100)\n"
	    "      --duration S        ping, junk: for how long (default 10)\n"
	    "      --json              one JSON object\n"
	    "\n"
	    "example:\n"
	    "  meshmap probe -t 10.0.0.2:7946 -d 22 --kind oversize --again\n"
	    "  probe oversize: closed 0.4 ms after the fault, error 1 (bad frame):\n"
	    "  frame longer than the maximum; again: refused at accept\n"
	    "\n"
	    "Exit status: 0 the node closed the connection for the fault (connect:\n"
	    "it answered; ping: every ping answered), 1 it did not or could not be\n"
	    "reached, 2 usage.\n");
}

int
mm_cmd_probe(int argc, char **argv)
{
	struct opts o = {.network = "main", .difficulty = 22, .timeout_s = 10,
	    .interval_ms = 100, .duration_s = 10, .kind = -1};
	static const struct option lo[] = {
	    {"target", required_argument, NULL, 't'},
	    {"kind", required_argument, NULL, 'k'},
	    {"network", required_argument, NULL, 'n'},
	    {"difficulty", required_argument, NULL, 'd'},
	    {"key", required_argument, NULL, 'K'},
	    {"again", no_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"interval", required_argument, NULL, 'i'},
	    {"duration", required_argument, NULL, 'D'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *bad = NULL;
	int c;
	/* writes to a connection the node has ended must fail, not kill us */
	signal(SIGPIPE, SIG_IGN);
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:k:n:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': o.target = optarg; break;
		case 'k':
			for (int k = 0; k < P__N; k++)
				if (strcmp(optarg, kind_name[k]) == 0)
					o.kind = k;
			if (o.kind < 0)
				bad = "--kind: not a kind (see --help)";
			break;
		case 'n': o.network = optarg; break;
		case 'd':
			if (mm_cmd_parse_uint(optarg, 0, 40, &o.difficulty) != 0)
				bad = "--difficulty: bits in [0, 40]";
			break;
		case 'K': o.key = optarg; break;
		case 'a': o.again = 1; break;
		case 'T':
			if (mm_cmd_parse_uint(optarg, 1, 3600, &o.timeout_s) != 0)
				bad = "--timeout: seconds in [1, 3600]";
			break;
		case 'i':
			if (mm_cmd_parse_uint(optarg, 1, 60000, &o.interval_ms) != 0)
				bad = "--interval: milliseconds in [1, 60000]";
			break;
		case 'D':
			if (mm_cmd_parse_uint(optarg, 1, 86400, &o.duration_s) != 0)
				bad = "--duration: seconds in [1, 86400]";
			break;
		case 'j': o.json = 1; break;
		case 'h': usage(stdout); return MM_EXIT_OK;
		default: usage(stderr); return MM_EXIT_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "meshmap probe: %s\n", bad);
			return MM_EXIT_USAGE;
		}
	}
	if (o.target == NULL || o.kind < 0 || optind != argc) {
		fprintf(stderr, "meshmap probe: %s\n", optind != argc ? "unexpected argument" :
		    o.target == NULL ? "--target is required" : "--kind is required");
		return MM_EXIT_USAGE;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	if (mm_parse_hostport(o.target, &ss, &sl, 0) != 0) {
		fprintf(stderr, "meshmap probe: --target: not HOST:PORT: %s\n", o.target);
		return MM_EXIT_USAGE;
	}
	mm_identity_t id;
	char err[256];
	if (o.key != NULL ? mm_id_load(&id, o.key, err, sizeof(err)) != 0 :
	    mm_id_generate(&id, (unsigned)o.difficulty, NULL) != 0) {
		fprintf(stderr, "meshmap probe: %s\n", o.key != NULL ? err :
		    "cannot make an identity");
		return MM_EXIT_FAIL;
	}
	if (o.kind == P_PING || o.kind == P_JUNK) {
		int rc = (o.kind == P_PING ? run_ping : run_junk)(&o, &ss, sl, &id);
		mm_id_free(&id);
		return rc;
	}
	char again[160] = "";
	struct result res = {0};
	int rc = MM_EXIT_FAIL;
	if (o.kind == P_CONNECT) {
		receive_text(&o, &ss, sl, &id, again, sizeof(again));
		if (o.json)
			printf("{\"kind\":\"connect\",\"received\":\"%s\"}\n", again);
		else
			printf("probe connect: %s\n", again);
		mm_id_free(&id);
		return strncmp(again, "unknown", 7) == 0 ? MM_EXIT_FAIL : MM_EXIT_OK;
	}
	struct raw r;
	double deadline = mono_ms() + (double)o.timeout_s * 1e3;
	open_link(&r, &o, &ss, sl, &id, o.kind, deadline, &res);
	int hello_fault = o.kind == P_EARLY || o.kind == P_WRONGID || o.kind == P_SHORTPOW;
	if (res.fail == NULL && res.connected && (res.accepted || hello_fault)) {
		double t0 = hello_fault ? res.fault_at : mono_ms();
		if (o.kind == P_ORDER)
			rc = raw_hello(&r, &id, r.ctx, o.network, (unsigned)o.difficulty, 0,
			    deadline);
		else if (!hello_fault)
			rc = send_fault(&r, o.kind, &id, res.node_id, deadline);
		else
			rc = 0;
		/* a send that fails already means the node ended it */
		await_close(&r, t0, t0 + (double)o.timeout_s * 1e3, &res);
		rc = res.closed ? MM_EXIT_OK : MM_EXIT_FAIL;
	} else if (res.fail == NULL) {
		res.fail = res.closed ? "the node ended the connection before the fault" :
		    "not accepted";
	}
	raw_free(&r);
	if (o.again && res.fail == NULL)
		receive_text(&o, &ss, sl, &id, again, sizeof(again));
	const char *ename = res.err_code ? mm_close_reason_name(res.err_code) : "none";
	if (o.json) {
		printf("{\"kind\":\"%s\",\"closed\":%s,\"close_ms\":%.2f,\"error\":%d,"
		    "\"error_name\":\"%s\"", kind_name[o.kind], res.closed ? "true" : "false",
		    res.close_ms, res.err_code, ename);
		if (res.fail != NULL)
			printf(",\"failed\":\"%s\"", res.fail);
		if (again[0] != '\0')
			printf(",\"again\":\"%s\"", again);
		printf("}\n");
	} else if (res.fail != NULL) {
		printf("probe %s: %s\n", kind_name[o.kind], res.fail);
	} else if (res.closed) {
		printf("probe %s: closed %.1f ms after the fault, error %d (%s)%s%s%s%s\n",
		    kind_name[o.kind], res.close_ms, res.err_code, ename,
		    res.err_msg[0] ? ": " : "", res.err_msg, again[0] ? "; again: " : "", again);
	} else {
		printf("probe %s: still open %lu s after the fault%s%s\n", kind_name[o.kind],
		    o.timeout_s, again[0] ? "; again: " : "", again);
	}
	mm_id_free(&id);
	return res.fail != NULL ? MM_EXIT_FAIL : rc;
}
