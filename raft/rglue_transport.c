/* A raft_uv_transport that delegates to the stock TCP one and sets
 * TCP_NODELAY on every stream before raft sees it. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rglue_int.h"

/* One outgoing connect: the stock transport stores its callback in the
 * request it is given, so it gets a request of ours and we keep raft's. */
struct rg_connect {
    struct raft_uv_connect inner;
    struct raft_uv_connect *outer;
    raft_uv_connect_cb cb;
};

static void nodelay(struct uv_stream_s *stream)
{
    /* The stock transport only produces TCP handles. A failure here is not
     * fatal: the connection works, just slower. */
    if (stream != NULL && stream->type == UV_TCP) {
        (void)uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    }
}

static void copyErr(struct raft_uv_transport *dst,
                    const struct raft_uv_transport *src)
{
    memcpy(dst->errmsg, src->errmsg, sizeof dst->errmsg);
    dst->errmsg[sizeof dst->errmsg - 1] = '\0';
}

static int tInit(struct raft_uv_transport *outer, raft_id id,
                 const char *address)
{
    struct rg_transport *t = RG_CONTAINER_OF(outer, struct rg_transport, outer);
    t->address = address; /* raft's own copy, alive as long as raft */
    int rv = t->inner.init(&t->inner, id, address);
    if (rv != 0) copyErr(outer, &t->inner);
    return rv;
}

static void tAcceptCb(struct raft_uv_transport *inner, raft_id id,
                      const char *address, struct uv_stream_s *stream)
{
    struct rg_transport *t = RG_CONTAINER_OF(inner, struct rg_transport, inner);
    nodelay(stream);
    t->accept_cb(&t->outer, id, address, stream);
}

/* Check that the listen address can be bound, resolving it the way the stock
 * transport does (IPv4, "host:port", port 8080 if missing). raft 0.22.1
 * frees its listener handles while libuv still holds them when bind or listen
 * fails (a use-after-free), so that failure must be caught before. */
static int bindCheck(const char *address, char *errmsg, size_t errlen)
{
    char host[NI_MAXHOST];
    const char *colon = strchr(address, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - address) : strlen(address);
    if (hlen >= sizeof host) {
        snprintf(errmsg, errlen, "listen address too long");
        return RAFT_NAMETOOLONG;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    const char *port = colon != NULL && colon[1] != '\0' ? colon + 1 : "8080";
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_family = AF_INET,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rv = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &ai);
    if (rv != 0) {
        snprintf(errmsg, errlen, "cannot resolve listen address %s: %s",
                 address, gai_strerror(rv));
        return RAFT_IOERR;
    }
    rv = 0;
    for (struct addrinfo *a = ai; a != NULL && rv == 0; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int on = 1;
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
            bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
            snprintf(errmsg, errlen, "cannot listen on %s: %s", address,
                     strerror(errno));
            rv = RAFT_IOERR;
        }
        if (fd >= 0) close(fd);
    }
    freeaddrinfo(ai);
    return rv;
}

static int tListen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
    struct rg_transport *t = RG_CONTAINER_OF(outer, struct rg_transport, outer);
    t->accept_cb = cb;
    const char *address = t->bind_address != NULL ? t->bind_address
                                                  : t->address;
    if (address != NULL) {
        int rv = bindCheck(address, outer->errmsg, sizeof outer->errmsg);
        if (rv != 0) return rv;
    }
    int rv = t->inner.listen(&t->inner, tAcceptCb);
    if (rv != 0) copyErr(outer, &t->inner);
    return rv;
}

static void tConnectCb(struct raft_uv_connect *inner,
                       struct uv_stream_s *stream, int status)
{
    struct rg_connect *c = inner->data;
    struct raft_uv_connect *outer = c->outer;
    raft_uv_connect_cb cb = c->cb;
    free(c);
    if (status == 0) nodelay(stream);
    cb(outer, stream, status);
}

static int tConnect(struct raft_uv_transport *outer,
                    struct raft_uv_connect *req, raft_id id,
                    const char *address, raft_uv_connect_cb cb)
{
    struct rg_transport *t = RG_CONTAINER_OF(outer, struct rg_transport, outer);
    struct rg_connect *c = malloc(sizeof *c);
    if (c == NULL) {
        snprintf(outer->errmsg, sizeof outer->errmsg, "out of memory");
        return RAFT_NOMEM;
    }
    c->inner.data = c;
    c->outer = req;
    c->cb = cb;
    req->cb = cb; /* as the interface's implementations do */
    int rv = t->inner.connect(&t->inner, &c->inner, id, address, tConnectCb);
    if (rv != 0) {
        copyErr(outer, &t->inner);
        free(c);
    }
    return rv;
}

static void tCloseCb(struct raft_uv_transport *inner)
{
    struct rg_transport *t = RG_CONTAINER_OF(inner, struct rg_transport, inner);
    if (t->close_cb != NULL) t->close_cb(&t->outer);
}

static void tClose(struct raft_uv_transport *outer,
                   raft_uv_transport_close_cb cb)
{
    struct rg_transport *t = RG_CONTAINER_OF(outer, struct rg_transport, outer);
    t->close_cb = cb;
    t->inner.close(&t->inner, tCloseCb);
}

int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *bind_address, char *errbuf, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->inner.version = 1;
    int rv = raft_uv_tcp_init(&t->inner, loop);
    if (rv != 0) {
        snprintf(errbuf, errlen, "raft TCP transport: %s", t->inner.errmsg);
        return rv;
    }
    if (bind_address != NULL) {
        t->bind_address = strdup(bind_address);
        rv = t->bind_address == NULL
                 ? RAFT_NOMEM
                 : raft_uv_tcp_set_bind_address(&t->inner, bind_address);
        if (rv != 0) {
            snprintf(errbuf, errlen, "invalid bind address \"%s\": %s",
                     bind_address, raft_strerror(rv));
            free(t->bind_address);
            raft_uv_tcp_close(&t->inner);
            return rv;
        }
    }
    t->outer.version = 1;
    t->outer.impl = t;
    t->outer.init = tInit;
    t->outer.listen = tListen;
    t->outer.connect = tConnect;
    t->outer.close = tClose;
    return 0;
}

void rg_transport_release(struct rg_transport *t)
{
    free(t->bind_address);
    t->bind_address = NULL;
    raft_uv_tcp_close(&t->inner);
}
