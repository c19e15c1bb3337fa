/* Framing: a stream of frames split at every byte boundary, one byte at a
 * time and in random chunks always yields the same frames; several frames
 * per read come out in one pass; zero and oversize lengths are errors; the
 * buffer grows only as needed and is given back when idle. */
#include <string.h>

#include "frame.h"
#include "test.h"

#define NFRAMES 40

static uint8_t stream[NFRAMES * 700];
static size_t stream_len;
static uint32_t flen[NFRAMES];

static void
build_stream(void)
{
	stream_len = 0;
	for (int i = 0; i < NFRAMES; i++) {
		flen[i] = 1 + (uint32_t)((i * 97) % 600); /* 1..600 bytes */
		mm_frame_put_len(stream + stream_len, flen[i]);
		stream_len += 4;
		for (uint32_t k = 0; k < flen[i]; k++)
			stream[stream_len++] = (uint8_t)(i * 31 + k);
	}
}

/* Feed the stream in pieces given by cut(); check every frame. */
static void
feed(size_t (*piece)(size_t pos, void *ctx), void *ctx)
{
	mm_framer_t f;
	mm_framer_init(&f, 1024);
	size_t pos = 0;
	int got = 0;
	while (pos < stream_len) {
		size_t n = piece(pos, ctx);
		if (n > stream_len - pos)
			n = stream_len - pos;
		size_t avail;
		uint8_t *dst = mm_framer_space(&f, n, &avail);
		CHECK(dst != NULL);
		CHECK_GE(avail, n < 1024 + 4 ? n : 1024 + 4);
		if (n > avail)
			n = avail; /* a socket read is bounded the same way */
		memcpy(dst, stream + pos, n);
		mm_framer_commit(&f, n);
		pos += n;
		const uint8_t *fr;
		uint32_t len;
		int r;
		while ((r = mm_framer_next(&f, &fr, &len)) == MM_FRAME_OK) {
			CHECK_LT(got, NFRAMES);
			CHECK_EQ(len, flen[got]);
			for (uint32_t k = 0; k < len; k++)
				CHECK_EQ(fr[k], (uint8_t)(got * 31 + k));
			got++;
		}
		CHECK_EQ(r, MM_FRAME_AGAIN);
		CHECK_LE(f.cap, 1024 + 4 + MM_FRAMER_MIN); /* bounded */
	}
	CHECK_EQ(got, NFRAMES);
	CHECK_EQ(mm_framer_pending(&f), 0);
	mm_framer_trim(&f);
	CHECK(f.buf == NULL); /* idle: memory given back */
	mm_framer_free(&f);
}

static size_t split_at;
static size_t
two_pieces(size_t pos, void *ctx)
{
	(void)ctx;
	return pos < split_at ? split_at - pos : stream_len;
}

static size_t
one_byte(size_t pos, void *ctx)
{
	(void)pos;
	(void)ctx;
	return 1;
}

static size_t
random_piece(size_t pos, void *ctx)
{
	uint64_t *r = ctx;
	(void)pos;
	*r = *r * 6364136223846793005ull + 1442695040888963407ull;
	return 1 + (size_t)((*r >> 33) % 3000);
}

static void
test_every_split(void)
{
	build_stream();
	for (split_at = 1; split_at < stream_len; split_at++)
		feed(two_pieces, NULL);
	feed(one_byte, NULL);
	for (uint64_t seed = 1; seed <= 200; seed++) {
		uint64_t r = seed;
		feed(random_piece, &r);
	}
	fprintf(stderr, "   %zu-byte stream of %d frames: %zu splits, bytewise, "
	    "200 random chunkings\n", stream_len, NFRAMES, stream_len - 1);
}

static void
test_many_per_read(void)
{
	build_stream();
	mm_framer_t f;
	mm_framer_init(&f, 1024);
	/* One read of 4 KiB holds several frames: all come out of that one
	 * read, in place. */
	size_t avail;
	uint8_t *dst = mm_framer_space(&f, 4096, &avail);
	CHECK_GE(avail, 4096);
	memcpy(dst, stream, 4096);
	mm_framer_commit(&f, 4096);
	const uint8_t *fr;
	uint32_t len;
	int got = 0;
	while (mm_framer_next(&f, &fr, &len) == MM_FRAME_OK) {
		CHECK(fr >= f.buf && fr + len <= f.buf + f.cap);
		got++;
	}
	CHECK_GE(got, 5);
	mm_framer_free(&f);
}

static void
test_errors(void)
{
	mm_framer_t f;
	mm_framer_init(&f, 100);
	uint8_t hdr[4];
	size_t avail;
	const uint8_t *fr;
	uint32_t len;
	mm_frame_put_len(hdr, 0);
	memcpy(mm_framer_space(&f, 4, &avail), hdr, 4);
	mm_framer_commit(&f, 4);
	CHECK_EQ(mm_framer_next(&f, &fr, &len), MM_FRAME_EZERO);
	mm_framer_free(&f);

	mm_framer_init(&f, 100);
	mm_frame_put_len(hdr, 101);
	memcpy(mm_framer_space(&f, 4, &avail), hdr, 4);
	mm_framer_commit(&f, 4);
	CHECK_EQ(mm_framer_next(&f, &fr, &len), MM_FRAME_ETOOBIG);
	/* The oversize header must not have made the buffer grow. */
	CHECK_LE(f.cap, MM_FRAMER_MIN);
	mm_framer_free(&f);

	mm_framer_init(&f, 100);
	mm_frame_put_len(hdr, 0xffffffffu);
	memcpy(mm_framer_space(&f, 4, &avail), hdr, 4);
	mm_framer_commit(&f, 4);
	(void)mm_framer_space(&f, 1, &avail); /* still bounded */
	CHECK_LE(f.cap, MM_FRAMER_MIN);
	CHECK_EQ(mm_framer_next(&f, &fr, &len), MM_FRAME_ETOOBIG);
	mm_framer_free(&f);

	/* Exactly max_frame is fine; the buffer grows to hold it. */
	mm_framer_init(&f, 10000);
	uint8_t big[4 + 10000];
	mm_frame_put_len(big, 10000);
	memset(big + 4, 7, 10000);
	size_t off = 0;
	while (off < sizeof(big)) {
		uint8_t *d = mm_framer_space(&f, 1000, &avail);
		size_t n = sizeof(big) - off < 1000 ? sizeof(big) - off : 1000;
		memcpy(d, big + off, n);
		mm_framer_commit(&f, n);
		off += n;
	}
	CHECK_EQ(mm_framer_next(&f, &fr, &len), MM_FRAME_OK);
	CHECK_EQ(len, 10000);
	mm_framer_free(&f);
}

int
main(void)
{
	RUN(test_every_split);
	RUN(test_many_per_read);
	RUN(test_errors);
	fprintf(stderr, "test_frame: ok\n");
	return 0;
}
