/*
 * Simulated connections: net/conn.h's API over in-memory links, on the
 * simulated runtime (runtime/mm_sim.h). Linked instead of conn.c and the
 * TLS backends in the meshmap_sim library, so the node (actors/node.c)
 * runs unchanged over them.
 *
 * What is modelled. Every host (one mm_net, i.e. one node) listens on one
 * address. A link between two hosts has a one-way latency fixed when it is
 * made (uniform in [lat_min_ms, lat_max_ms], drawn from the seed); every
 * segment (what one connection writes at one flush) adds a uniform jitter in
 * [0, jitter_ms] and its size over `bandwidth` (bytes per second per
 * direction, 0: unlimited), and is lost with probability `loss`, in which
 * case it is retransmitted after a timeout (max(200 ms, 3 x latency)), as
 * TCP does: the stream stays ordered and complete, loss shows as delay.
 * A dial is ready at both ends two round trips after it starts (TCP, TLS
 * 1.3 and the hello exchange); the peer's round-trip time is reported once
 * (on_rtt). Identity, network name and proof of work are checked as in the
 * hello; TLS itself, pings and their bytes are not simulated: instead each
 * ready connection looks at its path every ping_interval_ms and closes as
 * idle once it has been cut (peer host down, partition) for
 * idle_timeout_ms, which is when the real ping would have failed.
 *
 * Faults. A host goes down (crash: its peers see their connections reset
 * one latency later; silent: they notice at the idle timeout). Hosts carry
 * a zone; while the partition is on, segments between zones wait (and are
 * retransmitted) and dials between zones time out.
 *
 * One world per process, single-threaded (the simulation's).
 */
#ifndef MM_SIMNET_H
#define MM_SIMNET_H

#include <stdint.h>

#include "conn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_simnet_config {
	uint32_t lat_min_ms, lat_max_ms; /* one-way, per link (default 10, 100) */
	uint32_t jitter_ms;              /* per segment (default 0) */
	double loss;                     /* per segment, [0, 0.9] (default 0) */
	uint64_t bandwidth;              /* bytes/s per direction, 0: unlimited */
} mm_simnet_config_t;

void mm_simnet_config_default(mm_simnet_config_t *c);
/* Set the world's link model (before any host is created). 0 or -EINVAL. */
int mm_simnet_configure(const mm_simnet_config_t *c);

/* The host index of a net (the simulated runtime's group it was created
 * in), and the net of a host (NULL: none or destroyed). */
uint32_t mm_simnet_host(const mm_net_t *n);

/* Take a host down. crash: its peers' connections close (reset) one
 * latency later; else they go silent and close at their idle timeout.
 * Call before mm_sim_kill_groups and mm_node_destroy for that host. */
void mm_simnet_host_down(mm_net_t *n, int crash);

/* Zones and the partition (see the header comment). */
void mm_simnet_set_zone(mm_net_t *n, uint32_t zone);
void mm_simnet_partition(int on);

/* A rule of the world on who may connect to whom (the simulator's
 * attackers: they talk only to each other and to their victims). A dial
 * from host a to host b for which reach(a, b, arg) is false is refused at
 * accept, as an address ban would refuse it. NULL: everyone may. */
void mm_simnet_set_reach(int (*reach)(uint32_t a, uint32_t b, void *arg), void *arg);

/* Hosts at the other end of n's links that are ready at both ends (the
 * true map): up to cap host indices into out; returns how many. */
unsigned mm_simnet_links(const mm_net_t *n, uint32_t *out, unsigned cap);

/* Totals over the world: segments and bytes carried, segments lost
 * (retransmitted), dials that failed. */
typedef struct mm_simnet_stats {
	uint64_t segments, bytes, lost, dials, dials_failed, links_up, links_down;
} mm_simnet_stats_t;
void mm_simnet_stats(mm_simnet_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
