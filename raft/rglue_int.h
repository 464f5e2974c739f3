/* rglue internals shared by the raft/ sources and the unit tests: the
 * on-disk entry and snapshot-marker codecs, and the TCP_NODELAY transport
 * wrapper. Not part of the public API. */
#ifndef GCS_RGLUE_INT_H
#define GCS_RGLUE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

#include "rglue.h"

#define RG_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- Log entry format (ON-DISK FORMAT: never change it incompatibly) ------
 *
 * Every RAFT_COMMAND entry written by rglue carries one group-commit batch.
 * All integers are little-endian.
 *
 *   offset  size  field
 *   0       4     magic: the bytes 'R' 'G' 'L' '1' (u32 0x314C4752)
 *   4       4     u32 command count N
 *   8       8     u64 proposer token (random, drawn once per rglue_start)
 *   16      8     u64 batch sequence number (per proposer token)
 *   24      8     i64 time_ms: the leader's wall clock (Unix ms) at flush
 *   32      ...   N times: u32 length L, then L bytes of command
 *   end     0..7  zero bytes, so the entry length is a multiple of 8
 *                 (raft_uv requires 8-byte multiples)
 *
 * Token and sequence only route replies back to the process that proposed
 * the batch; they never influence the state machine. */
#define RG_ENTRY_MAGIC 0x314C4752u
#define RG_ENTRY_HEADER_LEN 32u
#define RG_CMD_HEADER_LEN 4u

typedef struct rg_entry_header {
    uint32_t count;
    uint64_t token;
    uint64_t seq;
    int64_t time_ms;
} rg_entry_header;

/* Bytes taken by an entry whose commands total @cmd_bytes (sum of 4 + len
 * over its commands), padding included. */
size_t rg_entry_size(size_t cmd_bytes);
/* Write the header at @p; returns the position of the first command. */
unsigned char *rg_entry_put_header(unsigned char *p, const rg_entry_header *h);
/* Write one command at @p; returns the position after it. */
unsigned char *rg_entry_put_cmd(unsigned char *p, const void *data,
                                uint32_t len);
/* Zero the padding between @end and @base + @size. */
void rg_entry_put_padding(unsigned char *base, unsigned char *end, size_t size);
/* Parse and check the header of an entry: 0, or -1 if it is not ours. */
int rg_entry_decode_header(const void *buf, size_t len, rg_entry_header *h);
/* Fill @cmds (h->count slots) with views into @buf. Checks every length, the
 * padding and that nothing trails: 0, or -1 on a malformed entry. */
int rg_entry_decode_cmds(const void *buf, size_t len, const rg_entry_header *h,
                         rglue_cmd *cmds);

/* ---- Snapshot marker (ON-DISK FORMAT) ---------------------------------------
 *
 * A local raft snapshot is not the data (that already lives durably in the
 * state store) but this 16-byte marker: the bytes "RGLMARK1" then the u64
 * (little-endian) index up to which the state store was made durable before
 * raft persisted the snapshot. Anything else in a snapshot is a full dump made
 * by rglue_fsm.dump. */
#define RG_MARKER_LEN 16u
void rg_marker_encode(unsigned char out[RG_MARKER_LEN], uint64_t index);
/* True if @buf is a marker; then *index (if not NULL) is its index. */
bool rg_marker_decode(const void *buf, size_t len, uint64_t *index);

/* ---- Transport --------------------------------------------------------------
 *
 * The stock raft_uv TCP transport, wrapped so that every stream it hands to
 * raft (accepted or connected) has TCP_NODELAY set: without it Nagle and
 * delayed ACKs stall pipelined AppendEntries by ~40 ms. */
struct rg_transport {
    struct raft_uv_transport outer; /* what raft_uv_init gets */
    struct raft_uv_transport inner; /* raft_uv_tcp_init'ed */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    const char *address; /* given to init (raft's copy) */
    char *bind_address;  /* ours, or NULL */
};

/* @bind_address may be NULL. On failure writes a message to @errbuf. */
int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *bind_address, char *errbuf, size_t errlen);
/* Release memory; only after the transport was closed, or never used. */
void rg_transport_release(struct rg_transport *t);

#endif /* GCS_RGLUE_INT_H */
