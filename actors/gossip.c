#include "gossip.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mm_rt.h"
#include "siphash.h"

/* Own sequence numbers: 4 per second since 2025-01-01 (uint32 lasts 34
 * years), or one more than the last if that is higher. */
#define SEQ_EPOCH_S 1735689600u
#define SEQ_PER_S 4u

struct mm_gossip {
	mm_gossip_config_t cfg;
	const mm_identity_t *self;
	mm_ps_t *ps;
	mm_dedup_t *dedup;
	uint32_t last_seq;
	/* The newest change to our own list not yet signed (mm_gossip_seal) */
	int pend;
	uint8_t pend_kind, pend_dir;
	uint8_t pend_peer[32];
	mm_gossip_stats_t st;
	/* Signatures mm_gossip_preverify found good lately (NULL until
	 * mm_gossip_preverify_memo): a copy of an event that reaches a link's
	 * worker before the shard has recorded the first (the dedup probe
	 * misses it: eager push sends one event on several links at once, a
	 * flood's duplicates follow their original) takes the verdict from
	 * here. Slot: SipHash-1-3 of the exact signed bytes and signature
	 * under a secret key, the hash itself stored (0: empty); any thread
	 * reads and writes it. A direct-mapped table of atomics rather than a
	 * ck hash set: a lost entry costs one verify, never a wrong verdict,
	 * so no locking or probing is needed. */
	_Atomic uint64_t *vmemo;
	uint64_t vk0, vk1;
};
#define VMEMO_SLOTS 4096u

void
mm_gossip_config_default(mm_gossip_config_t *c)
{
	c->difficulty = MM_POW_DEFAULT;
	c->ttl = 6;
	c->max_future_ms = 600000;
}

int
mm_gossip_create(const mm_gossip_config_t *c, const mm_identity_t *self,
    mm_ps_t *ps, mm_dedup_t *dedup, mm_gossip_t **out)
{
	mm_gossip_t *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->cfg = *c;
	g->self = self;
	g->ps = ps;
	g->dedup = dedup;
	*out = g;
	return 0;
}

void
mm_gossip_destroy(mm_gossip_t *g)
{
	if (g == NULL)
		return;
	free(g->vmemo);
	free(g);
}

int
mm_gossip_preverify_memo(mm_gossip_t *g)
{
	if (g->vmemo != NULL)
		return 0;
	uint64_t k[2];
	if (mm_secure_random(k, sizeof(k)) != 0)
		return -EIO;
	if ((g->vmemo = calloc(VMEMO_SLOTS, sizeof(*g->vmemo))) == NULL)
		return -ENOMEM;
	g->vk0 = k[0];
	g->vk1 = k[1];
	return 0;
}

/* Dedup key: the event's fixed signed fields (the first 94 signed bytes,
 * without the list's hash, so that a duplicate costs one SipHash over 158
 * bytes and no SHA-256) and its signature, hashed by the ring under its
 * secret key. A key is recorded only once the event's signature has
 * verified: a tampered copy (another list under a genuine signature, or
 * any other change), raced ahead of the genuine event, fails the verify,
 * is not recorded, and cannot get the genuine one dropped. */
#define DEDUP_FIXED 94
static void
dedup_key(const mm_w_event_t *e, uint8_t b[DEDUP_FIXED + 64])
{
	uint8_t sb[MM_WIRE_EVENT_SIGNED_LEN];
	mm_wire_event_signed_bytes_fixed(e, sb);
	memcpy(b, sb, DEDUP_FIXED);
	memcpy(b + DEDUP_FIXED, e->sig, 64);
}

static int
seen(mm_gossip_t *g, const mm_w_event_t *e, uint32_t now_ms)
{
	uint8_t b[DEDUP_FIXED + 64];
	dedup_key(e, b);
	return mm_dedup_seen_bytes(g->dedup, b, sizeof(b), now_ms);
}

int
mm_gossip_probe(const mm_gossip_t *g, const mm_w_event_t *e, uint32_t now_ms)
{
	uint8_t b[DEDUP_FIXED + 64];
	dedup_key(e, b);
	return mm_dedup_probe_bytes(g->dedup, b, sizeof(b), now_ms);
}

static void
remember(mm_gossip_t *g, const mm_w_event_t *e, uint32_t now_ms)
{
	uint8_t b[DEDUP_FIXED + 64];
	dedup_key(e, b);
	mm_dedup_add_bytes(g->dedup, b, sizeof(b), now_ms);
}

static int
apply(mm_gossip_t *g, const mm_w_event_t *e, const uint8_t origin[32],
    uint32_t store_now)
{
	if (!e->has_nb) { /* a delta only */
		mm_ps_event_t pe = {.origin = origin, .peer = e->peer, .kind = e->kind,
		    .dir = e->dir, .seq = e->seq, .now = store_now};
		return mm_ps_apply(g->ps, &pe);
	}
	/* The whole list: it must agree with the delta it comes with (the
	 * link named is in it, with that direction, for a connect; absent for
	 * a disconnect), and the link named must not contradict the other
	 * end's claim; then it replaces the origin's list. */
	int at = -1;
	for (unsigned i = 0; i < e->nnb && at < 0; i++)
		if (memcmp(e->nb[i], e->peer, 32) == 0)
			at = (int)i;
	if (e->kind == MM_PS_CONNECT ?
	    (at < 0 || (int)((e->nbd >> at) & 1) != e->dir) : at >= 0)
		return MM_PS_EV_CONFLICT;
	uint8_t dirs[MM_WIRE_NB_MAX];
	for (unsigned i = 0; i < e->nnb; i++)
		dirs[i] = (uint8_t)((e->nbd >> i) & 1);
	/* No direction check against the other end's claim here: when two
	 * nodes resolve a duplicate connection, each re-announces the kept
	 * direction, and for a moment one's new claim meets the other's old
	 * one. That is a race, not a lie; the edge reads as a conflict in the
	 * map until the other end's event arrives. */
	return mm_ps_set_neighbours(g->ps, origin, e->seq, store_now,
	    (const uint8_t (*)[MM_ID_LEN])e->nb, dirs, e->nnb);
}

/* Our own list as the map holds it (our own events only write it). */
static void
fill_list(mm_gossip_t *g, mm_w_event_t *e)
{
	mm_pidx_t me = mm_ps_lookup(g->ps, g->self->id);
	mm_pidx_t nb[MM_PS_MAX_NB];
	uint8_t dirs[MM_PS_MAX_NB];
	unsigned n = me == MM_PIDX_NONE ? 0 :
	    mm_ps_neighbours(g->ps, me, nb, dirs, MM_PS_MAX_NB);
	e->has_nb = 1;
	e->nnb = 0;
	e->nbd = 0;
	for (unsigned i = 0; i < n && e->nnb < MM_WIRE_NB_MAX; i++) {
		const uint8_t *id = mm_ps_id(g->ps, nb[i]);
		if (id == NULL)
			continue;
		memcpy(e->nb[e->nnb], id, 32);
		e->nbd |= (uint32_t)(dirs[i] & 1) << e->nnb;
		e->nnb++;
	}
}

/* The next sequence number of ours: from the clock, or one past the last */
static uint32_t
next_seq(mm_gossip_t *g, uint64_t now_ms)
{
	uint64_t secs = now_ms / 1000;
	uint32_t base = secs > SEQ_EPOCH_S ?
	    (uint32_t)((secs - SEQ_EPOCH_S) * SEQ_PER_S) : 0;
	uint32_t seq = base > g->last_seq ? base : g->last_seq + 1;
	g->last_seq = seq;
	return seq;
}

static void
delta_event(mm_gossip_t *g, int kind, const uint8_t peer[32], int dir,
    uint64_t now_ms, mm_w_event_t *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->pub, g->self->pub, 32);
	out->pow = g->self->nonce;
	memcpy(out->peer, peer, 32);
	out->kind = (uint8_t)kind;
	out->dir = (uint8_t)dir;
	out->seq = next_seq(g, now_ms);
	out->ts = now_ms;
	out->ttl = g->cfg.ttl;
}

/* The delta in *out is applied: sign it with the list it leaves. */
static int
sign_own(mm_gossip_t *g, mm_w_event_t *out, uint64_t now_ms)
{
	fill_list(g, out);
	uint8_t b[MM_WIRE_EVENT_SIGNED_LEN];
	mm_wire_event_signed_bytes(out, b);
	int src = mm_id_sign(g->self, b, sizeof(b), out->sig);
	if (src != 0)
		return src;
	/* Our own event is in our dedup ring: when it comes back from a
	 * neighbour, it is a duplicate. */
	remember(g, out, (uint32_t)now_ms);
	g->st.local++;
	g->pend = 0;
	return 0;
}

int
mm_gossip_local(mm_gossip_t *g, int kind, const uint8_t peer[32], int dir,
    uint64_t now_ms, uint32_t store_now, mm_w_event_t *out)
{
	mm_w_event_t tmp;
	mm_w_event_t *e = out != NULL ? out : &tmp;
	delta_event(g, kind, peer, dir, now_ms, e);
	/* Apply the delta to our own record first, then sign the list it
	 * leaves, so that the event carries our whole neighbour set. */
	int rc = apply(g, e, g->self->id, store_now);
	if (rc >= 0 || rc == MM_PS_EV_CONFLICT) { /* what a seal repeats */
		g->pend = 1;
		g->pend_kind = (uint8_t)kind;
		g->pend_dir = (uint8_t)dir;
		memcpy(g->pend_peer, peer, 32);
	}
	if (out != NULL) {
		int src = sign_own(g, out, now_ms);
		if (src != 0)
			return src;
	}
	/* Our claim is the truth about us: a conflict with the other end's
	 * older claim (see apply) is its news still to come, not ours. */
	return rc < 0 && rc != MM_PS_EV_CONFLICT ? rc : 0;
}

int
mm_gossip_seal(mm_gossip_t *g, uint64_t now_ms, uint32_t store_now,
    mm_w_event_t *out)
{
	if (!g->pend)
		return -ENOENT;
	/* The newest change again, under a new sequence number: applying it
	 * twice changes nothing in the list but moves our record's number to
	 * the one we sign, so that an old copy of this event coming back
	 * after the dedup ring forgot it is stale, never applied over a newer
	 * list. */
	delta_event(g, g->pend_kind, g->pend_peer, g->pend_dir, now_ms, out);
	int rc = apply(g, out, g->self->id, store_now);
	if (rc < 0 && rc != MM_PS_EV_CONFLICT)
		return rc;
	return sign_own(g, out, now_ms);
}

/* The checks before the verify, in mm_gossip_receive's order (after the
 * dedup): 0 passed, else the verdict. origin: the event's id. */
static int
pre_checks(const mm_gossip_t *g, const mm_w_event_t *in, uint64_t now_ms,
    const uint8_t origin[32])
{
	if (in->ts > now_ms + g->cfg.max_future_ms)
		return MM_G_BAD_TIME;
	if (!mm_pow_ok(in->pub, in->pow, g->cfg.difficulty))
		return MM_G_BAD_POW;
	mm_pidx_t o = mm_ps_lookup(g->ps, origin);
	if (o != MM_PIDX_NONE && mm_ps_seq_binds(g->ps, o) && in->seq <= mm_ps_seq(g->ps, o))
		return MM_G_STALE; /* no verify spent on a replay */
	return 0;
}

int
mm_gossip_preverify(const mm_gossip_t *g, const mm_w_event_t *in,
    const uint8_t origin[32], uint64_t now_ms, int *memo_hit)
{
	*memo_hit = 0;
	if (pre_checks(g, in, now_ms, origin) != 0)
		return -1;
	uint8_t b[MM_WIRE_EVENT_SIGNED_LEN + 64];
	mm_wire_event_signed_bytes(in, b);
	uint64_t h = 0;
	_Atomic uint64_t *slot = NULL;
	if (g->vmemo != NULL) {
		memcpy(b + MM_WIRE_EVENT_SIGNED_LEN, in->sig, 64);
		h = mm_siphash13(g->vk0, g->vk1, b, sizeof(b));
		h += h == 0;
		slot = &g->vmemo[h & (VMEMO_SLOTS - 1)];
		if (atomic_load_explicit(slot, memory_order_relaxed) == h) {
			*memo_hit = 1;
			return 1;
		}
	}
	int ok = mm_id_verify(in->pub, b, MM_WIRE_EVENT_SIGNED_LEN, in->sig) == 1;
	if (ok && slot != NULL)
		atomic_store_explicit(slot, h, memory_order_relaxed);
	return ok;
}

int
mm_gossip_receive(mm_gossip_t *g, const mm_w_event_t *in, uint64_t now_ms,
    uint32_t store_now, mm_w_event_t *fwd)
{
	return mm_gossip_receive_sig(g, in, now_ms, store_now, -1, fwd);
}

int
mm_gossip_receive_sig(mm_gossip_t *g, const mm_w_event_t *in, uint64_t now_ms,
    uint32_t store_now, int sig, mm_w_event_t *fwd)
{
	g->st.received++;
	if (seen(g, in, (uint32_t)now_ms)) {
		g->st.dup++;
		return MM_G_DUP;
	}
	uint8_t origin[32];
	mm_id_of(in->pub, origin);
	int pc = pre_checks(g, in, now_ms, origin);
	if (pc != 0) {
		if (pc == MM_G_BAD_TIME)
			g->st.bad_time++;
		else if (pc == MM_G_BAD_POW)
			g->st.bad_pow++;
		else
			g->st.stale++;
		return pc;
	}
	if (sig < 0) {
		uint8_t b[MM_WIRE_EVENT_SIGNED_LEN];
		mm_wire_event_signed_bytes(in, b);
		g->st.verified++;
		sig = mm_id_verify(in->pub, b, sizeof(b), in->sig) == 1;
	}
	if (!sig) {
		g->st.bad_sig++;
		return MM_G_BAD_SIG;
	}
	remember(g, in, (uint32_t)now_ms); /* genuine: its copies are duplicates */
	int rc = apply(g, in, origin, store_now);
	if (rc == MM_PS_STALE) {
		g->st.stale++;
		return MM_G_STALE;
	}
	if (rc == MM_PS_EV_SELF || rc == MM_PS_EV_TOO_MANY || rc == MM_PS_EV_CONFLICT) {
		g->st.lies++;
		return MM_G_LIE;
	}
	if (rc < 0) { /* the map is full: not the origin's fault */
		g->st.full++;
		return MM_G_FULL;
	}
	g->st.applied++;
	if (in->ttl == 0)
		return MM_G_DONE;
	*fwd = *in;
	fwd->ttl = (uint8_t)(in->ttl - 1);
	g->st.forwarded++;
	return MM_G_FORWARD;
}

void
mm_gossip_stats(const mm_gossip_t *g, mm_gossip_stats_t *out)
{
	*out = g->st;
}

const char *
mm_gossip_verdict_name(int v)
{
	switch (v) {
	case MM_G_FORWARD: return "forward";
	case MM_G_DONE: return "applied";
	case MM_G_DUP: return "duplicate";
	case MM_G_STALE: return "stale";
	case MM_G_BAD_TIME: return "timestamp in the future";
	case MM_G_BAD_POW: return "short proof of work";
	case MM_G_BAD_SIG: return "bad signature";
	case MM_G_LIE: return "inconsistent report";
	case MM_G_FULL: return "map full";
	default: return "unknown verdict";
	}
}
