#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_LEN 72
#define PEER_LEN 60
#define BAN_FIXED 52
static const char MAGIC[8] = {'M', 'M', 'S', 'N', 'A', 'P', '\r', '\n'};

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Buffered writer that hashes what it writes. */
struct out {
	int fd;
	EVP_MD_CTX *md;
	uint8_t buf[65536];
	size_t len;
	uint64_t total;
	int err;
};

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
out_flush(struct out *o)
{
	if (o->err == 0 && o->len > 0) {
		o->err = write_all(o->fd, o->buf, o->len);
		if (o->err == 0 && EVP_DigestUpdate(o->md, o->buf, o->len) != 1)
			o->err = -EIO;
	}
	o->len = 0;
}

static void
out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > sizeof(o->buf))
		out_flush(o);
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->total += n;
}

int
mm_snap_save(const char *path, const mm_ps_t *ps, const mm_bans_t *bans,
    uint64_t now_unix, uint32_t store_now)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	struct out *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o->fd < 0) {
		int e = -errno;
		free(o);
		return e;
	}
	/* The body is hashed as it is written; the header fields are hashed
	 * after it (see the format in snapshot.h). */
	o->md = EVP_MD_CTX_new();
	if (o->md == NULL || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1)
		o->err = -ENOMEM;

	uint8_t hdr[HDR_LEN] = {0};
	if (o->err == 0)
		o->err = write_all(o->fd, hdr, HDR_LEN); /* filled in at the end */

	uint32_t npeers = 0, nbans = 0;
	uint32_t span = mm_ps_span(ps);
	for (mm_pidx_t i = 0; i < span && o->err == 0; i++) {
		mm_ps_addr_t a;
		if (!mm_ps_live(ps, i) || mm_ps_get_addr(ps, i, &a) != 0)
			continue;
		uint8_t rec[PEER_LEN] = {0};
		memcpy(rec, mm_ps_id(ps, i), 32);
		memcpy(rec + 32, a.ip, 16);
		put16(rec + 48, a.port);
		uint32_t upd = mm_ps_updated(ps, i), first = mm_ps_first_seen(ps, i);
		put32(rec + 52, store_now >= upd ? store_now - upd : 0);
		put32(rec + 56, store_now >= first ? store_now - first : 0);
		out_put(o, rec, PEER_LEN);
		npeers++;
	}
	for (unsigned k = 0; bans != NULL && k < mm_bans_count(bans); k++) {
		const mm_ban_t *b = mm_bans_at(bans, k);
		uint8_t rec[BAN_FIXED] = {0};
		size_t rl = strnlen(b->reason, MM_BAN_REASON_MAX);
		rec[0] = b->kind;
		rec[1] = b->plen;
		rec[2] = (uint8_t)rl;
		memcpy(rec + 4, b->key, 32);
		put64(rec + 36, b->created);
		put64(rec + 44, b->expires);
		out_put(o, rec, BAN_FIXED);
		out_put(o, b->reason, rl);
		nbans++;
	}
	out_flush(o);

	unsigned int dlen = 0;
	memcpy(hdr, MAGIC, 8);
	put32(hdr + 8, MM_SNAP_VERSION);
	put32(hdr + 12, HDR_LEN);
	put64(hdr + 16, now_unix);
	put32(hdr + 24, npeers);
	put32(hdr + 28, nbans);
	put64(hdr + 32, o->total);
	if (o->err == 0 && (EVP_DigestUpdate(o->md, hdr, 40) != 1 ||
	    EVP_DigestFinal_ex(o->md, hdr + 40, &dlen) != 1))
		o->err = -EIO;
	if (o->err == 0 && pwrite(o->fd, hdr, HDR_LEN, 0) != HDR_LEN)
		o->err = -EIO;
	if (o->err == 0 && fsync(o->fd) != 0)
		o->err = -errno;
	if (close(o->fd) != 0 && o->err == 0)
		o->err = -errno;
	int err = o->err;
	EVP_MD_CTX_free(o->md);
	free(o);
	if (err == 0 && rename(tmp, path) != 0)
		err = -errno;
	if (err != 0) {
		unlink(tmp);
		return err;
	}
	/* Make the rename itself durable. */
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int
read_exact(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int
mm_snap_load(const char *path, mm_ps_t *ps, mm_bans_t *bans, uint64_t now_unix,
    uint32_t store_now, char *err, size_t errlen, uint32_t *peers_out,
    uint32_t *bans_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	uint8_t hdr[HDR_LEN], *body = NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size < HDR_LEN || read_exact(fd, hdr, HDR_LEN) != 0) {
		rc = fail(err, errlen, "%s: %lld bytes, shorter than the %d-byte header",
		    path, (long long)st.st_size, HDR_LEN);
		goto out;
	}
	if (memcmp(hdr, MAGIC, 8) != 0) {
		rc = fail(err, errlen, "%s: not a meshmap snapshot (bad magic)", path);
		goto out;
	}
	uint32_t version = get32(hdr + 8), hlen = get32(hdr + 12);
	if (version != MM_SNAP_VERSION || hlen != HDR_LEN) {
		rc = fail(err, errlen, "%s: version %u (header %u bytes) not supported; "
		    "this build reads version %d", path, version, hlen, MM_SNAP_VERSION);
		goto out;
	}
	uint64_t created = get64(hdr + 16), blen = get64(hdr + 32);
	uint32_t npeers = get32(hdr + 24), nbans = get32(hdr + 28);
	if (blen != (uint64_t)st.st_size - HDR_LEN) {
		rc = fail(err, errlen, "%s: body is %lld bytes, header says %llu "
		    "(truncated?)", path, (long long)st.st_size - HDR_LEN,
		    (unsigned long long)blen);
		goto out;
	}
	if ((uint64_t)npeers * PEER_LEN + (uint64_t)nbans * BAN_FIXED > blen) {
		rc = fail(err, errlen, "%s: %u peers and %u bans do not fit in %llu "
		    "bytes", path, npeers, nbans, (unsigned long long)blen);
		goto out;
	}
	/* Bounded: the body holds only what the counts say (60 bytes a peer),
	 * and the store refuses more than max_peers anyway. */
	body = malloc(blen ? blen : 1);
	if (body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (read_exact(fd, body, blen) != 0) {
		rc = fail(err, errlen, "%s: read error", path);
		goto out;
	}
	uint8_t digest[32];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, body, blen) == 1 &&
	    EVP_DigestUpdate(md, hdr, 40) == 1 &&
	    EVP_DigestFinal_ex(md, digest, &dlen) == 1;
	EVP_MD_CTX_free(md);
	if (!ok || memcmp(digest, hdr + 40, 32) != 0) {
		rc = fail(err, errlen, "%s: checksum mismatch (corrupt file)", path);
		goto out;
	}
	/* Validate the bans' layout before applying anything. */
	uint64_t off = (uint64_t)npeers * PEER_LEN;
	for (uint32_t k = 0; k < nbans; k++) {
		if (off + BAN_FIXED > blen || body[off + 2] > MM_BAN_REASON_MAX ||
		    off + BAN_FIXED + body[off + 2] > blen ||
		    (body[off] != MM_BAN_ID && body[off] != MM_BAN_ADDR)) {
			rc = fail(err, errlen, "%s: ban %u malformed", path, k);
			goto out;
		}
		off += BAN_FIXED + body[off + 2];
	}
	if (off != blen) {
		rc = fail(err, errlen, "%s: %llu trailing bytes", path,
		    (unsigned long long)(blen - off));
		goto out;
	}
	/* Apply. Ages are relative to `created`; time passed since counts. */
	uint64_t gap = now_unix > created ? now_unix - created : 0;
	uint32_t loaded = 0, bl = 0;
	for (uint32_t k = 0; k < npeers; k++) {
		const uint8_t *r = body + (uint64_t)k * PEER_LEN;
		mm_ps_addr_t a;
		memcpy(a.ip, r + 32, 16);
		a.port = (uint16_t)(r[48] | r[49] << 8);
		if (a.port == 0)
			continue;
		uint64_t age = get32(r + 52) + gap;
		uint32_t t = age >= store_now ? 0 : store_now - (uint32_t)age;
		if (mm_ps_set_addr(ps, r, &a, t) == 0)
			loaded++;
	}
	off = (uint64_t)npeers * PEER_LEN;
	for (uint32_t k = 0; k < nbans; k++) {
		const uint8_t *r = body + off;
		mm_ban_t b = {.kind = r[0], .plen = r[1]};
		memcpy(b.key, r + 4, 32);
		b.created = get64(r + 36);
		b.expires = get64(r + 44);
		memcpy(b.reason, r + BAN_FIXED, r[2]);
		b.reason[r[2]] = '\0';
		off += BAN_FIXED + r[2];
		if (bans != NULL && (b.expires == 0 || b.expires > now_unix) &&
		    mm_bans_add(bans, &b) == 0)
			bl++;
	}
	if (peers_out != NULL)
		*peers_out = loaded;
	if (bans_out != NULL)
		*bans_out = bl;
out:
	free(body);
	close(fd);
	return rc;
}
