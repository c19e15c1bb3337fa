/*
 * Logging: one line per event on stderr, "time level message". The level is
 * set once (mm_log_set_level) or from MESHMAP_LOG=error|warn|info|debug;
 * messages below it cost one comparison.
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
void mm_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define mm_log(level, ...)                                                     \
	do {                                                                   \
		if ((level) <= mm__log_level)                                  \
			mm_log_write((level), __VA_ARGS__);                    \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif
