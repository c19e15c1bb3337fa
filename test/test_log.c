/* The log: file output, JSON lines, the per-site rate limit and its
 * "suppressed" report, a reopen after a rotation, and lines kept whole
 * when several threads write at once. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

static char path[256];

static unsigned
count_lines(const char *p, const char *needle)
{
	FILE *f = fopen(p, "r");
	CHECK(f != NULL);
	char line[2048];
	unsigned n = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (needle == NULL || strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

static void
test_rate_limit(void)
{
	mm_log_set_rate(10, 3600); /* one window for the whole test */
	mm_log_set_json(0);
	unsigned long long before = mm_log_suppressed();
	for (int i = 0; i < 100; i++)
		mm_log(MM_LOG_WARN, "flood line %d", i);
	mm_log(MM_LOG_WARN, "another site");
	CHECK_EQ(count_lines(path, "flood line"), 10);
	CHECK_EQ(count_lines(path, "another site"), 1);
	CHECK_EQ(mm_log_suppressed() - before, 90);
	/* below the level: not written, not counted */
	mm_log(MM_LOG_DEBUG, "flood line %d", -1);
	CHECK_EQ(mm_log_suppressed() - before, 90);
	fprintf(stderr, "   100 lines from one site: 10 written, 90 suppressed\n");
}

static void
test_window_report(void)
{
	/* A 1 s window: after it rolls, the next line of the site says how
	 * many it lost. (The sleep waits for the window; nothing is timed.) */
	mm_log_set_rate(2, 1);
	/* start right after a second begins, so that the 7 lines share one
	 * window */
	time_t s0 = time(NULL);
	while (time(NULL) == s0)
		test_sleep_ms(5);
	for (int i = 0; i < 7; i++)
		mm_log(MM_LOG_WARN, "windowed %d", i);
	test_sleep_ms(2100);
	mm_log(MM_LOG_WARN, "windowed %d", 99);
	CHECK_EQ(count_lines(path, "windowed"), 3);
	CHECK_EQ(count_lines(path, "windowed 99 (5 similar lines suppressed)"), 1);
}

static void
test_json(void)
{
	mm_log_set_rate(0, 1); /* no limit */
	mm_log_set_json(1);
	mm_log(MM_LOG_ERROR, "quote \" backslash \\ tab \t end");
	mm_log_set_json(0);
	CHECK_EQ(count_lines(path,
	    "\"level\":\"error\",\"msg\":\"quote \\\" backslash \\\\ tab \\u0009 end\"}"), 1);
}

static void *
writer(void *arg)
{
	for (int i = 0; i < 500; i++)
		mm_log(MM_LOG_WARN, "thread %ld line %d %s", (long)(intptr_t)arg, i,
		    "................................................................");
	return NULL;
}

static void
test_threads(void)
{
	mm_log_set_rate(0, 1);
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* every line whole: starts with a time stamp, ends with the dots */
	FILE *f = fopen(path, "r");
	char line[2048];
	unsigned n = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, " thread ") == NULL)
			continue;
		CHECK(line[4] == '-' && line[10] == 'T');
		CHECK(strstr(line, "..........\n") != NULL);
		n++;
	}
	fclose(f);
	CHECK_EQ(n, 2000);
}

static void
test_reopen(void)
{
	char moved[300];
	snprintf(moved, sizeof(moved), "%s.1", path);
	CHECK_EQ(rename(path, moved), 0);
	CHECK_EQ(mm_log_open(path), 0); /* what a reload does */
	mm_log(MM_LOG_WARN, "after the rotation");
	CHECK_EQ(count_lines(path, NULL), 1);
	CHECK_EQ(count_lines(moved, "after the rotation"), 0);
	CHECK(mm_log_open("/nonexistent-dir/x.log") < 0);
	mm_log(MM_LOG_WARN, "still here");
	CHECK_EQ(count_lines(path, "still here"), 1);
	unlink(moved);
}

int
main(void)
{
	snprintf(path, sizeof(path), "/tmp/meshmap_test_log.%d", (int)getpid());
	unlink(path);
	CHECK_EQ(mm_log_open(path), 0);
	mm_log_set_level(MM_LOG_WARN);
	RUN(test_rate_limit);
	RUN(test_window_report);
	RUN(test_json);
	RUN(test_threads);
	RUN(test_reopen);
	CHECK_EQ(mm_log_open(NULL), 0);
	unlink(path);
	return 0;
}
