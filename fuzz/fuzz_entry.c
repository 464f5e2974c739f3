/* fuzz_entry: raft log entries as the state machine receives them, under
 * libFuzzer: the bytes of one RAFT_COMMAND entry go through rglue's entry
 * codec (rg_entry_decode_header, rg_entry_decode_cmds), each command through
 * fsm_command_decode (the decoder GCS.FWD uses for a forwarded command too),
 * and the entry through the apply hook rglue calls, on an fsm opened once
 * per process in a removed temp dir.
 *
 * Input: the entry's bytes (format in raft/rglue_int.h: "RGL1", count,
 * token, seq, time_ms, commands, zero padding to a multiple of 8). When they
 * are not a well-formed entry, they are tried again with the magic set and
 * the length cut to a multiple of 8, so mutations get past the framing.
 *
 * Checked:
 *  - the codec accepts exactly the canonical form: re-encoding what it
 *    decoded gives the input byte for byte;
 *  - each command that decodes has argv set for argc > 0, and encodes back
 *    (fsm_encode_write) to a Command that decodes to the same fields;
 *  - a forwarded copy is vetted as GCS.FWD vets it: lookup, arity, and the
 *    write's check, whose error is a single RESP error;
 *  - when every command decodes (all the leader ever logs: GCS.FWD refuses
 *    the others) the apply succeeds, with one well-formed reply per command,
 *    unless the entry holds a command this binary does not know or a
 *    cluster format above its own: then it fails, names the formats and
 *    acknowledges nothing;
 *    in order; with the token's low bit set a replica applies the entry too
 *    and ends byte-identical (request ids, time_ms and all: apply is
 *    deterministic).
 * The store stays small: FLUSHALL every FUZZ_FLUSH_EVERY inputs (default 16;
 * 1 to reproduce a finding from one input alone). */
#define FUZZ_NAME "fuzz_entry"
#include "fuzz_fsm.h"
#include "gcs.pb-c.h"
#include "rglue_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static fz_member primary, replica;
static unsigned long inputs, flush_every = 16;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("FUZZ_FLUSH_EVERY");
    if (e != NULL && atol(e) > 0) flush_every = (unsigned long)atol(e);
    log_set_level(LOG_WARNING);
    fz_open(&primary, "primary", 64u << 20);
    fz_open(&replica, "replica", 64u << 20);
    return 0;
}

static void apply_ok(fz_member *m, uint64_t index, int64_t time_ms,
                     const rglue_cmd *cmds, size_t n, fz_replies *out)
{
    int rc = fz_apply(m, index, time_ms, cmds, n, out);
    if (rc != 0) {
        fprintf(stderr, FUZZ_NAME ": apply failed: %d (%s)\n", rc,
                m->f.failure);
        abort();
    }
    CHECK(m->f.applied_index == index);
}

static void flushall(void)
{
    resp_arg argv[1] = {{"FLUSHALL", 8}};
    rglue_cmd cmd;
    void *enc;
    CHECK(fsm_encode_command(0, 1, argv, &enc, &cmd.len) == 0);
    cmd.data = enc;
    fz_replies r;
    apply_ok(&primary, primary.f.applied_index + 1, 0, &cmd, 1, &r);
    fz_replies_free(&r);
    free(enc);
}

/* Bring the replica level with the primary. */
static void sync_replica(void)
{
    if (replica.f.applied_index == primary.f.applied_index) return;
    void *buf;
    size_t len;
    uint64_t index;
    CHECK(primary.hooks.dump(primary.hooks.ctx, &buf, &len, &index) == 0);
    CHECK(replica.hooks.restore(replica.hooks.ctx, buf, len) == 0);
    CHECK(replica.f.applied_index == primary.f.applied_index);
    free(buf);
}

/* A decoded command: round trip, and GCS.FWD's vetting. */
static void check_command(const fsm_command *fc)
{
    CHECK(fc->argc == 0 || fc->argv != NULL);
    void *enc;
    size_t len;
    CHECK(fsm_encode_write(fc->msg->origin, fc->msg->request_id, fc->argc,
                           fc->argv, &enc, &len) == 0);
    fsm_command again;
    CHECK(fsm_command_decode(&again, enc, len) == 0);
    CHECK(again.msg->origin == fc->msg->origin);
    CHECK(again.msg->request_id == fc->msg->request_id);
    CHECK(again.argc == fc->argc);
    for (size_t i = 0; i < fc->argc; i++) {
        CHECK(again.argv[i].len == fc->argv[i].len);
        CHECK(fc->argv[i].len == 0 ||
              memcmp(again.argv[i].ptr, fc->argv[i].ptr, fc->argv[i].len) ==
                  0);
    }
    fsm_command_free(&again);
    free(enc);

    if (fc->argc == 0) return;
    const command *cmd = command_lookup(fc->argv[0].ptr, fc->argv[0].len);
    if (cmd == NULL || (cmd->flags & CMD_ENVELOPE)) return;
    if ((cmd->arity > 0 && (size_t)cmd->arity != fc->argc) ||
        (cmd->arity < 0 && fc->argc < (size_t)-cmd->arity)) {
        return;
    }
    if ((cmd->flags & CMD_WRITE) && cmd->check != NULL) {
        resp_buf err;
        resp_buf_init(&err);
        if (cmd->check(fc->argc, fc->argv, &err) != 0) {
            fz_check_reply(err.data, err.len);
            CHECK(err.len > 0 && err.data[0] == '-');
        } else {
            CHECK(err.len == 0);
        }
        resp_buf_free(&err);
    }
}

/* Try @p as an entry; true if it was one. */
static bool try_entry(const uint8_t *p, size_t len)
{
    rg_entry_header h;
    if (rg_entry_decode_header(p, len, &h) != 0) return false;
    CHECK(len >= RG_ENTRY_HEADER_LEN && len % 8 == 0);
    CHECK(h.count <= (len - RG_ENTRY_HEADER_LEN) / RG_CMD_HEADER_LEN);
    rglue_cmd *cmds = calloc(h.count ? h.count : 1, sizeof *cmds);
    CHECK(cmds != NULL);
    if (rg_entry_decode_cmds(p, len, &h, cmds) != 0) {
        free(cmds);
        return false;
    }
    /* Canonical: encoding it again gives the same bytes. */
    size_t cmd_bytes = 0;
    for (uint32_t i = 0; i < h.count; i++) {
        const uint8_t *c = cmds[i].data;
        CHECK(c >= p + RG_ENTRY_HEADER_LEN && cmds[i].len <= len &&
              (size_t)(c - p) <= len - cmds[i].len);
        cmd_bytes += RG_CMD_HEADER_LEN + cmds[i].len;
    }
    CHECK(rg_entry_size(cmd_bytes) == len);
    unsigned char *enc = malloc(len);
    CHECK(enc != NULL);
    unsigned char *q = rg_entry_put_header(enc, &h);
    for (uint32_t i = 0; i < h.count; i++) {
        q = rg_entry_put_cmd(q, cmds[i].data, (uint32_t)cmds[i].len);
    }
    rg_entry_put_padding(enc, q, len);
    CHECK(memcmp(enc, p, len) == 0);
    free(enc);

    bool all = true;
    for (uint32_t i = 0; i < h.count; i++) {
        fsm_command fc;
        if (fsm_command_decode(&fc, cmds[i].data, cmds[i].len) != 0) {
            CHECK(fc.msg == NULL && fc.argc == 0);
            all = false;
            continue;
        }
        check_command(&fc);
        fsm_command_free(&fc);
    }
    if (all && h.count > 0 &&
        fz_entry_beyond_format(&primary.f, cmds, h.count)) {
        fz_apply_beyond_format(&primary, primary.f.applied_index + 1,
                               h.time_ms, cmds, h.count);
    } else if (all && h.count > 0) {
        bool with_replica = h.token & 1;
        if (with_replica) sync_replica();
        uint64_t index = primary.f.applied_index + 1;
        fz_replies r;
        apply_ok(&primary, index, h.time_ms, cmds, h.count, &r);
        if (with_replica) {
            fz_replies rr;
            apply_ok(&replica, index, h.time_ms, cmds, h.count, &rr);
            /* The same outcome, reply for reply (PUBLISH counts local
             * subscribers: none here on either). */
            CHECK(fz_same_bytes(rr.all.data, rr.all.len, r.all.data,
                                r.all.len));
            fz_replies_free(&rr);
            fz_compare(&primary, &replica);
        }
        fz_replies_free(&r);
    }
    fsm_end_reads(&primary.f);
    free(cmds);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (++inputs % flush_every == 0) flushall();
    uint8_t *copy = calloc(1, size ? size : 1); /* gcc 12: see fuzz_dump */
    CHECK(copy != NULL);
    if (size) memcpy(copy, data, size);
    if (!try_entry(copy, size) && size >= RG_ENTRY_HEADER_LEN) {
        /* The framing made right. */
        size_t len = size & ~(size_t)7;
        uint8_t *fixed = malloc(len);
        CHECK(fixed != NULL);
        memcpy(fixed, data, len);
        memcpy(fixed, "RGL1", 4);
        try_entry(fixed, len);
        free(fixed);
    }
    free(copy);
    return 0;
}
