#include "direct.h"

#include <errno.h>
#include <string.h>

const char *
mm_direct_verdict_name(int v)
{
	switch (v) {
	case MM_D_OK: return "ok";
	case MM_D_WRONG_HOP: return "not the next hop";
	case MM_D_RW_NO_FLAG: return "rewrite without the flag";
	case MM_D_RW_TWICE: return "second rewrite";
	case MM_D_BAD_POW: return "short proof of work";
	case MM_D_BAD_SIG: return "bad origin signature";
	case MM_D_BAD_RW_SIG: return "bad rewrite signature";
	case MM_D_STALE: return "timestamp out of range";
	default: return "?";
	}
}

int
mm_direct_make(const mm_identity_t *self, const uint8_t *route, unsigned n,
    int rr, uint64_t nonce, uint64_t ts, const void *data, uint32_t len,
    mm_w_direct_t *out)
{
	if (n < 2 || n > MM_WIRE_ROUTE_MAX || len > MM_WIRE_DATA_MAX ||
	    memcmp(route, self->id, 32) != 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out->pub, self->pub, 32);
	out->pow = self->nonce;
	out->route = (mm_bytes_t){route, 32 * n};
	out->at = 1;
	out->rr = rr ? 1 : 0;
	out->nonce = nonce;
	out->ts = ts;
	out->data = (mm_bytes_t){data, len};
	uint8_t b[MM_WIRE_DIRECT_SIGNED_LEN];
	mm_wire_direct_signed_bytes(out->pub, &out->route, out->rr, nonce, ts, &out->data, b);
	return mm_id_sign(self, b, sizeof(b), out->sig);
}

int
mm_direct_hop_check(const mm_w_direct_t *d, const uint8_t self[32],
    const uint8_t from[32])
{
	const uint8_t *r = d->route.ptr;
	if (memcmp(r + 32u * d->at, self, 32) != 0 ||
	    memcmp(r + 32u * (d->at - 1u), from, 32) != 0)
		return MM_D_WRONG_HOP;
	if (d->has_rw && !d->rr)
		return MM_D_RW_NO_FLAG;
	return MM_D_OK;
}

int
mm_direct_verify(const mm_w_direct_t *d, unsigned difficulty, uint64_t now_ms,
    uint64_t max_age_ms)
{
	if (d->ts + max_age_ms < now_ms || d->ts > now_ms + max_age_ms)
		return MM_D_STALE;
	if (!mm_pow_ok(d->pub, d->pow, difficulty))
		return MM_D_BAD_POW;
	if (d->has_rw && !d->rr)
		return MM_D_RW_NO_FLAG;
	/* the origin signed the route it wrote: route0 if rewritten */
	uint8_t b[MM_WIRE_DIRECT_SIGNED_LEN];
	mm_wire_direct_signed_bytes(d->pub, d->has_rw ? &d->route0 : &d->route, d->rr,
	    d->nonce, d->ts, &d->data, b);
	uint8_t origin[32];
	mm_id_of(d->pub, origin);
	const mm_bytes_t *r0 = d->has_rw ? &d->route0 : &d->route;
	if (memcmp(r0->ptr, origin, 32) != 0 || mm_id_verify(d->pub, b, sizeof(b), d->sig) != 1)
		return MM_D_BAD_SIG;
	if (!d->has_rw)
		return MM_D_OK;
	/* the rewriter: the relay at rw_at of the original route, with its
	 * proof of work, over the new route */
	uint8_t rw_id[32];
	mm_id_of(d->rw_pub, rw_id);
	if (memcmp(d->route0.ptr + 32u * d->rw_at, rw_id, 32) != 0)
		return MM_D_BAD_RW_SIG;
	if (!mm_pow_ok(d->rw_pub, d->rw_pow, difficulty))
		return MM_D_BAD_POW;
	uint8_t w[MM_WIRE_REWRITE_SIGNED_LEN];
	mm_wire_rewrite_signed_bytes(d->sig, d->rw_at, &d->route, w);
	if (mm_id_verify(d->rw_pub, w, sizeof(w), d->rw_sig) != 1)
		return MM_D_BAD_RW_SIG;
	return MM_D_OK;
}

int
mm_direct_rewrite(const mm_identity_t *self, const mm_w_direct_t *in,
    const uint8_t *suffix, unsigned ns, uint8_t buf[32 * MM_WIRE_ROUTE_MAX],
    mm_w_direct_t *out)
{
	if (!in->rr)
		return MM_D_RW_NO_FLAG;
	if (in->has_rw)
		return MM_D_RW_TWICE;
	unsigned keep = in->at + 1u, n = keep + ns;
	const uint8_t *dst = in->route.ptr + in->route.len - 32;
	if (ns == 0 || n > MM_WIRE_ROUTE_MAX || memcmp(suffix + 32u * (ns - 1), dst, 32) != 0)
		return -EINVAL;
	memcpy(buf, in->route.ptr, 32u * keep);
	memcpy(buf + 32u * keep, suffix, 32u * ns);
	for (unsigned i = 0; i < n; i++) /* no loops */
		for (unsigned j = 0; j < i; j++)
			if (memcmp(buf + 32 * i, buf + 32 * j, 32) == 0)
				return -EINVAL;
	*out = *in;
	out->raw = NULL; /* no longer the frame that came: encoded anew */
	out->raw_len = out->at_off = 0;
	out->route = (mm_bytes_t){buf, 32 * n};
	out->route0 = in->route;
	out->has_rw = 1;
	out->rw_at = in->at;
	memcpy(out->rw_pub, self->pub, 32);
	out->rw_pow = self->nonce;
	uint8_t w[MM_WIRE_REWRITE_SIGNED_LEN];
	mm_wire_rewrite_signed_bytes(in->sig, out->rw_at, &out->route, w);
	return mm_id_sign(self, w, sizeof(w), out->rw_sig);
}

int
mm_direct_fail(const mm_identity_t *self, const mm_w_direct_t *d, uint32_t code,
    uint8_t buf[32 * MM_WIRE_ROUTE_MAX], mm_w_dfail_t *out)
{
	unsigned n = d->at + 1u; /* us, back to the origin */
	for (unsigned i = 0; i < n; i++)
		memcpy(buf + 32 * i, d->route.ptr + 32u * (d->at - i), 32);
	memset(out, 0, sizeof(*out));
	out->route = (mm_bytes_t){buf, 32 * n};
	out->at = 1;
	mm_sha256(d->sig, 64, out->ref);
	out->code = code;
	memcpy(out->pub, self->pub, 32);
	out->pow = self->nonce;
	uint8_t b[MM_WIRE_DFAIL_SIGNED_LEN];
	mm_wire_dfail_signed_bytes(out->ref, code, &out->route, b);
	return mm_id_sign(self, b, sizeof(b), out->sig);
}

int
mm_dfail_verify(const mm_w_dfail_t *f, unsigned difficulty)
{
	uint8_t id[32];
	mm_id_of(f->pub, id);
	if (memcmp(f->route.ptr, id, 32) != 0 || !mm_pow_ok(f->pub, f->pow, difficulty))
		return MM_D_BAD_POW;
	uint8_t b[MM_WIRE_DFAIL_SIGNED_LEN];
	mm_wire_dfail_signed_bytes(f->ref, f->code, &f->route, b);
	return mm_id_verify(f->pub, b, sizeof(b), f->sig) == 1 ? MM_D_OK : MM_D_BAD_SIG;
}

int
mm_route_pick(const unsigned *hops, const uint32_t *rtt_us, unsigned n)
{
	int best = -1;
	for (unsigned i = 0; i < n; i++) {
		if (hops[i] == 0)
			continue;
		if (best < 0 || hops[i] < hops[best]) {
			best = (int)i;
			continue;
		}
		if (hops[i] > hops[best])
			continue;
		uint32_t a = rtt_us[i] ? rtt_us[i] : UINT32_MAX;
		uint32_t b = rtt_us[best] ? rtt_us[best] : UINT32_MAX;
		if (a < b)
			best = (int)i;
	}
	return best;
}
