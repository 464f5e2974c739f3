/* Malformed input: Redis's exact protocol errors, the connection closed after
 * the reply, the server and its other clients unaffected, nothing lost. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "expect.h"
#include "harness.h"

HARNESS_SERVER_SUITE(protocol, "", 120);

static int rawConnect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Read until the peer closes or @ms pass; returns bytes read. */
static size_t readAll(int fd, char *buf, size_t cap, int ms, bool *closed)
{
    size_t len = 0;
    *closed = false;
    long long deadline = harness_now_ms() + ms;
    while (len < cap - 1) {
        long long left = deadline - harness_now_ms();
        if (left <= 0) break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) break;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

static void expectExchange(const char *send, const char *want, bool closes)
{
    int fd = rawConnect();
    cr_assert_eq(write(fd, send, strlen(send)), (ssize_t)strlen(send));
    char buf[4096];
    bool closed;
    readAll(fd, buf, sizeof buf, closes ? 5000 : 300, &closed);
    cr_assert_str_eq(buf, want, "for input %s", send);
    cr_assert_eq(closed, closes, "closed=%d for input %s", closed, send);
    close(fd);
}

Test(protocol, errors_close_the_connection)
{
    redisContext *c = harness_connect(&srv);
    EXPECT_STATUS(c, "OK", "SET precious data");

    expectExchange("*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n",
                   true);
    expectExchange("*99999999999\r\n",
                   "-ERR Protocol error: invalid multibulk length\r\n", true);
    expectExchange("*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n",
                   true);
    expectExchange("*1\r\n$99999999999999\r\n",
                   "-ERR Protocol error: invalid bulk length\r\n", true);
    expectExchange("*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got "
                   "'+'\r\n", true);
    expectExchange("SET \"a b\r\n",
                   "-ERR Protocol error: unbalanced quotes in request\r\n", true);
    /* A valid command before the error still gets its reply first. */
    expectExchange("PING\r\n*x\r\n", "+PONG\r\n-ERR Protocol error: invalid "
                   "multibulk length\r\n", true);

    /* Inline commands work, and the connection stays open. */
    expectExchange("PING\r\n", "+PONG\r\n", false);
    expectExchange("SET inl \"a b\"\r\nGET inl\n", "+OK\r\n$3\r\na b\r\n", false);
    expectExchange("\r\n\r\nPING\r\n", "+PONG\r\n", false);

    /* The other client never noticed. */
    EXPECT_BULK(c, "data", "GET precious");
    redisFree(c);
}

Test(protocol, command_errors_keep_the_connection)
{
    expectExchange("*1\r\n$6\r\nNOSUCH\r\nPING\r\n",
                   "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
                   "+PONG\r\n", false);
    expectExchange("*1\r\n$3\r\nGET\r\nPING\r\n",
                   "-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n",
                   false);
}

/* Seeded random garbage on many connections: the server survives and the
 * data is intact. */
Test(protocol, garbage_does_not_hurt)
{
    redisContext *c = harness_connect(&srv);
    EXPECT_STATUS(c, "OK", "SET precious data");
    unsigned seed = 12345;
    const char *alphabet = "*$+-:\r\n0123456789-abcPINGSET ";
    for (int conn = 0; conn < 200; conn++) {
        int fd = rawConnect();
        char junk[512];
        size_t len = (size_t)(rand_r(&seed) % sizeof junk);
        for (size_t i = 0; i < len; i++) {
            junk[i] = rand_r(&seed) % 2 ? alphabet[rand_r(&seed) % strlen(alphabet)]
                                        : (char)rand_r(&seed);
        }
        if (write(fd, junk, len) < 0) { /* peer may have closed: fine */ }
        close(fd);
    }
    EXPECT_BULK(c, "data", "GET precious");
    EXPECT_STATUS(c, "PONG", "PING");
    redisFree(c);
}

/* A client that sends a request in single bytes is served correctly. */
Test(protocol, byte_by_byte)
{
    int fd = rawConnect();
    const char *req = "*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$3\r\nv\0v\r\n*2\r\n$3\r\nGET\r\n$2\r\nbb\r\n";
    size_t len = 51; /* the two requests above */
    for (size_t i = 0; i < len; i++) {
        cr_assert_eq(write(fd, req + i, 1), 1);
    }
    char buf[256];
    bool closed;
    size_t n = readAll(fd, buf, sizeof buf, 1000, &closed);
    cr_assert_eq(n, 5 + 4 + 5);
    cr_assert(memcmp(buf, "+OK\r\n$3\r\nv\0v\r\n", n) == 0);
    close(fd);
}

/* A client that sends its requests and then shuts down its sending side
 * still gets every reply, then the connection closes (as in Redis). */
Test(protocol, replies_after_client_eof)
{
    int fd = rawConnect();
    const char *req = "SET eofkey 1\r\nINCR eofctr\r\n*2\r\n$3\r\nGET\r\n";
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    char buf[256];
    bool closed;
    readAll(fd, buf, sizeof buf, 5000, &closed);
    cr_assert_str_eq(buf, "+OK\r\n:1\r\n");
    cr_assert(closed);
    close(fd);
}

/* Everything received before EOF is answered, even when it all arrives in
 * one read with the EOF right behind it (the server is paused meanwhile). */
Test(protocol, big_batch_then_eof)
{
    int fd = rawConnect();
    kill(srv.pid, SIGSTOP);
    /* Exactly one 16 KiB read: 2730 PINGs and two empty lines. */
    enum { N = 2730 };
    static char req[N * 6 + 4];
    for (int i = 0; i < N; i++) memcpy(req + i * 6, "PING\r\n", 6);
    memcpy(req + N * 6, "\r\n\r\n", 4);
    cr_assert_eq(write(fd, req, sizeof req), (ssize_t)sizeof req);
    shutdown(fd, SHUT_WR);
    kill(srv.pid, SIGCONT);
    static char buf[N * 7 + 16];
    bool closed;
    size_t n = readAll(fd, buf, sizeof buf, 10000, &closed);
    cr_assert_eq(n, (size_t)N * 7, "got %zu bytes", n);
    cr_assert(closed);
    close(fd);
}

static long rssKiB(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    }
    if (f) fclose(f);
    return kib;
}

/* A client that pipelines reads of a big value and never reads the replies
 * holds the server's output at a bound instead of growing it without end. */
Test(protocol, output_is_bounded_for_a_client_that_does_not_read)
{
    redisContext *c = harness_connect(&srv);
    static char value[1 << 20];
    memset(value, 'q', sizeof value);
    redisReply *r = harness_cmd(c, "SET big %b", value, sizeof value);
    freeReplyObject(r);
    int fd = rawConnect();
    for (int i = 0; i < 3000; i++) {
        if (write(fd, "GET big\r\n", 9) != 9) break;
    }
    /* Poll until the server stops growing: two equal samples 200 ms apart. */
    long prev = -1, cur = rssKiB(srv.pid);
    long long deadline = harness_now_ms() + 10000;
    while (cur != prev && harness_now_ms() < deadline) {
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
        prev = cur;
        cur = rssKiB(srv.pid);
    }
    cr_assert_lt(cur, 400 * 1024, "RSS grew to %ld KiB", cur);
    /* Other clients are served meanwhile. */
    EXPECT_STATUS(c, "PONG", "PING");
    close(fd);
    redisFree(c);
}
