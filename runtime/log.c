#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mm__log_level = MM_LOG_WARN;

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
	mm__log_level = level;
}

__attribute__((constructor)) static void
log_from_env(void)
{
	int l = mm_log_parse_level(getenv("MESHMAP_LOG"));
	if (l >= 0)
		mm__log_level = l;
}

void
mm_log_write(int level, const char *fmt, ...)
{
	static const char *tag[] = {"error", "warn", "info", "debug"};
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000, tag[level & 3]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line: lines from several threads do not interleave. */
	fprintf(stderr, "%s\n", line);
}
