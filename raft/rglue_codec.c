/* Encoding of rglue's log entries and snapshot markers (formats documented in
 * rglue_int.h). Explicit little-endian byte order, so files and peers agree
 * whatever the host. */
#include <string.h>

#include "rglue_int.h"

static const unsigned char markerMagic[8] = {'R', 'G', 'L', 'M',
                                             'A', 'R', 'K', '1'};

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

size_t rg_entry_size(size_t cmd_bytes)
{
    size_t n = RG_ENTRY_HEADER_LEN + cmd_bytes;
    return (n + 7u) & ~(size_t)7u;
}

unsigned char *rg_entry_put_header(unsigned char *p, const rg_entry_header *h)
{
    put32(p, RG_ENTRY_MAGIC);
    put32(p + 4, h->count);
    put64(p + 8, h->token);
    put64(p + 16, h->seq);
    put64(p + 24, (uint64_t)h->time_ms);
    return p + RG_ENTRY_HEADER_LEN;
}

unsigned char *rg_entry_put_cmd(unsigned char *p, const void *data,
                                uint32_t len)
{
    put32(p, len);
    if (len > 0) memcpy(p + RG_CMD_HEADER_LEN, data, len);
    return p + RG_CMD_HEADER_LEN + len;
}

void rg_entry_put_padding(unsigned char *base, unsigned char *end, size_t size)
{
    size_t used = (size_t)(end - base);
    if (used < size) memset(end, 0, size - used);
}

int rg_entry_decode_header(const void *buf, size_t len, rg_entry_header *h)
{
    const unsigned char *p = buf;
    if (p == NULL || len < RG_ENTRY_HEADER_LEN || len % 8 != 0) return -1;
    if (get32(p) != RG_ENTRY_MAGIC) return -1;
    h->count = get32(p + 4);
    h->token = get64(p + 8);
    h->seq = get64(p + 16);
    h->time_ms = (int64_t)get64(p + 24);
    /* Each command takes at least its 4-byte length. */
    if (h->count > (len - RG_ENTRY_HEADER_LEN) / RG_CMD_HEADER_LEN) return -1;
    return 0;
}

int rg_entry_decode_cmds(const void *buf, size_t len, const rg_entry_header *h,
                         rglue_cmd *cmds)
{
    const unsigned char *p = buf;
    size_t off = RG_ENTRY_HEADER_LEN;
    for (uint32_t i = 0; i < h->count; i++) {
        if (len - off < RG_CMD_HEADER_LEN) return -1;
        uint32_t n = get32(p + off);
        off += RG_CMD_HEADER_LEN;
        if (n > len - off) return -1;
        cmds[i].data = p + off;
        cmds[i].len = n;
        off += n;
    }
    /* Only the zero padding may follow: anything else means the writer and
     * this reader disagree on the format. */
    if (len - off >= 8) return -1;
    for (; off < len; off++) {
        if (p[off] != 0) return -1;
    }
    return 0;
}

void rg_marker_encode(unsigned char out[RG_MARKER_LEN], uint64_t index)
{
    memcpy(out, markerMagic, sizeof markerMagic);
    put64(out + 8, index);
}

bool rg_marker_decode(const void *buf, size_t len, uint64_t *index)
{
    if (buf == NULL || len != RG_MARKER_LEN) return false;
    if (memcmp(buf, markerMagic, sizeof markerMagic) != 0) return false;
    if (index != NULL) *index = get64((const unsigned char *)buf + 8);
    return true;
}
