/* The embedding API (include/meshmap.h.in) over the node (actors/node.h). */
#include "meshmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "psquery.h"

#define TOPICS (MM_WIRE_SUBS_MAX - 1)

struct topic_cb {
	char name[MM_WIRE_TOPIC_MAX + 1];
	meshmap_msg_cb cb;
	void *arg;
};

struct meshmap {
	meshmap_config_t cfg;
	char *listen, *snapshot, *network, *boots[8];
	mm_identity_t id;
	int id_ok;
	mm_rt_t *rt;
	mm_node_t *node;
	uint16_t port;
	int started, stopped;
	/* callbacks: set from any thread, read on the workers */
	pthread_mutex_t mu;
	struct topic_cb topics[TOPICS];
	meshmap_direct_cb on_direct;
	void *direct_arg;
	meshmap_request_cb on_request;
	void *request_arg;
};

void
meshmap_config_default(meshmap_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->network = "main";
	c->difficulty = MM_POW_DEFAULT;
	c->relay_topics = 1;
}

/* ---- trampolines: node callbacks to the application's -------------------------- */

static void
tr_direct(void *arg, const uint8_t origin[32], const uint8_t *data, uint32_t len,
    int rewritten)
{
	meshmap_t *m = arg;
	(void)rewritten;
	pthread_mutex_lock(&m->mu);
	meshmap_direct_cb cb = m->on_direct;
	void *a = m->direct_arg;
	pthread_mutex_unlock(&m->mu);
	if (cb != NULL)
		cb(a, origin, data, len);
}

static void
tr_bcast(void *arg, const char *topic, uint32_t tl, const uint8_t origin[32],
    const uint8_t *data, uint32_t len)
{
	meshmap_t *m = arg;
	char t[MM_WIRE_TOPIC_MAX + 1];
	memcpy(t, topic, tl);
	t[tl] = '\0';
	meshmap_msg_cb cb = NULL;
	void *a = NULL;
	pthread_mutex_lock(&m->mu);
	for (unsigned i = 0; i < TOPICS; i++)
		if (m->topics[i].cb != NULL && strcmp(m->topics[i].name, t) == 0) {
			cb = m->topics[i].cb;
			a = m->topics[i].arg;
			break;
		}
	pthread_mutex_unlock(&m->mu);
	if (cb != NULL)
		cb(a, t, origin, data, len);
}

static void
tr_request(void *arg, const uint8_t origin[32], uint64_t id, const uint8_t *data,
    uint32_t len)
{
	meshmap_t *m = arg;
	pthread_mutex_lock(&m->mu);
	meshmap_request_cb cb = m->on_request;
	void *a = m->request_arg;
	pthread_mutex_unlock(&m->mu);
	if (cb != NULL)
		cb(a, origin, id, data, len);
	else
		(void)mm_node_respond(m->node, origin, id, MM_RQ_ENOHANDLER,
		    "no request handler", 18);
}

/* ---- life ------------------------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

meshmap_t *
meshmap_new(const meshmap_config_t *c, char *err, size_t errlen)
{
	meshmap_t *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	m->cfg = *c;
	m->listen = dup_or_null(c->listen);
	m->snapshot = dup_or_null(c->snapshot);
	m->network = strdup(c->network != NULL ? c->network : "main");
	for (unsigned i = 0; i < 8 && c->bootstrap[i] != NULL; i++)
		m->boots[i] = strdup(c->bootstrap[i]);
	if (c->key_file != NULL) {
		if (mm_id_load(&m->id, c->key_file, err, errlen) != 0)
			goto fail;
		if (!mm_pow_ok(m->id.pub, m->id.nonce, c->difficulty)) {
			snprintf(err, errlen, "%s: proof of work below %u bits", c->key_file,
			    c->difficulty);
			mm_id_free(&m->id);
			goto fail;
		}
	} else if (mm_id_generate(&m->id, c->difficulty, NULL) != 0) {
		snprintf(err, errlen, "cannot generate an identity");
		goto fail;
	}
	m->id_ok = 1;
	mm_rt_config_t rc;
	mm_rt_config_default(&rc);
	if (c->workers != 0)
		rc.workers = c->workers;
	int rcode = mm_rt_create(&rc, &m->rt);
	if (rcode != 0) {
		snprintf(err, errlen, "runtime: %s", strerror(-rcode));
		goto fail;
	}
	mm_node_config_t nc;
	mm_node_config_default(&nc);
	nc.mem_shed = 0; /* the process's memory is the program's, not ours */
	nc.net.id = &m->id;
	nc.net.network = m->network;
	nc.net.difficulty = c->difficulty;
	nc.gossip.difficulty = c->difficulty;
	if (c->degree != 0)
		nc.degree = c->degree;
	if (c->max_degree != 0)
		nc.max_degree = c->max_degree;
	if (nc.max_degree < nc.degree)
		nc.max_degree = nc.degree;
	nc.snapshot_path = m->snapshot;
	nc.relay_topics = c->relay_topics;
	nc.on_direct = tr_direct;
	nc.on_bcast = tr_bcast;
	nc.on_request = tr_request;
	nc.direct_arg = m;
	if (mm_node_create(m->rt, &nc, &m->node, err, errlen) != 0)
		goto fail;
	return m;
fail:
	meshmap_free(m);
	return NULL;
}

int
meshmap_start(meshmap_t *m)
{
	if (m->started)
		return -EALREADY;
	if (m->listen != NULL) {
		char host[INET6_ADDRSTRLEN] = "";
		uint16_t port;
		if (mm_parse_listen(m->listen, host, &port) != 0)
			return -EINVAL;
		int rc = mm_node_listen(m->node, host, port, &m->port);
		if (rc != 0)
			return rc;
	}
	for (unsigned i = 0; i < 8 && m->boots[i] != NULL; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		if (mm_parse_hostport(m->boots[i], &ss, &sl, 0) != 0)
			return -EINVAL;
		int rc = mm_node_bootstrap(m->node, (struct sockaddr *)&ss, sl);
		if (rc != 0)
			return rc;
	}
	m->started = 1;
	return 0;
}

void
meshmap_stop(meshmap_t *m)
{
	if (m != NULL && m->rt != NULL && !m->stopped) {
		mm_rt_stop(m->rt);
		m->stopped = 1;
	}
}

void
meshmap_free(meshmap_t *m)
{
	if (m == NULL)
		return;
	meshmap_stop(m);
	mm_node_destroy(m->node);
	if (m->rt != NULL)
		mm_rt_destroy(m->rt);
	if (m->id_ok)
		mm_id_free(&m->id);
	free(m->listen);
	free(m->snapshot);
	free(m->network);
	for (unsigned i = 0; i < 8; i++)
		free(m->boots[i]);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void
meshmap_id(const meshmap_t *m, uint8_t id[MESHMAP_ID_LEN])
{
	memcpy(id, m->id.id, 32);
}

uint16_t
meshmap_port(const meshmap_t *m)
{
	return m->port;
}

/* ---- messages ---------------------------------------------------------------------- */

int
meshmap_publish(meshmap_t *m, const char *topic, const void *data, size_t len)
{
	if (len > MM_WIRE_DATA_MAX)
		return -EMSGSIZE;
	return mm_node_publish(m->node, topic, data, (uint32_t)len);
}

int
meshmap_subscribe(meshmap_t *m, const char *topic, meshmap_msg_cb cb, void *arg)
{
	if (topic == NULL || cb == NULL || strlen(topic) == 0 ||
	    strlen(topic) > MM_WIRE_TOPIC_MAX)
		return -EINVAL;
	pthread_mutex_lock(&m->mu);
	int slot = -1;
	for (unsigned i = 0; i < TOPICS; i++) {
		if (m->topics[i].cb != NULL && strcmp(m->topics[i].name, topic) == 0) {
			slot = (int)i;
			break;
		}
		if (m->topics[i].cb == NULL && slot < 0)
			slot = (int)i;
	}
	if (slot >= 0) {
		snprintf(m->topics[slot].name, sizeof(m->topics[slot].name), "%s", topic);
		m->topics[slot].cb = cb;
		m->topics[slot].arg = arg;
	}
	pthread_mutex_unlock(&m->mu);
	return slot < 0 ? -ENOSPC : mm_node_subscribe(m->node, topic);
}

int
meshmap_unsubscribe(meshmap_t *m, const char *topic)
{
	pthread_mutex_lock(&m->mu);
	for (unsigned i = 0; i < TOPICS; i++)
		if (m->topics[i].cb != NULL && strcmp(m->topics[i].name, topic) == 0)
			m->topics[i].cb = NULL;
	pthread_mutex_unlock(&m->mu);
	return mm_node_unsubscribe(m->node, topic);
}

void
meshmap_on_direct(meshmap_t *m, meshmap_direct_cb cb, void *arg)
{
	pthread_mutex_lock(&m->mu);
	m->on_direct = cb;
	m->direct_arg = arg;
	pthread_mutex_unlock(&m->mu);
}

int
meshmap_send_direct(meshmap_t *m, const uint8_t to[MESHMAP_ID_LEN], const void *data,
    size_t len)
{
	if (len + 1 > MM_WIRE_DATA_MAX)
		return -EMSGSIZE;
	return mm_node_send_direct(m->node, to, data, (uint32_t)len, 1, NULL);
}

struct resp {
	meshmap_response_cb cb;
	void *arg;
};

static void
tr_response(void *arg, int status, const uint8_t *data, uint32_t len)
{
	struct resp *r = arg;
	r->cb(r->arg, status, data, len);
	free(r);
}

int
meshmap_request(meshmap_t *m, const uint8_t to[MESHMAP_ID_LEN], const void *data,
    size_t len, uint32_t timeout_ms, meshmap_response_cb cb, void *arg)
{
	if (cb == NULL || len + 9 > MM_WIRE_DATA_MAX)
		return -EINVAL;
	struct resp *r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->cb = cb;
	r->arg = arg;
	int rc = mm_node_request(m->node, to, data, (uint32_t)len, timeout_ms, tr_response, r);
	if (rc != 0)
		free(r);
	return rc;
}

void
meshmap_on_request(meshmap_t *m, meshmap_request_cb cb, void *arg)
{
	pthread_mutex_lock(&m->mu);
	m->on_request = cb;
	m->request_arg = arg;
	pthread_mutex_unlock(&m->mu);
}

int
meshmap_respond(meshmap_t *m, const uint8_t to[MESHMAP_ID_LEN], uint64_t req_id,
    uint32_t code, const void *data, size_t len)
{
	if (len + 13 > MM_WIRE_DATA_MAX)
		return -EMSGSIZE;
	return mm_node_respond(m->node, to, req_id, code, data, (uint32_t)len);
}

/* ---- the map and the statistics --------------------------------------------------- */

void
meshmap_stats(const meshmap_t *m, meshmap_stats_t *o)
{
	memset(o, 0, sizeof(*o));
	mm_node_stats_t s;
	mm_node_stats(m->node, &s);
	mm_ps_stats_t ps;
	mm_ps_stats(mm_node_map(m->node), &ps);
	o->links = mm_node_peers(m->node);
	o->map_peers = ps.records;
	(void)mm_ps_edges_digest(mm_node_map(m->node), &o->map_edges);
	o->components = s.components;
	o->events_in = s.events_in;
	o->events_bad = s.events_bad;
	o->published = s.bcast_published;
	o->broadcasts_delivered = s.bcast_delivered;
	o->direct_sent = s.direct_sent;
	o->direct_delivered = s.direct_delivered;
	o->direct_relayed = s.direct_relayed;
	o->requests_sent = s.requests_sent;
	o->requests_received = s.requests_received;
	o->requests_timed_out = s.requests_timed_out;
	o->bans = s.bans;
}

int
meshmap_neighbours(const meshmap_t *m, const uint8_t id[MESHMAP_ID_LEN], uint8_t *out,
    unsigned cap)
{
	const mm_ps_t *ps = mm_node_map(m->node);
	mm_pidx_t x = mm_ps_lookup(ps, id);
	if (x == MM_PIDX_NONE || !mm_ps_live(ps, x))
		return -1;
	mm_pidx_t nb[MM_PS_MAX_NB];
	unsigned n = mm_ps_neighbours(ps, x, nb, NULL, MM_PS_MAX_NB), k = 0;
	for (unsigned i = 0; i < n && k < cap; i++) {
		const uint8_t *p = mm_ps_id(ps, nb[i]);
		if (p != NULL)
			memcpy(out + 32 * k++, p, 32);
	}
	return (int)k;
}
