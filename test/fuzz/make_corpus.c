/* Writes the seed corpus of the fuzz targets: one valid encoding of every
 * message type (wire), the same as frame streams (frame), and a small valid
 * snapshot (snapshot), signed events (event), and signed direct messages
 * and a failure notice (direct). Run: make_corpus <dir>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "direct.h"
#include "identity.h"
#include "peerstore.h"
#include "snapshot.h"
#include "wire.h"

static void
put(const char *dir, const char *sub, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n) {
		perror(path);
		return;
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus <dir>\n");
		return 2;
	}
	static uint8_t buf[65536], ids[4][32], nb[4][64], route[4][32], route3[3][32];
	for (int i = 0; i < 4; i++)
		memset(route[i], 0x10 + i, 32);
	/* route0 = a b c d rewritten at b into route = a b d */
	memcpy(route3, route, 64);
	memcpy(route3[2], route[3], 32);
	mkdir(argv[1], 0755);
	mm_wire_msg_t m;
	for (unsigned t = 1; t < MM_W__COUNT; t++) {
		memset(&m, 0, sizeof(m));
		m.type = (uint8_t)t;
		m.req = t;
		switch (t) {
		case MM_W_HELLO:
			m.u.hello.version = 1;
			m.u.hello.net = (mm_bytes_t){(const uint8_t *)"main", 4};
			m.u.hello.port = 7946;
			m.u.hello.agent = (mm_bytes_t){(const uint8_t *)"meshmap", 7};
			break;
		case MM_W_ERROR:
			m.u.error.code = 3;
			m.u.error.msg = (mm_bytes_t){(const uint8_t *)"unknown", 7};
			break;
		case MM_W_EVENT:
			m.u.event.kind = 1;
			m.u.event.seq = 9;
			m.u.event.pow = 12345;
			m.u.event.ttl = 6;
			break;
		case MM_W_GET_PEERS:
			m.u.get_peers.limit = 16;
			break;
		case MM_W_PEERS:
			m.u.peers.count = 4;
			for (int i = 0; i < 4; i++) {
				m.u.peers.peer[i] = (mm_w_peer_t){.id = ids[i], .seq = 1,
				    .nnb = 2, .nb = nb[i], .has_addr = i & 1, .port = 7000};
				m.u.peers.peer[i].ip[10] = m.u.peers.peer[i].ip[11] = 0xff;
			}
			break;
		case MM_W_DIGEST:
			m.u.digest.ents = (mm_bytes_t){&nb[0][0], 36};
			break;
		case MM_W_WANT:
			m.u.want.ids = (mm_bytes_t){&nb[0][0], 64};
			break;
		case MM_W_IHAVE:
			m.u.ihave.ents = (mm_bytes_t){&nb[0][0], 72};
			break;
		case MM_W_IWANT:
			m.u.iwant.ids = (mm_bytes_t){&nb[0][0], 32};
			break;
		case MM_W_DIRECT: /* a rewritten one: every field present */
			m.u.direct.route = (mm_bytes_t){&route3[0][0], 96};
			m.u.direct.at = 2;
			m.u.direct.rr = 1;
			m.u.direct.data = (mm_bytes_t){(const uint8_t *)"payload", 7};
			m.u.direct.has_rw = 1;
			m.u.direct.route0 = (mm_bytes_t){&route[0][0], 128};
			m.u.direct.rw_at = 1;
			break;
		case MM_W_DFAIL:
			m.u.dfail.route = (mm_bytes_t){&route[0][0], 64};
			m.u.dfail.at = 1;
			m.u.dfail.code = 1;
			break;
		case MM_W_BCAST:
			m.u.bcast.topic = (mm_bytes_t){(const uint8_t *)"blocks", 6};
			m.u.bcast.data = (mm_bytes_t){(const uint8_t *)"payload", 7};
			m.u.bcast.ttl = 16;
			break;
		case MM_W_SUBS:
			m.u.subs.count = 2;
			m.u.subs.topic[0] = (mm_bytes_t){(const uint8_t *)"*", 1};
			m.u.subs.topic[1] = (mm_bytes_t){(const uint8_t *)"blocks", 6};
			break;
		default:
			break;
		}
		int n = mm_wire_encode(&m, buf, sizeof(buf));
		if (n < 0)
			return 1;
		put(argv[1], "wire", mm_wire_type_name(t), buf + 4, (size_t)n - 4);
		uint8_t fb[65536 + 2] = {7, 0};
		memcpy(fb + 2, buf, (size_t)n);
		memcpy(fb + 2 + n, buf, (size_t)n); /* two frames back to back */
		put(argv[1], "frame", mm_wire_type_name(t), fb, 2 + 2 * (size_t)n);
	}
	/* Signed events (fuzz_event): one origin's connect, disconnect and a
	 * newer connect, and a second origin's claim of the same edge. */
	mm_identity_t org[2];
	for (int k = 0; k < 2; k++)
		if (mm_id_generate(&org[k], 0, NULL) != 0)
			return 1;
	for (int k = 0; k < 4; k++) {
		const mm_identity_t *o = &org[k == 3];
		memset(&m, 0, sizeof(m));
		m.type = MM_W_EVENT;
		mm_w_event_t *e = &m.u.event;
		e->kind = k == 1 ? MM_PS_DISCONNECT : MM_PS_CONNECT;
		e->dir = k == 3 ? MM_PS_IN : MM_PS_OUT;
		e->seq = 100 + (uint32_t)k;
		e->ts = 1763700000000ull + (uint64_t)k;
		e->ttl = 6;
		e->pow = o->nonce;
		memcpy(e->pub, o->pub, 32);
		mm_id_of(org[k != 3].pub, e->peer);
		uint8_t sb[MM_WIRE_EVENT_SIGNED_LEN];
		mm_wire_event_signed_bytes(e, sb);
		if (mm_id_sign(o, sb, sizeof(sb), e->sig) != 0)
			return 1;
		int n = mm_wire_encode(&m, buf, sizeof(buf));
		if (n < 0)
			return 1;
		char name[32];
		snprintf(name, sizeof(name), "signed-%d", k);
		put(argv[1], "event", name, buf + 4, (size_t)n - 4);
	}
	/* Signed direct messages (fuzz_direct): origin -> R -> B -> C -> D,
	 * where R is fuzz_direct's own key (seed 0x42): with one rewrite
	 * allowed, without, the same rewritten by R (as D receives it), and
	 * R's failure notice. */
	mm_identity_t rel;
	uint8_t rseed[32];
	memset(rseed, 0x42, sizeof(rseed));
	if (mm_id_from_seed(&rel, rseed, 0) != 0)
		return 1;
	uint8_t dr[5][32], rwb[32 * MM_WIRE_ROUTE_MAX], fbuf[32 * MM_WIRE_ROUTE_MAX];
	memcpy(dr[0], org[0].id, 32);
	memcpy(dr[1], rel.id, 32);
	for (int i = 2; i < 5; i++)
		memset(dr[i], 0x60 + i, 32);
	for (int k = 0; k < 4; k++) {
		memset(&m, 0, sizeof(m));
		m.type = MM_W_DIRECT;
		if (mm_direct_make(&org[0], &dr[0][0], 5, k != 1, 77, 1763700000000ull,
		        "hello", 5, &m.u.direct) != 0)
			return 1;
		if (k == 2) { /* R rewrites: R -> D at once */
			mm_w_direct_t rw;
			if (mm_direct_rewrite(&rel, &m.u.direct, dr[4], 1, rwb, &rw) != 0)
				return 1;
			rw.at = 2;
			m.u.direct = rw;
		} else if (k == 3) {
			mm_w_dfail_t f;
			if (mm_direct_fail(&rel, &m.u.direct, MM_DFAIL_NO_ROUTE, fbuf, &f) != 0)
				return 1;
			memset(&m, 0, sizeof(m));
			m.type = MM_W_DFAIL;
			m.u.dfail = f;
		}
		int n = mm_wire_encode(&m, buf, sizeof(buf));
		if (n < 0)
			return 1;
		static const char *const dn[4] = {"rr", "no-rr", "rewritten", "dfail"};
		put(argv[1], "direct", dn[k], buf + 4, (size_t)n - 4);
	}
	mm_id_free(&rel);
	mm_id_free(&org[0]);
	mm_id_free(&org[1]);
	mm_ps_t *ps;
	mm_ps_create(NULL, &ps);
	mm_bans_t *b = mm_bans_new(8);
	mm_ps_addr_t a = {.port = 7000};
	a.ip[10] = a.ip[11] = 0xff;
	mm_ps_set_addr(ps, ids[0], &a, 5);
	mm_ban_t ban = {.kind = MM_BAN_ID, .expires = 0};
	strcpy(ban.reason, "seed");
	mm_bans_add(b, &ban);
	char tmp[] = "/tmp/mm_corpus_XXXXXX";
	int fd = mkstemp(tmp);
	if (fd < 0 || mm_snap_save(tmp, ps, b, 1700000000, 10) != 0)
		return 1;
	FILE *f = fopen(tmp, "rb");
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	remove(tmp);
	put(argv[1], "snapshot", "valid", buf, n);
	mm_bans_free(b);
	mm_ps_destroy(ps);
	return 0;
}
