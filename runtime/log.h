/*
 * Logging: one line per event, "time level message" (text) or one JSON
 * object per line ({"ts","level","msg"}, and "suppressed" on the summary
 * lines), to stderr or a file. The level is set with mm_log_set_level or
 * from MESHMAP_LOG=error|warn|info|debug; messages below it cost one
 * comparison.
 *
 * Rate limit: each call site (its format string) may write at most
 * `burst` lines per `window_s` seconds; the rest are counted and dropped,
 * and the first line of that site in a later window says how many were
 * suppressed. A flood of bad frames therefore costs a few lines, not one
 * per frame. Default 10 lines per 10 s; burst 0: no limit.
 */
#ifndef MM_LOG_H
#define MM_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum mm_log_level { MM_LOG_ERROR = 0, MM_LOG_WARN, MM_LOG_INFO, MM_LOG_DEBUG };

extern int mm__log_level;
void mm_log_set_level(int level);
/* Parse "error", "warn", "info", "debug": the level, or -1. */
int mm_log_parse_level(const char *s);
/* 0 text, 1 JSON lines. */
void mm_log_set_json(int json);
/* Append to path from now on (NULL: back to stderr). A file already open
 * is closed after the switch (a reload reopens the same path: logrotate).
 * 0 or -errno (the output is unchanged then). */
int mm_log_open(const char *path);
void mm_log_set_rate(unsigned burst, unsigned window_s);
/* Lines dropped by the rate limit since the start. */
unsigned long long mm_log_suppressed(void);
void mm_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define mm_log(level, ...)                                                     \
	do {                                                                   \
		if ((level) <= __atomic_load_n(&mm__log_level,                 \
		        __ATOMIC_RELAXED))                                     \
			mm_log_write((level), __VA_ARGS__);                    \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif
