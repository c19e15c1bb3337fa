#include "hello.h"

#include <string.h>

int
mm_hello_make(mm_wire_msg_t *m, const mm_identity_t *id, mm_tls_ctx_t *tls,
    const char *net, uint16_t port, uint64_t now_ms)
{
	memset(m, 0, sizeof(*m));
	m->type = MM_W_HELLO;
	mm_w_hello_t *h = &m->u.hello;
	h->version = MM_WIRE_VERSION;
	h->net = (mm_bytes_t){(const uint8_t *)net, (uint32_t)strlen(net)};
	memcpy(h->pub, id->pub, 32);
	h->pow = id->nonce;
	h->port = port;
	h->ts = now_ms;
	h->agent = (mm_bytes_t){(const uint8_t *)"meshmap/" MESHMAP_AGENT_VERSION,
	    (uint32_t)strlen("meshmap/" MESHMAP_AGENT_VERSION)};
	/* Signed once per TLS context, not per connection. */
	return mm_tls_ctx_binding(tls, id, h->csig);
}

int
mm_hello_check(const mm_w_hello_t *h, const mm_tls_t *t, int private_net,
    const char *net, unsigned difficulty, const uint8_t *expect_id,
    uint8_t id_out[32], const char **why)
{
	if (h->version != MM_WIRE_VERSION) {
		*why = "protocol version not supported";
		return MM_WERR_VERSION;
	}
	if (h->net.len != strlen(net) || memcmp(h->net.ptr, net, h->net.len) != 0) {
		*why = "another network";
		return MM_WERR_NETWORK;
	}
	if (!mm_pow_ok(h->pub, h->pow, difficulty)) {
		*why = "proof of work too short";
		return MM_WERR_BAD_POW;
	}
	uint8_t spki[256];
	int n = mm_tls_peer_spki(t, spki, sizeof(spki));
	if (n < 0 || !mm_tls_bind_verify(h->pub, spki, (size_t)n, h->csig)) {
		*why = "the identity key did not sign this TLS certificate";
		return MM_WERR_BAD_ID;
	}
	mm_id_of(h->pub, id_out);
	if (expect_id != NULL && memcmp(expect_id, id_out, 32) != 0) {
		*why = "not the peer id we dialled";
		return MM_WERR_BAD_ID;
	}
	if (private_net) {
		char cn[80], hex[65];
		mm_hex(id_out, 32, hex);
		if (mm_tls_peer_cn(t, cn, sizeof(cn)) < 0 || strcmp(cn, hex) != 0) {
			*why = "certificate common name is not the peer id";
			return MM_WERR_BAD_ID;
		}
	}
	return 0;
}
