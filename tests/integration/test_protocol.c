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
