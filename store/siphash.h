/*
 * SipHash-1-3 (Aumasson and Bernstein), keyed 64-bit hash for hash tables
 * whose keys an attacker can choose (peer ids, message ids). Written here
 * rather than taken from OpenSSL: its EVP_MAC "SIPHASH" costs hundreds of
 * nanoseconds per call in set-up, and the dedup ring's budget is ~50 ns for
 * a whole check-and-insert. 1-3 rounds (one compression, three finalisation)
 * as used for hash tables by Rust and Python.
 */
#ifndef MM_SIPHASH_H
#define MM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t mm_siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len);

#endif
