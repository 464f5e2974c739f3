#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"
#include "gcs.pb-c.h"
#include "glob.h"
#include "log.h"

#define N_BUCKETS 4096
/* A watcher catching up from the changelog gets more once its unsent
 * output is below this. */
#define WATCH_CATCHUP_CHUNK (256u * 1024)
#define WATCH_CHANNEL "__gcs__:watch"
#define PROGRESS_CHANNEL "__gcs__:progress"

/* One channel (or pattern) and its local subscribers, in subscription
 * order. */
typedef struct psChannel {
    char *name;
    size_t len;
    client **subs;
    size_t n, cap;
    struct psChannel *next; /* bucket chain, or the pattern list */
} psChannel;

/* A client's subscriptions (client.ps). */
struct ps_client {
    psChannel **chans;
    size_t n_chans, cap_chans;
    psChannel **pats;
    size_t n_pats, cap_pats;
    bool doomed; /* over its output limit: closed after this delivery */
    /* GCS.WATCH */
    bool watching;
    bool live;         /* caught up: gets events from on_events */
    bool ended;        /* compacted under it: closing */
    char table[64];    /* "": every table */
    char *prefix;      /* key prefix; NULL: any */
    size_t prefix_len;
    uint64_t next_rev; /* the next revision it is owed */
};

struct pubsub {
    server *srv;
    psChannel *buckets[N_BUCKETS];
    size_t n_channels;
    psChannel *patterns;
    size_t n_patterns;
    client **doomed;
    size_t n_doomed, cap_doomed;
    client **watchers;
    size_t n_watchers, cap_watchers;
    size_t n_subscribers; /* clients with a channel or pattern */
    resp_buf frames;      /* scratch: frames being fanned out */
    pubsub_stats stats;
    uv_timer_t progress;
    uv_idle_t catchup; /* keeps the loop turning while watchers catch up */
    int open_handles;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "gcsd: out of memory\n");
        abort();
    }
    return q;
}

static size_t hashOf(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h % N_BUCKETS);
}

static void onProgress(uv_timer_t *t);
static void onCatchup(uv_idle_t *h) { (void)h; /* prepare does the work */ }

int pubsub_create(server *srv, pubsub **out)
{
    pubsub *ps = calloc(1, sizeof *ps);
    if (ps == NULL) return -1;
    ps->srv = srv;
    resp_buf_init(&ps->frames);
    uv_timer_init(srv->loop, &ps->progress);
    ps->progress.data = ps;
    uv_idle_init(srv->loop, &ps->catchup);
    ps->catchup.data = ps;
    ps->open_handles = 2;
    unsigned period = srv->cfg->watch_progress_ms ? srv->cfg->watch_progress_ms
                                                  : 1000;
    uv_timer_start(&ps->progress, onProgress, period, period);
    *out = ps;
    return 0;
}

static void channelFree(psChannel *ch)
{
    free(ch->name);
    free(ch->subs);
    free(ch);
}

static void freeRegistry(pubsub *ps)
{
    for (size_t b = 0; b < N_BUCKETS; b++) {
        for (psChannel *ch = ps->buckets[b], *next; ch != NULL; ch = next) {
            next = ch->next;
            channelFree(ch);
        }
    }
    for (psChannel *ch = ps->patterns, *next; ch != NULL; ch = next) {
        next = ch->next;
        channelFree(ch);
    }
    free(ps->doomed);
    free(ps->watchers);
    resp_buf_free(&ps->frames);
    free(ps);
}

static void onHandleClosed(uv_handle_t *h)
{
    pubsub *ps = h->data;
    if (--ps->open_handles == 0) freeRegistry(ps);
}

void pubsub_close(pubsub *ps)
{
    if (ps == NULL) return;
    uv_close((uv_handle_t *)&ps->progress, onHandleClosed);
    uv_close((uv_handle_t *)&ps->catchup, onHandleClosed);
}

static psChannel *findChannel(pubsub *ps, const void *name, size_t len)
{
    for (psChannel *ch = ps->buckets[hashOf(name, len)]; ch != NULL;
         ch = ch->next) {
        if (ch->len == len && memcmp(ch->name, name, len) == 0) return ch;
    }
    return NULL;
}

static psChannel *findPattern(pubsub *ps, const void *name, size_t len)
{
    for (psChannel *ch = ps->patterns; ch != NULL; ch = ch->next) {
        if (ch->len == len && memcmp(ch->name, name, len) == 0) return ch;
    }
    return NULL;
}

static psChannel *channelNew(const void *name, size_t len)
{
    psChannel *ch = calloc(1, sizeof *ch);
    if (ch == NULL) abort();
    ch->name = xrealloc(NULL, len + 1);
    if (len > 0) memcpy(ch->name, name, len);
    ch->name[len] = '\0';
    ch->len = len;
    return ch;
}

static void subsAdd(psChannel *ch, client *c)
{
    if (ch->n == ch->cap) {
        ch->cap = ch->cap ? 2 * ch->cap : 4;
        ch->subs = xrealloc(ch->subs, ch->cap * sizeof *ch->subs);
    }
    ch->subs[ch->n++] = c;
}

static void subsRemove(psChannel *ch, client *c)
{
    for (size_t i = 0; i < ch->n; i++) {
        if (ch->subs[i] == c) {
            memmove(&ch->subs[i], &ch->subs[i + 1],
                    (ch->n - i - 1) * sizeof *ch->subs);
            ch->n--;
            return;
        }
    }
}

static ps_client *psOf(client *c)
{
    if (c->ps == NULL) {
        c->ps = calloc(1, sizeof *c->ps);
        if (c->ps == NULL) abort();
    }
    return c->ps;
}

static size_t subscriptionCount(const client *c)
{
    if (c->ps == NULL) return 0;
    return c->ps->n_chans + c->ps->n_pats + (c->ps->watching ? 1 : 0);
}

bool pubsub_client_subscribed(const client *c)
{
    return subscriptionCount(c) > 0;
}

/* Free the client's record when it holds nothing any more. */
static void psMaybeFree(client *c)
{
    ps_client *p = c->ps;
    if (p == NULL || p->n_chans > 0 || p->n_pats > 0 || p->doomed ||
        p->watching) {
        return;
    }
    free(p->chans);
    free(p->pats);
    free(p);
    c->ps = NULL;
}

/* Subscribe @c to channel (or pattern) @name. False when it already was. */
static bool subscribe(pubsub *ps, client *c, const resp_arg *name,
                      bool pattern)
{
    ps_client *p = psOf(c);
    psChannel ***list = pattern ? &p->pats : &p->chans;
    size_t *n = pattern ? &p->n_pats : &p->n_chans;
    size_t *cap = pattern ? &p->cap_pats : &p->cap_chans;
    for (size_t i = 0; i < *n; i++) {
        if ((*list)[i]->len == name->len &&
            memcmp((*list)[i]->name, name->ptr, name->len) == 0) {
            return false;
        }
    }
    if (p->n_chans + p->n_pats == 0) ps->n_subscribers++;
    psChannel *ch = pattern ? findPattern(ps, name->ptr, name->len)
                            : findChannel(ps, name->ptr, name->len);
    if (ch == NULL) {
        ch = channelNew(name->ptr, name->len);
        if (pattern) {
            ch->next = ps->patterns;
            ps->patterns = ch;
            ps->n_patterns++;
        } else {
            size_t b = hashOf(name->ptr, name->len);
            ch->next = ps->buckets[b];
            ps->buckets[b] = ch;
            ps->n_channels++;
        }
    }
    subsAdd(ch, c);
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        *list = xrealloc(*list, *cap * sizeof **list);
    }
    (*list)[(*n)++] = ch;
    return true;
}

static void dropChannel(pubsub *ps, psChannel *ch, bool pattern)
{
    psChannel **pp = pattern ? &ps->patterns
                             : &ps->buckets[hashOf(ch->name, ch->len)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    }
    if (pattern) ps->n_patterns--;
    else ps->n_channels--;
    channelFree(ch);
}

/* Remove the client's i-th subscription of the kind. */
static void unsubscribeAt(pubsub *ps, client *c, size_t i, bool pattern)
{
    ps_client *p = c->ps;
    psChannel **list = pattern ? p->pats : p->chans;
    size_t *n = pattern ? &p->n_pats : &p->n_chans;
    psChannel *ch = list[i];
    memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof *list);
    (*n)--;
    subsRemove(ch, c);
    if (ch->n == 0) dropChannel(ps, ch, pattern);
    if (p->n_chans + p->n_pats == 0) ps->n_subscribers--;
}

static long findSub(const client *c, const void *name, size_t len,
                    bool pattern)
{
    if (c->ps == NULL) return -1;
    psChannel **list = pattern ? c->ps->pats : c->ps->chans;
    size_t n = pattern ? c->ps->n_pats : c->ps->n_chans;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->len == len && memcmp(list[i]->name, name, len) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static void watchStop(pubsub *ps, client *c)
{
    if (c->ps == NULL || !c->ps->watching) return;
    for (size_t i = 0; i < ps->n_watchers; i++) {
        if (ps->watchers[i] == c) {
            memmove(&ps->watchers[i], &ps->watchers[i + 1],
                    (ps->n_watchers - i - 1) * sizeof *ps->watchers);
            ps->n_watchers--;
            break;
        }
    }
    c->ps->watching = false;
    free(c->ps->prefix);
    c->ps->prefix = NULL;
}

void pubsub_client_gone(pubsub *ps, client *c)
{
    if (c->ps == NULL) return;
    watchStop(ps, c);
    while (c->ps->n_chans > 0) unsubscribeAt(ps, c, c->ps->n_chans - 1, false);
    while (c->ps->n_pats > 0) unsubscribeAt(ps, c, c->ps->n_pats - 1, true);
    c->ps->doomed = false; /* the doomed list skips closing clients */
    psMaybeFree(c);
}

void pubsub_client_reset(pubsub *ps, client *c)
{
    pubsub_client_gone(ps, c);
}

void pubsub_get_stats(const pubsub *ps, pubsub_stats *out)
{
    *out = ps->stats;
    out->channels = ps->n_channels;
    out->patterns = ps->n_patterns;
    out->subscribers = ps->n_subscribers;
    out->watchers = ps->n_watchers;
}

void pubsub_reset_stats(pubsub *ps)
{
    memset(&ps->stats, 0, sizeof ps->stats);
}

/* ---- delivery ------------------------------------------------------------ */

static uint64_t unsent(const client *c)
{
    uint64_t pending = c->out.len + c->sending.len;
    for (const reply_slot *s = c->slots_head; s != NULL; s = s->next) {
        pending += s->reply.len;
    }
    return pending;
}

/* After writing to @c: disconnect it (once the delivery is over) when its
 * unsent output passes the limit. */
static void checkLimit(pubsub *ps, client *c)
{
    uint64_t limit = ps->srv->cfg->pubsub_output_limit;
    if (limit == 0 || c->ps == NULL || c->ps->doomed) return;
    uint64_t pending = unsent(c);
    if (pending <= limit) return;
    c->ps->doomed = true;
    if (ps->n_doomed == ps->cap_doomed) {
        ps->cap_doomed = ps->cap_doomed ? 2 * ps->cap_doomed : 8;
        ps->doomed = xrealloc(ps->doomed, ps->cap_doomed * sizeof *ps->doomed);
    }
    ps->doomed[ps->n_doomed++] = c;
    ps->stats.output_limit_disconnections++;
    log_notice("client %s (id %llu): pub/sub output buffer of %llu bytes is "
               "over the limit of %llu (--pubsub-output-limit); "
               "disconnecting it", c->addr, (unsigned long long)c->id,
               (unsigned long long)pending, (unsigned long long)limit);
}

static void closeDoomed(pubsub *ps)
{
    for (size_t i = 0; i < ps->n_doomed; i++) {
        client *c = ps->doomed[i];
        if (c->ps != NULL && c->ps->doomed) {
            c->ps->doomed = false;
            client_kill(c);
        }
    }
    ps->n_doomed = 0;
}

/* The frame of one message (or pmessage when @pattern) to @out. */
static void encodeMessage(resp_buf *out, const psChannel *pattern,
                          const void *ch, size_t chlen, const void *msg,
                          size_t len)
{
    if (pattern != NULL) {
        resp_add_array(out, 4);
        resp_add_bulk(out, "pmessage", 8);
        resp_add_bulk(out, pattern->name, pattern->len);
    } else {
        resp_add_array(out, 3);
        resp_add_bulk(out, "message", 7);
    }
    resp_add_bulk(out, ch, chlen);
    resp_add_bulk(out, msg, len);
}

/* Give every subscriber of @ch the @n frames encoded in ps->frames: one
 * copy per subscriber, however many messages they hold. */
static void deliverFrames(pubsub *ps, const psChannel *ch, size_t n)
{
    for (size_t i = 0; i < ch->n; i++) {
        client *c = ch->subs[i];
        if (c->ps->doomed) continue;
        resp_add_raw(client_reply(c), ps->frames.data, ps->frames.len);
        ps->stats.messages_delivered += n;
        checkLimit(ps, c);
    }
}

static void framesDone(pubsub *ps)
{
    resp_buf_reset(&ps->frames);
    if (ps->frames.cap > 1024 * 1024) { /* give back a burst's memory */
        resp_buf_free(&ps->frames);
        resp_buf_init(&ps->frames);
    }
}

/* A message (or a change event, encoded at most once and only if someone
 * receives it). */
typedef struct payload {
    const fsm_event *ev; /* NULL: data/len are the message itself */
    void *data;
    size_t len;
    bool failed;
} payload;

static bool payloadGet(payload *p)
{
    if (p->data != NULL || p->ev == NULL) return true;
    if (p->failed) return false;
    if (fsm_event_encode(p->ev, &p->data, &p->len) != 0) {
        p->failed = true;
        log_warn("out of memory encoding a change event");
        return false;
    }
    return true;
}

/* Deliver @n payloads, all on channel @name, to its subscribers and to
 * those of matching patterns, in order. The frames are encoded once per
 * channel or pattern, not once per subscriber. */
static void publishLocal(pubsub *ps, const void *name, size_t len,
                         payload *p, size_t n)
{
    if (n > 1) {
        /* A client subscribed to the channel and to a matching pattern
         * gets message, pmessage, message, pmessage... as from Redis: with
         * a matching pattern, one message at a time. */
        for (psChannel *pat = ps->patterns; pat != NULL; pat = pat->next) {
            if (!glob_match(pat->name, pat->len, name, len, false)) continue;
            for (size_t k = 0; k < n; k++) publishLocal(ps, name, len, &p[k], 1);
            return;
        }
    }
    psChannel *ch = findChannel(ps, name, len);
    if (ch != NULL && ch->n > 0) {
        size_t ok = 0;
        for (size_t k = 0; k < n; k++) {
            if (!payloadGet(&p[k])) continue;
            encodeMessage(&ps->frames, NULL, name, len, p[k].data, p[k].len);
            ok++;
        }
        deliverFrames(ps, ch, ok);
        framesDone(ps);
    }
    for (psChannel *pat = ps->patterns; pat != NULL; pat = pat->next) {
        if (!glob_match(pat->name, pat->len, name, len, false)) continue;
        size_t ok = 0;
        for (size_t k = 0; k < n; k++) {
            if (!payloadGet(&p[k])) continue;
            encodeMessage(&ps->frames, pat, name, len, p[k].data, p[k].len);
            ok++;
        }
        deliverFrames(ps, pat, ok);
        framesDone(ps);
    }
}

size_t pubsub_count_receivers(void *ctx, const void *channel, size_t len)
{
    pubsub *ps = ctx;
    psChannel *ch = findChannel(ps, channel, len);
    size_t n = ch != NULL ? ch->n : 0;
    for (psChannel *pat = ps->patterns; pat != NULL; pat = pat->next) {
        if (glob_match(pat->name, pat->len, channel, len, false)) n += pat->n;
    }
    return n;
}

/* The change channels of @ev: per table, and per key for the keyspace. */
static void publishEvent(pubsub *ps, const fsm_event *ev, payload *p)
{
    if (ps->n_channels == 0 && ps->n_patterns == 0) return;
    char stackName[256];
    size_t tlen = strlen(ev->table);
    size_t plen = sizeof PUBSUB_TABLE_PREFIX - 1;
    if (plen + tlen <= sizeof stackName) {
        memcpy(stackName, PUBSUB_TABLE_PREFIX, plen);
        memcpy(stackName + plen, ev->table, tlen);
        publishLocal(ps, stackName, plen + tlen, p, 1);
    }
    if (strcmp(ev->table, FSM_TABLE_KEYSPACE) == 0) {
        size_t klen = sizeof PUBSUB_KEYSPACE_PREFIX - 1;
        size_t n = klen + ev->key_len;
        char *name = n <= sizeof stackName ? stackName : malloc(n);
        if (name == NULL) return;
        memcpy(name, PUBSUB_KEYSPACE_PREFIX, klen);
        if (ev->key_len > 0) memcpy(name + klen, ev->key, ev->key_len);
        publishLocal(ps, name, n, p, 1);
        if (name != stackName) free(name);
    }
}

/* ---- GCS.WATCH ------------------------------------------------------------ */

static bool watchMatches(const ps_client *w, const char *table,
                         const void *key, size_t key_len)
{
    if (w->table[0] != '\0' && strcasecmp(w->table, table) != 0) return false;
    return w->prefix == NULL ||
           (key_len >= w->prefix_len &&
            (w->prefix_len == 0 || memcmp(key, w->prefix, w->prefix_len) == 0));
}

static void sendWatchEvent(pubsub *ps, client *c, const void *ev, size_t len)
{
    resp_buf *out = client_reply(c);
    resp_add_array(out, 3);
    resp_add_bulk(out, "message", 7);
    resp_add_bulk(out, WATCH_CHANNEL, sizeof WATCH_CHANNEL - 1);
    resp_add_bulk(out, ev, len);
    ps->stats.watch_events_delivered++;
    checkLimit(ps, c);
}

typedef struct catchup {
    pubsub *ps;
    client *c;
    uint64_t upto;
} catchup;

static int catchupOne(void *arg, uint64_t revision, storage_slice event)
{
    catchup *cu = arg;
    ps_client *w = cu->c->ps;
    if (revision > cu->upto) return 1;
    if (revision != w->next_rev) return STORAGE_ECORRUPT; /* a hole */
    Gcs__ChangeEvent *ev = gcs__change_event__unpack(NULL, event.len,
                                                     event.data);
    if (ev == NULL) return STORAGE_ENOMEM;
    bool match = watchMatches(w, ev->table ? ev->table : "", ev->key.data,
                              ev->key.len);
    gcs__change_event__free_unpacked(ev, NULL);
    if (match) sendWatchEvent(cu->ps, cu->c, event.data, event.len);
    w->next_rev = revision + 1;
    if (w->doomed || unsent(cu->c) >= WATCH_CATCHUP_CHUNK) return 1;
    return 0;
}

static void replyCompacted(resp_buf *out, uint64_t from, uint64_t oldest)
{
    resp_add_errorf(out, "ERR revision %llu is compacted; the oldest "
                    "revision kept is %llu", (unsigned long long)from,
                    (unsigned long long)oldest);
}

/* Send watcher @c what it is owed from the changelog, up to a chunk; it
 * turns live once it reached the applied revision. */
static void watchPump(pubsub *ps, client *c)
{
    ps_client *w = c->ps;
    fsm *f = ps->srv->fsm;
    /* Live events reach a live watcher as they are applied, so one still
     * owed an applied revision missed them: this member installed a
     * snapshot. The changelog that came with it has them. */
    if (w->live && w->next_rev <= f->revision) w->live = false;
    if (w->live || w->ended || w->doomed) return;
    if (unsent(c) >= WATCH_CATCHUP_CHUNK) return;
    storage_txn *t = fsm_read_txn(f);
    if (t == NULL) return; /* logged; tried again next iteration */
    fsm_changelog_info ci;
    int rc = fsm_changelog_info_get(t, &ci);
    if (rc == 0 && w->next_rev <= ci.newest && w->next_rev < ci.oldest) {
        /* Trimmed before it was sent: the watcher must re-read. */
        replyCompacted(client_reply(c), w->next_rev, ci.oldest);
        w->ended = true;
        client_close_after_reply(c);
        return;
    }
    catchup cu = {ps, c, ci.newest};
    if (rc == 0 && w->next_rev <= ci.newest) {
        rc = fsm_changelog_scan(t, w->next_rev, catchupOne, &cu);
        if (rc == 1) rc = 0;
    }
    if (rc != 0) {
        log_warn("client %s: GCS.WATCH cannot read the changelog: %s; "
                 "closing", c->addr, storage_strerror(rc));
        w->ended = true;
        client_close_after_reply(c);
        return;
    }
    if (w->next_rev > ci.newest) w->live = true;
}

static void watchersLive(pubsub *ps, const fsm_event *ev, payload *p)
{
    for (size_t i = 0; i < ps->n_watchers; i++) {
        client *c = ps->watchers[i];
        ps_client *w = c->ps;
        if (!w->live || w->doomed || w->ended) continue;
        if (ev->revision < w->next_rev) continue; /* already sent */
        if (ev->revision > w->next_rev) {
            /* A gap (this member installed a snapshot): the changelog
             * has what is missing. */
            w->live = false;
            continue;
        }
        w->next_rev = ev->revision + 1;
        if (!watchMatches(w, ev->table, ev->key, ev->key_len)) continue;
        if (!payloadGet(p)) continue;
        sendWatchEvent(ps, c, p->data, p->len);
    }
}

static void sweepEnded(pubsub *ps)
{
    for (size_t i = ps->n_watchers; i-- > 0;) {
        client *c = ps->watchers[i];
        if (c->ps->ended) watchStop(ps, c);
    }
}

/* Messages of consecutive PUBLISHes on one channel go out as one batch. */
#define MESSAGE_BATCH 256

void pubsub_on_events(void *ctx, const fsm_event *ev, size_t n)
{
    pubsub *ps = ctx;
    payload batch[MESSAGE_BATCH];
    for (size_t i = 0; i < n;) {
        if (ev[i].kind == FSM_EVENT_MESSAGE) {
            size_t k = 0;
            do {
                batch[k] = (payload){.ev = NULL, .data = (void *)ev[i + k].value,
                                     .len = ev[i + k].value_len};
                k++;
            } while (k < MESSAGE_BATCH && i + k < n &&
                     ev[i + k].kind == FSM_EVENT_MESSAGE &&
                     ev[i + k].key_len == ev[i].key_len &&
                     (ev[i].key_len == 0 ||
                      memcmp(ev[i + k].key, ev[i].key, ev[i].key_len) == 0));
            ps->stats.messages_published += k;
            publishLocal(ps, ev[i].key, ev[i].key_len, batch, k);
            i += k;
            continue;
        }
        payload p = {.ev = &ev[i]};
        publishEvent(ps, &ev[i], &p);
        if (ps->n_watchers > 0) watchersLive(ps, &ev[i], &p);
        free(p.data);
        i++;
    }
    closeDoomed(ps);
}

void pubsub_before_flush(pubsub *ps)
{
    for (size_t i = 0; i < ps->n_watchers; i++) {
        watchPump(ps, ps->watchers[i]);
    }
    sweepEnded(ps);
    closeDoomed(ps);
}

void pubsub_after_flush(pubsub *ps)
{
    /* A watcher still catching up whose output all went out needs another
     * turn of the loop; one waiting for a write gets it from that write. */
    bool more = false;
    for (size_t i = 0; i < ps->n_watchers && !more; i++) {
        client *c = ps->watchers[i];
        more = !c->ps->live && !(c->flags & CLIENT_WRITING);
    }
    if (more) uv_idle_start(&ps->catchup, onCatchup);
    else uv_idle_stop(&ps->catchup);
}

/* Progress notifications: everything up to the revision was sent. */
static void onProgress(uv_timer_t *t)
{
    pubsub *ps = t->data;
    char rev[24];
    for (size_t i = 0; i < ps->n_watchers; i++) {
        client *c = ps->watchers[i];
        ps_client *w = c->ps;
        if (!w->live || w->doomed || w->ended) continue;
        int n = snprintf(rev, sizeof rev, "%llu",
                         (unsigned long long)(w->next_rev - 1));
        resp_buf *out = client_reply(c);
        resp_add_array(out, 3);
        resp_add_bulk(out, "message", 7);
        resp_add_bulk(out, PROGRESS_CHANNEL, sizeof PROGRESS_CHANNEL - 1);
        resp_add_bulk(out, rev, (size_t)n);
        checkLimit(ps, c);
    }
    closeDoomed(ps);
}

/* ---- commands ------------------------------------------------------------ */

static void replyConfirm(resp_buf *out, const char *kind, const void *name,
                         size_t len, bool null_name, size_t count)
{
    resp_add_array(out, 3);
    resp_add_bulk_str(out, kind);
    if (null_name) resp_add_null(out);
    else resp_add_bulk(out, name, len);
    resp_add_integer(out, (long long)count);
}

static void subscribeGeneric(client *c, size_t argc, const resp_arg *argv,
                             bool pattern)
{
    pubsub *ps = c->srv->pubsub;
    for (size_t i = 1; i < argc; i++) {
        subscribe(ps, c, &argv[i], pattern);
        replyConfirm(client_reply(c), pattern ? "psubscribe" : "subscribe",
                     argv[i].ptr, argv[i].len, false, subscriptionCount(c));
    }
}

static void unsubscribeGeneric(client *c, size_t argc, const resp_arg *argv,
                               bool pattern)
{
    pubsub *ps = c->srv->pubsub;
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    if (argc == 1) {
        size_t n = c->ps == NULL ? 0 : pattern ? c->ps->n_pats
                                               : c->ps->n_chans;
        if (n == 0) {
            replyConfirm(client_reply(c), kind, NULL, 0, true,
                         subscriptionCount(c));
        }
        while (c->ps != NULL && (pattern ? c->ps->n_pats : c->ps->n_chans)) {
            psChannel *ch = pattern ? c->ps->pats[0] : c->ps->chans[0];
            /* Reply before the channel may be freed. */
            size_t left = subscriptionCount(c) - 1;
            replyConfirm(client_reply(c), kind, ch->name, ch->len, false,
                         left);
            unsubscribeAt(ps, c, 0, pattern);
        }
    } else {
        for (size_t i = 1; i < argc; i++) {
            long at = findSub(c, argv[i].ptr, argv[i].len, pattern);
            if (at >= 0) unsubscribeAt(ps, c, (size_t)at, pattern);
            replyConfirm(client_reply(c), kind, argv[i].ptr, argv[i].len,
                         false, subscriptionCount(c));
        }
    }
    if (c->ps != NULL) psMaybeFree(c);
}

static void subscribeCommand(client *c, size_t argc, const resp_arg *argv)
{
    subscribeGeneric(c, argc, argv, false);
}

static void psubscribeCommand(client *c, size_t argc, const resp_arg *argv)
{
    subscribeGeneric(c, argc, argv, true);
}

static void unsubscribeCommand(client *c, size_t argc, const resp_arg *argv)
{
    unsubscribeGeneric(c, argc, argv, false);
}

static void punsubscribeCommand(client *c, size_t argc, const resp_arg *argv)
{
    unsubscribeGeneric(c, argc, argv, true);
}

static int publishApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                        resp_buf *reply)
{
    (void)argc;
    return apply_publish(a, arg_slice(&argv[1]), arg_slice(&argv[2]), reply);
}

static void pubsubCommand(client *c, size_t argc, const resp_arg *argv)
{
    pubsub *ps = c->srv->pubsub;
    resp_buf *out = client_reply(c);
    if (arg_equals(&argv[1], "channels") && argc <= 3) {
        const resp_arg *pat = argc == 3 ? &argv[2] : NULL;
        resp_buf items;
        resp_buf_init(&items);
        size_t n = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            for (psChannel *ch = ps->buckets[b]; ch != NULL; ch = ch->next) {
                if (pat != NULL && !glob_match(pat->ptr, pat->len, ch->name,
                                               ch->len, false)) {
                    continue;
                }
                resp_add_bulk(&items, ch->name, ch->len);
                n++;
            }
        }
        resp_add_array(out, n);
        resp_add_raw(out, items.data, items.len);
        resp_buf_free(&items);
    } else if (arg_equals(&argv[1], "numsub")) {
        resp_add_array(out, 2 * (argc - 2));
        for (size_t i = 2; i < argc; i++) {
            psChannel *ch = findChannel(ps, argv[i].ptr, argv[i].len);
            resp_add_bulk(out, argv[i].ptr, argv[i].len);
            resp_add_integer(out, ch != NULL ? (long long)ch->n : 0);
        }
    } else if (arg_equals(&argv[1], "numpat") && argc == 2) {
        resp_add_integer(out, (long long)ps->n_patterns);
    } else if (arg_equals(&argv[1], "help") && argc == 2) {
        static const char *const help[] = {
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> "
            "(default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels,"
            " excluding",
            "    pattern subscriptions(default: no channels).",
            "HELP",
            "    Prints this help.",
        };
        size_t n = sizeof help / sizeof help[0];
        resp_add_array(out, n);
        for (size_t i = 0; i < n; i++) resp_add_status(out, help[i]);
    } else if (arg_equals(&argv[1], "channels")) {
        resp_add_errorf(out, "ERR unknown subcommand or wrong number of "
                        "arguments for '%.*s'. Try PUBSUB HELP.",
                        (int)argv[1].len, argv[1].ptr);
    } else if (arg_equals(&argv[1], "numpat") ||
               arg_equals(&argv[1], "help")) {
        resp_add_errorf(out, "ERR wrong number of arguments for "
                        "'pubsub|%s' command",
                        arg_equals(&argv[1], "help") ? "help" : "numpat");
    } else {
        resp_add_errorf(out, "ERR unknown subcommand '%.*s'. Try PUBSUB "
                        "HELP.", (int)(argv[1].len > 128 ? 128 : argv[1].len),
                        argv[1].ptr);
    }
}

static void resetCommand(client *c, size_t argc, const resp_arg *argv)
{
    (void)argc;
    (void)argv;
    pubsub_client_reset(c->srv->pubsub, c);
    c->flags &= ~(unsigned)CLIENT_READONLY;
    if (c->srv->cfg->requirepass[0] != '\0') {
        c->flags &= ~(unsigned)CLIENT_AUTHENTICATED;
    }
    resp_add_status(client_reply(c), "RESET");
}

/* GCS.WATCH table|* [FROM revision] [PREFIX p] */
static void watchCommand(client *c, size_t argc, const resp_arg *argv)
{
    pubsub *ps = c->srv->pubsub;
    fsm *f = c->srv->fsm;
    uint64_t from = f->revision + 1;
    const resp_arg *prefix = NULL;
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            resp_add_error(client_reply(c), ERR_SYNTAX);
            return;
        }
        if (arg_equals(&argv[i], "from")) {
            if (!parse_u64(argv[i + 1].ptr, argv[i + 1].len, &from) ||
                from == 0) {
                resp_add_error(client_reply(c), "ERR FROM needs a revision "
                                                ">= 1");
                return;
            }
        } else if (arg_equals(&argv[i], "prefix")) {
            prefix = &argv[i + 1];
        } else {
            resp_add_error(client_reply(c), ERR_SYNTAX);
            return;
        }
    }
    if (argv[1].len == 0 || argv[1].len >= sizeof c->ps->table) {
        resp_add_error(client_reply(c), "ERR no such table");
        return;
    }
    if (c->ps != NULL && c->ps->watching) {
        resp_add_error(client_reply(c), "ERR this connection is already "
                                        "watching");
        return;
    }
    storage_txn *t = fsm_read_txn(f);
    fsm_changelog_info ci;
    int rc = t == NULL ? STORAGE_EIO : fsm_changelog_info_get(t, &ci);
    if (rc != 0) {
        reply_storage_error(client_reply(c), rc);
        return;
    }
    if (from <= ci.newest && from < ci.oldest) {
        replyCompacted(client_reply(c), from, ci.oldest);
        return;
    }
    ps_client *w = psOf(c);
    w->watching = true;
    w->live = false;
    w->ended = false;
    w->next_rev = from;
    if (argv[1].len == 1 && argv[1].ptr[0] == '*') {
        w->table[0] = '\0';
    } else {
        memcpy(w->table, argv[1].ptr, argv[1].len);
        w->table[argv[1].len] = '\0';
    }
    if (prefix != NULL) {
        w->prefix = xrealloc(NULL, prefix->len);
        if (prefix->len > 0) memcpy(w->prefix, prefix->ptr, prefix->len);
        w->prefix_len = prefix->len;
    }
    if (ps->n_watchers == ps->cap_watchers) {
        ps->cap_watchers = ps->cap_watchers ? 2 * ps->cap_watchers : 8;
        ps->watchers = xrealloc(ps->watchers,
                                ps->cap_watchers * sizeof *ps->watchers);
    }
    ps->watchers[ps->n_watchers++] = c;
    replyConfirm(client_reply(c), "subscribe", WATCH_CHANNEL,
                 sizeof WATCH_CHANNEL - 1, false, subscriptionCount(c));
    watchPump(ps, c);
}

/* GCS.CHANGELOG.WINDOW max-events max-bytes (0: the default) */
static int windowCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    (void)argc;
    uint64_t v;
    if (!parse_u64(argv[1].ptr, argv[1].len, &v) ||
        !parse_u64(argv[2].ptr, argv[2].len, &v)) {
        resp_add_error(err, ERR_NOT_INTEGER);
        return -1;
    }
    return 0;
}

static int windowApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    if (windowCheck(argc, argv, reply) != 0) return 0;
    uint64_t events = 0, bytes = 0;
    parse_u64(argv[1].ptr, argv[1].len, &events);
    parse_u64(argv[2].ptr, argv[2].len, &bytes);
    int rc = fsm_changelog_set_window(a, events, bytes);
    if (rc == 0) resp_add_status(reply, "OK");
    return rc;
}

/* GCS.CHANGELOG.INFO: this member's changelog bounds. */
static void changelogInfoCommand(client *c, size_t argc, const resp_arg *argv)
{
    (void)argc;
    (void)argv;
    storage_txn *t = fsm_read_txn(c->srv->fsm);
    fsm_changelog_info ci;
    int rc = t == NULL ? STORAGE_EIO : fsm_changelog_info_get(t, &ci);
    resp_buf *out = client_reply(c);
    if (rc != 0) {
        reply_storage_error(out, rc);
        return;
    }
    resp_add_array(out, 10);
    resp_add_bulk_str(out, "oldest");
    resp_add_integer(out, (long long)ci.oldest);
    resp_add_bulk_str(out, "newest");
    resp_add_integer(out, (long long)ci.newest);
    resp_add_bulk_str(out, "bytes");
    resp_add_integer(out, (long long)ci.bytes);
    resp_add_bulk_str(out, "max_events");
    resp_add_integer(out, (long long)ci.max_events);
    resp_add_bulk_str(out, "max_bytes");
    resp_add_integer(out, (long long)ci.max_bytes);
}

const command pubsub_commands[] = {
    {"subscribe", -2, CMD_PUBSUB | CMD_SUBSCRIBED_OK, subscribeCommand, NULL,
     NULL, 0, 0, 0, "pubsub",
     "Listens for messages published to channels."},
    {"unsubscribe", -1, CMD_PUBSUB | CMD_SUBSCRIBED_OK, unsubscribeCommand,
     NULL, NULL, 0, 0, 0, "pubsub",
     "Stops listening to messages posted to channels."},
    {"psubscribe", -2, CMD_PUBSUB | CMD_SUBSCRIBED_OK, psubscribeCommand,
     NULL, NULL, 0, 0, 0, "pubsub",
     "Listens for messages published to channels that match patterns."},
    {"punsubscribe", -1, CMD_PUBSUB | CMD_SUBSCRIBED_OK, punsubscribeCommand,
     NULL, NULL, 0, 0, 0, "pubsub",
     "Stops listening to messages published to channels that match "
     "patterns."},
    {"publish", 3, CMD_WRITE | CMD_PUBSUB | CMD_FAST, NULL, NULL,
     publishApply, 0, 0, 0, "pubsub",
     "Posts a message to a channel (through the log: every member delivers "
     "it to its subscribers)."},
    {"pubsub", -2, CMD_PUBSUB, pubsubCommand, NULL, NULL, 0, 0, 0, "pubsub",
     "Inspects this member's pub/sub channels and patterns."},
    {"reset", 1, CMD_FAST | CMD_NOAUTH | CMD_SUBSCRIBED_OK, resetCommand,
     NULL, NULL, 0, 0, 0, "connection", "Resets the connection."},
    {"gcs.watch", -2, CMD_PUBSUB | CMD_SUBSCRIBED_OK, watchCommand, NULL,
     NULL, 0, 0, 0, "pubsub",
     "Streams the change events after a revision, then live ones, with "
     "progress notifications."},
    {"gcs.changelog.window", 3, CMD_WRITE | CMD_ADMIN, NULL, windowCheck,
     windowApply, 0, 0, 0, "server",
     "Sets how many events and bytes the changelog keeps (0: default)."},
    {"gcs.changelog.info", 1, 0, changelogInfoCommand, NULL, NULL, 0, 0, 0,
     "server", "Returns this member's changelog bounds."},
};
const size_t pubsub_commands_count =
    sizeof pubsub_commands / sizeof pubsub_commands[0];
