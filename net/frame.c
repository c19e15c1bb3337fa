#include "frame.h"

#include <stdlib.h>
#include <string.h>

void
mm_framer_init(mm_framer_t *f, uint32_t max_frame)
{
	memset(f, 0, sizeof(*f));
	f->max_frame = max_frame ? max_frame : MM_FRAME_MAX_DEFAULT;
}

void
mm_framer_free(mm_framer_t *f)
{
	free(f->buf);
	f->buf = NULL;
	f->cap = f->head = f->tail = 0;
}

void
mm_framer_trim(mm_framer_t *f)
{
	if (f->head == f->tail)
		mm_framer_free(f);
}

uint8_t *
mm_framer_space(mm_framer_t *f, size_t want, size_t *avail)
{
	if (want == 0)
		want = 1;
	/* Never more than one maximal frame's worth: memory stays bounded
	 * whatever the caller asks for (it reads at most *avail). */
	if (want > (size_t)f->max_frame + MM_FRAME_HDR)
		want = (size_t)f->max_frame + MM_FRAME_HDR;
	uint32_t pending = f->tail - f->head;
	/* If a frame header is buffered, make room for that whole frame
	 * (its length was checked by mm_framer_next, or is checked there). */
	size_t need = pending + want;
	if (pending >= MM_FRAME_HDR) {
		uint32_t fl = mm_frame_get_len(f->buf + f->head);
		if (fl <= f->max_frame && (size_t)MM_FRAME_HDR + fl > need)
			need = (size_t)MM_FRAME_HDR + fl;
	}
	if (need < MM_FRAMER_MIN)
		need = MM_FRAMER_MIN;
	if (f->cap - f->tail < want || f->cap < need) {
		if (f->cap >= need) {
			/* Enough room overall: move the partial frame down. */
			memmove(f->buf, f->buf + f->head, pending);
		} else {
			size_t ncap = f->cap ? f->cap : MM_FRAMER_MIN;
			while (ncap < need)
				ncap *= 2;
			if (ncap > (size_t)f->max_frame + MM_FRAME_HDR + MM_FRAMER_MIN)
				ncap = (size_t)f->max_frame + MM_FRAME_HDR + MM_FRAMER_MIN;
			if (ncap < need)
				ncap = need;
			uint8_t *nb = malloc(ncap);
			if (nb == NULL)
				return NULL;
			if (pending)
				memcpy(nb, f->buf + f->head, pending);
			free(f->buf);
			f->buf = nb;
			f->cap = (uint32_t)ncap;
		}
		f->head = 0;
		f->tail = pending;
	}
	*avail = f->cap - f->tail;
	return f->buf + f->tail;
}

void
mm_framer_commit(mm_framer_t *f, size_t n)
{
	f->tail += (uint32_t)n;
}

int
mm_framer_next(mm_framer_t *f, const uint8_t **frame, uint32_t *len)
{
	uint32_t pending = f->tail - f->head;
	if (pending < MM_FRAME_HDR)
		return MM_FRAME_AGAIN;
	uint32_t fl = mm_frame_get_len(f->buf + f->head);
	if (fl == 0)
		return MM_FRAME_EZERO;
	if (fl > f->max_frame)
		return MM_FRAME_ETOOBIG;
	if (pending - MM_FRAME_HDR < fl)
		return MM_FRAME_AGAIN;
	*frame = f->buf + f->head + MM_FRAME_HDR;
	*len = fl;
	f->head += MM_FRAME_HDR + fl;
	if (f->head == f->tail) /* all consumed: start over at the front */
		f->head = f->tail = 0;
	return MM_FRAME_OK;
}
