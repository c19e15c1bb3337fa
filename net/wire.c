#include "wire.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "identity.h"
#include "mpcheck.h"

#define MAX_FIELDS 32 /* per map: more is refused, not scanned */

static const char *const names[MM_W__COUNT] = {
    [MM_W_HELLO] = "hello", [MM_W_PING] = "ping", [MM_W_PONG] = "pong",
    [MM_W_ERROR] = "error", [MM_W_EVENT] = "event",
    [MM_W_GET_PEERS] = "get_peers", [MM_W_PEERS] = "peers",
    [MM_W_DIGEST] = "digest", [MM_W_WANT] = "want", [MM_W_DIRECT] = "direct",
    [MM_W_DFAIL] = "dfail", [MM_W_BCAST] = "bcast", [MM_W_SUBS] = "subs",
    [MM_W_IHAVE] = "ihave", [MM_W_IWANT] = "iwant"};

const char *
mm_wire_type_name(unsigned type)
{
	return type > 0 && type < MM_W__COUNT ? names[type] : "?";
}

int
mm_wire_peek_type(const uint8_t *frame, size_t len)
{
	/* header, fixmap, fixstr "cmd", fixstr name */
	if (len < MM_FRAME_HDR + 6)
		return 0;
	const uint8_t *p = frame + MM_FRAME_HDR;
	size_t n = len - MM_FRAME_HDR;
	if ((p[0] & 0xf0) != 0x80 || p[1] != 0xa3 || memcmp(p + 2, "cmd", 3) != 0 ||
	    (p[5] & 0xe0) != 0xa0)
		return 0;
	size_t sl = p[5] & 0x1f;
	if (6 + sl > n)
		return 0;
	for (int t = 1; t < MM_W__COUNT; t++)
		if (strlen(names[t]) == sl && memcmp(p + 6, names[t], sl) == 0)
			return t;
	return 0;
}

struct mm_wire_dec {
	msgpack_zone zone;
};

mm_wire_dec_t *
mm_wire_dec_new(void)
{
	mm_wire_dec_t *d = malloc(sizeof(*d));
	if (d != NULL && !msgpack_zone_init(&d->zone, 4096)) {
		free(d);
		return NULL;
	}
	return d;
}

void
mm_wire_dec_free(mm_wire_dec_t *d)
{
	if (d == NULL)
		return;
	msgpack_zone_destroy(&d->zone);
	free(d);
}

/* ---- decoding helpers ------------------------------------------------------ */

static bool
key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	    memcmp(k->via.str.ptr, s, n) == 0;
}

/* Maps: at most MAX_FIELDS entries, string keys, no key twice. */
static int
check_map(const msgpack_object *o, const char **why, const char *what)
{
	if (o->type != MSGPACK_OBJECT_MAP) {
		*why = what;
		return -1;
	}
	const msgpack_object_map *m = &o->via.map;
	if (m->size > MAX_FIELDS) {
		*why = "too many fields in a map";
		return -1;
	}
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR) {
			*why = "map keys must be strings";
			return -1;
		}
		for (uint32_t j = 0; j < i; j++)
			/* size first: msgpack-c gives empty strings a NULL ptr,
			 * which memcmp must not see (found by fuzz_wire) */
			if (m->ptr[j].key.via.str.size == k->via.str.size &&
			    (k->via.str.size == 0 ||
			        memcmp(m->ptr[j].key.via.str.ptr, k->via.str.ptr,
			            k->via.str.size) == 0)) {
				*why = "duplicate key in a map";
				return -1;
			}
	}
	return 0;
}

static const msgpack_object *
field(const msgpack_object *map, const char *key)
{
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (key_is(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

static int
get_uint(const msgpack_object *map, const char *key, uint64_t max, bool required,
    uint64_t *out, const char **why, const char *err)
{
	const msgpack_object *v = field(map, key);
	if (v == NULL) {
		if (required) {
			*why = err;
			return -1;
		}
		*out = 0;
		return 0;
	}
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > max) {
		*why = err;
		return -1;
	}
	*out = v->via.u64;
	return 0;
}

/* bin (or str, for text fields) of length in [min, max]; absent -> optional. */
static int
get_bytes(const msgpack_object *map, const char *key, uint32_t min, uint32_t max,
    bool required, bool text, mm_bytes_t *out, const char **why, const char *err)
{
	const msgpack_object *v = field(map, key);
	out->ptr = NULL;
	out->len = 0;
	if (v == NULL) {
		if (required)
			*why = err;
		return required ? -1 : 0;
	}
	if (text ? v->type != MSGPACK_OBJECT_STR : v->type != MSGPACK_OBJECT_BIN) {
		*why = err;
		return -1;
	}
	uint32_t n = text ? v->via.str.size : v->via.bin.size;
	if (n < min || n > max) {
		*why = err;
		return -1;
	}
	out->ptr = (const uint8_t *)(text ? v->via.str.ptr : v->via.bin.ptr);
	out->len = n;
	return 0;
}

static int
get_fixed(const msgpack_object *map, const char *key, uint32_t n, uint8_t *dst,
    const char **why, const char *err)
{
	mm_bytes_t b;
	if (get_bytes(map, key, n, n, true, false, &b, why, err) != 0)
		return -1;
	memcpy(dst, b.ptr, n);
	return 0;
}

#define U(map, key, max, req, dst, err)                                        \
	do {                                                                   \
		uint64_t v_;                                                   \
		if (get_uint(map, key, max, req, &v_, why, err) != 0)          \
			return MM_WIRE_EPARAMS;                                \
		dst = v_;                                                      \
	} while (0)

/* ---- per-message decoders ---------------------------------------------------- */

static int
dec_hello(const msgpack_object *p, mm_w_hello_t *h, const char **why)
{
	U(p, "v", UINT32_MAX, true, h->version, "hello.v: unsigned 32-bit required");
	if (get_bytes(p, "net", 1, MM_WIRE_NET_MAX, true, true, &h->net, why,
	        "hello.net: string of 1..32 bytes required") != 0 ||
	    get_fixed(p, "pub", 32, h->pub, why,
	        "hello.pub: 32-byte bin required") != 0 ||
	    get_fixed(p, "csig", 64, h->csig, why,
	        "hello.csig: 64-byte bin required") != 0 ||
	    get_bytes(p, "agent", 0, MM_WIRE_AGENT_MAX, false, true, &h->agent, why,
	        "hello.agent: string of at most 64 bytes") != 0)
		return MM_WIRE_EPARAMS;
	U(p, "pow", UINT64_MAX, true, h->pow, "hello.pow: unsigned 64-bit required");
	U(p, "port", UINT16_MAX, false, h->port, "hello.port: 0..65535");
	U(p, "ts", UINT64_MAX, true, h->ts, "hello.ts: unsigned 64-bit required");
	return MM_WIRE_OK;
}

static int
dec_ping(const msgpack_object *p, mm_w_ping_t *g, const char **why)
{
	U(p, "ts", UINT64_MAX, true, g->ts, "ping.ts: unsigned 64-bit required");
	return MM_WIRE_OK;
}

static int
dec_error(const msgpack_object *p, mm_w_error_t *e, const char **why)
{
	U(p, "code", UINT32_MAX, true, e->code, "error.code: unsigned required");
	if (get_bytes(p, "msg", 0, MM_WIRE_ERRMSG_MAX, false, true, &e->msg, why,
	        "error.msg: string of at most 256 bytes") != 0)
		return MM_WIRE_EPARAMS;
	return MM_WIRE_OK;
}

static int
dec_event(const msgpack_object *p, mm_w_event_t *e, const char **why)
{
	if (get_fixed(p, "pub", 32, e->pub, why,
	        "event.pub: 32-byte bin required") != 0 ||
	    get_fixed(p, "peer", 32, e->peer, why,
	        "event.peer: 32-byte bin required") != 0 ||
	    get_fixed(p, "sig", 64, e->sig, why,
	        "event.sig: 64-byte bin required") != 0)
		return MM_WIRE_EPARAMS;
	U(p, "kind", 2, true, e->kind, "event.kind: 1 or 2 required");
	U(p, "dir", 1, true, e->dir, "event.dir: 0 or 1 required");
	U(p, "seq", UINT32_MAX, true, e->seq, "event.seq: unsigned 32-bit required");
	U(p, "ts", UINT64_MAX, true, e->ts, "event.ts: unsigned 64-bit required");
	U(p, "ttl", 255, true, e->ttl, "event.ttl: 0..255 required");
	U(p, "pow", UINT64_MAX, true, e->pow, "event.pow: unsigned 64-bit required");
	if (e->kind == 0 || e->seq == 0) {
		*why = e->kind == 0 ? "event.kind: 1 or 2 required" :
		    "event.seq: must be > 0";
		return MM_WIRE_EPARAMS;
	}
	mm_bytes_t nb;
	const char *nberr = "event.nb: bin of 0..32 ids of 32 bytes required";
	if (get_bytes(p, "nb", 0, 32 * MM_WIRE_NB_MAX, false, false, &nb, why,
	        nberr) != 0)
		return MM_WIRE_EPARAMS;
	e->has_nb = field(p, "nb") != NULL;
	e->nnb = 0;
	e->nbd = 0;
	if (e->has_nb) {
		if (nb.len % 32 != 0) {
			*why = nberr;
			return MM_WIRE_EPARAMS;
		}
		e->nnb = (uint8_t)(nb.len / 32);
		if (nb.len != 0)
			memcpy(e->nb, nb.ptr, nb.len);
		U(p, "nbd", UINT32_MAX, false, e->nbd, "event.nbd: unsigned 32-bit");
		if (e->nnb < 32 && (e->nbd >> e->nnb) != 0) {
			*why = "event.nbd: a bit set beyond the list";
			return MM_WIRE_EPARAMS;
		}
	} else if (field(p, "nbd") != NULL) {
		*why = "event.nbd: only with event.nb";
		return MM_WIRE_EPARAMS;
	}
	return MM_WIRE_OK;
}

static int
dec_get_peers(const msgpack_object *p, mm_w_get_peers_t *g, const char **why)
{
	U(p, "cursor", UINT32_MAX, false, g->cursor, "get_peers.cursor: unsigned 32-bit");
	U(p, "limit", MM_WIRE_PEERS_MAX, true, g->limit,
	    "get_peers.limit: 1..64 required");
	if (g->limit == 0) {
		*why = "get_peers.limit: 1..64 required";
		return MM_WIRE_EPARAMS;
	}
	return MM_WIRE_OK;
}

static int
dec_peers(const msgpack_object *p, mm_w_peers_t *ps, const char **why)
{
	U(p, "next", UINT32_MAX, false, ps->next, "peers.next: unsigned 32-bit");
	const msgpack_object *list = field(p, "list");
	if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY ||
	    list->via.array.size > MM_WIRE_PEERS_MAX) {
		*why = "peers.list: array of at most 64 entries required";
		return MM_WIRE_EPARAMS;
	}
	ps->count = (uint16_t)list->via.array.size;
	for (uint32_t i = 0; i < list->via.array.size; i++) {
		const msgpack_object *e = &list->via.array.ptr[i];
		mm_w_peer_t *q = &ps->peer[i];
		mm_bytes_t id, nb, ip;
		memset(q, 0, sizeof(*q));
		if (check_map(e, why, "peers.list[]: map required") != 0)
			return MM_WIRE_EPARAMS;
		if (get_bytes(e, "id", 32, 32, true, false, &id, why,
		        "peers.list[].id: 32-byte bin required") != 0 ||
		    get_bytes(e, "nb", 0, 32 * MM_WIRE_NB_MAX, true, false, &nb, why,
		        "peers.list[].nb: bin of at most 32 ids required") != 0 ||
		    get_bytes(e, "ip", 4, 16, false, false, &ip, why,
		        "peers.list[].ip: 4- or 16-byte bin") != 0)
			return MM_WIRE_EPARAMS;
		if (nb.len % 32 != 0 || (ip.ptr != NULL && ip.len != 4 && ip.len != 16)) {
			*why = nb.len % 32 ? "peers.list[].nb: length must be a multiple of 32" :
			    "peers.list[].ip: 4- or 16-byte bin";
			return MM_WIRE_EPARAMS;
		}
		U(e, "seq", UINT32_MAX, true, q->seq, "peers.list[].seq: unsigned required");
		U(e, "dirs", UINT32_MAX, false, q->dirs, "peers.list[].dirs: unsigned 32-bit");
		U(e, "port", UINT16_MAX, false, q->port, "peers.list[].port: 0..65535");
		q->id = id.ptr;
		q->nb = nb.ptr;
		q->nnb = (uint8_t)(nb.len / 32);
		if (ip.ptr != NULL) {
			if (q->port == 0) {
				*why = "peers.list[].port: required with ip";
				return MM_WIRE_EPARAMS;
			}
			q->has_addr = 1;
			if (ip.len == 4) {
				q->ip[10] = q->ip[11] = 0xff;
				memcpy(q->ip + 12, ip.ptr, 4);
			} else {
				memcpy(q->ip, ip.ptr, 16);
			}
		}
	}
	return MM_WIRE_OK;
}

/* A bin of whole records of `size` bytes, at most MM_WIRE_DIGEST_MAX. */
static int
dec_records(const msgpack_object *p, const char *key, uint32_t size,
    mm_bytes_t *out, const char **why, const char *err)
{
	if (get_bytes(p, key, 0, size * MM_WIRE_DIGEST_MAX, true, false, out, why,
	        err) != 0)
		return MM_WIRE_EPARAMS;
	if (out->len % size != 0) {
		*why = err;
		return MM_WIRE_EPARAMS;
	}
	return MM_WIRE_OK;
}

/* A route: 2..16 ids of 32 bytes, all distinct (a loop is refused). */
static int
route_ok(const mm_bytes_t *r)
{
	if (r->len % 32 != 0 || r->len < 64 || r->len > 32 * MM_WIRE_ROUTE_MAX)
		return 0;
	unsigned n = r->len / 32;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < i; j++)
			if (memcmp(r->ptr + 32 * i, r->ptr + 32 * j, 32) == 0)
				return 0;
	return 1;
}

static int
dec_direct(const msgpack_object *p, mm_w_direct_t *d, const char **why)
{
	memset(d, 0, sizeof(*d));
	if (get_fixed(p, "pub", 32, d->pub, why, "direct.pub: 32-byte bin required") != 0 ||
	    get_fixed(p, "sig", 64, d->sig, why, "direct.sig: 64-byte bin required") != 0 ||
	    get_bytes(p, "route", 64, 32 * MM_WIRE_ROUTE_MAX, true, false, &d->route, why,
	        "direct.route: bin of 2..16 ids required") != 0 ||
	    get_bytes(p, "data", 0, MM_WIRE_DATA_MAX, true, false, &d->data, why,
	        "direct.data: bin of at most 49152 bytes required") != 0)
		return MM_WIRE_EPARAMS;
	if (!route_ok(&d->route)) {
		*why = "direct.route: 2..16 distinct ids of 32 bytes";
		return MM_WIRE_EPARAMS;
	}
	U(p, "pow", UINT64_MAX, true, d->pow, "direct.pow: unsigned 64-bit required");
	U(p, "at", MM_WIRE_ROUTE_MAX - 1, true, d->at, "direct.at: 1..15 required");
	U(p, "rr", 1, false, d->rr, "direct.rr: 0 or 1");
	U(p, "nonce", UINT64_MAX, true, d->nonce, "direct.nonce: unsigned 64-bit required");
	U(p, "ts", UINT64_MAX, true, d->ts, "direct.ts: unsigned 64-bit required");
	if (d->at == 0 || d->at >= d->route.len / 32) {
		*why = "direct.at: must index a hop after the origin";
		return MM_WIRE_EPARAMS;
	}
	const msgpack_object *rw = field(p, "rw");
	if (rw == NULL)
		return MM_WIRE_OK;
	/* one rewrite: a map, not a list of them */
	if (check_map(rw, why, "direct.rw: one map (a single rewrite)") != 0)
		return MM_WIRE_EPARAMS;
	d->has_rw = 1;
	if (get_fixed(rw, "pub", 32, d->rw_pub, why, "direct.rw.pub: 32-byte bin required") != 0 ||
	    get_fixed(rw, "sig", 64, d->rw_sig, why, "direct.rw.sig: 64-byte bin required") != 0 ||
	    get_bytes(rw, "route0", 64, 32 * MM_WIRE_ROUTE_MAX, true, false, &d->route0, why,
	        "direct.rw.route0: bin of 2..16 ids required") != 0)
		return MM_WIRE_EPARAMS;
	U(rw, "pow", UINT64_MAX, true, d->rw_pow, "direct.rw.pow: unsigned 64-bit required");
	U(rw, "at", MM_WIRE_ROUTE_MAX - 2, true, d->rw_at, "direct.rw.at: 1..14 required");
	if (!route_ok(&d->route0) || d->rw_at == 0 ||
	    (uint32_t)d->rw_at + 1 >= d->route0.len / 32 ||
	    (uint32_t)d->rw_at + 1 >= d->route.len / 32 ||
	    memcmp(d->route.ptr, d->route0.ptr, 32u * (d->rw_at + 1u)) != 0 ||
	    memcmp(d->route.ptr + d->route.len - 32, d->route0.ptr + d->route0.len - 32,
	        32) != 0) {
		*why = "direct.rw: the new route must keep the original up to the "
		    "rewriting relay and end at the same destination";
		return MM_WIRE_EPARAMS;
	}
	return MM_WIRE_OK;
}

static int
dec_dfail(const msgpack_object *p, mm_w_dfail_t *f, const char **why)
{
	memset(f, 0, sizeof(*f));
	if (get_fixed(p, "pub", 32, f->pub, why, "dfail.pub: 32-byte bin required") != 0 ||
	    get_fixed(p, "sig", 64, f->sig, why, "dfail.sig: 64-byte bin required") != 0 ||
	    get_fixed(p, "ref", 32, f->ref, why, "dfail.ref: 32-byte bin required") != 0 ||
	    get_bytes(p, "route", 64, 32 * MM_WIRE_ROUTE_MAX, true, false, &f->route, why,
	        "dfail.route: bin of 2..16 ids required") != 0)
		return MM_WIRE_EPARAMS;
	if (!route_ok(&f->route)) {
		*why = "dfail.route: 2..16 distinct ids of 32 bytes";
		return MM_WIRE_EPARAMS;
	}
	U(p, "pow", UINT64_MAX, true, f->pow, "dfail.pow: unsigned 64-bit required");
	U(p, "at", MM_WIRE_ROUTE_MAX - 1, true, f->at, "dfail.at: 1..15 required");
	U(p, "code", UINT32_MAX, true, f->code, "dfail.code: unsigned required");
	if (f->at == 0 || f->at >= f->route.len / 32) {
		*why = "dfail.at: must index a hop after the relay";
		return MM_WIRE_EPARAMS;
	}
	return MM_WIRE_OK;
}

static int
dec_bcast(const msgpack_object *p, mm_w_bcast_t *b, const char **why)
{
	memset(b, 0, sizeof(*b));
	if (get_bytes(p, "topic", 1, MM_WIRE_TOPIC_MAX, true, true, &b->topic, why,
	        "bcast.topic: string of 1..64 bytes required") != 0 ||
	    get_fixed(p, "pub", 32, b->pub, why, "bcast.pub: 32-byte bin required") != 0 ||
	    get_fixed(p, "sig", 64, b->sig, why, "bcast.sig: 64-byte bin required") != 0 ||
	    get_bytes(p, "data", 0, MM_WIRE_DATA_MAX, true, false, &b->data, why,
	        "bcast.data: bin of at most 49152 bytes required") != 0)
		return MM_WIRE_EPARAMS;
	U(p, "pow", UINT64_MAX, true, b->pow, "bcast.pow: unsigned 64-bit required");
	U(p, "nonce", UINT64_MAX, true, b->nonce, "bcast.nonce: unsigned 64-bit required");
	U(p, "ts", UINT64_MAX, true, b->ts, "bcast.ts: unsigned 64-bit required");
	U(p, "ttl", 255, true, b->ttl, "bcast.ttl: 0..255 required");
	return MM_WIRE_OK;
}

static int
dec_subs(const msgpack_object *p, mm_w_subs_t *s, const char **why)
{
	const msgpack_object *l = field(p, "topics");
	if (l == NULL || l->type != MSGPACK_OBJECT_ARRAY ||
	    l->via.array.size > MM_WIRE_SUBS_MAX) {
		*why = "subs.topics: array of at most 64 strings required";
		return MM_WIRE_EPARAMS;
	}
	s->count = (uint16_t)l->via.array.size;
	for (uint32_t i = 0; i < l->via.array.size; i++) {
		const msgpack_object *t = &l->via.array.ptr[i];
		if (t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0 ||
		    t->via.str.size > MM_WIRE_TOPIC_MAX) {
			*why = "subs.topics[]: string of 1..64 bytes required";
			return MM_WIRE_EPARAMS;
		}
		s->topic[i] = (mm_bytes_t){(const uint8_t *)t->via.str.ptr, t->via.str.size};
	}
	return MM_WIRE_OK;
}

/* ---- the event fast path -------------------------------------------------------
 *
 * Events are most of what a node receives, and most of those are
 * duplicates (79% at 400 simulated nodes), each dropped only after its
 * decode. msgpack-c has no pull reader: it builds an object tree in a
 * zone, which with the structural check and the key lookups was ~12% of a
 * simulated node's time. This reader walks an event frame in place
 * instead. It is deliberately partial: it takes only frames it can prove
 * the general decoder would accept with the same result (known keys, no
 * key twice, unsigned integer formats, every constraint of dec_event, the
 * input spanning exactly one map), and answers "not mine" for anything
 * else, which then takes the general path and gets its error there. So
 * the two cannot disagree on what is refused; fuzz_wire and test_wire
 * check that they agree on what is accepted. */

struct rd {
	const uint8_t *p, *end;
	const uint8_t *base; /* the frame's first byte (fast readers) */
};

static bool
rd_be(struct rd *r, unsigned n, uint64_t *v)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	uint64_t x = 0;
	for (unsigned i = 0; i < n; i++)
		x = x << 8 | r->p[i];
	r->p += n;
	*v = x;
	return true;
}

/* positive fixint, uint8..uint64 (signed formats: not mine) */
static bool
rd_uint(struct rd *r, uint64_t max, uint64_t *v)
{
	if (r->p >= r->end)
		return false;
	uint8_t b = *r->p++;
	if (b <= 0x7f)
		*v = b;
	else if (b < 0xcc || b > 0xcf || !rd_be(r, 1u << (b - 0xcc), v))
		return false;
	return *v <= max;
}

/* str (bin = 0) or bin (bin = 1) of any length format, in place */
static bool
rd_raw(struct rd *r, int bin, const uint8_t **s, uint32_t *n)
{
	if (r->p >= r->end)
		return false;
	uint8_t b = *r->p++;
	uint64_t len;
	if (!bin && b >= 0xa0 && b <= 0xbf)
		len = b & 0x1f;
	else if (b == (bin ? 0xc4 : 0xd9) || b == (bin ? 0xc5 : 0xda) ||
	    b == (bin ? 0xc6 : 0xdb)) {
		unsigned k = (unsigned)(b - (bin ? 0xc4 : 0xd9));
		if (!rd_be(r, 1u << k, &len))
			return false;
	} else
		return false;
	if (len > (uint64_t)(r->end - r->p))
		return false;
	*s = r->p;
	*n = (uint32_t)len;
	r->p += len;
	return true;
}

static bool
rd_map(struct rd *r, uint32_t *n)
{
	if (r->p >= r->end)
		return false;
	uint8_t b = *r->p++;
	uint64_t v;
	if (b >= 0x80 && b <= 0x8f)
		v = b & 0x0f;
	else if (b == 0xde || b == 0xdf) {
		if (!rd_be(r, b == 0xde ? 2 : 4, &v))
			return false;
	} else
		return false;
	*n = (uint32_t)v;
	return v <= MAX_FIELDS;
}

/* keys[i] is lens[i] bytes long (no strlen on the hot path). The keys are
 * 2 to 6 bytes: compared inline (a call to memcmp per candidate key was 9%
 * of a node's time under a flood of duplicate events), starting from
 * `from`, the key after the one before: our encoder writes the keys in
 * table order, so the first candidate is usually the one. */
static int
rd_key(const uint8_t *s, uint32_t n, const char *const *keys,
    const uint8_t *lens, int nkeys, int from)
{
	for (int j = 0; j < nkeys; j++) {
		int i = from + j < nkeys ? from + j : from + j - nkeys;
		if (lens[i] != n)
			continue;
		uint32_t b = 0;
		while (b < n && (uint8_t)keys[i][b] == s[b])
			b++;
		if (b == n)
			return i;
	}
	return -1;
}

/* A map key, one of keys[] and not seen before (have): its index, else
 * -1 (an unknown or repeated key is the general path's to judge). *last
 * is the index of the key before (-1 at the start); updated. */
static int
rd_field(struct rd *r, const char *const *keys, const uint8_t *lens, int nkeys,
    uint32_t *have, int *last)
{
	const uint8_t *s;
	uint32_t sl;
	if (!rd_raw(r, 0, &s, &sl))
		return -1;
	int k = rd_key(s, sl, keys, lens, nkeys, *last + 1 < nkeys ? *last + 1 : 0);
	if (k < 0 || (*have & 1u << k))
		return -1;
	*have |= 1u << k;
	*last = k;
	return k;
}

/* in the order our encoder writes them (rd_key tries the next one first) */
enum { EK_PUB, EK_POW, EK_PEER, EK_KIND, EK_DIR, EK_SEQ, EK_TS, EK_TTL, EK_SIG,
	EK_NB, EK_NBD, EK__N };

static bool
fast_event_params(struct rd *r, mm_w_event_t *e)
{
	static const char *const keys[EK__N] = {"pub", "pow", "peer", "kind",
	    "dir", "seq", "ts", "ttl", "sig", "nb", "nbd"};
	static const uint8_t lens[EK__N] = {3, 3, 4, 4, 3, 3, 2, 3, 3, 2, 3};
	static const uint64_t max[EK__N] = {[EK_KIND] = 2, [EK_DIR] = 1,
	    [EK_SEQ] = UINT32_MAX, [EK_TS] = UINT64_MAX, [EK_TTL] = 255,
	    [EK_POW] = UINT64_MAX, [EK_NBD] = UINT32_MAX};
	uint32_t n, have = 0;
	int last = -1;
	uint64_t u[EK__N] = {0};
	if (!rd_map(r, &n))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *s;
		uint32_t sl;
		int k = rd_field(r, keys, lens, EK__N, &have, &last);
		if (k < 0)
			return false;
		if (k == EK_PUB || k == EK_PEER || k == EK_SIG || k == EK_NB) {
			uint8_t *dst = k == EK_PUB ? e->pub : k == EK_PEER ? e->peer :
			    k == EK_SIG ? e->sig : (uint8_t *)e->nb;
			uint32_t want = k == EK_SIG ? 64 : 32;
			if (!rd_raw(r, 1, &s, &sl) ||
			    (k == EK_NB ? sl > 32 * MM_WIRE_NB_MAX || sl % 32 != 0 :
			                  sl != want))
				return false;
			if (sl != 0)
				memcpy(dst, s, sl);
			if (k == EK_NB)
				e->nnb = (uint8_t)(sl / 32);
		} else if (!rd_uint(r, max[k], &u[k]))
			return false;
	}
	const uint32_t need = 1u << EK_PUB | 1u << EK_PEER | 1u << EK_SIG |
	    1u << EK_KIND | 1u << EK_DIR | 1u << EK_SEQ | 1u << EK_TS |
	    1u << EK_TTL | 1u << EK_POW;
	if ((have & need) != need || u[EK_KIND] == 0 || u[EK_SEQ] == 0 ||
	    ((have & 1u << EK_NBD) && !(have & 1u << EK_NB)))
		return false;
	e->kind = (uint8_t)u[EK_KIND];
	e->dir = (uint8_t)u[EK_DIR];
	e->seq = (uint32_t)u[EK_SEQ];
	e->ts = u[EK_TS];
	e->ttl = (uint8_t)u[EK_TTL];
	e->pow = u[EK_POW];
	e->has_nb = (have & 1u << EK_NB) != 0;
	e->nbd = (uint32_t)u[EK_NBD];
	return !(e->nnb < 32 && (e->nbd >> e->nnb) != 0);
}

enum { DK_PUB, DK_POW, DK_ROUTE, DK_AT, DK_RR, DK_NONCE, DK_TS, DK_DATA, DK_SIG,
	DK__N };

/* A direct message's params without a rewrite (rw: the general path's),
 * every check of dec_direct; route and data point into the frame, as the
 * general path's point into its input. */
static bool
fast_direct_params(struct rd *r, mm_w_direct_t *d)
{
	static const char *const keys[DK__N] = {"pub", "pow", "route", "at", "rr",
	    "nonce", "ts", "data", "sig"};
	static const uint8_t lens[DK__N] = {3, 3, 5, 2, 2, 5, 2, 4, 3};
	static const uint64_t max[DK__N] = {[DK_POW] = UINT64_MAX,
	    [DK_AT] = MM_WIRE_ROUTE_MAX - 1, [DK_RR] = 1, [DK_NONCE] = UINT64_MAX,
	    [DK_TS] = UINT64_MAX};
	uint32_t n, have = 0;
	int last = -1;
	uint64_t u[DK__N] = {0};
	if (!rd_map(r, &n))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *s;
		uint32_t sl;
		int k = rd_field(r, keys, lens, DK__N, &have, &last);
		if (k < 0)
			return false;
		if (k == DK_PUB || k == DK_SIG) {
			uint32_t want = k == DK_SIG ? 64 : 32;
			if (!rd_raw(r, 1, &s, &sl) || sl != want)
				return false;
			memcpy(k == DK_SIG ? d->sig : d->pub, s, want);
		} else if (k == DK_ROUTE || k == DK_DATA) {
			if (!rd_raw(r, 1, &s, &sl) || (k == DK_DATA ? sl > MM_WIRE_DATA_MAX :
			    sl < 64 || sl > 32 * MM_WIRE_ROUTE_MAX))
				return false;
			mm_bytes_t *b = k == DK_ROUTE ? &d->route : &d->data;
			b->ptr = s;
			b->len = sl;
		} else {
			if (k == DK_AT && r->p < r->end && *r->p <= 0x7f)
				d->at_off = (uint32_t)(r->p - r->base);
			if (!rd_uint(r, max[k], &u[k]))
				return false;
		}
	}
	if ((have | 1u << DK_RR) != (1u << DK__N) - 1 || !route_ok(&d->route) ||
	    u[DK_AT] == 0 || u[DK_AT] >= d->route.len / 32)
		return false;
	d->pow = u[DK_POW];
	d->at = (uint8_t)u[DK_AT];
	d->rr = (uint8_t)u[DK_RR];
	d->nonce = u[DK_NONCE];
	d->ts = u[DK_TS];
	return true;
}

static bool
fast_params(struct rd *r, int type, mm_wire_msg_t *m)
{
	return type == MM_W_EVENT ? fast_event_params(r, &m->u.event) :
	    fast_direct_params(r, &m->u.direct);
}

/* The envelope {cmd, req?, params} of a frame whose cmd is `cmd` (cl
 * bytes), read in place; the params by fast_params. 1: m filled. */
static int
fast_decode(const uint8_t *frame, uint32_t len, mm_wire_msg_t *m, int type,
    const char *cmd, uint8_t cl, size_t size)
{
	static const char *const keys[3] = {"cmd", "req", "params"};
	static const uint8_t lens[3] = {3, 3, 6};
	struct rd r = {frame, frame + len, frame};
	uint32_t n, have = 0;
	int last = -1;
	/* Cheap refusal of other commands: the encoder writes "cmd" first. */
	if (len < 6u + cl || frame[1] != 0xa3 || frame[5] != (0xa0 | cl) ||
	    memcmp(frame + 6, cmd, cl) != 0 || !rd_map(&r, &n))
		return 0;
	memset(m, 0, offsetof(mm_wire_msg_t, u) + size);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *s;
		uint32_t sl;
		int k = rd_field(&r, keys, lens, 3, &have, &last);
		if (k < 0)
			return 0;
		uint64_t req;
		if (k == 0 ? !rd_raw(&r, 0, &s, &sl) || sl != cl || memcmp(s, cmd, cl) != 0 :
		    k == 1 ? !rd_uint(&r, UINT32_MAX, &req) :
		    !fast_params(&r, type, m))
			return 0;
		if (k == 1)
			m->req = (uint32_t)req;
	}
	if (have != 7 && have != 5) /* cmd and params required */
		return 0;
	if (r.p != r.end)
		return 0;
	m->type = type;
	if (type == MM_W_DIRECT && have == 5 && m->u.direct.at_off != 0) {
		m->u.direct.raw = frame;
		m->u.direct.raw_len = len;
	}
	return 1;
}

int
mm_wire_decode_event_fast(const uint8_t *frame, uint32_t len, mm_wire_msg_t *m)
{
	return fast_decode(frame, len, m, MM_W_EVENT, "event", 5, sizeof(m->u.event));
}

int
mm_wire_decode_direct_fast(const uint8_t *frame, uint32_t len, mm_wire_msg_t *m)
{
	return fast_decode(frame, len, m, MM_W_DIRECT, "direct", 6, sizeof(m->u.direct));
}

int
mm_wire_decode(mm_wire_dec_t *d, const uint8_t *frame, uint32_t len,
    mm_wire_msg_t *m, const char **why_out)
{
	const char *dummy, **why = why_out != NULL ? why_out : &dummy;
	*why = "";
	if (mm_wire_decode_event_fast(frame, len, m) ||
	    mm_wire_decode_direct_fast(frame, len, m))
		return MM_WIRE_OK;
	return mm_wire_decode_general(d, frame, len, m, why);
}

int
mm_wire_decode_general(mm_wire_dec_t *d, const uint8_t *frame, uint32_t len,
    mm_wire_msg_t *m, const char **why_out)
{
	const char *dummy, **why = why_out != NULL ? why_out : &dummy;
	*why = "";
	if (mm_mp_check(frame, len, why) != 0)
		return MM_WIRE_EMSGPACK;
	msgpack_zone_clear(&d->zone);
	msgpack_object root;
	size_t off = 0;
	int r = msgpack_unpack((const char *)frame, len, &off, &d->zone, &root);
	if (r == MSGPACK_UNPACK_NOMEM_ERROR)
		return MM_WIRE_ENOMEM;
	if (r != MSGPACK_UNPACK_SUCCESS) {
		*why = "msgpack-c refused the message";
		return MM_WIRE_EMSGPACK;
	}
	if (check_map(&root, why, "message: a map required") != 0)
		return MM_WIRE_EMSGPACK;
	memset(m, 0, sizeof(*m));
	uint64_t req;
	if (get_uint(&root, "req", UINT32_MAX, false, &req, why,
	        "req: unsigned 32-bit") != 0)
		return MM_WIRE_EPARAMS;
	m->req = (uint32_t)req;
	const msgpack_object *cmd = field(&root, "cmd");
	if (cmd == NULL || cmd->type != MSGPACK_OBJECT_STR) {
		*why = "cmd: string required";
		return MM_WIRE_EPARAMS;
	}
	for (unsigned t = 1; t < MM_W__COUNT; t++)
		if (key_is(cmd, names[t]))
			m->type = (uint8_t)t;
	if (m->type == 0) {
		*why = "unknown command";
		return MM_WIRE_EUNKNOWN;
	}
	static const msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
	const msgpack_object *p = field(&root, "params");
	if (p == NULL)
		p = &empty;
	else if (check_map(p, why, "params: a map required") != 0)
		return MM_WIRE_EPARAMS;
	switch (m->type) {
	case MM_W_HELLO: return dec_hello(p, &m->u.hello, why);
	case MM_W_PING:
	case MM_W_PONG: return dec_ping(p, &m->u.ping, why);
	case MM_W_ERROR: return dec_error(p, &m->u.error, why);
	case MM_W_EVENT: return dec_event(p, &m->u.event, why);
	case MM_W_GET_PEERS: return dec_get_peers(p, &m->u.get_peers, why);
	case MM_W_PEERS: return dec_peers(p, &m->u.peers, why);
	case MM_W_DIGEST:
		return dec_records(p, "ents", MM_WIRE_DIGEST_ENT, &m->u.digest.ents, why,
		    "digest.ents: bin of at most 1024 entries of 36 bytes required");
	case MM_W_WANT:
		return dec_records(p, "ids", 32, &m->u.want.ids, why,
		    "want.ids: bin of at most 1024 ids of 32 bytes required");
	case MM_W_IHAVE:
		return dec_records(p, "ents", MM_WIRE_DIGEST_ENT, &m->u.ihave.ents, why,
		    "ihave.ents: bin of at most 1024 entries of 36 bytes required");
	case MM_W_IWANT:
		return dec_records(p, "ids", 32, &m->u.iwant.ids, why,
		    "iwant.ids: bin of at most 1024 ids of 32 bytes required");
	case MM_W_DIRECT: return dec_direct(p, &m->u.direct, why);
	case MM_W_DFAIL: return dec_dfail(p, &m->u.dfail, why);
	case MM_W_BCAST: return dec_bcast(p, &m->u.bcast, why);
	case MM_W_SUBS: return dec_subs(p, &m->u.subs, why);
	default: return MM_WIRE_EUNKNOWN;
	}
}

void
mm_wire_event_signed_bytes(const mm_w_event_t *e,
    uint8_t out[MM_WIRE_EVENT_SIGNED_LEN])
{
	mm_wire_event_signed_bytes_fixed(e, out);
	out[94] = e->has_nb ? 1 : 0;
	memset(out + 95, 0, 32);
	if (e->has_nb) {
		unsigned n = e->nnb <= MM_WIRE_NB_MAX ? e->nnb : MM_WIRE_NB_MAX;
		uint8_t buf[1 + 32 * MM_WIRE_NB_MAX + 4];
		buf[0] = (uint8_t)n;
		memcpy(buf + 1, e->nb, 32 * (size_t)n);
		for (int i = 0; i < 4; i++)
			buf[1 + 32 * n + (unsigned)i] = (uint8_t)(e->nbd >> (24 - 8 * i));
		mm_sha256(buf, 1 + 32 * (size_t)n + 4, out + 95);
	}
}

void
mm_wire_event_signed_bytes_fixed(const mm_w_event_t *e,
    uint8_t out[MM_WIRE_EVENT_SIGNED_LEN])
{
	memcpy(out, "meshmap-event-v1", 16);
	memcpy(out + 16, e->pub, 32);
	memcpy(out + 48, e->peer, 32);
	out[80] = e->kind;
	out[81] = e->dir;
	for (int i = 0; i < 4; i++)
		out[82 + i] = (uint8_t)(e->seq >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		out[86 + i] = (uint8_t)(e->ts >> (56 - 8 * i));
}

/* ---- encoding ------------------------------------------------------------------- */

struct outbuf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

static int
out_write(void *data, const char *buf, size_t len)
{
	struct outbuf *o = data;
	if (len == 0)
		return 0; /* empty bin/str body: buf may be NULL */
	if (o->cap - o->len < len) {
		o->overflow = true;
		return -1;
	}
	memcpy(o->p + o->len, buf, len);
	o->len += len;
	return 0;
}

static void
pk_key(msgpack_packer *pk, const char *k)
{
	size_t n = strlen(k);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, k, n);
}

static void
pk_bin(msgpack_packer *pk, const char *k, const void *b, size_t n)
{
	pk_key(pk, k);
	msgpack_pack_bin(pk, n);
	if (n != 0) /* b may be NULL then */
		msgpack_pack_bin_body(pk, b, n);
}

static void
pk_str(msgpack_packer *pk, const char *k, const mm_bytes_t *s)
{
	pk_key(pk, k);
	msgpack_pack_str(pk, s->len);
	msgpack_pack_str_body(pk, s->ptr, s->len);
}

static void
pk_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	pk_key(pk, k);
	msgpack_pack_uint64(pk, v);
}

static bool
is_v4(const uint8_t ip[16])
{
	static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(ip, pre, 12) == 0;
}

int
mm_wire_encode(const mm_wire_msg_t *m, uint8_t *out, size_t cap)
{
	if (m->type == 0 || m->type >= MM_W__COUNT || cap < MM_FRAME_HDR)
		return m->type == 0 || m->type >= MM_W__COUNT ? -EINVAL : -ENOSPC;
	struct outbuf o = {out + MM_FRAME_HDR, cap - MM_FRAME_HDR, 0, false};
	msgpack_packer pk;
	msgpack_packer_init(&pk, &o, out_write);

	msgpack_pack_map(&pk, m->req ? 3 : 2);
	pk_key(&pk, "cmd");
	const char *name = names[m->type];
	msgpack_pack_str(&pk, strlen(name));
	msgpack_pack_str_body(&pk, name, strlen(name));
	if (m->req)
		pk_uint(&pk, "req", m->req);
	pk_key(&pk, "params");
	switch (m->type) {
	case MM_W_HELLO: {
		const mm_w_hello_t *h = &m->u.hello;
		if (h->net.len == 0 || h->net.len > MM_WIRE_NET_MAX ||
		    h->agent.len > MM_WIRE_AGENT_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 6 + (h->port != 0) + (h->agent.len != 0));
		pk_uint(&pk, "v", h->version);
		pk_str(&pk, "net", &h->net);
		pk_bin(&pk, "pub", h->pub, 32);
		pk_bin(&pk, "csig", h->csig, 64);
		pk_uint(&pk, "pow", h->pow);
		pk_uint(&pk, "ts", h->ts);
		if (h->port != 0)
			pk_uint(&pk, "port", h->port);
		if (h->agent.len != 0)
			pk_str(&pk, "agent", &h->agent);
		break;
	}
	case MM_W_PING:
	case MM_W_PONG:
		msgpack_pack_map(&pk, 1);
		pk_uint(&pk, "ts", m->u.ping.ts);
		break;
	case MM_W_ERROR: {
		const mm_w_error_t *e = &m->u.error;
		if (e->msg.len > MM_WIRE_ERRMSG_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 1 + (e->msg.len != 0));
		pk_uint(&pk, "code", e->code);
		if (e->msg.len != 0)
			pk_str(&pk, "msg", &e->msg);
		break;
	}
	case MM_W_EVENT: {
		const mm_w_event_t *e = &m->u.event;
		if (e->kind < 1 || e->kind > 2 || e->dir > 1 || e->seq == 0)
			return -EINVAL;
		if (e->nnb > MM_WIRE_NB_MAX || (e->has_nb && e->nnb < 32 &&
		    (e->nbd >> e->nnb) != 0))
			return -EINVAL;
		msgpack_pack_map(&pk, e->has_nb ? 11 : 9);
		pk_bin(&pk, "pub", e->pub, 32);
		pk_uint(&pk, "pow", e->pow);
		pk_bin(&pk, "peer", e->peer, 32);
		pk_uint(&pk, "kind", e->kind);
		pk_uint(&pk, "dir", e->dir);
		pk_uint(&pk, "seq", e->seq);
		pk_uint(&pk, "ts", e->ts);
		pk_uint(&pk, "ttl", e->ttl);
		pk_bin(&pk, "sig", e->sig, 64);
		if (e->has_nb) {
			pk_bin(&pk, "nb", e->nb, 32 * (size_t)e->nnb);
			pk_uint(&pk, "nbd", e->nbd);
		}
		break;
	}
	case MM_W_GET_PEERS: {
		const mm_w_get_peers_t *g = &m->u.get_peers;
		if (g->limit == 0 || g->limit > MM_WIRE_PEERS_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 2);
		pk_uint(&pk, "cursor", g->cursor);
		pk_uint(&pk, "limit", g->limit);
		break;
	}
	case MM_W_PEERS: {
		const mm_w_peers_t *ps = &m->u.peers;
		if (ps->count > MM_WIRE_PEERS_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 2);
		pk_uint(&pk, "next", ps->next);
		pk_key(&pk, "list");
		msgpack_pack_array(&pk, ps->count);
		for (unsigned i = 0; i < ps->count; i++) {
			const mm_w_peer_t *q = &ps->peer[i];
			if (q->nnb > MM_WIRE_NB_MAX || (q->has_addr && q->port == 0))
				return -EINVAL;
			msgpack_pack_map(&pk, 4 + 2 * (q->has_addr != 0));
			pk_bin(&pk, "id", q->id, 32);
			pk_uint(&pk, "seq", q->seq);
			pk_bin(&pk, "nb", q->nb, 32u * q->nnb);
			pk_uint(&pk, "dirs", q->dirs);
			if (q->has_addr) {
				if (is_v4(q->ip))
					pk_bin(&pk, "ip", q->ip + 12, 4);
				else
					pk_bin(&pk, "ip", q->ip, 16);
				pk_uint(&pk, "port", q->port);
			}
		}
		break;
	}
	case MM_W_DIGEST:
	case MM_W_WANT:
	case MM_W_IHAVE:
	case MM_W_IWANT: {
		/* ihave and iwant share digest's and want's layouts */
		int ents = m->type == MM_W_DIGEST || m->type == MM_W_IHAVE;
		const mm_bytes_t *b = m->type == MM_W_DIGEST ? &m->u.digest.ents :
		    m->type == MM_W_WANT ? &m->u.want.ids : m->type == MM_W_IHAVE ?
		    &m->u.ihave.ents : &m->u.iwant.ids;
		uint32_t size = ents ? MM_WIRE_DIGEST_ENT : 32;
		if (b->len % size != 0 || b->len > size * MM_WIRE_DIGEST_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 1);
		pk_bin(&pk, ents ? "ents" : "ids", b->ptr, b->len);
		break;
	}
	case MM_W_DIRECT: {
		const mm_w_direct_t *d = &m->u.direct;
		if (!route_ok(&d->route) || d->at == 0 || d->at >= d->route.len / 32 ||
		    d->rr > 1 || d->data.len > MM_WIRE_DATA_MAX ||
		    (d->has_rw && (!route_ok(&d->route0) || d->rw_at == 0)))
			return -EINVAL;
		msgpack_pack_map(&pk, 8 + (d->rr != 0) + (d->has_rw != 0));
		pk_bin(&pk, "pub", d->pub, 32);
		pk_uint(&pk, "pow", d->pow);
		pk_bin(&pk, "route", d->route.ptr, d->route.len);
		pk_uint(&pk, "at", d->at);
		if (d->rr)
			pk_uint(&pk, "rr", 1);
		pk_uint(&pk, "nonce", d->nonce);
		pk_uint(&pk, "ts", d->ts);
		pk_bin(&pk, "data", d->data.ptr, d->data.len);
		pk_bin(&pk, "sig", d->sig, 64);
		if (d->has_rw) {
			pk_key(&pk, "rw");
			msgpack_pack_map(&pk, 5);
			pk_bin(&pk, "route0", d->route0.ptr, d->route0.len);
			pk_bin(&pk, "pub", d->rw_pub, 32);
			pk_uint(&pk, "pow", d->rw_pow);
			pk_uint(&pk, "at", d->rw_at);
			pk_bin(&pk, "sig", d->rw_sig, 64);
		}
		break;
	}
	case MM_W_DFAIL: {
		const mm_w_dfail_t *f = &m->u.dfail;
		if (!route_ok(&f->route) || f->at == 0 || f->at >= f->route.len / 32)
			return -EINVAL;
		msgpack_pack_map(&pk, 7);
		pk_bin(&pk, "route", f->route.ptr, f->route.len);
		pk_uint(&pk, "at", f->at);
		pk_bin(&pk, "ref", f->ref, 32);
		pk_uint(&pk, "code", f->code);
		pk_bin(&pk, "pub", f->pub, 32);
		pk_uint(&pk, "pow", f->pow);
		pk_bin(&pk, "sig", f->sig, 64);
		break;
	}
	case MM_W_BCAST: {
		const mm_w_bcast_t *b = &m->u.bcast;
		if (b->topic.len == 0 || b->topic.len > MM_WIRE_TOPIC_MAX ||
		    b->data.len > MM_WIRE_DATA_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 8);
		pk_str(&pk, "topic", &b->topic);
		pk_bin(&pk, "pub", b->pub, 32);
		pk_uint(&pk, "pow", b->pow);
		pk_uint(&pk, "nonce", b->nonce);
		pk_uint(&pk, "ts", b->ts);
		pk_uint(&pk, "ttl", b->ttl);
		pk_bin(&pk, "data", b->data.ptr, b->data.len);
		pk_bin(&pk, "sig", b->sig, 64);
		break;
	}
	case MM_W_SUBS: {
		const mm_w_subs_t *sb = &m->u.subs;
		if (sb->count > MM_WIRE_SUBS_MAX)
			return -EINVAL;
		msgpack_pack_map(&pk, 1);
		pk_key(&pk, "topics");
		msgpack_pack_array(&pk, sb->count);
		for (unsigned i = 0; i < sb->count; i++) {
			if (sb->topic[i].len == 0 || sb->topic[i].len > MM_WIRE_TOPIC_MAX)
				return -EINVAL;
			msgpack_pack_str(&pk, sb->topic[i].len);
			msgpack_pack_str_body(&pk, sb->topic[i].ptr, sb->topic[i].len);
		}
		break;
	}
	default:
		return -EINVAL;
	}
	if (o.overflow)
		return -ENOSPC;
	if (o.len > UINT32_MAX)
		return -EINVAL;
	mm_frame_put_len(out, (uint32_t)o.len);
	return (int)(MM_FRAME_HDR + o.len);
}

static void
be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void
mm_wire_direct_signed_bytes(const uint8_t pub[32], const mm_bytes_t *route0,
    uint8_t rr, uint64_t nonce, uint64_t ts, const mm_bytes_t *data,
    uint8_t out[MM_WIRE_DIRECT_SIGNED_LEN])
{
	memcpy(out, "meshmap-direct-v1", 17);
	memcpy(out + 17, pub, 32);
	mm_sha256(route0->ptr, route0->len, out + 49);
	out[81] = rr;
	be64(out + 82, nonce);
	be64(out + 90, ts);
	mm_sha256(data->ptr, data->len, out + 98);
}

void
mm_wire_rewrite_signed_bytes(const uint8_t sig[64], uint8_t rw_at,
    const mm_bytes_t *route, uint8_t out[MM_WIRE_REWRITE_SIGNED_LEN])
{
	memcpy(out, "meshmap-rewrite-v1", 18);
	memcpy(out + 18, sig, 64);
	out[82] = rw_at;
	mm_sha256(route->ptr, route->len, out + 83);
}

void
mm_wire_dfail_signed_bytes(const uint8_t ref[32], uint32_t code,
    const mm_bytes_t *route, uint8_t out[MM_WIRE_DFAIL_SIGNED_LEN])
{
	memcpy(out, "meshmap-dfail-v1", 16);
	memcpy(out + 16, ref, 32);
	out[48] = (uint8_t)(code >> 24);
	out[49] = (uint8_t)(code >> 16);
	out[50] = (uint8_t)(code >> 8);
	out[51] = (uint8_t)code;
	mm_sha256(route->ptr, route->len, out + 52);
}

void
mm_wire_bcast_signed_bytes(const mm_w_bcast_t *b, uint8_t out[MM_WIRE_BCAST_SIGNED_LEN])
{
	memcpy(out, "meshmap-bcast-v1", 16);
	memcpy(out + 16, b->pub, 32);
	mm_sha256(b->topic.ptr, b->topic.len, out + 48);
	be64(out + 80, b->nonce);
	be64(out + 88, b->ts);
	mm_sha256(b->data.ptr, b->data.len, out + 96);
}
