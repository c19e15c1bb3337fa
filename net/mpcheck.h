/*
 * Structural check of untrusted msgpack bytes, run before msgpack-c sees
 * them. msgpack-c's unpacker sizes its allocations from the counts in the
 * data: a 5-byte array32 header claiming 2^32 - 1 elements makes it ask for
 * ~100 GB (measured: it fails with NOMEM; a 10 M-element header is accepted
 * as "needs more data"). This check refuses any container whose element
 * count exceeds the bytes left (each element takes at least one), caps the
 * nesting depth and the object count, refuses ext types (the protocol uses
 * none), and requires exactly one object spanning the input. After it
 * passes, msgpack-c allocates at most 24 bytes per byte of input.
 */
#ifndef MM_MPCHECK_H
#define MM_MPCHECK_H

#include <stddef.h>
#include <stdint.h>

#define MM_MP_MAX_DEPTH 8

/* 0 if buf[0..len) is exactly one acceptable msgpack object, else -1 with
 * *why set to a static description. */
int mm_mp_check(const uint8_t *buf, size_t len, const char **why);

#endif
