/* Two decoded direct messages are the same message (bytes compared, not
 * where they point): test_wire and fuzz_wire. */
#ifndef MM_TEST_WIRE_CMP_H
#define MM_TEST_WIRE_CMP_H
#include <string.h>

#include "wire.h"

static inline int
wire_direct_same(const mm_w_direct_t *a, const mm_w_direct_t *b)
{
	return a->route.len == b->route.len && a->data.len == b->data.len &&
	    memcmp(a->route.ptr, b->route.ptr, a->route.len) == 0 &&
	    (a->data.len == 0 || memcmp(a->data.ptr, b->data.ptr, a->data.len) == 0) &&
	    memcmp(a->pub, b->pub, 32) == 0 && memcmp(a->sig, b->sig, 64) == 0 &&
	    a->pow == b->pow && a->at == b->at && a->rr == b->rr &&
	    a->nonce == b->nonce && a->ts == b->ts && a->has_rw == b->has_rw &&
	    a->route0.len == b->route0.len &&
	    (a->route0.len == 0 || memcmp(a->route0.ptr, b->route0.ptr, a->route0.len) == 0) &&
	    a->rw_pow == b->rw_pow && a->rw_at == b->rw_at &&
	    memcmp(a->rw_pub, b->rw_pub, 32) == 0 && memcmp(a->rw_sig, b->rw_sig, 64) == 0;
}

#endif
