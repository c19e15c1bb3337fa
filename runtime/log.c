#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mm__log_level = MM_LOG_WARN;

/* Everything below is under mu: logging is off the fast paths (a line is
 * a syscall anyway), and one lock keeps lines whole and the limiter exact. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;           /* NULL: stderr */
static int as_json;
static unsigned rate_burst = 10, rate_window_s = 10;
static unsigned long long suppressed_total;

/* The limiter's table: call sites by format string address, open
 * addressing, fixed size (a program has a few hundred log sites; when the
 * table is full, sites beyond it share the last probed slot, which only
 * makes the limit stricter). */
#define SITES 512
static struct site {
	const char *fmt;
	uint64_t window;        /* the window this count belongs to */
	unsigned lines;
	unsigned long dropped;  /* since the last line written */
} sites[SITES];

int
mm_log_parse_level(const char *s)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (s != NULL && strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void
mm_log_set_level(int level)
{
	__atomic_store_n(&mm__log_level, level, __ATOMIC_RELAXED);
}

void
mm_log_set_json(int json)
{
	pthread_mutex_lock(&mu);
	as_json = json;
	pthread_mutex_unlock(&mu);
}

void
mm_log_set_rate(unsigned burst, unsigned window_s)
{
	pthread_mutex_lock(&mu);
	rate_burst = burst;
	rate_window_s = window_s ? window_s : 1;
	pthread_mutex_unlock(&mu);
}

unsigned long long
mm_log_suppressed(void)
{
	pthread_mutex_lock(&mu);
	unsigned long long n = suppressed_total;
	pthread_mutex_unlock(&mu);
	return n;
}

int
mm_log_open(const char *path)
{
	FILE *f = NULL;
	if (path != NULL) {
		f = fopen(path, "a");
		if (f == NULL)
			return -errno;
		setvbuf(f, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&mu);
	FILE *old = out;
	out = f;
	pthread_mutex_unlock(&mu);
	if (old != NULL)
		fclose(old);
	return 0;
}

__attribute__((constructor)) static void
log_from_env(void)
{
	int l = mm_log_parse_level(getenv("MESHMAP_LOG"));
	if (l >= 0)
		mm__log_level = l;
}

/* Under mu: may this site write now? *dropped gets what it dropped
 * before (to be reported on this line). */
static int
admit(const char *fmt, uint64_t now_s, unsigned long *dropped)
{
	*dropped = 0;
	if (rate_burst == 0)
		return 1;
	uintptr_t h = (uintptr_t)fmt;
	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15ull;
	unsigned i = (unsigned)(h >> 40) % SITES, probes = 0;
	while (sites[i].fmt != NULL && sites[i].fmt != fmt && probes++ < 8)
		i = (i + 1) % SITES;
	struct site *s = &sites[i];
	uint64_t w = now_s / rate_window_s;
	if (s->fmt != fmt || s->window != w) {
		if (s->fmt != fmt)
			s->dropped = 0;
		s->fmt = fmt;
		s->window = w;
		s->lines = 0;
	}
	if (s->lines >= rate_burst) {
		s->dropped++;
		suppressed_total++;
		return 0;
	}
	s->lines++;
	*dropped = s->dropped;
	s->dropped = 0;
	return 1;
}

/* msg as a JSON string body (quotes, backslashes, control bytes escaped). */
static void
json_text(FILE *f, const char *msg)
{
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
}

void
mm_log_write(int level, const char *fmt, ...)
{
	static const char *tag[] = {"error", "warn", "info", "debug"};
	char msg[1024], ts[80];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (int)(now.tv_nsec / 1000000));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&mu);
	unsigned long dropped;
	if (!admit(fmt, (uint64_t)now.tv_sec, &dropped)) {
		pthread_mutex_unlock(&mu);
		return;
	}
	FILE *f = out != NULL ? out : stderr;
	if (as_json) {
		fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, tag[level & 3]);
		json_text(f, msg);
		if (dropped)
			fprintf(f, "\",\"suppressed\":%lu}\n", dropped);
		else
			fputs("\"}\n", f);
	} else if (dropped) {
		fprintf(f, "%s %s %s (%lu similar lines suppressed)\n", ts, tag[level & 3], msg,
		    dropped);
	} else {
		fprintf(f, "%s %s %s\n", ts, tag[level & 3], msg);
	}
	fflush(f);
	pthread_mutex_unlock(&mu);
}
