/*
 * Snapshot: the known peers that have an address, and the bans, in one file,
 * so that a restarted node reconnects fast (as Bitcoin's peers.dat and
 * Ethereum's node database do).
 *
 * Writing: a temporary file beside the target (<path>.tmp), fsync, rename
 * over the target, fsync the directory. A crash at any point leaves either
 * the old file or the new one (test_snapshot kills a saving process at
 * random points, many times, and loads what is left).
 *
 * Format (all integers little-endian):
 *   header, 72 bytes:
 *     0  magic    "MMSNAP\r\n"
 *     8  u32      version (1)
 *     12 u32      header length (72)
 *     16 u64      created, unix seconds
 *     24 u32      peers
 *     28 u32      bans
 *     32 u64      body length in bytes
 *     40 [32]     SHA-256 of the body followed by header bytes 0..39
 *   body: peers, then bans
 *     peer, 60 bytes: id[32], ip[16] (IPv4 as ::ffff:a.b.c.d), u16 port,
 *       u16 zero, u32 seconds since last update, u32 seconds since first
 *       seen (both as of `created`)
 *     ban: u8 kind (1 id, 2 address), u8 prefix bits, u8 reason length
 *       (<= 63), u8 zero, key[32], u64 created, u64 expires (0 never),
 *       reason bytes
 * A file that is short, has another magic or version, a body that does not
 * match its length or checksum, or a record out of range is refused as a
 * whole with a message; the caller logs it and starts clean.
 */
#ifndef MM_SNAPSHOT_H
#define MM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "bans.h"
#include "peerstore.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MM_SNAP_VERSION 1

/* now_unix: wall clock; store_now: the store's clock for the same instant.
 * Returns 0 or -errno. */
int mm_snap_save(const char *path, const mm_ps_t *ps, const mm_bans_t *bans,
    uint64_t now_unix, uint32_t store_now);

/* Load into (empty or not) ps and bans. Returns 0, -ENOENT if there is no
 * file, -EINVAL if it is unusable (err says why), or another -errno.
 * Counts of what was loaded go to *peers and *bans if not NULL. Bans that
 * have expired by now_unix are skipped. */
int mm_snap_load(const char *path, mm_ps_t *ps, mm_bans_t *bans,
    uint64_t now_unix, uint32_t store_now, char *err, size_t errlen,
    uint32_t *peers, uint32_t *nbans);

#ifdef __cplusplus
}
#endif
#endif
