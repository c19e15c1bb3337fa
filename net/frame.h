/*
 * Framing: a 4-byte big-endian length, then that many bytes (one msgpack
 * message). A zero length or one above the maximum is a protocol error.
 *
 * The reassembly buffer belongs to one connection and one thread. The caller
 * reads from the socket (or TLS) straight into mm_framer_space(), commits
 * what it read, then takes every complete frame with mm_framer_next(): frames
 * are returned in place, so several frames per read cost one pass and no
 * copy. Only a partial frame left at the end is moved to the front when more
 * room is needed: each byte moves at most once per frame, so the copying is
 * linear, never quadratic.
 *
 * Memory follows the traffic: the buffer starts at MM_FRAMER_MIN, grows only
 * for a frame that needs it (up to max_frame + 4), and mm_framer_trim() gives
 * it back when the connection is idle and nothing is buffered.
 */
#ifndef MM_FRAME_H
#define MM_FRAME_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MM_FRAME_HDR 4
#define MM_FRAME_MAX_DEFAULT (64u * 1024u)
#define MM_FRAMER_MIN 4096u

enum {
	MM_FRAME_OK = 1,        /* a frame was returned */
	MM_FRAME_AGAIN = 0,     /* need more bytes */
	MM_FRAME_EZERO = -1,    /* zero-length frame */
	MM_FRAME_ETOOBIG = -2   /* length above max_frame */
};

typedef struct mm_framer {
	uint8_t *buf;
	uint32_t cap;   /* allocated bytes */
	uint32_t head;  /* first unconsumed byte */
	uint32_t tail;  /* one past the last byte read */
	uint32_t max_frame;
} mm_framer_t;

void mm_framer_init(mm_framer_t *f, uint32_t max_frame);
void mm_framer_free(mm_framer_t *f);

/* Room to read into: at least min(want, max_frame + 4) bytes (1 if 0),
 * more when it is cheap; read at most *avail. The buffer never exceeds
 * max_frame + 4 + MM_FRAMER_MIN bytes. Returns NULL on ENOMEM. */
uint8_t *mm_framer_space(mm_framer_t *f, size_t want, size_t *avail);
void mm_framer_commit(mm_framer_t *f, size_t n);

/* Next complete frame: *frame points into the buffer and stays valid until
 * the next mm_framer_space() or mm_framer_trim(). */
int mm_framer_next(mm_framer_t *f, const uint8_t **frame, uint32_t *len);

/* Bytes buffered but not yet returned as frames. */
static inline uint32_t
mm_framer_pending(const mm_framer_t *f)
{
	return f->tail - f->head;
}

/* Free the buffer if nothing is pending (idle connection). */
void mm_framer_trim(mm_framer_t *f);

/* The length a frame header announces (big-endian). */
static inline uint32_t
mm_frame_get_len(const uint8_t in[MM_FRAME_HDR])
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 |
	    (uint32_t)in[3];
}

static inline void
mm_frame_put_len(uint8_t out[MM_FRAME_HDR], uint32_t len)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

#ifdef __cplusplus
}
#endif
#endif
