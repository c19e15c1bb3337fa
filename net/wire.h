/*
 * The wire codec: every message is one msgpack map
 *     {"cmd": <str>, "req": <uint>, "params": {<name>: <value>, ...}}
 * in a frame (frame.h). docs/PROTOCOL.md is the normative description; this
 * header mirrors it. Decoding is strict (types, ranges, lengths, exact id
 * sizes, no duplicate keys), ignores unknown parameters, and reports an
 * unknown command with its request id so that the caller can answer with an
 * error. Decoded byte strings point into the frame: they live as long as it.
 */
#ifndef MM_WIRE_H
#define MM_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MM_WIRE_VERSION 1
#define MM_WIRE_PEERS_MAX 64   /* entries per peers message */
#define MM_WIRE_NB_MAX 32      /* neighbours per entry */
#define MM_WIRE_NET_MAX 32     /* network name bytes */
#define MM_WIRE_AGENT_MAX 64
#define MM_WIRE_ERRMSG_MAX 256

enum mm_wire_type {
	MM_W_HELLO = 1,
	MM_W_PING,
	MM_W_PONG,
	MM_W_ERROR,
	MM_W_EVENT,
	MM_W_GET_PEERS,
	MM_W_PEERS,
	MM_W_DIGEST,
	MM_W_WANT,
	MM_W_DIRECT,
	MM_W_DFAIL,
	MM_W_BCAST,
	MM_W_SUBS,
	MM_W_IHAVE,
	MM_W_IWANT,
	MM_W__COUNT
};

/* Error codes carried by the error message (and used in logs). */
enum mm_wire_err {
	MM_WERR_BAD_FRAME = 1,   /* zero or oversize length */
	MM_WERR_BAD_MSGPACK = 2, /* not one well-formed msgpack map */
	MM_WERR_UNKNOWN_CMD = 3,
	MM_WERR_BAD_PARAMS = 4,  /* missing, mistyped or out-of-range field */
	MM_WERR_VERSION = 5,     /* protocol version not supported */
	MM_WERR_BAD_POW = 6,
	MM_WERR_BAD_ID = 7,      /* identity does not verify */
	MM_WERR_BAD_SIG = 8,
	MM_WERR_RATE = 9,        /* over a rate or size budget */
	MM_WERR_BANNED = 10,
	MM_WERR_SHUTDOWN = 11,
	MM_WERR_ORDER = 12,      /* message not allowed in this state */
	MM_WERR_NETWORK = 13,    /* another network name */
	MM_WERR_FULL = 14        /* no slot for this peer now (not its fault) */
};

typedef struct mm_bytes {
	const uint8_t *ptr;
	uint32_t len;
} mm_bytes_t;

typedef struct mm_w_hello {
	uint32_t version;
	mm_bytes_t net;    /* 1..32 bytes */
	uint8_t pub[32];   /* Ed25519 public key */
	uint8_t csig[64];  /* binding of the TLS certificate (tls.h) */
	uint64_t pow;      /* proof-of-work nonce */
	uint16_t port;     /* listening port, 0 = does not accept */
	uint64_t ts;       /* unix milliseconds */
	mm_bytes_t agent;  /* optional, <= 64 bytes */
} mm_w_hello_t;

typedef struct mm_w_ping {
	uint64_t ts;       /* sender's clock, echoed by pong */
} mm_w_ping_t;

typedef struct mm_w_error {
	uint32_t code;     /* enum mm_wire_err */
	mm_bytes_t msg;    /* <= 256 bytes */
} mm_w_error_t;

/* Events are self-certifying: they carry the origin's public key (its id is
 * SHA-256 of it) and proof-of-work nonce, so that any receiver can check
 * them without a directory of keys (32 bytes a peer would cost 3.2 MB of
 * the 12 MB map budget at 100k peers). */
typedef struct mm_w_event {
	uint8_t pub[32];   /* origin's Ed25519 public key */
	uint64_t pow;      /* origin's proof-of-work nonce */
	uint8_t peer[32];  /* peer id of the other end */
	uint8_t kind;      /* 1 connect, 2 disconnect */
	uint8_t dir;       /* 0 in, 1 out (seen from origin) */
	uint32_t seq;      /* > 0 */
	uint64_t ts;       /* unix milliseconds */
	uint8_t ttl;       /* hops left */
	uint8_t sig[64];   /* Ed25519 by origin (see PROTOCOL.md) */
	/* The origin's whole neighbour list after this event (state, not
	 * only the delta above), so that the newest event is the whole truth
	 * whatever order events arrive in. has_nb: the list is present (it
	 * may be empty); nbd bit i: direction of nb[i] (1 = out). */
	uint8_t has_nb;
	uint8_t nnb;       /* 0..MM_WIRE_NB_MAX */
	uint32_t nbd;
	uint8_t nb[32][32];
} mm_w_event_t;
#define MM_WIRE_NB_MAX 32

typedef struct mm_w_get_peers {
	uint32_t cursor;
	uint16_t limit;    /* 1..MM_WIRE_PEERS_MAX */
} mm_w_get_peers_t;

typedef struct mm_w_peer {
	const uint8_t *id;   /* 32 bytes */
	uint32_t seq;
	uint8_t nnb;
	const uint8_t *nb;   /* nnb x 32 bytes */
	uint32_t dirs;       /* bit i: direction of neighbour i */
	uint8_t has_addr;
	uint8_t ip[16];      /* IPv4 as ::ffff:a.b.c.d */
	uint16_t port;
} mm_w_peer_t;

typedef struct mm_w_peers {
	uint32_t next;       /* cursor for the next get_peers; 0 = done */
	uint16_t count;
	mm_w_peer_t peer[MM_WIRE_PEERS_MAX];
} mm_w_peers_t;

/* Anti-entropy (docs/PROTOCOL.md): the newest (origin, seq) the sender
 * can deliver, and the origins the receiver wants. Both point into the
 * frame. */
#define MM_WIRE_DIGEST_MAX 1024
#define MM_WIRE_DIGEST_ENT 36  /* id (32) || seq (4, big-endian) */
typedef struct mm_w_digest {
	mm_bytes_t ents;     /* n x 36 bytes, n <= 1024 */
} mm_w_digest_t;
typedef struct mm_w_want {
	mm_bytes_t ids;      /* n x 32 bytes, n <= 1024 */
} mm_w_want_t;
/* Lazy push (docs/PROTOCOL.md, "ihave / iwant"): the (origin, seq) of
 * events the sender accepted and did not push to this link in full, and
 * the origins whose newest event the receiver asks for. Same layouts as
 * digest and want. */
typedef mm_w_digest_t mm_w_ihave_t;
typedef mm_w_want_t mm_w_iwant_t;

/* Source-routed direct messages (docs/PROTOCOL.md, "direct"). Byte
 * strings point into the frame. */
#define MM_WIRE_ROUTE_MAX 16      /* ids on a route, origin and destination included */
#define MM_WIRE_DATA_MAX 49152    /* payload bytes */
typedef struct mm_w_direct {
	uint8_t pub[32];     /* origin's key and proof of work */
	uint64_t pow;
	mm_bytes_t route;    /* the route now: 2..16 distinct ids, [0] origin, last destination */
	uint8_t at;          /* index in route of this frame's receiver (1..n-1) */
	uint8_t rr;          /* the origin allows one rewrite */
	uint64_t nonce, ts;
	mm_bytes_t data;
	uint8_t sig[64];     /* origin's, over the original route */
	/* a rewrite (at most one): */
	uint8_t has_rw;
	mm_bytes_t route0;   /* the origin's route, as signed */
	uint8_t rw_pub[32];  /* the rewriting relay, route0[rw_at] */
	uint64_t rw_pow;
	uint8_t rw_at;
	uint8_t rw_sig[64];
	/* Set by the fast reader only (mm_wire_decode_direct_fast), for a
	 * frame without `req` whose `at` is one positive fixint byte: the
	 * frame's body (no length prefix) and that byte's offset in it. A
	 * relay that changes nothing but `at` sends these bytes with that
	 * byte raised instead of encoding the message again. raw_len 0: not
	 * set. */
	const uint8_t *raw;
	uint32_t raw_len, at_off;
} mm_w_direct_t;

/* A relay's signed notice that it could not forward a direct message,
 * routed back to the origin. */
typedef struct mm_w_dfail {
	mm_bytes_t route;    /* [0] the relay, last the origin */
	uint8_t at;
	uint8_t ref[32];     /* SHA-256 of the failed message's sig */
	uint32_t code;       /* enum mm_dfail_code */
	uint8_t pub[32];     /* the relay's key, proof of work, signature */
	uint64_t pow;
	uint8_t sig[64];
} mm_w_dfail_t;
enum mm_dfail_code { MM_DFAIL_UNREACHABLE = 1, MM_DFAIL_NO_ROUTE = 2 };

/* Broadcast on a topic (docs/PROTOCOL.md, "bcast" and "subs"). */
#define MM_WIRE_TOPIC_MAX 64      /* bytes in a topic name */
#define MM_WIRE_SUBS_MAX 64       /* topics in one subs message */
typedef struct mm_w_bcast {
	mm_bytes_t topic;    /* 1..64 bytes of text */
	uint8_t pub[32];     /* origin's key and proof of work */
	uint64_t pow;
	uint64_t nonce, ts;
	uint8_t ttl;         /* hops left */
	mm_bytes_t data;     /* <= MM_WIRE_DATA_MAX */
	uint8_t sig[64];
} mm_w_bcast_t;
typedef struct mm_w_subs {
	uint16_t count;      /* 0..64; the topic "*" means every topic */
	mm_bytes_t topic[MM_WIRE_SUBS_MAX];
} mm_w_subs_t;

typedef struct mm_wire_msg {
	uint8_t type;        /* enum mm_wire_type */
	uint32_t req;        /* request id; 0 = none */
	union {
		mm_w_hello_t hello;
		mm_w_ping_t ping; /* ping and pong */
		mm_w_error_t error;
		mm_w_event_t event;
		mm_w_get_peers_t get_peers;
		mm_w_peers_t peers;
		mm_w_digest_t digest;
		mm_w_want_t want;
		mm_w_ihave_t ihave;
		mm_w_iwant_t iwant;
		mm_w_direct_t direct;
		mm_w_dfail_t dfail;
		mm_w_bcast_t bcast;
		mm_w_subs_t subs;
	} u;
} mm_wire_msg_t;

/* Decode results. On MM_WIRE_EUNKNOWN, m->req holds the request id. */
enum {
	MM_WIRE_OK = 0,
	MM_WIRE_EMSGPACK = -1,   /* not one well-formed msgpack map */
	MM_WIRE_EUNKNOWN = -2,   /* unknown command */
	MM_WIRE_EPARAMS = -3,    /* a field is missing, mistyped or out of range */
	MM_WIRE_ENOMEM = -4
};

typedef struct mm_wire_dec mm_wire_dec_t; /* per-thread decoder state */
mm_wire_dec_t *mm_wire_dec_new(void);
void mm_wire_dec_free(mm_wire_dec_t *d);

/* Decode one frame body. *why (if not NULL) names the problem on error. */
int mm_wire_decode(mm_wire_dec_t *d, const uint8_t *frame, uint32_t len,
    mm_wire_msg_t *m, const char **why);
/* The paths mm_wire_decode takes, for tests and fuzzing: an event, or a
 * direct message without a rewrite, read in place, which take only what
 * they can decode exactly as the general path would (1: m filled; 0: not
 * taken, m partly written), and the general path (msgpack-c), which
 * takes everything. */
int mm_wire_decode_event_fast(const uint8_t *frame, uint32_t len,
    mm_wire_msg_t *m);
int mm_wire_decode_direct_fast(const uint8_t *frame, uint32_t len,
    mm_wire_msg_t *m);
int mm_wire_decode_general(mm_wire_dec_t *d, const uint8_t *frame,
    uint32_t len, mm_wire_msg_t *m, const char **why);

/* Encode m as a whole frame (4-byte length + msgpack) into out[cap].
 * Returns the frame's length, or -ENOSPC if cap is too small, -EINVAL if m
 * itself is out of range. */
int mm_wire_encode(const mm_wire_msg_t *m, uint8_t *out, size_t cap);

const char *mm_wire_type_name(unsigned type);
/* The type of an encoded frame (header included), read from its leading
 * "cmd" field as mm_wire_encode writes it; 0 if it does not start so.
 * Cheap: for counting frames that were encoded elsewhere. */
int mm_wire_peek_type(const uint8_t *frame, size_t len);

/* The bytes an event's signature covers (docs/PROTOCOL.md, "event"):
 * "meshmap-event-v1" (16 bytes) || pub || peer || kind || dir ||
 * seq (4, big-endian) || ts (8, big-endian) || has_nb (1) ||
 * SHA-256(nnb (1) || nb[0..nnb) || nbd (4, big-endian)), or 32 zero bytes
 * without a list. ttl and pow are not covered: relays decrement ttl, and
 * pow is a property of pub, checked on its own. */
#define MM_WIRE_EVENT_SIGNED_LEN 127
void mm_wire_event_signed_bytes(const mm_w_event_t *e,
    uint8_t out[MM_WIRE_EVENT_SIGNED_LEN]);
/* The first 94 of those bytes only (no list hash: no SHA-256); the rest of
 * out is left as it was. For dedup keys. */
void mm_wire_event_signed_bytes_fixed(const mm_w_event_t *e,
    uint8_t out[MM_WIRE_EVENT_SIGNED_LEN]);

/* What the signatures of a direct message cover (docs/PROTOCOL.md):
 * origin: "meshmap-direct-v1" (17) || pub || SHA-256(original route) ||
 *   rr (1) || nonce (8, BE) || ts (8, BE) || SHA-256(data): 130 bytes;
 * rewrite: "meshmap-rewrite-v1" (18) || origin sig (64) || rw_at (1) ||
 *   SHA-256(new route): 115 bytes;
 * failure notice: "meshmap-dfail-v1" (16) || ref (32) || code (4, BE) ||
 *   SHA-256(route): 84 bytes. */
#define MM_WIRE_DIRECT_SIGNED_LEN 130
/* broadcast: "meshmap-bcast-v1" (16) || pub (32) || SHA-256(topic) (32) ||
 * nonce (8, BE) || ts (8, BE) || SHA-256(data) (32): 128 bytes */
#define MM_WIRE_BCAST_SIGNED_LEN 128
void mm_wire_bcast_signed_bytes(const mm_w_bcast_t *b,
    uint8_t out[MM_WIRE_BCAST_SIGNED_LEN]);
#define MM_WIRE_REWRITE_SIGNED_LEN 115
#define MM_WIRE_DFAIL_SIGNED_LEN 84
void mm_wire_direct_signed_bytes(const uint8_t pub[32], const mm_bytes_t *route0,
    uint8_t rr, uint64_t nonce, uint64_t ts, const mm_bytes_t *data,
    uint8_t out[MM_WIRE_DIRECT_SIGNED_LEN]);
void mm_wire_rewrite_signed_bytes(const uint8_t sig[64], uint8_t rw_at,
    const mm_bytes_t *route, uint8_t out[MM_WIRE_REWRITE_SIGNED_LEN]);
void mm_wire_dfail_signed_bytes(const uint8_t ref[32], uint32_t code,
    const mm_bytes_t *route, uint8_t out[MM_WIRE_DFAIL_SIGNED_LEN]);

#ifdef __cplusplus
}
#endif
#endif
