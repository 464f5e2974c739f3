#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The one piece of process-wide state: logging is process-wide by nature. */
static int logLevel = LOG_NOTICE;

void log_set_level(int level) { logLevel = level; }
int log_get_level(void) { return logLevel; }

int log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "notice", "warning"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) return i;
    }
    if (strcasecmp(s, "verbose") == 0) return LOG_INFO; /* Redis's name */
    if (strcasecmp(s, "warn") == 0) return LOG_WARNING;
    return -1;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level < logLevel) return;
    static const char marks[] = ".-*#";
    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int off = (int)strftime(line, sizeof line, "%d %b %Y %H:%M:%S", &tm);
    off += snprintf(line + off, sizeof line - (size_t)off, ".%03d %c ",
                    (int)(tv.tv_usec / 1000), marks[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%d:M %s\n", (int)getpid(), line);
}
