/* log: leveled logging to stderr, one line per event, Redis-style prefix
 * (pid:role timestamp level). Not thread-safe beyond what stdio guarantees
 * for single fprintf calls, which is enough for one loop plus workers. */
#ifndef GCS_LOG_H
#define GCS_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_NOTICE = 2, LOG_WARNING = 3 };

void log_set_level(int level);
int log_get_level(void);
/* Parse "debug|info|notice|warning"; returns -1 when unknown. */
int log_level_parse(const char *s);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)

#endif /* GCS_LOG_H */
