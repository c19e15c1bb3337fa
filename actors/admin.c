#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "psquery.h"

#define REQ_MAX 8192
#define DEADLINE_MS 2000
#define PEERS_MAX 256

struct mm_admin {
	mm_node_t *node;
	int fd;
	int stop_pipe[2];
	pthread_t th;
	int running;
};

/* ---- /metrics ------------------------------------------------------------------------ */

static void
metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static long
rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

static void
metrics(mm_admin_t *a, FILE *f)
{
	mm_node_stats_t s;
	mm_node_stats(a->node, &s);
	mm_net_stats_t ns;
	mm_net_stats(mm_node_net(a->node), &ns);
	mm_ps_stats_t ps;
	mm_ps_stats(mm_node_map(a->node), &ps);
	uint64_t edges = 0;
	(void)mm_ps_edges_digest(mm_node_map(a->node), &edges);
#define G(n, h, v) metric(f, "meshmap_" n, "gauge", h, (double)(v))
#define C(n, h, v) metric(f, "meshmap_" n "_total", "counter", h, (double)(v))
	G("links", "Peers linked to this node.", mm_node_peers(a->node));
	G("connections_open", "Open connections, any state.", ns.open);
	G("map_peers", "Peers in the map.", ps.records);
	G("map_claims", "Neighbour claims held in the map.", ps.claims);
	G("map_confirmed_edges", "Edges claimed by both ends.", edges);
	G("map_phantom_claims", "Neighbour claims the other end does not make (yet).",
	    ps.claims > 2 * edges ? ps.claims - 2 * edges : 0);
	G("map_bytes", "Memory held by the map.", ps.bytes);
	G("map_components", "Connected components of the map at its last analysis.",
	    s.components);
	G("map_isolated", "Components of one record (a peer that left, its links "
	    "retracted, or one not linked yet) at the last analysis.", s.isolated);
	G("map_largest_component", "Peers in the largest component.", s.largest);
	G("map_bridges", "Bridges of the map at its last analysis.", s.bridges);
	G("map_articulation_points", "Articulation points at the last analysis.",
	    s.articulation);
	G("addresses_known", "Entries in the address book.", s.addr_known);
	G("sync_log_frames", "Capacity of the join sync log, in frames (it grows up to "
	    "sync_events_max while more origins are active than it holds, and goes back "
	    "to sync_events at high memory pressure).", s.sync_log_cap);
	G("memory_resident_bytes", "Resident memory of the process.", rss_bytes());
	C("events_received", "Events received from links.", s.events_in);
	C("events_refused", "Events refused (misbehaviour).", s.events_bad);
	C("events_duplicate", "Events dropped as duplicates before any verify.",
	    s.events_dup);
	C("events_map_full", "Genuine events dropped because the map is at its bound "
	    "(not the sender's fault).", s.events_map_full);
	C("events_forwarded", "Events accepted and forwarded.", s.events_forwarded);
	C("events_shaped", "Pushes to a link announced by ihave instead, or left to "
	    "anti-entropy, to keep under the link's event budget.", s.events_shaped);
	C("asks_deferred", "Missing events not asked of a link (want, iwant) this round: "
	    "the answers would go over its event budget.", s.asks_deferred);
	C("signature_verifications", "Ed25519 verifications of events (after dedup and "
	    "staleness checks).", s.events_verified);
	C("events_stale", "Events older than the map's, dropped before any verify.",
	    s.events_stale);
	C("events_local", "Our own events.", s.events_local);
	C("frames_dropped", "Frames dropped at a full mailbox.", s.frames_dropped);
	C("peers_forgotten", "Map records forgotten as unreachable from us (unreachable_s).",
	    s.gc_unreachable);
	C("events_coalesced", "Own link changes folded into a newer event within the "
	    "announce window (never signed).", s.events_coalesced);
	C("events_signed", "Own events signed.", s.events_signed);
	C("rate_limited", "Messages over a link's budget.", s.rate_dropped);
	C("dials", "Dials made.", s.dials);
	C("dials_room", "The selector's dials to a candidate with room.", s.dials_room);
	C("dials_full", "The selector's dials to a full candidate (short of half the "
	    "degree, or while thin links hold slots).", s.dials_full);
	C("dials_thin", "The selector's dials to a thin candidate (short of half the degree).",
	    s.dials_thin);
	C("dials_component", "The selector's dials into another component of the map.",
	    s.dials_comp);
	C("dials_component_failed", "Of those, the dials that failed (after 3 in a row "
	    "they pause: 5 s, doubling to 60 s).", s.dials_comp_failed);
	C("dials_replace", "Replacements: dials at the target to a candidate that overlaps "
	    "clearly less than our worst neighbour.", s.dials_replace);
	C("kicks", "Links dropped by the selector.", s.kicks);
	C("kicks_thin", "Of them, thin links (few confirmed neighbours: the eclipse "
	    "defence).", s.kicks_thin);
	C("refused_thin", "Thin peers known for a minute, refused while we are at the "
	    "target degree.", s.refused_thin);
	C("refused_young", "Peers refused while we are at the target degree and "
	    "an inbound link is younger than min_link_ms (one unjudged inbound "
	    "link at a time).", s.refused_young);
	C("refused_barred", "Peers the selector dropped, refused when they linked again "
	    "within full_backoff_ms.", s.refused_barred);
	C("refused_full", "Newcomers turned away: no slot.", s.refused_full);
	C("refused_memory", "Newcomers turned away at critical memory pressure.",
	    s.refused_memory);
	C("inbound_evictions", "Inbound links dropped for a newcomer from a less crowded "
	    "address range (IPv4 /16, IPv6 /32).", s.evicted_inbound);
	C("bans", "Peers banned.", s.bans);
	C("refused_banned", "Banned peers refused at the handshake.", s.refused_banned);
	C("direct_sent", "Direct messages we sent.", s.direct_sent);
	C("direct_relayed", "Direct messages relayed.", s.direct_relayed);
	C("direct_delivered", "Direct messages delivered to us.", s.direct_delivered);
	C("direct_rewritten", "Direct messages we rerouted.", s.direct_rewritten);
	C("direct_refused", "Direct messages refused.", s.direct_refused);
	C("route_searches", "Route searches over the map (sending, rerouting).", s.route_searches);
	C("route_cache_hits", "Routes answered from the route cache.", s.route_cache_hits);
	C("broadcasts_published", "Broadcasts we published.", s.bcast_published);
	C("broadcasts_delivered", "Broadcasts delivered to us.", s.bcast_delivered);
	C("broadcast_frames_sent", "Broadcast frames sent to links.", s.bcast_forwarded);
	C("requests_sent", "Requests we sent.", s.requests_sent);
	C("requests_timed_out", "Our requests that timed out.", s.requests_timed_out);
	C("anti_entropy_digests", "Anti-entropy digests sent.", s.ae_digests_sent);
	C("anti_entropy_wanted", "Anti-entropy: events a digest showed our map lacked, "
	    "asked for (want).", s.ae_wanted);
	C("anti_entropy_served", "Anti-entropy: events sent in answer to a want.",
	    s.ae_served);
	C("ihave_entries_sent", "Lazy push: event ids sent in ihave instead of the event.",
	    s.ihave_sent);
	C("ihave_entries_received", "Lazy push: event ids received in ihave.",
	    s.ihave_received);
	C("iwant_ids_sent", "Lazy push: events we asked a link for (iwant).", s.iwant_sent);
	C("iwant_events_served", "Lazy push: events sent in answer to an iwant.",
	    s.iwant_served);
	C("iwant_refused", "Lazy push: ids asked over the link's event budget, not served.",
	    s.iwant_over);
	C("sync_announced", "Join sync frames left out of the first push (its caps) and "
	    "announced by ihave instead.", s.sync_announced);
	C("served_paced", "Asked events (iwant, want) served only once the link had taken "
	    "the answer before (a quarter of the write cap at a time).", s.served_paced);
	C("handshakes_completed", "Connections that completed both hellos.", ns.ready);
	C("connections_accepted", "Connections accepted.", ns.accepted);
	C("connections_dialled", "Connections dialled.", ns.dialled);
	C("connections_refused", "Connections refused at accept (limits, bans).", ns.refused);
	fprintf(f, "# HELP meshmap_frames_total Frames on the wire.\n"
	    "# TYPE meshmap_frames_total counter\n"
	    "meshmap_frames_total{dir=\"in\"} %llu\nmeshmap_frames_total{dir=\"out\"} %llu\n",
	    (unsigned long long)ns.frames_in, (unsigned long long)ns.frames_out);
	fprintf(f, "# HELP meshmap_bytes_total Bytes on the wire (TLS payload).\n"
	    "# TYPE meshmap_bytes_total counter\n"
	    "meshmap_bytes_total{dir=\"in\"} %llu\nmeshmap_bytes_total{dir=\"out\"} %llu\n",
	    (unsigned long long)ns.bytes_in, (unsigned long long)ns.bytes_out);
	fprintf(f, "# HELP meshmap_connection_closes_total Connections closed, by reason.\n"
	    "# TYPE meshmap_connection_closes_total counter\n");
	for (int r = 0; r < MM_CLOSE__MAX; r++) {
		const char *name = mm_close_reason_name(r);
		if (ns.closes[r] == 0 && r != 0)
			continue;
		fprintf(f, "meshmap_connection_closes_total{reason=\"%s\"} %llu\n", name,
		    (unsigned long long)ns.closes[r]);
	}
	fprintf(f, "# HELP meshmap_connections Open connections by direction.\n"
	    "# TYPE meshmap_connections gauge\n"
	    "meshmap_connections{dir=\"in\"} %llu\nmeshmap_connections{dir=\"out\"} %llu\n",
	    (unsigned long long)ns.open_in, (unsigned long long)ns.open_out);
	uint64_t open_all = ns.open_in + ns.open_out;
	fprintf(f, "# HELP meshmap_connections_by_state Open connections: in the TLS or "
	    "hello handshake, or ready.\n# TYPE meshmap_connections_by_state gauge\n"
	    "meshmap_connections_by_state{state=\"handshake\"} %llu\n"
	    "meshmap_connections_by_state{state=\"ready\"} %llu\n",
	    (unsigned long long)(open_all > ns.open_ready ? open_all - ns.open_ready : 0),
	    (unsigned long long)ns.open_ready);
	static const char *const dirs[2] = {"in", "out"};
	fprintf(f, "# HELP meshmap_bandwidth_limit_bytes_per_second Bandwidth limit over all "
	    "links (0: none).\n# TYPE meshmap_bandwidth_limit_bytes_per_second gauge\n"
	    "meshmap_bandwidth_limit_bytes_per_second{dir=\"in\"} %llu\n"
	    "meshmap_bandwidth_limit_bytes_per_second{dir=\"out\"} %llu\n"
	    "# HELP meshmap_bandwidth_pauses_total Reads or writes paused to keep the "
	    "bandwidth limit.\n# TYPE meshmap_bandwidth_pauses_total counter\n"
	    "meshmap_bandwidth_pauses_total{dir=\"in\"} %llu\n"
	    "meshmap_bandwidth_pauses_total{dir=\"out\"} %llu\n",
	    (unsigned long long)ns.bw_rate[0], (unsigned long long)ns.bw_rate[1],
	    (unsigned long long)ns.bw_pauses[0], (unsigned long long)ns.bw_pauses[1]);
	fprintf(f, "# HELP meshmap_backlog_bytes Bytes of received messages the node "
	    "holds, not yet handled.\n# TYPE meshmap_backlog_bytes gauge\n"
	    "meshmap_backlog_bytes %llu\n"
	    "# HELP meshmap_backlog_pauses_total Reads paused because the node held too "
	    "much of a link's messages (back-pressure).\n"
	    "# TYPE meshmap_backlog_pauses_total counter\n"
	    "meshmap_backlog_pauses_total %llu\n",
	    (unsigned long long)ns.held, (unsigned long long)ns.hold_pauses);
	static const struct {
		const char *name, *help;
	} bt[2] = {{"frames", "Frames by message type (in: decoded, out: queued)."},
	    {"bytes", "Frame bytes (header included) by message type."}};
	for (int k = 0; k < 2; k++) {
		fprintf(f, "# HELP meshmap_%s_by_type_total %s\n"
		    "# TYPE meshmap_%s_by_type_total counter\n", bt[k].name, bt[k].help,
		    bt[k].name);
		for (int d = 0; d < 2; d++)
			for (int t = 1; t < MM_W__COUNT; t++)
				fprintf(f, "meshmap_%s_by_type_total{dir=\"%s\",type=\"%s\"} "
				    "%llu\n", bt[k].name, dirs[d], mm_wire_type_name((unsigned)t),
				    (unsigned long long)(k ? ns.type_bytes : ns.type_frames)[d][t]);
	}
	/* misbehaviour, by cause: every cause listed, so that a rate() has a
	 * series to start from */
	fprintf(f, "# HELP meshmap_misbehaviour_total Misbehaviour seen from peers, by cause "
	    "(each costs the peer points; at the ban score it is banned).\n"
	    "# TYPE meshmap_misbehaviour_total counter\n");
	for (int c = 1; c < MM_NODE_CAUSES && c <= MM_WERR_FULL; c++)
		if (c != MM_WERR_SHUTDOWN && c != MM_WERR_FULL && c != MM_WERR_BANNED)
			fprintf(f, "meshmap_misbehaviour_total{cause=\"%s\"} %llu\n",
			    mm_close_reason_name(c), (unsigned long long)s.misbehaviour[c]);
	uint64_t h[MM_NODE_RTT_BUCKETS + 1], sum_us, cum = 0;
	mm_node_rtt_hist(a->node, h, &sum_us);
	fprintf(f, "# HELP meshmap_rtt_seconds Round trips of pings to linked peers.\n"
	    "# TYPE meshmap_rtt_seconds histogram\n");
	for (unsigned b = 0; b < MM_NODE_RTT_BUCKETS; b++) {
		cum += h[b];
		fprintf(f, "meshmap_rtt_seconds_bucket{le=\"%g\"} %llu\n",
		    mm_node_rtt_bounds_us[b] / 1e6, (unsigned long long)cum);
	}
	cum += h[MM_NODE_RTT_BUCKETS];
	fprintf(f, "meshmap_rtt_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "meshmap_rtt_seconds_sum %.6f\nmeshmap_rtt_seconds_count %llu\n",
	    (unsigned long long)cum, (double)sum_us / 1e6, (unsigned long long)cum);
	/* the runtime: per worker, and the node's own mailboxes */
	mm_rt_t *rt = mm_node_rt(a->node);
	unsigned nw = mm_rt_workers(rt);
	static const struct {
		const char *name, *help;
		size_t off;
	} wc[] = {
	    {"worker_messages_total", "Mailbox messages run by the worker.",
		offsetof(mm_worker_stats_t, msgs_run)},
	    {"worker_mailbox_full_total", "Sends from the worker refused: mailbox full.",
		offsetof(mm_worker_stats_t, send_full)},
	    {"worker_dropped_total", "Messages the worker discarded.",
		offsetof(mm_worker_stats_t, dropped)},
	    {"worker_io_events_total", "Socket events handled by the worker.",
		offsetof(mm_worker_stats_t, io_events)},
	    {"worker_polls_total", "epoll_wait calls of the worker.",
		offsetof(mm_worker_stats_t, polls)},
	    {"worker_wakeups_total", "Eventfd wake-ups the worker received (a "
		"message sent to it while it slept).",
		offsetof(mm_worker_stats_t, wakeups_recv)},
	    {"worker_spin_offs_total", "Times the worker's spin before sleeping "
		"was turned off for finding nothing 16 times in a row.",
		offsetof(mm_worker_stats_t, spin_offs)},
	};
	for (size_t k = 0; k < sizeof(wc) / sizeof(wc[0]); k++) {
		fprintf(f, "# HELP meshmap_%s %s\n# TYPE meshmap_%s counter\n", wc[k].name,
		    wc[k].help, wc[k].name);
		for (unsigned w = 0; w < nw; w++) {
			mm_worker_stats_t ws;
			mm_rt_stats(rt, w, &ws);
			uint64_t v;
			memcpy(&v, (const char *)&ws + wc[k].off, sizeof(v));
			fprintf(f, "meshmap_%s{worker=\"%u\"} %llu\n", wc[k].name, w,
			    (unsigned long long)v);
		}
	}
	fprintf(f, "# HELP meshmap_limit The limits in force (links: degree, max_degree, "
	    "max_inbound in relay mode; connections: max, per IP, pending handshakes "
	    "per IP).\n# TYPE meshmap_limit gauge\n"
	    "meshmap_limit{name=\"degree\"} %u\nmeshmap_limit{name=\"max_degree\"} %u\n"
	    "meshmap_limit{name=\"max_inbound\"} %u\n"
	    "meshmap_limit{name=\"max_connections\"} %llu\n"
	    "meshmap_limit{name=\"max_connections_per_ip\"} %llu\n"
	    "meshmap_limit{name=\"max_pending_per_ip\"} %llu\n",
	    s.degree, s.max_degree, s.max_inbound, (unsigned long long)ns.max_conns,
	    (unsigned long long)ns.max_conns_per_ip, (unsigned long long)ns.max_pending_per_ip);
	mm_node_mbox_t mb[16];
	unsigned nmb = mm_node_mailboxes(a->node, mb, 16);
	fprintf(f, "# HELP meshmap_mailbox_depth Messages waiting in the node's actors' "
	    "mailboxes.\n# TYPE meshmap_mailbox_depth gauge\n");
	for (unsigned k = 0; k < nmb; k++)
		fprintf(f, "meshmap_mailbox_depth{actor=\"%s\",index=\"%u\",worker=\"%u\"} %u\n",
		    mb[k].name, mb[k].index, mb[k].worker, mb[k].depth);
	mm_mem_stats_t mem;
	mm_rt_mem(rt, &mem);
	G("memory_allocated_bytes", "Bytes in live allocations (the allocator's view, "
	    "at the runtime's last sample).", mem.allocated);
	G("memory_budget_bytes", "The node's memory budget.", mem.budget);
	G("memory_pressure", "0 ok, 1 high (>= 80% of the budget), 2 critical (>= 95%).",
	    mm_rt_pressure(rt));
	uint8_t prot[MM_NODE_PROTECT_MAX][32];
	G("protected_peers", "Peers protected by the operator.",
	    mm_node_protected(a->node, prot, MM_NODE_PROTECT_MAX));
	mm_ban_t *bl = calloc(4096, sizeof(*bl));
	G("bans_active", "Bans in force (ids and address ranges).",
	    bl != NULL ? mm_node_bans(a->node, bl, 4096) : 0);
	free(bl);
#undef G
#undef C
}

/* ---- /peers, /map ---------------------------------------------------------------------- */

static void
peers(mm_admin_t *a, FILE *f, int text)
{
	mm_node_peer_info_t *p = calloc(PEERS_MAX, sizeof(*p));
	int n = p != NULL ? mm_node_peer_list(a->node, p, PEERS_MAX, 1000) : -ENOMEM;
	if (n < 0) {
		fprintf(f, text ? "error: the node did not answer\n" : "{\"error\":\"no answer\"}\n");
		free(p);
		return;
	}
	if (text)
		fprintf(f, "%-16s %-8s %-39s %8s %8s %6s %s\n", "peer", "dir", "address",
		    "age_s", "rtt_us", "score", "protected");
	else
		fprintf(f, "[");
	for (int i = 0; i < n; i++) {
		char id[65], ip[INET6_ADDRSTRLEN], addr[INET6_ADDRSTRLEN + 8];
		mm_hex(p[i].id, 32, id);
		(void)mm_ip_text(p[i].ip, ip, sizeof(ip));
		snprintf(addr, sizeof(addr), "%s:%u", ip, p[i].port);
		if (text) {
			fprintf(f, "%-16.16s %-8s %-39s %8u %8u %6u %s\n", id,
			    p[i].inbound ? "in" : "out", addr, p[i].age_s, p[i].rtt_us, p[i].score,
			    p[i].protected_ ? "yes" : "no");
			continue;
		}
		fprintf(f, "%s{\"id\":\"%s\",\"dir\":\"%s\",\"ip\":\"%s\",\"port\":%u,"
		    "\"age_s\":%u,\"rtt_us\":%u,\"score\":%u,\"protected\":%s,"
		    "\"misbehaviour\":{", i ? "," : "", id,
		    p[i].inbound ? "in" : "out", ip, p[i].port, p[i].age_s, p[i].rtt_us,
		    p[i].score, p[i].protected_ ? "true" : "false");
		int first = 1;
		for (int c = 0; c < MM_NODE_CAUSES; c++)
			if (p[i].misb[c] != 0) {
				fprintf(f, "%s\"%s\":%u", first ? "" : ",", mm_close_reason_name(c),
				    p[i].misb[c]);
				first = 0;
			}
		fprintf(f, "}}");
	}
	if (!text)
		fprintf(f, "]\n");
	free(p);
}

static void
map(mm_admin_t *a, FILE *f, int dot)
{
	const mm_ps_t *ps = mm_node_map(a->node);
	uint32_t span = mm_ps_span(ps);
	mm_pidx_t nb[MM_PS_MAX_NB];
	uint8_t dir[MM_PS_MAX_NB];
	char ia[65], ib[65];
	/* bridges: from an analysis of this moment's map */
	mm_psq_t *q = mm_psq_new();
	mm_ps_graph_t g;
	int cuts = q != NULL && mm_ps_analyse(ps, q, 1, &g) == 0;
	if (dot)
		fprintf(f, "graph meshmap {\n  node [shape=circle, fontsize=9];\n"
		    "  // solid: confirmed by both ends; dashed: claimed by one; "
		    "red and thick: a bridge\n");
	else
		fprintf(f, "{\"peers\":[");
	int first = 1;
	for (mm_pidx_t i = 0; i < span; i++) {
		const uint8_t *id = mm_ps_id(ps, i);
		if (id == NULL || !mm_ps_live(ps, i))
			continue;
		mm_hex(id, 32, ia);
		if (dot)
			fprintf(f, "  \"%.8s\";\n", ia);
		else
			fprintf(f, "%s{\"id\":\"%s\",\"seq\":%u}", first ? "" : ",", ia,
			    mm_ps_seq(ps, i));
		first = 0;
	}
	if (!dot)
		fprintf(f, "],\"edges\":[");
	first = 1;
	for (mm_pidx_t i = 0; i < span; i++) {
		const uint8_t *id = mm_ps_id(ps, i);
		unsigned n = id != NULL ? mm_ps_neighbours(ps, i, nb, dir, MM_PS_MAX_NB) : 0;
		for (unsigned k = 0; k < n; k++) {
			const uint8_t *o = mm_ps_id(ps, nb[k]);
			enum mm_ps_edge st = mm_ps_edge_state(ps, i, nb[k]);
			/* each edge once: confirmed ones from the lower id, others
			 * from their claimer */
			if (o == NULL || (st == MM_EDGE_CONFIRMED && memcmp(id, o, 32) > 0))
				continue;
			mm_hex(id, 32, ia);
			mm_hex(o, 32, ib);
			const char *state = st == MM_EDGE_CONFIRMED ? "confirmed" :
			    st == MM_EDGE_CONFLICT ? "conflict" : "phantom";
			int bridge = cuts && st == MM_EDGE_CONFIRMED && mm_psq_is_bridge(q, i, nb[k]);
			if (dot)
				fprintf(f, "  \"%.8s\" -- \"%.8s\"%s;\n", ia, ib,
				    bridge ? " [color=red, penwidth=3]" :
				    st == MM_EDGE_CONFIRMED ? "" : " [style=dashed]");
			else
				fprintf(f, "%s{\"a\":\"%s\",\"b\":\"%s\",\"state\":\"%s\","
				    "\"bridge\":%s}", first ? "" : ",", ia, ib, state,
				    bridge ? "true" : "false");
			first = 0;
		}
	}
	fprintf(f, dot ? "}\n" : "]}\n");
	mm_psq_free(q);
}

static void
health(mm_admin_t *a, FILE *f)
{
	mm_node_stats_t s;
	mm_node_stats(a->node, &s);
	mm_ps_stats_t ps;
	mm_ps_stats(mm_node_map(a->node), &ps);
	fprintf(f, "{\"status\":\"ok\",\"links\":%u,\"map_peers\":%u,\"components\":%u}\n",
	    mm_node_peers(a->node), ps.records, s.components);
}

/* ---- bans -------------------------------------------------------------------------- */

/* The value of key in a query string ("a=1&b=2"), decoded (%XX and '+'),
 * into out[cap]; 0, or -1 if absent or too long. */
static int
query_get(const char *q, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	for (const char *p = q; p != NULL && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		size_t o = 0;
		for (; *v && *v != '&'; v++) {
			int c = *v;
			if (c == '+')
				c = ' ';
			else if (c == '%' && v[1] && v[2]) {
				char h[3] = {v[1], v[2], 0};
				c = (int)strtol(h, NULL, 16);
				v += 2;
			}
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)c;
		}
		out[o] = '\0';
		return 0;
	}
	return -1;
}

/* "target" is a 64-hex peer id, or an IP address or CIDR range. */
static int
parse_target(const char *t, mm_ban_t *b)
{
	memset(b, 0, sizeof(*b));
	if (strlen(t) == 64 && strspn(t, "0123456789abcdef") == 64) {
		b->kind = MM_BAN_ID;
		for (int i = 0; i < 32; i++) {
			char h[3] = {t[2 * i], t[2 * i + 1], 0};
			b->key[i] = (uint8_t)strtol(h, NULL, 16);
		}
		return 0;
	}
	b->kind = MM_BAN_ADDR;
	return mm_ban_parse_addr(t, b->key, &b->plen);
}

static void
ban_text(const mm_ban_t *b, char *out, size_t cap)
{
	if (b->kind == MM_BAN_ID) {
		mm_hex(b->key, 32, out);
		return;
	}
	char ip[INET6_ADDRSTRLEN];
	(void)mm_ip_text(b->key, ip, sizeof(ip));
	static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned plen = memcmp(b->key, v4, 12) == 0 ? b->plen - 96u : b->plen;
	snprintf(out, cap, "%s/%u", ip, plen);
}

static void
bans_list(mm_admin_t *a, FILE *f, int text)
{
	mm_ban_t *b = calloc(4096, sizeof(*b));
	int n = b != NULL ? mm_node_bans(a->node, b, 4096) : 0;
	if (text)
		fprintf(f, "%-66s %-12s %s\n", "target", "expires_in", "reason");
	else
		fprintf(f, "[");
	uint64_t now = (uint64_t)time(NULL);
	for (int i = 0; i < n; i++) {
		char t[80];
		ban_text(&b[i], t, sizeof(t));
		long left = b[i].expires ? (long)(b[i].expires - now) : -1;
		char exp[24] = "never";
		if (left >= 0)
			snprintf(exp, sizeof(exp), "%lds", left);
		if (text)
			fprintf(f, "%-66s %-12s %s\n", t, exp, b[i].reason);
		else
			fprintf(f, "%s{\"target\":\"%s\",\"kind\":\"%s\",\"expires_in\":%ld,"
			    "\"reason\":\"%s\"}", i ? "," : "", t, b[i].kind == MM_BAN_ID ? "id" : "addr",
			    left, b[i].reason);
	}
	if (!text)
		fprintf(f, "]\n");
	free(b);
}

/* POST /ban?target=..&seconds=..&reason=.. and POST /unban?target=.. */
static int
ban_cmd(mm_admin_t *a, FILE *f, const char *query, int ban)
{
	char target[128], secs[24], reason[MM_BAN_REASON_MAX + 1] = "operator";
	mm_ban_t b;
	if (query == NULL || query_get(query, "target", target, sizeof(target)) != 0 ||
	    parse_target(target, &b) != 0) {
		fprintf(f, "{\"error\":\"target: a 64-hex peer id, an IP address or a CIDR range\"}\n");
		return 400;
	}
	if (!ban) {
		int rc = mm_node_unban(a->node, b.kind, b.key, b.plen);
		fprintf(f, rc == 0 ? "{\"unbanned\":\"%s\"}\n" : "{\"error\":\"no ban on %s\"}\n",
		    target);
		return rc == 0 ? 200 : 404;
	}
	if (query_get(query, "reason", reason, sizeof(reason)) != 0)
		snprintf(reason, sizeof(reason), "operator");
	for (char *c = reason; *c; c++) /* it goes into JSON and logs */
		if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
			*c = '_';
	unsigned long sec = 0;
	if (query_get(query, "seconds", secs, sizeof(secs)) == 0) {
		char *end;
		sec = strtoul(secs, &end, 10);
		if (*end != '\0' || secs[0] == '\0') {
			fprintf(f, "{\"error\":\"seconds: a whole number (0: never expires)\"}\n");
			return 400;
		}
	}
	uint64_t now = (uint64_t)time(NULL);
	b.created = now;
	b.expires = sec ? now + sec : 0;
	snprintf(b.reason, sizeof(b.reason), "%s", reason);
	int rc = mm_node_ban(a->node, &b);
	if (rc != 0) {
		fprintf(f, "{\"error\":\"%s\"}\n", rc == -ENOSPC ? "ban list full" : "bad ban");
		return rc == -ENOSPC ? 507 : 400;
	}
	mm_log(MM_LOG_WARN, "admin: banned %s (%s) for %s", target, reason,
	    sec ? secs : "ever");
	fprintf(f, "{\"banned\":\"%s\",\"expires_in\":%lu}\n", target, sec);
	return 200;
}

/* ---- connect, disconnect, protect ------------------------------------------------------ */

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A peer named by its id, or by a prefix of at least 8 hex digits (what
 * the tables print) that names exactly one linked peer, or else exactly
 * one peer of the map. 0 (*linked: whether it is linked now), or -1 with
 * the problem in f (code in *code). */
static int
resolve_peer(mm_admin_t *a, FILE *f, const char *query, uint8_t id[32], int *linked,
    int *code)
{
	char t[80];
	size_t len = 0;
	if (query == NULL || query_get(query, "target", t, sizeof(t)) != 0 ||
	    (len = strlen(t)) < 8 || len > 64 || strspn(t, "0123456789abcdefABCDEF") != len) {
		fprintf(f, "{\"error\":\"target: a peer id (64 hex digits) or a prefix of at "
		    "least 8\"}\n");
		*code = 400;
		return -1;
	}
	uint8_t pre[32] = {0};
	for (size_t i = 0; i < len; i++)
		pre[i / 2] |= (uint8_t)(hexval(t[i]) << (i % 2 ? 0 : 4));
	/* whole bytes compared, then the odd half byte (a full id: all 32) */
	size_t whole = len / 2;
#define MATCHES(x) (memcmp((x), pre, whole) == 0 && \
	    (len % 2 == 0 || ((x)[whole] & 0xf0) == pre[whole]))
	unsigned found = 0;
	mm_node_peer_info_t *p = calloc(PEERS_MAX, sizeof(*p));
	int n = p != NULL ? mm_node_peer_list(a->node, p, PEERS_MAX, 1000) : -ENOMEM;
	for (int i = 0; i < n; i++)
		if (MATCHES(p[i].id)) {
			if (found++ == 0)
				memcpy(id, p[i].id, 32);
		}
	free(p);
	*linked = found > 0;
	if (len == 64) { /* any id, linked or not */
		memcpy(id, pre, 32);
		return 0;
	}
	if (found == 0) {
		const mm_ps_t *ps = mm_node_map(a->node);
		uint32_t span = mm_ps_span(ps);
		for (mm_pidx_t i = 0; i < span; i++) {
			const uint8_t *x = mm_ps_id(ps, i);
			if (x != NULL && mm_ps_live(ps, i) && MATCHES(x) && found++ == 0)
				memcpy(id, x, 32);
		}
	}
#undef MATCHES
	if (found == 1)
		return 0;
	fprintf(f, "{\"error\":\"%s: %s\"}\n", t, found ? "names several peers; give "
	    "more digits" : "no such peer");
	*code = found ? 400 : 404;
	return -1;
}

/* POST /connect?addr=HOST:PORT: one dial now (the link is then an
 * ordinary one: protect it to keep it). */
static int
connect_cmd(mm_admin_t *a, FILE *f, const char *query)
{
	char addr[300];
	struct sockaddr_storage ss;
	socklen_t len;
	if (query == NULL || query_get(query, "addr", addr, sizeof(addr)) != 0 ||
	    mm_parse_hostport(addr, &ss, &len, 0) != 0) {
		fprintf(f, "{\"error\":\"addr: HOST:PORT\"}\n");
		return 400;
	}
	int rc = mm_node_dial(a->node, (struct sockaddr *)&ss, len);
	if (rc != 0) {
		fprintf(f, "{\"error\":\"cannot dial: %s\"}\n", strerror(-rc));
		return 503;
	}
	mm_log(MM_LOG_INFO, "admin: dialling %s", addr);
	fprintf(f, "{\"dialling\":\"%s\"}\n", addr);
	return 200;
}

static int
disconnect_cmd(mm_admin_t *a, FILE *f, const char *query)
{
	uint8_t id[32];
	int code, linked;
	if (resolve_peer(a, f, query, id, &linked, &code) != 0)
		return code;
	char hex[65];
	mm_hex(id, 32, hex);
	if (!linked) {
		fprintf(f, "{\"error\":\"%s is not linked\"}\n", hex);
		return 404;
	}
	if (mm_node_disconnect(a->node, id) != 0) {
		fprintf(f, "{\"error\":\"the node is busy; try again\"}\n");
		return 503;
	}
	fprintf(f, "{\"disconnected\":\"%s\"}\n", hex);
	return 200;
}

static int
protect_cmd(mm_admin_t *a, FILE *f, const char *query, int on)
{
	uint8_t id[32];
	int code, linked;
	if (resolve_peer(a, f, query, id, &linked, &code) != 0)
		return code;
	char hex[65];
	mm_hex(id, 32, hex);
	int rc = mm_node_protect(a->node, id, on);
	if (rc == -ENOSPC) {
		fprintf(f, "{\"error\":\"at most %d protected peers\"}\n", MM_NODE_PROTECT_MAX);
		return 507;
	}
	if (rc == -ENOENT) {
		fprintf(f, "{\"error\":\"%s was not protected\"}\n", hex);
		return 404;
	}
	mm_log(MM_LOG_INFO, "admin: %s %s", on ? "protected" : "unprotected", hex);
	fprintf(f, "{\"%s\":\"%s\"}\n", on ? "protected" : "unprotected", hex);
	return 200;
}

static void
protected_list(mm_admin_t *a, FILE *f, int text)
{
	uint8_t prot[MM_NODE_PROTECT_MAX][32];
	int n = mm_node_protected(a->node, prot, MM_NODE_PROTECT_MAX);
	fprintf(f, text ? "" : "[");
	for (int i = 0; i < n; i++) {
		char hex[65];
		mm_hex(prot[i], 32, hex);
		fprintf(f, text ? "%s%s\n" : "%s\"%s\"", text || i == 0 ? "" : ",", hex);
	}
	fprintf(f, text ? "" : "]\n");
}

/* ---- HTTP -------------------------------------------------------------------------- */

static void
respond(int fd, int code, const char *reason, const char *type, const char *body,
    size_t len)
{
	char head[256];
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", code, reason, type, len);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	const char *parts[2] = {head, body};
	size_t lens[2] = {(size_t)hl, len};
	for (int k = 0; k < 2; k++)
		for (size_t off = 0; off < lens[k];) {
			if (poll(&p, 1, DEADLINE_MS) != 1)
				return;
			ssize_t w = send(fd, parts[k] + off, lens[k] - off, MSG_NOSIGNAL);
			if (w <= 0)
				return;
			off += (size_t)w;
		}
}

static void
serve(mm_admin_t *a, int fd)
{
	char req[REQ_MAX + 1];
	size_t got = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (got < REQ_MAX && memmem(req, got, "\r\n\r\n", 4) == NULL) {
		if (poll(&p, 1, DEADLINE_MS) != 1)
			return; /* too slow: dropped */
		ssize_t r = recv(fd, req + got, REQ_MAX - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
	}
	req[got] = '\0';
	if (memmem(req, got, "\r\n\r\n", 4) == NULL) {
		respond(fd, 431, "Request Header Fields Too Large", "text/plain", "too large\n", 10);
		return;
	}
	char method[8], target[256];
	if (sscanf(req, "%7s %255s", method, target) != 2) {
		respond(fd, 400, "Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	char *query = strchr(target, '?');
	if (query != NULL)
		*query++ = '\0';
	int post = strcmp(method, "POST") == 0;
	static const char *const gets[] = {"/health", "/metrics", "/peers", "/map", "/bans",
	    "/protected", NULL};
	static const char *const posts[] = {"/ban", "/unban", "/connect", "/disconnect",
	    "/protect", "/unprotect", NULL};
	const char *const *known = post ? posts : gets;
	int found = 0, elsewhere = 0;
	for (int i = 0; known[i] != NULL; i++)
		found |= strcmp(target, known[i]) == 0;
	for (int i = 0; (post ? gets : posts)[i] != NULL; i++)
		elsewhere |= strcmp(target, (post ? gets : posts)[i]) == 0;
	static const char usage[] = "GET /health /metrics /peers /map /bans /protected; "
	    "POST /ban /unban /connect /disconnect /protect /unprotect\n";
	if ((!post && strcmp(method, "GET") != 0) || (!found && elsewhere)) {
		respond(fd, 405, "Method Not Allowed", "text/plain", usage, sizeof(usage) - 1);
		return;
	}
	if (!found) {
		respond(fd, 404, "Not Found", "text/plain", usage, sizeof(usage) - 1);
		return;
	}
	int text = query != NULL && strstr(query, "format=text") != NULL;
	int dot = query != NULL && strstr(query, "format=dot") != NULL;
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);
	if (f == NULL) {
		respond(fd, 500, "Internal Server Error", "text/plain", "no memory\n", 10);
		return;
	}
	const char *type = text ? "text/plain" : "application/json";
	int code = 200;
	if (strcmp(target, "/health") == 0) {
		health(a, f);
		type = "application/json";
	} else if (strcmp(target, "/metrics") == 0) {
		metrics(a, f);
		type = "text/plain; version=0.0.4";
	} else if (strcmp(target, "/peers") == 0) {
		peers(a, f, text);
	} else if (strcmp(target, "/bans") == 0) {
		bans_list(a, f, text);
	} else if (strcmp(target, "/protected") == 0) {
		protected_list(a, f, text);
	} else if (strcmp(target, "/map") == 0) {
		map(a, f, dot);
		type = dot ? "text/vnd.graphviz" : "application/json";
	} else {
		type = "application/json";
		if (strcmp(target, "/ban") == 0 || strcmp(target, "/unban") == 0)
			code = ban_cmd(a, f, query, strcmp(target, "/ban") == 0);
		else if (strcmp(target, "/connect") == 0)
			code = connect_cmd(a, f, query);
		else if (strcmp(target, "/disconnect") == 0)
			code = disconnect_cmd(a, f, query);
		else
			code = protect_cmd(a, f, query, strcmp(target, "/protect") == 0);
	}
	fclose(f);
	respond(fd, code, code == 200 ? "OK" : code == 404 ? "Not Found" :
	    code == 400 ? "Bad Request" : code == 503 ? "Service Unavailable" :
	    "Insufficient Storage", type, body, len);
	free(body);
}

static void *
loop(void *arg)
{
	mm_admin_t *a = arg;
	struct pollfd p[2] = {{.fd = a->fd, .events = POLLIN},
	    {.fd = a->stop_pipe[0], .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve(a, c);
		close(c);
	}
	return NULL;
}

int
mm_admin_start(mm_node_t *node, const char *host, uint16_t port, uint16_t *bound,
    mm_admin_t **out)
{
	mm_admin_t *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->node = node;
	a->fd = -1;
	a->stop_pipe[0] = a->stop_pipe[1] = -1;
	int rc;
	if ((a->fd = mm_listen_fd(host, port, 16, 0, bound)) < 0 ||
	    pipe2(a->stop_pipe, O_CLOEXEC) != 0) {
		rc = a->fd < 0 ? a->fd : -errno;
		mm_admin_stop(a);
		return rc;
	}
	if ((rc = pthread_create(&a->th, NULL, loop, a)) != 0) {
		mm_admin_stop(a);
		return -rc;
	}
	a->running = 1;
	*out = a;
	return 0;
}

void
mm_admin_stop(mm_admin_t *a)
{
	if (a == NULL)
		return;
	if (a->running) {
		ssize_t w = write(a->stop_pipe[1], "x", 1);
		(void)w;
		pthread_join(a->th, NULL);
	}
	if (a->fd >= 0)
		close(a->fd);
	if (a->stop_pipe[0] >= 0)
		close(a->stop_pipe[0]);
	if (a->stop_pipe[1] >= 0)
		close(a->stop_pipe[1]);
	free(a);
}
