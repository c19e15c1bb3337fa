/*
 * The simulated runtime: the whole of mm_rt.h on one thread and a virtual
 * clock, for `meshmap sim` (cmd/sim.c) and the simulator's tests.
 *
 * It is linked instead of rt.c (the meshmap_sim library, CMakeLists.txt),
 * so the node's actors (actors/node.c, gossip, selector, the store) run
 * unchanged: mm_now_ms and mm_wall_ms read the virtual clock, timers go
 * into one timer wheel (timerwheel.c, the real one), mm_send queues into a
 * mailbox and a FIFO run queue, mm_random and mm_secure_random draw from
 * streams seeded by the one seed. Nothing else is random and nothing
 * depends on pointers or threads, so a run replays exactly.
 *
 * Order of work at one instant: every runnable actor takes a turn (up to
 * batch messages, FIFO over actors), then every actor that asked for
 * MM_MSG_FLUSH gets it, and again until nothing is runnable; only then does
 * the clock move to the next timer. Work takes no virtual time.
 *
 * mm_secure_random is NOT secure here: keys made in a simulation are
 * derived from the seed. One simulation per process at a time (mm_now_ms
 * takes no runtime argument). File descriptors are not supported
 * (mm_io_start: -ENOTSUP); links are net/simnet.c's.
 */
#ifndef MM_SIM_H
#define MM_SIM_H

#include <stdint.h>

#include "mm_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_sim_config {
	uint64_t seed;
	uint64_t wall_start_ms; /* mm_wall_ms at virtual time 0 (default
	                         * 1,800,000,000,000: a fixed date) */
	unsigned batch;         /* messages per actor turn (default 64) */
} mm_sim_config_t;

/* A simulated runtime, its clock at 0. 0 or -errno (-EBUSY: one exists). */
int mm_sim_create(const mm_sim_config_t *cfg, mm_rt_t **out);

/* Virtual milliseconds since the start. */
uint64_t mm_sim_now(const mm_rt_t *rt);
/* Run every turn and timer due up to and including `until` (virtual ms);
 * the clock then reads `until`. Returns the timers fired. */
uint64_t mm_sim_run_until(mm_rt_t *rt, uint64_t until);
/* Run what is runnable now without moving the clock. */
void mm_sim_settle(mm_rt_t *rt);

/* Groups: an actor spawned inside a behaviour joins its spawner's group;
 * any other joins the group set here (the simulator sets one per node
 * before creating it). */
void mm_sim_set_group(mm_rt_t *rt, uint32_t g);
/* The group of the actor running now, else the one set. */
uint32_t mm_sim_group(const mm_rt_t *rt);
uint32_t mm_sim_group_of(const mm_actor_t *a);
/* Crash groups: every actor of a group in gs[n] exits at once, without
 * MM_MSG_STOP (a process or host that dies runs no goodbye): its timers
 * leave the wheel, its dtor runs, its mailbox is discarded, later sends to
 * it fail with -EPIPE. The callers' references stay valid. */
void mm_sim_kill_groups(mm_rt_t *rt, const uint32_t *gs, unsigned n);

typedef struct mm_sim_stats {
	uint64_t msgs, turns, timers, sends, send_full, send_closed, dropped;
	uint64_t actors_live;
} mm_sim_stats_t;
void mm_sim_stats(const mm_rt_t *rt, mm_sim_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
