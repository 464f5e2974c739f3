/* replay: run a fuzz target's LLVMFuzzerTestOneInput on files, without
 * libFuzzer, so the corpus in fuzz/corpus/ replays in the normal test suite
 * (gcc, and gcc with ASan+UBSan) and any crash found once stays fixed.
 *
 *   replay_<target> PATH...
 *
 * Each PATH is a file or a directory (its regular files, in name order; not
 * recursive). Every input is fed once, in an exact-size heap copy. Exits 0
 * when all ran (a target reports a finding by aborting, as under libFuzzer),
 * 1 when a path cannot be read or holds no input at all. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as under libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fprintf(stderr, "replay: out of memory\n");
            exit(1);
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return -1;
    }
    /* Exact size, so ASan sees a read past the end. */
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(1);
    }
    memcpy(copy, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The number of inputs run, or -1. */
static long run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return run_file(path) == 0 ? 1 : -1;
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
        }
        char *full = NULL;
        if (names == NULL || asprintf(&full, "%s/%s", path, e->d_name) < 0) {
            fprintf(stderr, "replay: out of memory\n");
            exit(1);
        }
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            names[n++] = full;
        } else {
            free(full);
        }
    }
    closedir(d);
    if (n > 0) qsort(names, n, sizeof *names, by_name);
    long ran = 0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (run_file(names[i]) == 0) ran++;
        else failed = 1;
        free(names[i]);
    }
    free(names);
    return failed ? -1 : ran;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL) LLVMFuzzerInitialize(&argc, &argv);
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n < 0) return 1;
        if (n == 0) {
            fprintf(stderr, "replay: %s: no input\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("replay: %ld input(s) ran\n", total);
    return 0;
}
