/*
 * Minimal test assertions that survive release builds (no NDEBUG games) and
 * print both sides on failure. Each test program is one ctest test.
 */
#ifndef MM_TEST_H
#define MM_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,     \
			    __LINE__, #c);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

#define CHECK_OP(a, op, b)                                                     \
	do {                                                                   \
		long long va_ = (long long)(a), vb_ = (long long)(b);          \
		if (!(va_ op vb_)) {                                           \
			fprintf(stderr, "%s:%d: CHECK(%s %s %s) failed: %lld %s %lld\n", \
			    __FILE__, __LINE__, #a, #op, #b, va_, #op, vb_);   \
			abort();                                               \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GT(a, b) CHECK_OP(a, >, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)

#define RUN(fn)                                                                \
	do {                                                                   \
		fprintf(stderr, "-- %s\n", #fn);                               \
		fn();                                                          \
	} while (0)

#endif
