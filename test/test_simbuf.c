/* The simulator's shared buffers (mm_buf_copy, runtime/buf.c built with
 * MM_SIMULATOR): identical bytes give the same buffer while it is held;
 * a buffer released for good leaves the table, and the buffers still held
 * are all found again after thousands of inserts, removals (the backward
 * shift) and growths. */
#include <stdlib.h>
#include <string.h>

#include "mm_rt.h"
#include "test.h"

#define N 6000

static void
bytes(unsigned i, uint8_t *p, uint32_t *len)
{
	*len = 8 + i % 300;
	for (uint32_t k = 0; k < *len; k++)
		p[k] = (uint8_t)(i * 2654435761u >> (k % 24));
	memcpy(p, &i, sizeof(i));
}

static void
test_shared(void)
{
	uint8_t a[16] = "same bytes here", b[16] = "other bytes....";
	mm_buf_t *x = mm_buf_copy(a, sizeof(a)), *y = mm_buf_copy(a, sizeof(a));
	mm_buf_t *z = mm_buf_copy(b, sizeof(b)), *w = mm_buf_copy(a, 15);
	CHECK(x == y);
	CHECK_EQ(x->refs, 2u);
	CHECK(z != x && w != x);
	CHECK_EQ(x->len, 16u);
	CHECK(memcmp(x->data, a, 16) == 0);
	mm_buf_release(x);
	mm_buf_release(y);
	/* gone: the same bytes again make a fresh buffer with one holder */
	mm_buf_t *v = mm_buf_copy(a, sizeof(a));
	CHECK_EQ(v->refs, 1u);
	mm_buf_release(v);
	mm_buf_release(z);
	mm_buf_release(w);
}

static void
test_churn(void)
{
	static mm_buf_t *held[N];
	uint8_t p[400];
	uint32_t len;
	srand(7);
	for (int round = 0; round < 20; round++) {
		for (unsigned i = 0; i < N; i++) {
			if (rand() % 3 == 0 && held[i] != NULL) { /* let go */
				mm_buf_release(held[i]);
				held[i] = NULL;
			} else if (held[i] == NULL && rand() % 2 == 0) {
				bytes(i, p, &len);
				held[i] = mm_buf_copy(p, len);
				CHECK(held[i] != NULL);
				CHECK_EQ(held[i]->refs, 1u); /* nobody held these bytes */
			}
		}
		/* every held buffer is found again, and only for its bytes */
		for (unsigned i = 0; i < N; i++) {
			if (held[i] == NULL)
				continue;
			bytes(i, p, &len);
			mm_buf_t *again = mm_buf_copy(p, len);
			CHECK(again == held[i]);
			CHECK_EQ(again->len, len);
			CHECK(memcmp(again->data, p, len) == 0);
			mm_buf_release(again);
		}
	}
	for (unsigned i = 0; i < N; i++)
		mm_buf_release(held[i]);
}

int
main(void)
{
	RUN(test_shared);
	RUN(test_churn);
	fprintf(stderr, "test_simbuf: ok\n");
	return 0;
}
