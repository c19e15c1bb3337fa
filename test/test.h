/*
 * Minimal test assertions that survive release builds (no NDEBUG games) and
 * print both sides on failure. Each test program is one ctest test.
 */
#ifndef MM_TEST_H
#define MM_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

/* Sleep in a test: only ever to wait for something, never as a check. */
static inline void
test_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Wait for a condition another thread makes true. Failing after 60 s means
 * a hang (a lost wake-up, a starved actor), not slowness. */
#define WAIT_FOR(cond)                                                         \
	do {                                                                   \
		unsigned waited_ = 0;                                          \
		while (!(cond)) {                                              \
			CHECK_LT(waited_, 60000);                              \
			test_sleep_ms(1);                                      \
			waited_++;                                             \
		}                                                              \
	} while (0)

#define RUN(fn)                                                                \
	do {                                                                   \
		fprintf(stderr, "-- %s\n", #fn);                               \
		fn();                                                          \
	} while (0)

#endif
