#include "bans.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* v grows by doubling up to cap (most nodes hold a handful of bans; a
 * full list of 4,096 is 480 KB, which a node should not pay up front). */
struct mm_bans {
	unsigned n, cap, alloc;
	mm_ban_t *v;
};

#define BANS_FIRST 16

mm_bans_t *
mm_bans_new(unsigned cap)
{
	mm_bans_t *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->alloc = cap < BANS_FIRST ? (cap ? cap : 1) : BANS_FIRST;
	b->v = calloc(b->alloc, sizeof(mm_ban_t));
	if (b->v == NULL) {
		free(b);
		return NULL;
	}
	b->cap = cap;
	return b;
}

void
mm_bans_free(mm_bans_t *b)
{
	if (b != NULL)
		free(b->v);
	free(b);
}

static void
mask_prefix(uint8_t ip[16], unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = plen >= 8 * (i + 1) ? 8 : plen > 8 * i ? plen - 8 * i : 0;
		ip[i] &= (uint8_t)(0xff00u >> keep);
	}
}

static bool
prefix_covers(const uint8_t *net, unsigned plen, const uint8_t *ip)
{
	unsigned full = plen / 8, rem = plen % 8;
	if (memcmp(net, ip, full) != 0)
		return false;
	return rem == 0 || ((net[full] ^ ip[full]) & (uint8_t)(0xff00u >> rem)) == 0;
}

static int
find(const mm_bans_t *b, uint8_t kind, const uint8_t *key, uint8_t plen)
{
	for (unsigned i = 0; i < b->n; i++)
		if (b->v[i].kind == kind && b->v[i].plen == plen &&
		    memcmp(b->v[i].key, key, kind == MM_BAN_ID ? 32 : 16) == 0)
			return (int)i;
	return -1;
}

int
mm_bans_add(mm_bans_t *b, const mm_ban_t *ban)
{
	mm_ban_t e = *ban;
	if (e.kind == MM_BAN_ID) {
		e.plen = 0;
	} else if (e.kind == MM_BAN_ADDR) {
		if (e.plen > 128)
			return -EINVAL;
		memset(e.key + 16, 0, 16);
		mask_prefix(e.key, e.plen);
	} else {
		return -EINVAL;
	}
	e.reason[MM_BAN_REASON_MAX] = '\0';
	int i = find(b, e.kind, e.key, e.plen);
	if (i >= 0) {
		b->v[i] = e;
		return 0;
	}
	if (b->n == b->cap)
		return -ENOSPC;
	if (b->n == b->alloc) {
		unsigned na = b->alloc > b->cap / 2 ? b->cap : 2 * b->alloc;
		mm_ban_t *nv = realloc(b->v, (size_t)na * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		b->v = nv;
		b->alloc = na;
	}
	b->v[b->n++] = e;
	return 0;
}

int
mm_bans_remove(mm_bans_t *b, uint8_t kind, const uint8_t *key, uint8_t plen)
{
	uint8_t k[32] = {0};
	memcpy(k, key, kind == MM_BAN_ID ? 32 : 16);
	if (kind == MM_BAN_ADDR)
		mask_prefix(k, plen);
	int i = find(b, kind, k, kind == MM_BAN_ID ? 0 : plen);
	if (i < 0)
		return -ENOENT;
	b->v[i] = b->v[--b->n];
	return 0;
}

static bool
active(const mm_ban_t *e, uint64_t now)
{
	return e->expires == 0 || now < e->expires;
}

const mm_ban_t *
mm_bans_match_id(const mm_bans_t *b, const uint8_t id[32], uint64_t now)
{
	for (unsigned i = 0; i < b->n; i++)
		if (b->v[i].kind == MM_BAN_ID && active(&b->v[i], now) &&
		    memcmp(b->v[i].key, id, 32) == 0)
			return &b->v[i];
	return NULL;
}

const mm_ban_t *
mm_bans_match_addr(const mm_bans_t *b, const uint8_t ip[16], uint64_t now)
{
	const mm_ban_t *best = NULL;
	for (unsigned i = 0; i < b->n; i++) {
		const mm_ban_t *e = &b->v[i];
		if (e->kind == MM_BAN_ADDR && active(e, now) &&
		    prefix_covers(e->key, e->plen, ip) &&
		    (best == NULL || e->plen > best->plen))
			best = e;
	}
	return best;
}

unsigned
mm_bans_expire(mm_bans_t *b, uint64_t now)
{
	unsigned removed = 0;
	for (unsigned i = 0; i < b->n;) {
		if (!active(&b->v[i], now)) {
			b->v[i] = b->v[--b->n];
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

unsigned
mm_bans_count(const mm_bans_t *b)
{
	return b->n;
}

const mm_ban_t *
mm_bans_at(const mm_bans_t *b, unsigned i)
{
	return i < b->n ? &b->v[i] : NULL;
}

int
mm_ban_parse_addr(const char *s, uint8_t ip[16], uint8_t *plen)
{
	char buf[64];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	char *slash = strchr(buf, '/');
	long p = -1;
	if (slash != NULL) {
		char *end;
		*slash = '\0';
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		p = strtol(slash + 1, &end, 10);
		if (*end != '\0')
			return -EINVAL;
	}
	struct in_addr a4;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		if (p > 32)
			return -EINVAL;
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a4, 4);
		*plen = (uint8_t)(96 + (p < 0 ? 32 : p));
	} else if (inet_pton(AF_INET6, buf, ip) == 1) {
		if (p > 128)
			return -EINVAL;
		*plen = (uint8_t)(p < 0 ? 128 : p);
	} else {
		return -EINVAL;
	}
	mask_prefix(ip, *plen);
	return 0;
}
