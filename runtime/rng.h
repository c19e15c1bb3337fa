/*
 * The runtime's generator, xoshiro256** (not for cryptography), and
 * splitmix64 to spread one seed over its state: shared by the real runtime
 * (rt.c, per worker) and the simulated one (sim.c, from the run's seed).
 */
#ifndef MM_RNG_H
#define MM_RNG_H

#include <stdint.h>

static inline uint64_t
mm__rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
mm__xoshiro(uint64_t s[4])
{
	uint64_t r = mm__rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = mm__rotl(s[3], 45);
	return r;
}

static inline void
mm__splitmix_seed(uint64_t s[4], uint64_t x)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (x += UINT64_C(0x9e3779b97f4a7c15));
		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		s[i] = z ^ (z >> 31);
	}
}

#endif
