#include "psquery.h"

#include "siphash.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct mm_psq {
	uint32_t cap;
	uint32_t gen;      /* visit stamp: mark[i] == gen means visited */
	uint32_t reach;    /* the stamp of the last mm_ps_reach, 0: none */
	uint32_t an_span;  /* span of the last analysis with cuts, 0: none */
	uint32_t *mark;
	uint32_t *parent;
	uint32_t *queue;
	/* analysis */
	uint32_t *off, *adj, *disc, *low, *it;
	uint64_t adj_cap;
};

mm_psq_t *
mm_psq_new(void)
{
	return calloc(1, sizeof(mm_psq_t));
}

void
mm_psq_free(mm_psq_t *q)
{
	if (q == NULL)
		return;
	free(q->mark);
	free(q->parent);
	free(q->queue);
	free(q->off);
	free(q->adj);
	free(q->disc);
	free(q->low);
	free(q->it);
	free(q);
}

static int
grow(uint32_t **p, uint32_t n)
{
	uint32_t *np = realloc(*p, (size_t)n * sizeof(uint32_t));
	if (np == NULL)
		return -ENOMEM;
	*p = np;
	return 0;
}

/* Make room for span indices; returns a fresh visit stamp. */
static int
prepare(mm_psq_t *q, uint32_t span, uint32_t *stamp)
{
	if (span > q->cap) {
		uint32_t n = span + span / 4 + 64;
		if (grow(&q->mark, n) || grow(&q->parent, n) || grow(&q->queue, n))
			return -ENOMEM;
		memset(q->mark, 0, (size_t)n * sizeof(uint32_t));
		q->cap = n;
		q->gen = 0;
	}
	if (++q->gen == 0) { /* wrapped: clear once every 2^32 queries */
		memset(q->mark, 0, (size_t)q->cap * sizeof(uint32_t));
		q->gen = 1;
	}
	*stamp = q->gen;
	return 0;
}

unsigned
mm_ps_overlap(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t cand,
    const mm_pidx_t *set, unsigned nset)
{
	mm_pidx_t nb[MM_PS_MAX_NB];
	unsigned n = mm_ps_confirmed(ps, cand, nb, MM_PS_MAX_NB), c = 0;
	(void)q;
	/* Both sides hold at most a few dozen entries: a double loop beats
	 * any set structure here. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < nset; j++)
			if (nb[i] == set[j]) {
				c++;
				break;
			}
	return c;
}

unsigned
mm_ps_topk_least_overlap(const mm_ps_t *ps, mm_psq_t *q,
    const mm_pidx_t *cands, unsigned ncand, const mm_pidx_t *set,
    unsigned nset, unsigned k, mm_pidx_t *out, unsigned *overlaps)
{
	uint32_t span = mm_ps_span(ps), stamp;
	if (k == 0 || prepare(q, span, &stamp) != 0)
		return 0;
	for (unsigned j = 0; j < nset; j++)
		if (set[j] < span)
			q->mark[set[j]] = stamp;
	/* Insertion into a sorted array of k: k is small (the neighbours we
	 * still want, <= 12). */
	unsigned have = 0;
	unsigned ov[MM_PS_MAX_NB * 4];
	if (k > sizeof(ov) / sizeof(ov[0]))
		k = sizeof(ov) / sizeof(ov[0]);
	mm_pidx_t nb[MM_PS_MAX_NB];
	for (unsigned i = 0; i < ncand; i++) {
		mm_pidx_t c = cands[i];
		if (c >= span || q->mark[c] == stamp)
			continue;
		unsigned n = mm_ps_confirmed(ps, c, nb, MM_PS_MAX_NB), o = 0;
		for (unsigned j = 0; j < n; j++)
			o += nb[j] < span && q->mark[nb[j]] == stamp;
		if (have == k && (o > ov[k - 1] || (o == ov[k - 1] && c > out[k - 1])))
			continue;
		unsigned pos = have < k ? have++ : k - 1;
		while (pos > 0 && (ov[pos - 1] > o ||
		    (ov[pos - 1] == o && out[pos - 1] > c))) {
			ov[pos] = ov[pos - 1];
			out[pos] = out[pos - 1];
			pos--;
		}
		ov[pos] = o;
		out[pos] = c;
	}
	if (overlaps != NULL)
		memcpy(overlaps, ov, have * sizeof(unsigned));
	return have;
}

int
mm_ps_path(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t src, mm_pidx_t dst,
    mm_pidx_t *path, unsigned cap)
{
	uint32_t span = mm_ps_span(ps), stamp;
	if (src >= span || dst >= span)
		return -ENOENT;
	if (prepare(q, span, &stamp) != 0)
		return -ENOMEM;
	uint32_t h = 0, t = 0;
	q->mark[src] = stamp;
	q->parent[src] = MM_PIDX_NONE;
	q->queue[t++] = src;
	bool found = src == dst;
	mm_pidx_t nb[MM_PS_MAX_NB];
	while (h < t && !found) {
		uint32_t u = q->queue[h++];
		unsigned n = mm_ps_confirmed(ps, u, nb, MM_PS_MAX_NB);
		for (unsigned i = 0; i < n; i++) {
			uint32_t v = nb[i];
			if (v >= span || q->mark[v] == stamp)
				continue;
			q->mark[v] = stamp;
			q->parent[v] = u;
			if (v == dst) {
				found = true;
				break;
			}
			q->queue[t++] = v;
		}
	}
	if (!found)
		return -ENOENT;
	unsigned len = 0;
	for (uint32_t v = dst; v != MM_PIDX_NONE; v = q->parent[v])
		len++;
	if (len > cap)
		return -ENOSPC;
	unsigned i = len;
	for (uint32_t v = dst; v != MM_PIDX_NONE; v = q->parent[v])
		path[--i] = v;
	return (int)len;
}

int
mm_ps_reach(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t src)
{
	uint32_t span = mm_ps_span(ps), stamp;
	q->reach = 0;
	if (src >= span)
		return 0;
	if (prepare(q, span, &stamp) != 0)
		return -ENOMEM;
	uint32_t h = 0, t = 0;
	q->mark[src] = stamp;
	q->queue[t++] = src;
	mm_pidx_t nb[MM_PS_MAX_NB];
	while (h < t) {
		uint32_t u = q->queue[h++];
		unsigned n = mm_ps_confirmed(ps, u, nb, MM_PS_MAX_NB);
		for (unsigned i = 0; i < n; i++)
			if (nb[i] < span && q->mark[nb[i]] != stamp) {
				q->mark[nb[i]] = stamp;
				q->queue[t++] = nb[i];
			}
	}
	q->reach = stamp;
	return (int)t;
}

int
mm_psq_reached(const mm_psq_t *q, mm_pidx_t idx)
{
	return q->reach != 0 && q->reach == q->gen && idx < q->cap &&
	    q->mark[idx] == q->reach;
}

static uint32_t
uf_find(uint32_t *parent, uint32_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]]; /* path halving */
		x = parent[x];
	}
	return x;
}

/* u's confirmed edges towards higher indices (below span), into out: each
 * edge once, from its lower end. u's claim of v is confirmed if v claims
 * u the other way round. Returns how many. */
static unsigned
upper_confirmed(const mm_ps_t *ps, uint32_t u, uint32_t span, uint32_t *out)
{
	mm_pidx_t nb[MM_PS_MAX_NB];
	uint8_t dir[MM_PS_MAX_NB];
	unsigned n = mm_ps_neighbours(ps, u, nb, dir, MM_PS_MAX_NB), k = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t v = nb[i];
		if (v <= u || v >= span)
			continue;
		int rd = mm_ps_claim_dir(ps, v, u);
		if (rd < 0 || rd == dir[i])
			continue; /* phantom or conflict */
		out[k++] = v;
	}
	return k;
}

int
mm_ps_analyse(const mm_ps_t *ps, mm_psq_t *q, int want_cuts, mm_ps_graph_t *out)
{
	uint32_t span = mm_ps_span(ps), stamp;
	memset(out, 0, sizeof(*out));
	q->an_span = 0;
	if (prepare(q, span, &stamp) != 0)
		return -ENOMEM;

	/* One pass over the records. Each edge is checked once, from its
	 * lower index: u's claim of v (v > u) is confirmed if v claims u the
	 * other way round. Components come from union-find over those pairs
	 * (parent in q->parent, sizes in q->queue); when bridges and
	 * articulation points are wanted, the pass also counts each node's
	 * confirmed edges (in q->mark) for the adjacency built after it. */
	uint32_t *parent = q->parent, *size = q->queue, *deg = q->mark;
	uint32_t up[MM_PS_MAX_NB];
	if (want_cuts)
		memset(deg, 0, (size_t)span * sizeof(uint32_t));
	for (uint32_t u = 0; u < span; u++) {
		parent[u] = u;
		size[u] = 1;
	}
	for (uint32_t u = 0; u < span; u++) {
		if (!mm_ps_live(ps, u))
			continue;
		out->nodes++;
		unsigned n = upper_confirmed(ps, u, span, up);
		for (unsigned i = 0; i < n; i++) {
			uint32_t v = up[i];
			out->edges++;
			if (want_cuts) {
				deg[u]++;
				deg[v]++;
			}
			uint32_t a = uf_find(parent, u), b = uf_find(parent, v);
			if (a != b) {
				if (size[a] < size[b]) {
					uint32_t t = a;
					a = b;
					b = t;
				}
				parent[b] = a;
				size[a] += size[b];
			}
		}
	}
	for (uint32_t u = 0; u < span; u++) {
		if (parent[u] != u || !mm_ps_live(ps, u))
			continue;
		out->components++;
		out->isolated += size[u] == 1;
		if (size[u] > out->largest)
			out->largest = size[u];
	}
	if (!want_cuts)
		return 0;

	/* Adjacency (CSR) for the depth-first search: a second pass over the
	 * records fills what the first counted. Not from a list of the pairs
	 * kept by the first pass: at 100k peers that list (4.8 MB) and the
	 * CSR would both be resident at the peak, against a 50 MB node. The
	 * map may change between the passes (shard writers): a node never
	 * gets more entries than counted, and a slot left unfilled points to
	 * the node itself (a self-loop changes no lowlink). */
	if (grow(&q->off, span + 1) != 0)
		return -ENOMEM;
	q->off[0] = 0;
	for (uint32_t u = 0; u < span; u++)
		q->off[u + 1] = q->off[u] + deg[u];
	if ((uint64_t)q->off[span] + 1 > q->adj_cap) {
		free(q->adj);
		q->adj_cap = 0;
		if ((q->adj = malloc(((size_t)q->off[span] + 1) * sizeof(uint32_t))) == NULL)
			return -ENOMEM;
		q->adj_cap = (uint64_t)q->off[span] + 1;
	}
	uint32_t *csr = q->adj;
	for (uint32_t u = 0; u < span; u++)
		deg[u] = q->off[u];
	for (uint32_t u = 0; u < span; u++) {
		if (!mm_ps_live(ps, u))
			continue;
		unsigned n = upper_confirmed(ps, u, span, up);
		for (unsigned i = 0; i < n; i++) {
			uint32_t v = up[i];
			if (deg[u] >= q->off[u + 1] || deg[v] >= q->off[v + 1])
				continue;
			csr[deg[u]++] = v;
			csr[deg[v]++] = u;
		}
	}
	for (uint32_t u = 0; u < span; u++)
		while (deg[u] < q->off[u + 1])
			csr[deg[u]++] = u;
	memset(q->mark, 0, (size_t)q->cap * sizeof(uint32_t));
	q->gen = 0;

	/* Bridges and articulation points: Tarjan's lowlink, iterative (a
	 * path of 100k peers would overflow a recursive one). */
	if (grow(&q->disc, span) || grow(&q->low, span) || grow(&q->it, span))
		return -ENOMEM;
	memset(q->disc, 0, (size_t)span * sizeof(uint32_t));
	uint32_t timer = 1;
	uint32_t *stack = q->queue;
	uint8_t *art = calloc(span ? span : 1, 1);
	if (art == NULL)
		return -ENOMEM;
	for (uint32_t r = 0; r < span; r++) {
		if (q->disc[r] != 0 || q->off[r] == q->off[r + 1])
			continue;
		uint32_t sp = 0, root_children = 0;
		stack[sp++] = r;
		q->disc[r] = q->low[r] = timer++;
		parent[r] = MM_PIDX_NONE;
		q->it[r] = q->off[r];
		while (sp > 0) {
			uint32_t u = stack[sp - 1];
			if (q->it[u] < q->off[u + 1]) {
				uint32_t v = q->adj[q->it[u]++];
				if (q->disc[v] == 0) {
					parent[v] = u;
					q->disc[v] = q->low[v] = timer++;
					q->it[v] = q->off[v];
					stack[sp++] = v;
					if (u == r)
						root_children++;
				} else if (v != parent[u] && q->disc[v] < q->low[u]) {
					q->low[u] = q->disc[v];
				}
				continue;
			}
			sp--;
			uint32_t p = parent[u];
			if (p == MM_PIDX_NONE)
				continue;
			if (q->low[u] < q->low[p])
				q->low[p] = q->low[u];
			if (q->low[u] > q->disc[p])
				out->bridges++;
			if (p != r && q->low[u] >= q->disc[p] && !art[p]) {
				art[p] = 1;
				out->articulation++;
			}
		}
		if (root_children > 1) {
			art[r] = 1;
			out->articulation++;
		}
	}
	free(art);
	q->an_span = span;
	return 0;
}

uint64_t
mm_ps_edge_hash(const uint8_t a[MM_ID_LEN], const uint8_t b[MM_ID_LEN])
{
	uint8_t k[2 * MM_ID_LEN];
	int lo = memcmp(a, b, MM_ID_LEN) < 0;
	memcpy(k, lo ? a : b, MM_ID_LEN);
	memcpy(k + MM_ID_LEN, lo ? b : a, MM_ID_LEN);
	return mm_siphash13(0, 0, k, sizeof(k));
}

uint64_t
mm_ps_edges_digest(const mm_ps_t *ps, uint64_t *nedges)
{
	uint32_t span = mm_ps_span(ps);
	uint64_t sum = 0, cnt = 0;
	mm_pidx_t nb[MM_PS_MAX_NB];
	for (mm_pidx_t i = 0; i < span; i++) {
		const uint8_t *a = mm_ps_id(ps, i);
		unsigned n = a != NULL ? mm_ps_confirmed(ps, i, nb, MM_PS_MAX_NB) : 0;
		for (unsigned k = 0; k < n; k++) {
			const uint8_t *b = mm_ps_id(ps, nb[k]);
			/* Each edge once: from its end with the lower id. */
			if (b == NULL || memcmp(a, b, MM_ID_LEN) >= 0)
				continue;
			sum += mm_ps_edge_hash(a, b);
			cnt++;
		}
	}
	if (nedges != NULL)
		*nedges = cnt;
	return sum;
}

/* In the DFS forest of the analysis, a tree edge parent-child is a
 * bridge when nothing below the child reaches above it (low > disc). */
static int
lowlink_bridge(const mm_psq_t *q, uint32_t u, uint32_t v)
{
	return (q->parent[v] == u && q->low[v] > q->disc[u]) ||
	    (q->parent[u] == v && q->low[u] > q->disc[v]);
}

int
mm_psq_is_bridge(const mm_psq_t *q, mm_pidx_t u, mm_pidx_t v)
{
	if (u >= q->an_span || v >= q->an_span || u == v)
		return 0;
	return lowlink_bridge(q, u, v);
}

int
mm_psq_bridge_side(const mm_ps_t *ps, mm_psq_t *q, mm_pidx_t src, uint8_t *cls,
    uint32_t ncls)
{
	memset(cls, 0, ncls);
	/* the CSR and the lowlink arrays of the last analysis cover [0, n) */
	uint32_t n = ncls < q->an_span ? ncls : q->an_span;
	if (src >= n)
		return 0;
	uint32_t *queue = q->queue;
	/* pass 1: without crossing a bridge (cls 1); pass 2: the rest of the
	 * component (cls 2) */
	for (uint8_t pass = 1; pass <= 2; pass++) {
		uint32_t h = 0, t = 0;
		for (uint32_t u = 0; u < n && pass == 2; u++)
			if (cls[u] == 1)
				queue[t++] = u;
		if (pass == 1) {
			cls[src] = 1;
			queue[t++] = src;
		}
		while (h < t) {
			uint32_t u = queue[h++];
			for (uint32_t k = q->off[u]; k < q->off[u + 1]; k++) {
				uint32_t v = q->adj[k];
				if (v >= n || cls[v] != 0)
					continue;
				if (pass == 1 && lowlink_bridge(q, u, v))
					continue;
				cls[v] = pass;
				queue[t++] = v;
			}
		}
	}
	int same = 0;
	for (uint32_t u = 0; u < n; u++) {
		if (cls[u] == 1)
			same++;
		else if (cls[u] == 0 && mm_ps_live(ps, u))
			cls[u] = 3;
	}
	return same;
}
