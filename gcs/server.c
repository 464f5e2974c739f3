#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "command.h"
#include "fsm.h"
#include "log.h"
#include "pubsub.h"
#include "rglue.h"

#define CLIENT_READ_CHUNK (16 * 1024)
/* Stop reading from a client whose unsent output passes this, until it
 * drains: a pipelined flood of reads cannot make the server buffer without
 * bound. */
#define CLIENT_OUTPUT_PAUSE (64u * 1024 * 1024)

static void clientProcessInput(client *c);
static void clientClose(client *c);
static void clientScheduleFlush(client *c);
static void clientUpdateReading(client *c);

/* Unsent output past which a client's input is left unparsed until the
 * output drains. */
static bool clientOutputFull(const client *c)
{
    return c->out.len + c->sending.len >= CLIENT_OUTPUT_PAUSE;
}

int64_t server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t server_clock_ms(const server *srv)
{
    return (int64_t)uv_now(srv->loop);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "gcsd: out of memory\n");
        abort();
    }
    return p;
}

static void formatAddr(const struct sockaddr_storage *ss, char *out,
                       size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        uv_ip4_name(in, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(in6, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, len, "%s:%d", ip, port);
}

static bool isLoopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            return in6->sin6_addr.s6_addr[12] == 127;
        }
    }
    return false;
}

/* ---- output ------------------------------------------------------------ */

resp_buf *client_reply(client *c)
{
    if (c->slots_head == NULL) {
        clientScheduleFlush(c);
        return &c->out;
    }
    reply_slot *s = client_slot_new(c);
    s->done = true;
    return &s->reply;
}

reply_slot *client_slot_new(client *c)
{
    reply_slot *s = xcalloc(1, sizeof *s);
    s->client = c;
    s->srv = c->srv;
    s->stat_cmd = c->stat_cmd; /* the first slot of a command carries it */
    c->stat_cmd = 0;
    resp_buf_init(&s->reply);
    if (c->slots_tail != NULL) c->slots_tail->next = s;
    else c->slots_head = s;
    c->slots_tail = s;
    c->n_slots++;
    return s;
}

reply_slot *server_slot_detached(server *srv)
{
    reply_slot *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    resp_buf_init(&s->reply);
    return s;
}

/* Count @s's reply under its command, once. */
static void slotCount(reply_slot *s)
{
    if (s->stat_cmd == 0) return;
    command_count_reply(s->srv, s->stat_cmd - 1,
                        s->abort || (s->reply.len > 0 &&
                                     s->reply.data[0] == '-'));
    s->stat_cmd = 0;
}

static void slotFree(reply_slot *s)
{
    slotCount(s);
    resp_buf_free(&s->reply);
    free(s);
}

void client_slot_done(reply_slot *slot)
{
    client *c = slot->client;
    slot->done = true;
    slot->srv->admitted_bytes -= slot->admitted;
    slot->admitted = 0;
    if (c == NULL) {
        slotFree(slot);
        return;
    }
    /* Deliver every completed reply at the head, in order. */
    bool moved = false;
    while (c->slots_head != NULL && c->slots_head->done) {
        reply_slot *s = c->slots_head;
        if (s->abort) {
            /* Nothing from here on may reach the client: it would take a
             * later reply for this one's. */
            for (reply_slot *t = s; t != NULL;) {
                reply_slot *next = t->next;
                if (t->done) slotFree(t);
                else t->client = NULL;
                t = next;
            }
            c->slots_head = c->slots_tail = NULL;
            c->n_slots = 0;
            client_close_after_reply(c);
            return;
        }
        c->slots_head = s->next;
        if (c->slots_head == NULL) c->slots_tail = NULL;
        c->n_slots--;
        slotCount(s); /* before the buffer may be stolen */
        if (c->out.len == 0 && s->reply.len > 0) {
            /* Steal the buffer rather than copy it. */
            resp_buf tmp = c->out;
            c->out = s->reply;
            s->reply = tmp;
        } else {
            resp_add_raw(&c->out, s->reply.data, s->reply.len);
        }
        slotFree(s);
        moved = true;
    }
    if (moved) clientScheduleFlush(c);
}

void client_slot_abort(reply_slot *slot)
{
    slot->abort = true;
    resp_buf_reset(&slot->reply);
    client_slot_done(slot);
}

void client_close_after_reply(client *c)
{
    c->flags |= CLIENT_CLOSE_AFTER_REPLY | CLIENT_STOP_INPUT;
    clientScheduleFlush(c);
    clientUpdateReading(c);
}

static void clientScheduleFlush(client *c)
{
    if (c->flags & (CLIENT_PENDING_FLUSH | CLIENT_CLOSING)) return;
    c->flags |= CLIENT_PENDING_FLUSH;
    c->flush_next = c->srv->flush_list;
    c->srv->flush_list = c;
}

static void onWrite(uv_write_t *req, int status);

/* Send what is in c->out: as much as the socket takes now, the rest through
 * one uv_write (only one in flight per client). */
static void clientWrite(client *c)
{
    if ((c->flags & (CLIENT_WRITING | CLIENT_CLOSING)) || c->out.len == 0) {
        return;
    }
    uv_buf_t buf;
    buf.base = c->out.data;
    buf.len = c->out.len;
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
        log_info("client %s: write failed: %s", c->addr, uv_strerror(n));
        clientClose(c);
        return;
    }
    size_t written = n > 0 ? (size_t)n : 0;
    c->srv->stats.net_output_bytes += written;
    if (written == c->out.len) {
        resp_buf_reset(&c->out);
        if (c->out.cap > 1024 * 1024) { /* give back a burst's memory */
            resp_buf_free(&c->out);
            resp_buf_init(&c->out);
        }
        return;
    }
    /* Hand the remainder to libuv; new replies accumulate in a fresh out. */
    resp_buf tmp = c->sending;
    c->sending = c->out;
    c->out = tmp;
    resp_buf_reset(&c->out);
    buf.base = c->sending.data + written;
    buf.len = c->sending.len - written;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, onWrite);
    if (rc != 0) {
        log_info("client %s: write failed: %s", c->addr, uv_strerror(rc));
        clientClose(c);
        return;
    }
    c->srv->stats.net_output_bytes += buf.len;
    c->flags |= CLIENT_WRITING;
}

static void onWrite(uv_write_t *req, int status)
{
    client *c = req->data;
    c->flags &= ~(unsigned)CLIENT_WRITING;
    if (c->flags & CLIENT_CLOSING) return;
    if (status != 0) {
        clientClose(c);
        return;
    }
    resp_buf_reset(&c->sending);
    if (c->sending.cap > 1024 * 1024) {
        resp_buf_free(&c->sending);
        resp_buf_init(&c->sending);
    }
    clientScheduleFlush(c);
    /* Input parked behind a full output buffer can go on now. */
    clientProcessInput(c);
}

/* Flush every client with output, close those done after QUIT or an error. */
static void serverFlush(server *srv)
{
    client *list = srv->flush_list;
    srv->flush_list = NULL;
    while (list != NULL) {
        client *c = list;
        list = c->flush_next;
        c->flags &= ~(unsigned)CLIENT_PENDING_FLUSH;
        clientWrite(c);
        /* Done when everything owed is written: after QUIT or a protocol
         * error, or after EOF once all received input was answered. */
        if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) &&
            !(c->flags & (CLIENT_WRITING | CLIENT_CLOSING)) &&
            c->out.len == 0 && c->slots_head == NULL &&
            ((c->flags & CLIENT_STOP_INPUT) || c->inpos == c->inlen)) {
            clientClose(c);
        }
    }
}

static void onBeforeSleep(uv_prepare_t *h)
{
    server *srv = h->data;
    pubsub_before_flush(srv->pubsub);
    serverFlush(srv);
    pubsub_after_flush(srv->pubsub);
    fsm_end_reads(srv->fsm);
}

/* ---- input ------------------------------------------------------------- */

static void onAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;
    (void)suggested;
    size_t want = CLIENT_READ_CHUNK;
    if (c->incap - c->inlen < want) {
        size_t ncap = c->incap ? c->incap * 2 : want;
        while (ncap - c->inlen < want) ncap *= 2;
        char *p = realloc(c->inbuf, ncap);
        if (p == NULL) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }
        c->inbuf = p;
        c->incap = ncap;
    }
    /* Read big chunks when a large bulk is on its way. */
    buf->base = c->inbuf + c->inlen;
    buf->len = c->incap - c->inlen;
}

static void onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client *c = s->data;
    (void)buf;
    if (nread == 0) return;
    if (nread == UV_EOF) {
        /* The peer will send no more, but may still read: answer everything
         * it sent (as Redis does), then close. */
        c->flags |= CLIENT_EOF | CLIENT_CLOSE_AFTER_REPLY;
        clientProcessInput(c);
        clientScheduleFlush(c);
        return;
    }
    if (nread < 0) {
        log_info("client %s: read error: %s", c->addr,
                 uv_strerror((int)nread));
        clientClose(c);
        return;
    }
    c->inlen += (size_t)nread;
    c->srv->stats.net_input_bytes += (uint64_t)nread;
    clientProcessInput(c);
}

/* Start or stop reading so that input is parked while output is backed up,
 * and after the client is told to go. */
static void clientUpdateReading(client *c)
{
    if (c->flags & CLIENT_CLOSING) return;
    bool want = !(c->flags & (CLIENT_CLOSE_AFTER_REPLY | CLIENT_EOF)) &&
                !clientOutputFull(c) && !c->srv->draining;
    if (want && !(c->flags & CLIENT_READING)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, onAlloc, onRead) == 0) {
            c->flags |= CLIENT_READING;
        }
    } else if (!want && (c->flags & CLIENT_READING)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~(unsigned)CLIENT_READING;
    }
}

static void clientProtocolError(client *c, const char *err)
{
    resp_buf *out = client_reply(c);
    resp_add_errorf(out, "ERR %s", err);
    c->srv->stats.protocol_errors++;
    log_info("client %s: %s; closing", c->addr, err);
    client_close_after_reply(c);
}

static void clientProcessInput(client *c)
{
    /* After EOF, input already received is still served; QUIT and protocol
     * errors stop it. */
    while (!(c->flags & (CLIENT_CLOSING | CLIENT_STOP_INPUT))) {
        if (clientOutputFull(c)) break;
        size_t consumed = 0, argc = 0, need = 0;
        resp_arg *argv = NULL;
        const char *err = NULL;
        c->reader.unauthenticated = !(c->flags & CLIENT_AUTHENTICATED);
        int rc = resp_read(&c->reader, c->inbuf + c->inpos,
                           c->inlen - c->inpos, &consumed, &argc, &argv, &err,
                           &need);
        if (rc == RESP_AGAIN && (c->flags & CLIENT_EOF)) {
            c->inpos = c->inlen; /* a truncated last request: drop it */
            break;
        }
        if (rc == RESP_AGAIN) {
            if (need > 0 && c->inpos + need > c->incap) {
                /* Make room for the whole bulk once, not by doubling. */
                size_t ncap = c->inpos + need + CLIENT_READ_CHUNK;
                char *p = realloc(c->inbuf, ncap);
                if (p != NULL) {
                    c->inbuf = p;
                    c->incap = ncap;
                }
            }
            break;
        }
        if (rc == RESP_EPROTO) {
            clientProtocolError(c, err);
            break;
        }
        /* argv points into inbuf: every command copies what it keeps. */
        if (argc > 0) command_dispatch(c, argc, argv);
        c->inpos += consumed;
    }
    if (c->inpos > 0) {
        /* Keep unparsed bytes at the start; the reader resumes by offset. */
        size_t rest = c->inlen - c->inpos;
        if (rest > 0) memmove(c->inbuf, c->inbuf + c->inpos, rest);
        c->inlen = rest;
        c->inpos = 0;
        if (rest == 0 && c->incap > 4 * CLIENT_READ_CHUNK) {
            free(c->inbuf);
            c->inbuf = NULL;
            c->incap = 0;
        }
    }
    clientUpdateReading(c);
}

/* ---- connections ------------------------------------------------------- */

static void onClientClosed(uv_handle_t *h)
{
    client *c = h->data;
    server *srv = c->srv;
    resp_reader_free(&c->reader);
    resp_buf_free(&c->out);
    resp_buf_free(&c->sending);
    free(c->inbuf);
    free(c->name);
    free(c);
    srv->n_clients--;
}

static void clientClose(client *c)
{
    if (c->flags & CLIENT_CLOSING) return;
    server *srv = c->srv;
    c->flags |= CLIENT_CLOSING;
    pubsub_client_gone(srv->pubsub, c);
    /* Outstanding writes and reads may still complete: detach their slots. */
    reply_slot *s = c->slots_head;
    while (s != NULL) {
        reply_slot *next = s->next;
        if (s->done) slotFree(s);
        else s->client = NULL;
        s = next;
    }
    c->slots_head = c->slots_tail = NULL;
    c->n_slots = 0;
    if (c->prev) c->prev->next = c->next;
    else srv->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->flags & CLIENT_PENDING_FLUSH) {
        for (client **pp = &srv->flush_list; *pp != NULL;
             pp = &(*pp)->flush_next) {
            if (*pp == c) {
                *pp = c->flush_next;
                break;
            }
        }
        c->flags &= ~(unsigned)CLIENT_PENDING_FLUSH;
    }
    uv_close((uv_handle_t *)&c->tcp, onClientClosed);
}

void client_kill(client *c)
{
    clientClose(c);
}

static const char deniedMsg[] =
    "-DENIED gcsd is running in protected mode because protected mode is "
    "enabled and no password is set. In this mode connections are only "
    "accepted from the loopback interface. If you want to connect from "
    "external computers, either 1) set a password with --requirepass PW "
    "(or GCSD_REQUIREPASS), or 2) disable protected mode with "
    "--protected-mode no, only if the network is otherwise protected.\r\n";

static void onUnacceptedClosed(uv_handle_t *h) { free(h->data); }

static void onConnection(uv_stream_t *listener, int status)
{
    server *srv = listener->data;
    if (status != 0) {
        log_warn("accept error: %s", uv_strerror(status));
        return;
    }
    client *c = xcalloc(1, sizeof *c);
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    struct sockaddr_storage peer, local;
    int plen = sizeof peer, llen = sizeof local;
    memset(&peer, 0, sizeof peer);
    memset(&local, 0, sizeof local);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) != 0) {
        /* Gone before we could look at it (reset early): nothing to say. */
        uv_close((uv_handle_t *)&c->tcp, onUnacceptedClosed);
        return;
    }
    srv->stats.connections_received++;
    c->wreq.data = c;
    c->id = ++srv->next_client_id;
    c->ctime_ms = c->last_cmd_ms = server_clock_ms(srv);
    uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&local, &llen);
    formatAddr(&peer, c->addr, sizeof c->addr);
    formatAddr(&local, c->laddr, sizeof c->laddr);
    uv_tcp_nodelay(&c->tcp, 1);
    resp_reader_init(&c->reader, (size_t)srv->cfg->proto_max_bulk_len,
                     (size_t)srv->cfg->max_args);
    resp_buf_init(&c->out);
    resp_buf_init(&c->sending);
    if (srv->cfg->requirepass[0] == '\0') c->flags |= CLIENT_AUTHENTICATED;
    c->next = srv->clients;
    if (srv->clients) srv->clients->prev = c;
    srv->clients = c;
    srv->n_clients++;

    /* Refusals are written like any reply, then the connection closes. */
    const char *refusal = NULL;
    if (srv->stopping || srv->draining) {
        refusal = "-ERR server is shutting down\r\n";
    } else if (srv->n_clients > srv->cfg->maxclients) {
        refusal = "-ERR max number of clients reached\r\n";
    } else if (srv->cfg->protected_mode && srv->cfg->requirepass[0] == '\0' &&
               !isLoopback(&peer)) {
        refusal = deniedMsg;
    }
    if (refusal != NULL) {
        srv->stats.connections_rejected++;
        resp_add_raw(&c->out, refusal, strlen(refusal));
        client_close_after_reply(c);
        return;
    }
    clientUpdateReading(c);
}

int server_start(server *srv, uv_loop_t *loop, const config *cfg,
                 struct fsm *f, struct rglue *raft, char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->cfg = cfg;
    srv->fsm = f;
    srv->raft = raft;
    srv->start_ms = server_now_ms();
    if (pubsub_create(srv, &srv->pubsub) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned char rnd[20] = {0};
    uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL); /* zeros on failure */
    for (int i = 0; i < 20; i++) {
        snprintf(srv->run_id + 2 * i, 3, "%02x", rnd[i]);
    }

    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->bind, cfg->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(cfg->bind, cfg->port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "bad bind address '%s'", cfg->bind);
        return -1;
    }
    int rc = uv_tcp_init(loop, &srv->listener);
    if (rc != 0) goto err;
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listener, 511,
                                onConnection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
        goto err;
    }
    uv_prepare_init(loop, &srv->before_sleep);
    srv->before_sleep.data = srv;
    uv_prepare_start(&srv->before_sleep, onBeforeSleep);
    uv_timer_init(loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    return 0;
err:
    snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->bind, cfg->port,
             uv_strerror(rc));
    return -1;
}

static void onServerHandleClosed(uv_handle_t *h);

/* Whether any client still waits for a reply or has output to write. */
static bool drainPending(const server *srv)
{
    for (const client *c = srv->clients; c != NULL; c = c->next) {
        if (c->flags & CLIENT_CLOSING) continue;
        if (c->n_slots > 0 || c->out.len > 0 || c->sending.len > 0)
            return true;
    }
    return false;
}

static void onDrainTick(uv_timer_t *t)
{
    server *srv = t->data;
    if (srv->drain_cb == NULL) return;
    if (drainPending(srv) && server_clock_ms(srv) < srv->drain_until) return;
    uv_timer_stop(t);
    void (*cb)(server *) = srv->drain_cb;
    srv->drain_cb = NULL;
    cb(srv);
}

void server_drain(server *srv, uint64_t max_ms, void (*cb)(server *srv))
{
    srv->draining = true;
    /* New connections are refused by the kernel from now on: a client
     * connecting meanwhile (a Ray head reconnecting) retries its connect
     * until the member is back, instead of meeting an error or a reset in
     * its handshake, which it would treat as fatal. */
    if (!srv->listener_closing) {
        srv->listener_closing = true;
        srv->closing_handles++;
        uv_close((uv_handle_t *)&srv->listener, onServerHandleClosed);
    }
    srv->drain_cb = cb;
    srv->drain_until = server_clock_ms(srv) + (int64_t)max_ms;
    for (client *c = srv->clients; c != NULL; c = c->next) {
        clientUpdateReading(c);
    }
    uv_timer_start(&srv->drain_timer, onDrainTick, 0, 10);
}

static void onServerHandleClosed(uv_handle_t *h)
{
    server *srv = h->data;
    /* The listener may close first, alone, when draining starts. */
    if (--srv->closing_handles == 0 && srv->stopping) {
        srv->fsm->count_receivers = NULL;
        pubsub_close(srv->pubsub);
        srv->pubsub = NULL;
        if (srv->close_cb != NULL) srv->close_cb(srv);
    }
}

void server_close(server *srv, void (*cb)(server *srv))
{
    srv->stopping = true;
    srv->close_cb = cb;
    /* Give clients what they were already sent, then hang up. */
    serverFlush(srv);
    while (srv->clients != NULL) clientClose(srv->clients);
    srv->drain_cb = NULL;
    srv->closing_handles += 2;
    if (!srv->listener_closing) {
        srv->listener_closing = true;
        srv->closing_handles++;
        uv_close((uv_handle_t *)&srv->listener, onServerHandleClosed);
    }
    uv_close((uv_handle_t *)&srv->before_sleep, onServerHandleClosed);
    uv_close((uv_handle_t *)&srv->drain_timer, onServerHandleClosed);
}
