#include "mpcheck.h"

static uint32_t
be(const uint8_t *p, unsigned n)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int
mm_mp_check(const uint8_t *buf, size_t len, const char **why)
{
	/* remaining[d]: objects still expected at depth d. */
	uint64_t remaining[MM_MP_MAX_DEPTH + 1];
	unsigned depth = 0;
	size_t i = 0;
	remaining[0] = 1;
	*why = "";

	while (depth > 0 || remaining[0] > 0) {
		if (remaining[depth] == 0) {
			depth--;
			continue;
		}
		if (i >= len) {
			*why = "truncated msgpack";
			return -1;
		}
		remaining[depth]--;
		uint8_t b = buf[i++];
		uint64_t skip = 0, children = 0;
		unsigned hdr = 0;

		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b >= 0x80 && b <= 0x8f) {
			children = 2u * (b & 0x0f);
		} else if (b >= 0x90 && b <= 0x9f) {
			children = b & 0x0f;
		} else if (b >= 0xa0 && b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: case 0xca: skip = 4; break;
			case 0xcf: case 0xd3: case 0xcb: skip = 8; break;
			case 0xc4: case 0xd9: hdr = 1; break; /* bin8, str8 */
			case 0xc5: case 0xda: hdr = 2; break; /* bin16, str16 */
			case 0xc6: case 0xdb: hdr = 4; break; /* bin32, str32 */
			case 0xdc: hdr = 2; break;            /* array16 */
			case 0xdd: hdr = 4; break;            /* array32 */
			case 0xde: hdr = 2; break;            /* map16 */
			case 0xdf: hdr = 4; break;            /* map32 */
			default:
				*why = b == 0xc1 ? "reserved msgpack byte 0xc1" :
				    "msgpack ext types are not used by the protocol";
				return -1;
			}
			if (hdr != 0) {
				if (len - i < hdr) {
					*why = "truncated msgpack length";
					return -1;
				}
				uint64_t n = be(buf + i, hdr);
				i += hdr;
				if (b == 0xdc || b == 0xdd)
					children = n;
				else if (b == 0xde || b == 0xdf)
					children = 2 * n;
				else
					skip = n;
			}
		}
		if (skip > len - i) {
			*why = "msgpack string or number runs past the frame";
			return -1;
		}
		i += skip;
		if (children > 0) {
			/* Every element takes at least one byte. */
			if (children > len - i) {
				*why = "msgpack container counts more elements than bytes";
				return -1;
			}
			if (depth == MM_MP_MAX_DEPTH) {
				*why = "msgpack nested too deep";
				return -1;
			}
			remaining[++depth] = children;
		}
	}
	if (i != len) {
		*why = "trailing bytes after the msgpack message";
		return -1;
	}
	return 0;
}
