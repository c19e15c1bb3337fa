#include "psquery.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct mm_psq {
	uint32_t cap;
	uint32_t gen;      /* visit stamp: mark[i] == gen means visited */
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
mm_ps_analyse(const mm_ps_t *ps, mm_psq_t *q, int want_cuts, mm_ps_graph_t *out)
{
	uint32_t span = mm_ps_span(ps), stamp;
	memset(out, 0, sizeof(*out));
	if (prepare(q, span, &stamp) != 0 || grow(&q->off, span + 1) != 0)
		return -ENOMEM;

	/* Snapshot the confirmed graph as CSR. Each record is read once;
	 * an edge is kept only if it is confirmed when its first end is read,
	 * and both directions are stored. */
	mm_pidx_t nb[MM_PS_MAX_NB];
	uint64_t e = 0;
	for (uint32_t u = 0; u < span; u++) {
		q->off[u] = (uint32_t)e;
		if (!mm_ps_live(ps, u))
			continue;
		out->nodes++;
		unsigned n = mm_ps_confirmed(ps, u, nb, MM_PS_MAX_NB);
		if (e + n > q->adj_cap) {
			uint64_t nc = (e + n) * 2 + 1024;
			uint32_t *na = realloc(q->adj, nc * sizeof(uint32_t));
			if (na == NULL)
				return -ENOMEM;
			q->adj = na;
			q->adj_cap = nc;
		}
		for (unsigned i = 0; i < n; i++)
			if (nb[i] < span && mm_ps_live(ps, nb[i]))
				q->adj[e++] = nb[i];
	}
	q->off[span] = (uint32_t)e;
	out->edges = e / 2;

	/* Components: BFS over the snapshot. */
	for (uint32_t r = 0; r < span; r++) {
		if (q->mark[r] == stamp || !mm_ps_live(ps, r))
			continue;
		uint32_t h = 0, t = 0;
		q->queue[t++] = r;
		q->mark[r] = stamp;
		while (h < t) {
			uint32_t u = q->queue[h++];
			for (uint32_t k = q->off[u]; k < q->off[u + 1]; k++)
				if (q->mark[q->adj[k]] != stamp) {
					q->mark[q->adj[k]] = stamp;
					q->queue[t++] = q->adj[k];
				}
		}
		out->components++;
		if (t > out->largest)
			out->largest = t;
	}
	if (!want_cuts)
		return 0;

	/* Bridges and articulation points: Tarjan's lowlink, iterative (a
	 * path of 100k peers would overflow a recursive one). */
	if (grow(&q->disc, span) || grow(&q->low, span) || grow(&q->it, span))
		return -ENOMEM;
	memset(q->disc, 0, (size_t)span * sizeof(uint32_t));
	uint32_t timer = 1;
	uint32_t *stack = q->queue, *parent = q->parent;
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
	return 0;
}
