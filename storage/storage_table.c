/* storage_table: numbered tables of opaque records (see storage.h, "record
 * tables"), all in the LMDB database "tables" under the key
 * [u8 table][key bytes], so LMDB's bytewise order sorts each table by key and
 * keeps the tables apart. */
#include "storage.h"
#include "storage_int.h"

#include <errno.h>
#include <string.h>

#define TABLE_KEY_MAX (1 + STORAGE_TABLE_MAX_KEY)

static bool sliceValid(storage_slice sl)
{
    return sl.data != NULL || sl.len == 0;
}

/* Build the LMDB key for (@table, @key) in @buf. */
static bool tableKey(unsigned table, storage_slice key,
                     uint8_t buf[TABLE_KEY_MAX], MDB_val *out)
{
    if (table < 1 || table > STORAGE_TABLE_MAX || !sliceValid(key) ||
        key.len > STORAGE_TABLE_MAX_KEY)
        return false;
    buf[0] = (uint8_t)table;
    if (key.len > 0)
        memcpy(buf + 1, key.data, key.len);
    out->mv_size = 1 + key.len;
    out->mv_data = buf;
    return true;
}

int storage_table_get(storage_txn *t, unsigned table, storage_slice key,
                      storage_slice *value, bool *found)
{
    if (value)
        *value = (storage_slice){NULL, 0};
    if (found)
        *found = false;
    int rc = storage__usable(t, false);
    if (rc)
        return rc;
    uint8_t buf[TABLE_KEY_MAX];
    MDB_val k, v;
    if (value == NULL || found == NULL || !tableKey(table, key, buf, &k))
        return STORAGE_EINVAL;
    if (t->write) {
        MDB_cursor *cur;
        if ((rc = storage__cursor(t, DB_TABLES, &cur)) != 0)
            return rc;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    } else {
        rc = mdb_get(t->txn, t->s->dbi[DB_TABLES], &k, &v);
    }
    if (rc == MDB_NOTFOUND)
        return STORAGE_OK;
    if (rc)
        return storage__from_mdb(rc);
    *value = (storage_slice){v.mv_data, v.mv_size};
    *found = true;
    return STORAGE_OK;
}

/* Put; *@created (when asked) says whether the key was new. Without the
 * question, one B-tree descent instead of two. */
static int tablePut(storage_txn *t, MDB_val *k, storage_slice value,
                    bool *created)
{
    MDB_cursor *cur;
    MDB_val v;
    int rc = storage__cursor(t, DB_TABLES, &cur);
    if (rc)
        return rc;
    if (created != NULL) {
        rc = mdb_cursor_get(cur, k, &v, MDB_SET);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return storage__from_mdb(rc);
        *created = rc == MDB_NOTFOUND;
    }
    v.mv_size = value.len;
    v.mv_data = (void *)value.data;
    t->touched = true;
    return storage__from_mdb(mdb_cursor_put(cur, k, &v, 0));
}

int storage_table_put(storage_txn *t, unsigned table, storage_slice key,
                      storage_slice value, bool *created)
{
    bool made = false;
    int rc = storage__usable(t, true);
    uint8_t buf[TABLE_KEY_MAX];
    MDB_val k;
    if (rc == STORAGE_OK &&
        (!tableKey(table, key, buf, &k) || !sliceValid(value) ||
         value.len > 0xffffffffu))
        rc = STORAGE_EINVAL;
    if (rc == STORAGE_OK)
        rc = storage__settle(t, tablePut(t, &k, value,
                                         created != NULL ? &made : NULL));
    if (created)
        *created = rc == STORAGE_OK && made;
    return rc;
}

int storage_table_delete(storage_txn *t, unsigned table, storage_slice key,
                         bool *deleted)
{
    bool gone = false;
    int rc = storage__usable(t, true);
    uint8_t buf[TABLE_KEY_MAX];
    MDB_val k;
    if (rc == STORAGE_OK && !tableKey(table, key, buf, &k))
        rc = STORAGE_EINVAL;
    MDB_cursor *cur;
    if (rc == STORAGE_OK)
        rc = storage__cursor(t, DB_TABLES, &cur);
    if (rc == STORAGE_OK) {
        MDB_val v;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET);
        if (mrc == 0) {
            t->touched = true;
            mrc = mdb_cursor_del(cur, 0);
            gone = mrc == 0;
        } else if (mrc == MDB_NOTFOUND) {
            mrc = 0; /* nothing to delete */
        }
        rc = storage__settle(t, storage__from_mdb(mrc));
    }
    if (deleted)
        *deleted = rc == STORAGE_OK && gone;
    return rc;
}

int storage_table_flush(storage_txn *t, unsigned first, unsigned last)
{
    int rc = storage__usable(t, true);
    if (rc)
        return rc;
    if (first < 1 || last > STORAGE_TABLE_MAX || first > last)
        return STORAGE_EINVAL;
    t->touched = true;
    if (first == 1 && last == STORAGE_TABLE_MAX)
        return storage__settle(
            t, storage__from_mdb(mdb_drop(t->txn, t->s->dbi[DB_TABLES], 0)));
    /* Part of the tables: delete their range of keys, [first] .. [last]. */
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(t->txn, t->s->dbi[DB_TABLES], &cur);
    if (mrc)
        return storage__settle(t, storage__from_mdb(mrc));
    uint8_t start = (uint8_t)first;
    MDB_val k = {1, &start}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && ((const uint8_t *)k.mv_data)[0] <= last) {
        mrc = mdb_cursor_del(cur, 0);
        if (mrc == 0)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND || mrc == EINVAL)
        mrc = 0; /* ran off the end (GET_CURRENT after the last delete) */
    return storage__settle(t, storage__from_mdb(mrc));
}

int storage_table_scan(storage_txn *t, unsigned table, storage_slice prefix,
                       storage_slice from, storage_record_fn fn, void *arg)
{
    int rc = storage__usable(t, false);
    if (rc)
        return rc;
    uint8_t pbuf[TABLE_KEY_MAX], sbuf[TABLE_KEY_MAX];
    MDB_val pk, start;
    if (fn == NULL || !tableKey(table, prefix, pbuf, &pk) ||
        !sliceValid(from) || from.len > STORAGE_TABLE_MAX_KEY)
        return STORAGE_EINVAL;
    /* Start at the larger of the prefix and @from. */
    start = pk;
    if (from.len > 0) {
        size_t n = from.len < prefix.len ? from.len : prefix.len;
        int c = n > 0 ? memcmp(from.data, prefix.data, n) : 0;
        if (c > 0 || (c == 0 && from.len > prefix.len)) {
            if (!tableKey(table, from, sbuf, &start))
                return STORAGE_EINVAL;
        }
    }

    MDB_cursor *cur;
    rc = mdb_cursor_open(t->txn, t->s->dbi[DB_TABLES], &cur);
    if (rc)
        return storage__from_mdb(rc);
    int ret = STORAGE_OK;
    MDB_val k = start, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pk.mv_size ||
            memcmp(k.mv_data, pk.mv_data, pk.mv_size) != 0)
            break; /* past the prefix (or the table) */
        ret = fn(arg,
                 (storage_slice){(const uint8_t *)k.mv_data + 1,
                                 k.mv_size - 1},
                 (storage_slice){v.mv_data, v.mv_size});
        if (ret != 0)
            break;
    }
    if (ret == STORAGE_OK && rc != 0 && rc != MDB_NOTFOUND)
        ret = storage__from_mdb(rc);
    mdb_cursor_close(cur);
    return ret;
}
