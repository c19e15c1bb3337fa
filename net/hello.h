/*
 * The hello exchange that follows the TLS handshake (docs/PROTOCOL.md §1,
 * §4): building our hello, and every check of the peer's before any other
 * message is processed.
 */
#ifndef MM_HELLO_H
#define MM_HELLO_H

#include "identity.h"
#include "tls.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Our hello: version, network, key, proof of work, and the binding of our
 * TLS certificate. `net` must outlive the message. */
int mm_hello_make(mm_wire_msg_t *m, const mm_identity_t *id, mm_tls_ctx_t *tls,
    const char *net, uint16_t port, uint64_t now_ms);

/* Check the peer's hello against its TLS session. Returns 0 and the peer id,
 * or an error code for the error message (MM_WERR_VERSION, _NETWORK,
 * _BAD_POW, _BAD_ID) with *why saying what failed. expect_id (or NULL): the
 * id we dialled. In a private network the certificate's common name must be
 * the peer id in hex. */
int mm_hello_check(const mm_w_hello_t *h, const mm_tls_t *t, int private_net,
    const char *net, unsigned difficulty, const uint8_t *expect_id,
    uint8_t id_out[32], const char **why);

#ifdef __cplusplus
}
#endif
#endif
