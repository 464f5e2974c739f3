/* bench_fanout: pub/sub fan-out against any Redis-protocol server (gcsd or
 * redis-server): one process holds every subscriber connection (epoll, one
 * thread) and a paced publisher (its own thread, one connection,
 * pipelined).
 *
 *   bench_fanout -P pubport -S port[,port...] [-n subs] [-r events/s]
 *                [-d seconds] [-w warmup-seconds] [-D drain-seconds]
 *                [-c channel]
 *
 * Subscribers are spread round-robin over the -S ports (the members of a
 * cluster) and all SUBSCRIBE to one channel; publishing starts once every
 * subscription is confirmed. Each PUBLISH carries "<seq>:<ns>", a sequence
 * number and the CLOCK_MONOTONIC time at which it was written to the
 * socket; a subscriber's latency sample is the time of the read() that
 * brought the message, minus that. So a sample covers, for gcsd: the
 * request's trip to the server, the raft commit (the log entry's fsync,
 * and on 3 nodes a majority's), apply, fan-out, the push to the
 * subscriber and this process's parsing delay; for Redis: everything but
 * the log. Samples of the first -w seconds are left out.
 *
 * Checking: each subscriber must see sequence numbers strictly increasing
 * (a repeat or a step back is counted as a reorder), and at the end every
 * PUBLISH the publisher got a reply to must have reached every subscriber
 * still connected (else it is "lost"). A PUBLISH whose connection broke
 * before its reply is "unknown" (the publisher reconnects and goes on);
 * those may or may not be delivered, but must be delivered to every
 * surviving subscriber or to none ("split" counts the others). A
 * subscriber whose server went away (a killed member) is "dead" and left
 * out of the checks.
 *
 * Prints one line of key=value results; exits 1 if anything was lost,
 * reordered or split, or a subscriber was dropped while its server lived
 * on (an output-limit disconnect), 2 on a setup error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define MAX_PORTS 8
#define LAT_RES_NS 10000ull            /* histogram resolution: 10 us */
#define LAT_BUCKETS (2u * 1000 * 1000) /* up to 20 s */
#define PUB_WINDOW 200000              /* PUBLISHes in flight at most */

static int pubPort;
static int subPorts[MAX_PORTS];
static int nSubPorts;
static int nSubs = 1000;
static double rate = 10000;
static double seconds = 10;
static double warmup = 1;
static double drain = 10;
static const char *channel = "fanout";

static uint64_t nowNs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_fanout: %s: %s\n", msg, strerror(errno));
    exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) die("out of memory");
    return p;
}

static int connectTo(int port, bool nonblocking)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nonblocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static bool writeAll(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* ---- a minimal RESP2 frame reader ------------------------------------------ */

typedef struct frame {
    int n;               /* elements (arrays), or -1: a simple reply */
    char type;           /* first byte of a simple reply */
    const char *el[4];
    size_t len[4];
    long long num;       /* an integer reply, or the last integer element */
} frame;

/* Parse one reply at @p (@n bytes). Returns the bytes it takes, 0 when it
 * is incomplete, -1 when it is not something this program understands. */
static long parseFrame(const char *p, size_t n, frame *f)
{
    const char *end = p + n, *q = p;
    const char *nl = memchr(q, '\n', n);
    if (nl == NULL) return 0;
    f->n = -1;
    f->type = *q;
    if (*q != '*') {
        f->num = strtoll(q + 1, NULL, 10);
        f->el[0] = q + 1;
        f->len[0] = (size_t)(nl - 1 - (q + 1));
        return nl + 1 - p;
    }
    int elems = atoi(q + 1);
    if (elems < 0 || elems > 4) return -1;
    f->n = elems;
    q = nl + 1;
    for (int i = 0; i < elems; i++) {
        if (q >= end) return 0;
        nl = memchr(q, '\n', (size_t)(end - q));
        if (nl == NULL) return 0;
        if (*q == ':') {
            f->num = strtoll(q + 1, NULL, 10);
            f->el[i] = q + 1;
            f->len[i] = (size_t)(nl - 1 - (q + 1));
            q = nl + 1;
            continue;
        }
        if (*q != '$') return -1;
        long len = strtol(q + 1, NULL, 10);
        if (len < 0) {
            f->el[i] = NULL;
            f->len[i] = 0;
            q = nl + 1;
            continue;
        }
        q = nl + 1;
        if ((size_t)(end - q) < (size_t)len + 2) return 0;
        f->el[i] = q;
        f->len[i] = (size_t)len;
        q += len + 2;
    }
    return q - p;
}

/* ---- the publisher ------------------------------------------------------------ */

enum { SEQ_SENT = 0, SEQ_ACKED = 1, SEQ_ERROR = 2, SEQ_UNKNOWN = 3 };

static uint8_t *seqState;      /* per sequence number */
static uint64_t *ackNs;        /* when its PUBLISH reply was read, or 0 */
static uint64_t maxSeqs;
static atomic_uint_fast64_t published; /* sequence numbers used: 1..published */
static atomic_uint_fast64_t lastAcked; /* highest acked sequence number */
static uint64_t acked, errors, unknown, reconnects;
static uint64_t pubStartNs, pubEndNs;
static atomic_bool pubDone;
static char firstError[256];

static void *publisher(void *arg)
{
    (void)arg;
    int fd = -1;
    char in[1 << 16];
    size_t inlen = 0;
    uint64_t nextReply = 1; /* sequence number of the next reply on fd */
    uint64_t sent = 0;
    uint64_t total = (uint64_t)(rate * seconds);
    size_t chlen = strlen(channel);
    char *out = xcalloc(1, 1 << 20);
    uint64_t reconnectUntil = 0;
    while (sent < total || (nextReply <= sent && fd >= 0)) {
        if (fd < 0) {
            fd = connectTo(pubPort, true);
            if (fd < 0) {
                if (reconnectUntil == 0) reconnectUntil = nowNs() + 10000000000ull;
                if (nowNs() > reconnectUntil) break;
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
                continue;
            }
            reconnectUntil = 0;
            inlen = 0;
            nextReply = sent + 1;
        }
        uint64_t now = nowNs();
        uint64_t due = (uint64_t)((double)(now - pubStartNs) / 1e9 * rate);
        if (due > total) due = total;
        size_t olen = 0;
        while (sent < due && sent + 1 - nextReply < PUB_WINDOW &&
               olen < (1 << 20) - 256) {
            char payload[48];
            int pl = snprintf(payload, sizeof payload, "%" PRIu64 ":%" PRIu64,
                              sent + 1, now);
            olen += (size_t)snprintf(out + olen, 256,
                                     "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n"
                                     "$%d\r\n%s\r\n",
                                     chlen, channel, pl, payload);
            sent++;
        }
        if (olen > 0) {
            atomic_store(&published, sent);
            if (!writeAll(fd, out, olen)) goto broken;
        }
        /* Replies, in order: one per PUBLISH on this connection. */
        for (;;) {
            ssize_t r = read(fd, in + inlen, sizeof in - inlen);
            if (r == 0) goto broken;
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                goto broken;
            }
            inlen += (size_t)r;
            size_t pos = 0;
            for (;;) {
                frame f;
                long used = parseFrame(in + pos, inlen - pos, &f);
                if (used <= 0) break;
                pos += (size_t)used;
                if (nextReply > sent) continue; /* cannot happen */
                if (f.type == ':') {
                    ackNs[nextReply] = nowNs();
                    seqState[nextReply] = SEQ_ACKED;
                    acked++;
                    atomic_store(&lastAcked, nextReply);
                } else {
                    seqState[nextReply] = SEQ_ERROR;
                    if (errors++ == 0) {
                        snprintf(firstError, sizeof firstError, "%.*s",
                                 (int)f.len[0], f.el[0]);
                    }
                }
                nextReply++;
            }
            memmove(in, in + pos, inlen - pos);
            inlen -= pos;
        }
        if (sent >= total && nextReply > sent) break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        continue;
    broken:
        /* Everything in flight has an unknown outcome; go on with the next
         * sequence numbers on a new connection. */
        for (uint64_t s = nextReply; s <= sent; s++) {
            seqState[s] = SEQ_UNKNOWN;
            unknown++;
        }
        nextReply = sent + 1;
        close(fd);
        fd = -1;
        reconnects++;
    }
    for (uint64_t s = nextReply; s <= sent; s++) {
        seqState[s] = SEQ_UNKNOWN;
        unknown++;
    }
    pubEndNs = nowNs();
    if (fd >= 0) close(fd);
    free(out);
    atomic_store(&pubDone, true);
    return NULL;
}

/* ---- subscribers ---------------------------------------------------------------- */

typedef struct sub {
    int fd;
    int port;
    bool subscribed;
    bool dead;        /* its server closed the connection */
    char *buf;
    size_t len, cap;
    uint64_t last;    /* last sequence number seen */
    uint64_t received, reorders;
    uint8_t *seen;    /* bitmap by sequence number */
} sub;

static sub *subs;
static uint32_t *lat;  /* histogram, LAT_RES_NS buckets */
static uint64_t latOver, latN, latMaxNs;
static uint64_t delivered, lastRecvNs;
static int nSubscribed;

/* Deliveries to the first SAMPLED_SUBS subscribers, kept to measure from
 * the PUBLISH reply (the commit: gcsd replies once the entry committed and
 * applied) to receipt once the publisher's reply times are known. */
#define SAMPLED_SUBS 100
typedef struct sample {
    uint32_t seq;
    uint64_t t;
} sample;
static sample *samples;
static size_t nSamples, capSamples;

static void onMessage(sub *s, const char *p, size_t n, uint64_t t)
{
    size_t idx = (size_t)(s - subs);
    char tmp[64];
    if (n >= sizeof tmp) return;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *colon;
    uint64_t seq = strtoull(tmp, &colon, 10);
    if (*colon != ':' || seq == 0 || seq >= maxSeqs) return;
    uint64_t sentNs = strtoull(colon + 1, NULL, 10);
    if (seq <= s->last) s->reorders++;
    else s->last = seq;
    s->seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
    s->received++;
    delivered++;
    lastRecvNs = t;
    if ((double)(sentNs - pubStartNs) < warmup * 1e9 || t < sentNs) return;
    if (idx < SAMPLED_SUBS && nSamples < capSamples) {
        samples[nSamples].seq = (uint32_t)seq;
        samples[nSamples].t = t;
        nSamples++;
    }
    uint64_t d = t - sentNs;
    if (d > latMaxNs) latMaxNs = d;
    latN++;
    if (d / LAT_RES_NS < LAT_BUCKETS) lat[d / LAT_RES_NS]++;
    else latOver++;
}

static void subRead(sub *s, int ep)
{
    for (;;) {
        if (s->cap - s->len < 16384) {
            s->cap = s->cap ? s->cap * 2 : 65536;
            s->buf = realloc(s->buf, s->cap);
            if (s->buf == NULL) die("out of memory");
        }
        ssize_t r = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) {
            s->dead = true;
            epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
            close(s->fd);
            s->fd = -1;
            return;
        }
        uint64_t t = nowNs();
        s->len += (size_t)r;
        size_t pos = 0;
        for (;;) {
            frame f;
            long used = parseFrame(s->buf + pos, s->len - pos, &f);
            if (used < 0) {
                fprintf(stderr, "bench_fanout: unexpected reply: %.40s\n",
                        s->buf + pos);
                exit(2);
            }
            if (used == 0) break;
            pos += (size_t)used;
            if (f.n == 3 && f.len[0] == 7 && memcmp(f.el[0], "message", 7) == 0) {
                onMessage(s, f.el[2], f.len[2], t);
            } else if (f.n == 3 && f.len[0] == 9 &&
                       memcmp(f.el[0], "subscribe", 9) == 0) {
                if (!s->subscribed) nSubscribed++;
                s->subscribed = true;
            } else {
                fprintf(stderr, "bench_fanout: unexpected reply: %.40s\n",
                        s->buf + pos - used);
                exit(2);
            }
        }
        memmove(s->buf, s->buf + pos, s->len - pos);
        s->len -= pos;
        if ((size_t)r < 16384) return;
    }
}

/* Percentile @q of histogram @h holding @n samples (max @maxNs). */
static uint64_t histPercentileNs(const uint32_t *h, uint64_t n, uint64_t maxNs,
                                 double q)
{
    if (n == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)n);
    if (want >= n) want = n - 1;
    uint64_t cum = 0;
    for (uint32_t i = 0; i < LAT_BUCKETS; i++) {
        cum += h[i];
        if (cum > want) return (uint64_t)i * LAT_RES_NS + LAT_RES_NS / 2;
    }
    return maxNs;
}

static uint64_t percentileNs(double q)
{
    return histPercentileNs(lat, latN, latMaxNs, q);
}

static void parsePorts(char *list)
{
    for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
        if (nSubPorts == MAX_PORTS) break;
        subPorts[nSubPorts++] = atoi(tok);
    }
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "P:S:n:r:d:w:D:c:")) != -1) {
        switch (opt) {
        case 'P': pubPort = atoi(optarg); break;
        case 'S': parsePorts(optarg); break;
        case 'n': nSubs = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'D': drain = atof(optarg); break;
        case 'c': channel = optarg; break;
        default:
            fprintf(stderr, "usage: bench_fanout -P pubport -S port[,port...]"
                            " [-n subs] [-r events/s] [-d s] [-w s] [-D s]"
                            " [-c channel]\n");
            return 2;
        }
    }
    if (pubPort == 0 || nSubPorts == 0 || nSubs <= 0 || rate <= 0) {
        fprintf(stderr, "bench_fanout: -P and -S are required\n");
        return 2;
    }
    maxSeqs = (uint64_t)(rate * seconds) + 2;
    seqState = xcalloc(maxSeqs, 1);
    ackNs = xcalloc(maxSeqs, sizeof *ackNs);
    capSamples = (size_t)(maxSeqs * (uint64_t)(nSubs < SAMPLED_SUBS
                                                   ? nSubs : SAMPLED_SUBS));
    samples = xcalloc(capSamples > 0 ? capSamples : 1, sizeof *samples);
    lat = xcalloc(LAT_BUCKETS, sizeof *lat);
    subs = xcalloc((size_t)nSubs, sizeof *subs);
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    size_t chlen = strlen(channel);
    char cmd[300];
    int cl = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                      chlen, channel);
    for (int i = 0; i < nSubs; i++) {
        sub *s = &subs[i];
        s->port = subPorts[i % nSubPorts];
        s->fd = connectTo(s->port, true);
        if (s->fd < 0) die("connect");
        s->seen = xcalloc(maxSeqs / 8 + 1, 1);
        if (!writeAll(s->fd, cmd, (size_t)cl)) die("write SUBSCRIBE");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) != 0) die("epoll_ctl");
    }
    struct epoll_event evs[256];
    uint64_t deadline = nowNs() + 30000000000ull;
    while (nSubscribed < nSubs) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) subRead(evs[i].data.ptr, ep);
        for (int i = 0; i < nSubs; i++) {
            if (subs[i].dead) {
                fprintf(stderr, "bench_fanout: subscriber %d lost its "
                                "connection while subscribing\n", i);
                return 2;
            }
        }
        if (nowNs() > deadline) {
            fprintf(stderr, "bench_fanout: %d of %d subscribed after 30 s\n",
                    nSubscribed, nSubs);
            return 2;
        }
    }

    pthread_t th;
    pubStartNs = nowNs();
    if (pthread_create(&th, NULL, publisher, NULL) != 0) die("pthread_create");
    uint64_t drainUntil = 0;
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 10);
        for (int i = 0; i < n; i++) subRead(evs[i].data.ptr, ep);
        if (!atomic_load(&pubDone)) continue;
        if (drainUntil == 0) drainUntil = nowNs() + (uint64_t)(drain * 1e9);
        /* Done when every live subscriber saw the last acked message and,
         * if some outcomes are unknown, nothing came for a second (those
         * may still be on their way to some members' subscribers). */
        uint64_t want = atomic_load(&lastAcked);
        bool all = true;
        for (int i = 0; i < nSubs && all; i++) {
            all = subs[i].dead || subs[i].last >= want;
        }
        bool quiet = unknown == 0 || nowNs() - lastRecvNs > 1000000000ull;
        if ((all && quiet) || nowNs() > drainUntil) break;
    }
    pthread_join(th, NULL);

    /* Checks. */
    uint64_t pub = atomic_load(&published);
    uint64_t lost = 0, reorders = 0, split = 0, live = 0;
    uint64_t unknownDelivered = 0;
    for (int i = 0; i < nSubs; i++) {
        sub *s = &subs[i];
        if (s->dead) continue;
        live++;
        reorders += s->reorders;
        for (uint64_t q = 1; q <= pub; q++) {
            bool got = s->seen[q >> 3] & (1u << (q & 7));
            if (seqState[q] == SEQ_ACKED && !got) lost++;
        }
    }
    for (uint64_t q = 1; q <= pub; q++) {
        if (seqState[q] != SEQ_UNKNOWN) continue;
        uint64_t got = 0;
        for (int i = 0; i < nSubs; i++) {
            if (!subs[i].dead &&
                (subs[i].seen[q >> 3] & (1u << (q & 7)))) {
                got++;
            }
        }
        if (got == live) unknownDelivered++;
        else if (got != 0) split++;
    }
    /* Reply to receipt: 0 when the message came before the reply. */
    uint32_t *c2r = xcalloc(LAT_BUCKETS, sizeof *c2r);
    uint64_t c2rN = 0, c2rMax = 0;
    for (size_t i = 0; i < nSamples; i++) {
        uint64_t a = ackNs[samples[i].seq];
        if (a == 0) continue;
        uint64_t d = samples[i].t > a ? samples[i].t - a : 0;
        if (d > c2rMax) c2rMax = d;
        c2rN++;
        if (d / LAT_RES_NS < LAT_BUCKETS) c2r[d / LAT_RES_NS]++;
    }
    double pubSecs = (double)(pubEndNs - pubStartNs) / 1e9;
    double spanSecs = lastRecvNs > pubStartNs
                          ? (double)(lastRecvNs - pubStartNs) / 1e9 : 0;
    uint64_t deadN = (uint64_t)nSubs - live;
    printf("subs=%d live=%" PRIu64 " rate_target=%.0f published=%" PRIu64
           " publish_rate=%.0f acked=%" PRIu64 " errors=%" PRIu64
           " unknown=%" PRIu64 " unknown_delivered=%" PRIu64
           " reconnects=%" PRIu64 " delivered=%" PRIu64
           " deliveries_per_s=%.0f events_per_s=%.0f"
           " p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f"
           " commit_p50_ms=%.2f commit_p99_ms=%.2f"
           " lost=%" PRIu64 " reorders=%" PRIu64 " split=%" PRIu64 "\n",
           nSubs, live, rate, pub, pubSecs > 0 ? (double)pub / pubSecs : 0,
           acked, errors, unknown, unknownDelivered, reconnects, delivered,
           spanSecs > 0 ? (double)delivered / spanSecs : 0,
           spanSecs > 0 && live > 0
               ? (double)delivered / (double)live / spanSecs : 0,
           (double)percentileNs(0.50) / 1e6, (double)percentileNs(0.99) / 1e6,
           (double)percentileNs(0.999) / 1e6, (double)latMaxNs / 1e6,
           (double)histPercentileNs(c2r, c2rN, c2rMax, 0.50) / 1e6,
           (double)histPercentileNs(c2r, c2rN, c2rMax, 0.99) / 1e6,
           lost, reorders, split);
    if (errors > 0) fprintf(stderr, "bench_fanout: first error reply: %s\n",
                            firstError);
    if (latOver > 0) fprintf(stderr, "bench_fanout: %" PRIu64 " samples over "
                             "20 s\n", latOver);
    if (deadN > 0) {
        /* Which servers dropped them: the script knows which it killed. */
        printf("dead_by_port");
        for (int k = 0; k < nSubPorts; k++) {
            uint64_t d = 0;
            for (int i = 0; i < nSubs; i++) {
                d += subs[i].dead && subs[i].port == subPorts[k];
            }
            printf(" %d=%" PRIu64, subPorts[k], d);
        }
        printf("\n");
    }
    return lost > 0 || reorders > 0 || split > 0 ? 1 : 0;
}
