/*
 * Connections on the actor runtime: a listener actor, and one actor per
 * connection on the worker that owns its socket.
 *
 * A connection goes TCP connect -> TLS handshake -> hello exchange -> ready,
 * all within handshake_timeout_ms. Ready connections send ping when they
 * have been quiet for ping_interval_ms (the pong gives the round-trip time)
 * and are closed after idle_timeout_ms without hearing anything. Outgoing
 * frames are encoded straight into one write buffer per connection, so
 * queued frames leave in as few TLS records and system calls as possible;
 * a peer that lets more than write_cap bytes pile up is cut off (slow
 * consumer), not buffered forever. Every malformed, oversize, out-of-order
 * or unauthenticated input closes that one connection with a logged reason
 * and counts against the sender (mm_net_stats: closes by reason).
 *
 * Limits at accept time: max_conns in all, max_conns_per_ip per address,
 * max_pending_per_ip handshakes in progress per address. Counts per address
 * sit in a fixed table of hashed counters (addresses that collide share a
 * count: it can refuse early, never admit more).
 *
 * Callbacks run in the connection's actor, on its worker; mm_conn_send and
 * mm_conn_close may only be called there.
 */
#ifndef MM_CONN_H
#define MM_CONN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "identity.h"
#include "mm_rt.h"
#include "tls.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_net mm_net_t;
typedef struct mm_conn mm_conn_t;

/* Why a connection closed (counted per reason in mm_net_stats). Values
 * 1..13 are the protocol's error codes (wire.h) when the peer misbehaved. */
enum mm_close_reason {
	MM_CLOSE_NORMAL = 0,      /* closed by us or the peer, no fault */
	MM_CLOSE_TIMEOUT = 20,    /* handshake not done in time */
	MM_CLOSE_IDLE = 21,       /* nothing heard for idle_timeout_ms */
	MM_CLOSE_SLOW = 22,       /* write queue over write_cap */
	MM_CLOSE_TLS = 23,        /* TLS handshake or record failure */
	MM_CLOSE_IO = 24,         /* socket error, reset, refused */
	MM_CLOSE_LIMIT = 25,      /* refused at accept: a limit was reached */
	MM_CLOSE_SHUTDOWN = 26,
	MM_CLOSE__MAX = 32
};

/* Unknown commands a connection answers (error 3) before it closes. */
#define MM_CONN_UNKNOWN_MAX 16

typedef struct mm_net_config {
	const mm_identity_t *id;
	const char *network;            /* network name (hello.net) */
	unsigned difficulty;            /* proof-of-work bits required */
	mm_tls_backend_t backend;
	const char *cert_pem, *key_pem, *ca_pem; /* NULL: open network */
	uint32_t max_frame;             /* default 65536 */
	uint32_t handshake_timeout_ms;  /* default 5000 */
	uint32_t ping_interval_ms;      /* default 10000 */
	uint32_t idle_timeout_ms;       /* default 30000 */
	uint32_t write_cap;             /* bytes queued per connection, 1 MiB */
	/* Read back-pressure from the owner (mm_conn_hold): a connection
	 * whose messages the owner still holds past hold_cap bytes (default
	 * 1 MiB), or any connection while all of them together pass
	 * hold_total (default 16 MiB; 0: no total), reads nothing more (TCP
	 * pushes back on the sender) until the owner has let go of enough. */
	uint32_t hold_cap;
	uint64_t hold_total;
	uint32_t max_conns;             /* default 1024 */
	uint32_t max_conns_per_ip;      /* default 8 */
	uint32_t max_pending_per_ip;    /* default 4 */
	uint16_t listen_port;           /* advertised in hello (0: the first port
	                                 * mm_net_listen binds; none if it never does) */
	unsigned conn_mailbox;          /* connection actor mailbox (63) */
	/* Bandwidth over all connections, bytes a second of TLS payload
	 * received and sent (0: no limit). A connection that goes over pauses
	 * its reads (TCP pushes back on the sender) or its writes (frames wait
	 * in its write queue, and a peer whose queue passes write_cap is cut
	 * off as slow) until the average is back under; bursts of a quarter
	 * second's worth pass at once. Handshakes are not limited. */
	uint64_t recv_rate, send_rate;
	/* Memory admission at accept, before TLS (0: off). The runtime samples
	 * RSS every 100 ms; a storm can queue a thousand handshakes in between,
	 * each soon holding tens of KB of TLS state. Every connection accepted
	 * since the last sample, and every handshake in progress, is charged
	 * this many bytes, and a newcomer that
	 * would take the sample plus the charges to 95% of the runtime's
	 * budget (its critical level), or that comes while the level is
	 * critical, is refused at once (stats: refused_memory). Size it to a
	 * connection mid-handshake: about 30 KB with OpenSSL, 60 KB with
	 * mbedTLS (bench/RESULTS.md, benchmark 4). */
	uint32_t conn_mem_bytes;
	void (*on_ready)(mm_conn_t *c, const uint8_t id[32], void *arg);
	void (*on_message)(mm_conn_t *c, const mm_wire_msg_t *m, void *arg);
	void (*on_close)(mm_conn_t *c, int reason, const char *why, void *arg);
	/* This layer found a protocol fault of the peer (a wire error code,
	 * 1..13: a bad frame, bad msgpack or parameters, a message out of
	 * order, a hello that fails its checks, too many unknown commands)
	 * and will now tell it and close. Called before the peer can learn of
	 * it (the error frame, the TLS close), so that the owner can ban it
	 * before it reconnects. Not for closes the owner asks. NULL: none. */
	void (*on_fault)(mm_conn_t *c, int code, const char *why, void *arg);
	/* A new round-trip time (microseconds) from a pong. NULL: none. */
	void (*on_rtt)(mm_conn_t *c, uint32_t rtt_us, void *arg);
	/* Everything queued before an MM_CONN_DRAIN message has been written
	 * out (handed to the kernel; in the simulator, delivered). Called on
	 * the connection's worker, once per MM_CONN_DRAIN. NULL: none. */
	void (*on_drained)(mm_conn_t *c, void *arg);
	/* Called by the listener for every accepted socket, before TLS and
	 * before any allocation: nonzero refuses it (closed at once, counted
	 * as closes[MM_WERR_BANNED]). ip: 16 bytes, IPv4 as ::ffff:a.b.c.d.
	 * Runs on the listener's worker: must be thread-safe. NULL: none. */
	int (*accept_filter)(const uint8_t ip[16], void *arg);
	void *arg;
} mm_net_config_t;

void mm_net_config_default(mm_net_config_t *cfg);
int mm_net_create(mm_rt_t *rt, const mm_net_config_t *cfg, mm_net_t **out,
    char *err, size_t errlen);
/* After mm_rt_stop. */
void mm_net_destroy(mm_net_t *n);

/* Listen on host:port (port 0: any); *bound gets the port. 0 or -errno. */
int mm_net_listen(mm_net_t *n, const char *host, uint16_t port, uint16_t *bound);
/* Dial an address; expect_id (or NULL): the peer id it must prove. */
int mm_net_dial(mm_net_t *n, const struct sockaddr *sa, socklen_t len,
    const uint8_t *expect_id);
/* The same with a tag for the caller, returned by mm_conn_tag (0: none). */
int mm_net_dial_tagged(mm_net_t *n, const struct sockaddr *sa, socklen_t len,
    const uint8_t *expect_id, uint64_t tag);
uint64_t mm_conn_tag(const mm_conn_t *c);
/* Two words of the owner's, zero at first, for state of its own that
 * follows the connection's reading (e.g. a rate bucket kept in
 * on_message): only on the connection's worker, in its callbacks. */
uint64_t *mm_conn_owner_words(mm_conn_t *c);

int mm_conn_send(mm_conn_t *c, const mm_wire_msg_t *m);
/* Queue an already encoded frame (length prefix included). */
int mm_conn_send_frame(mm_conn_t *c, const uint8_t *frame, size_t len);
/* The connection's actor, to which other actors send (conn keeps running
 * until it closes; take a reference with mm_actor_ref to keep the pointer).
 * Messages it takes: MM_CONN_SEND_BUF (ptr: an mm_buf holding one or more
 * encoded frames, with MM_MSG_F_BUF set), MM_CONN_CLOSE (aux: reason; a
 * protocol error code 1..19 is first sent to the peer in an error message)
 * and MM_CONN_DRAIN (on_drained once what was queued before it has gone
 * out: a sender paces a long transfer in parts by the peer's reading, not
 * by a guess). */
mm_actor_t *mm_conn_actor(const mm_conn_t *c);
enum { MM_CONN_SEND_BUF = MM_MSG_USER + 1000, MM_CONN_CLOSE, MM_CONN_DRAIN };
void mm_conn_close(mm_conn_t *c, int reason, const char *why);
/* Back-pressure: the owner keeps bytes of what this connection received
 * (copies waiting in its mailbox). Call in on_message; charge what the
 * copy allocates. Past the limits (hold_cap, hold_total) the connection
 * pauses its reads. Once the owner frees the copy: mm_conn_unhold with
 * the connection's actor (mm_conn_actor, a reference held until then),
 * from any thread. */
void mm_conn_hold(mm_conn_t *c, uint32_t bytes);
void mm_conn_unhold(mm_actor_t *conn, uint32_t bytes);
uint32_t mm_conn_rtt_us(const mm_conn_t *c);   /* 0 until the first pong */
const uint8_t *mm_conn_peer_id(const mm_conn_t *c); /* NULL before ready */
/* The id the peer's hello proved, also during and after the close (NULL
 * if no hello passed): for on_fault and on_close. */
const uint8_t *mm_conn_proved_id(const mm_conn_t *c);
int mm_conn_inbound(const mm_conn_t *c);
/* The peer's address: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
const uint8_t *mm_conn_ip(const mm_conn_t *c);
/* The port the peer accepts connections on (its hello), 0: none. */
uint16_t mm_conn_peer_port(const mm_conn_t *c);
mm_net_t *mm_conn_net(const mm_conn_t *c);

/* "host:port" (host a name, an IPv4 address or "[IPv6]") to a socket
 * address; names are resolved (getaddrinfo). passive: for listening
 * (give 0.0.0.0 or :: for every address). 0 or -1. */
int mm_parse_hostport(const char *s, struct sockaddr_storage *out, socklen_t *len,
    int passive);

/* A 16-byte address (IPv4 as ::ffff:a.b.c.d, as mm_conn_ip gives it) as
 * text: a.b.c.d, or IPv6 notation. 0, or -1 if it does not fit. */
int mm_ip_text(const uint8_t ip[16], char *out, size_t len);

/* "host:port" to listen on, as a numeric host text and a port (what
 * mm_net_listen and mm_listen_fd take). 0 or -1. */
int mm_parse_listen(const char *s, char host[INET6_ADDRSTRLEN], uint16_t *port);

/* A listening TCP socket on a numeric host (port 0: any; *bound gets the
 * port): the fd, or -errno. */
int mm_listen_fd(const char *host, uint16_t port, int backlog, int nonblock,
    uint16_t *bound);

typedef struct mm_net_stats {
	uint64_t open, inbound, outbound, ready;
	uint64_t accepted, dialled, refused, refused_memory;
	uint64_t frames_in, frames_out, bytes_in, bytes_out;
	uint64_t pings, pongs;
	uint64_t closes[MM_CLOSE__MAX]; /* by reason */
	/* open connections now: accepted, dialled, and past both hellos */
	uint64_t open_in, open_out, open_ready;
	/* frames and bytes (frame header included) by message type, [0] in
	 * (decoded), [1] out (queued) */
	uint64_t type_frames[2][MM_W__COUNT], type_bytes[2][MM_W__COUNT];
	/* bandwidth limits ([0] received, [1] sent; 0: none) and the times a
	 * connection paused its reads or writes to keep them */
	uint64_t bw_rate[2], bw_pauses[2];
	/* bytes the owner holds now (mm_conn_hold), and the times a
	 * connection paused its reads because of them */
	uint64_t held, hold_pauses;
	/* the connection limits (fixed at create) */
	uint64_t max_conns, max_conns_per_ip, max_pending_per_ip;
} mm_net_stats_t;
/* Change the bandwidth limits at run time (any thread). */
void mm_net_set_rates(mm_net_t *n, uint64_t recv_rate, uint64_t send_rate);
void mm_net_stats(const mm_net_t *n, mm_net_stats_t *out);
const char *mm_close_reason_name(int reason);

#ifdef __cplusplus
}
#endif
#endif
