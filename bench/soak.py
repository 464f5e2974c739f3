#!/usr/bin/env python3
"""Soak test: a 3-member gcsd cluster under a steady mixed workload with
periodic faults, sampled over time.

Run through bench/soak.sh (which builds gcsd and installs matplotlib if
needed); this script does the work:

  soak.py --gcsd PATH --minutes N --out DIR [--seed S] [--rate OPS]
  soak.py --report-only DIR          (redo the report and plot from DIR)

Workload (client processes, each op timed on its own connection):
  kv      SET/GET/INCR/HSET/DEL over a bounded keyspace, --rate ops/s total
  tables  actor lifecycles (REGISTER, UPDATE PENDING_CREATION, ALIVE, DEAD),
          placement groups (PG.CREATE, PG.REMOVE), nodes (NODE.REGISTER,
          NODE.HEARTBEAT every second)
  watch   GCS.WATCH * followers that resume FROM last+1 on another member
          after any disconnect and check each revision comes once, in order,
          with no gap; they also time a probe key's delivery delay
Faults, one every --fault-every s on average (seeded): kill -9 and restart
(the leader twice as often as a follower; the last member is never killed,
so that one process lives through the run), SIGSTOP/SIGCONT for a few
seconds, RAFT.TRANSFER. Clients count errors and carry on (another member,
after a short pause).

Every --sample s: per member RSS, open fds, LMDB used and file bytes, the
changelog's events and bytes, the raft log directory's bytes on disk, LMDB
pages in use (mdb_stat -ef, if lmdb-utils is installed); per interval and
op: count, errors, p50/p99/p99.9 latency. At a third, two thirds and the
end: entries and bytes per LMDB table of member 1 (from an mdb_copy).
Output in DIR: samples.jsonl, clients.jsonl, faults.jsonl, lmdb.jsonl,
series.csv, latency.csv, report.md, soak.png.
"""
import argparse
import collections
import csv
import datetime
import json
import multiprocessing as mp
import os
import queue
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import redis
except ImportError:  # only the report needs nothing but the stdlib
    redis = None

NMEMBERS = 3


# ---- small protobuf encoder/decoder (the few fields the workload needs) ----

def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def pb_int(field, n):
    return _varint(field << 3) + _varint(n)


def pb_double(field, x):
    return _varint(field << 3 | 1) + struct.pack("<d", x)


def pb_map_str_double(field, key, value):
    return pb_bytes(field, pb_bytes(1, key) + pb_double(2, value))


def pb_fields(buf):
    """Yield (field, wiretype, value) of a message's top level."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _read_varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            ln, i = _read_varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def _read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def address(node_id, worker_id):  # ray.rpc.Address
    return (pb_bytes(1, node_id) + pb_bytes(2, "127.0.0.1") + pb_int(3, 10000)
            + pb_bytes(4, worker_id))


def node_record(node_id):  # GcsNodeInfo, plenty of CPU for every bundle
    return (pb_bytes(1, node_id) + pb_bytes(2, "127.0.0.1") + pb_int(5, 7000)
            + pb_map_str_double(11, "CPU", 1e9))


def actor_record(actor_id, job_id, owner):  # ActorTableData for REGISTER
    return (pb_bytes(1, actor_id) + pb_bytes(4, job_id) + pb_bytes(10, owner)
            + pb_bytes(23, "SoakActor"))


def actor_update(state, addr=None):
    rec = pb_int(6, state) if state else b""
    if addr is not None:
        rec += pb_bytes(9, addr) + pb_int(16, 4242)
    return rec


def pg_record(pg_id):  # PlacementGroupTableData: one CPU bundle, detached
    bundle = pb_bytes(2, pb_bytes(1, "CPU") + pb_double(2, 1.0))
    return pb_bytes(1, pg_id) + pb_bytes(3, bundle) + pb_int(10, 1)


# ---- cluster ---------------------------------------------------------------

def free_ports(n):
    ss = [socket.socket() for _ in range(n)]
    for s in ss:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in ss]
    for s in ss:
        s.close()
    return ports


class Member:
    def __init__(self, mid, port, raft_port, http_port, data_dir, log_path):
        self.id, self.port, self.raft_port, self.http_port = mid, port, raft_port, http_port
        self.dir, self.log_path = data_dir, log_path
        self.proc = None
        self.starts = 0

    def start(self, gcsd, peers, extra):
        os.makedirs(self.dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [gcsd, "--id", str(self.id), "--peers", peers, "--port", str(self.port),
             "--raft-port", str(self.raft_port), "--http-port", str(self.http_port),
             "--data-dir", self.dir, "--log-level", "notice"] + extra,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.starts += 1

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def client(self, timeout=2.0):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout)


def info(member, section="all", timeout=1.0):
    """INFO as a dict, or None when the member does not answer in time."""
    try:
        c = member.client(timeout)
        try:
            return c.info(section)
        finally:
            c.close()
    except Exception:
        return None


def leader_of(members):
    for m in members:
        if m.pid is None:
            continue
        i = info(m, "raft")
        if i and i.get("raft_role") == "leader":
            return m
    return None


def wait_leader(members, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        m = leader_of(members)
        if m is not None:
            return m
        time.sleep(0.1)
    return None


# ---- client side -----------------------------------------------------------

class Stats:
    """Latencies (ms) and error counts per sample interval and op, shipped to
    the main process once an interval is over."""

    def __init__(self, q, t0, period):
        self.q, self.t0, self.period = q, t0, period
        self.lock = threading.Lock()
        self.lat = collections.defaultdict(lambda: collections.defaultdict(list))
        self.err = collections.defaultdict(collections.Counter)
        self.msgs = collections.Counter()  # error text -> count
        self.counters = collections.Counter()  # named totals

    def interval(self, t=None):
        return int(((time.monotonic() if t is None else t) - self.t0) // self.period)

    def ok(self, op, ms, t=None):
        k = self.interval(t)
        with self.lock:
            self.lat[k][op].append(ms)

    def error(self, op, text):
        k = self.interval()
        with self.lock:
            self.err[k][op] += 1
            self.msgs["%s: %s" % (op, text[:70])] += 1

    def count(self, name, n=1):
        with self.lock:
            self.counters[name] += n

    def flush(self, everything=False):
        now = self.interval()
        with self.lock:
            ks = sorted(set(self.lat) | set(self.err))
            for k in ks:
                if k < now or everything:
                    self.q.put(("interval", k, dict(self.lat.pop(k, {})),
                                dict(self.err.pop(k, {}))))
            if everything:
                self.q.put(("totals", dict(self.msgs), dict(self.counters)))


class Conn:
    """One connection to some member; on a connection error or timeout the
    next call goes to the next member."""

    TRANSIENT = ("TRYAGAIN", "CLUSTERDOWN", "LOADING", "MISCONF", "MOVED", "BUSY")

    def __init__(self, ports, stats, start, timeout=3.0):
        self.ports, self.stats, self.i, self.timeout = ports, stats, start, timeout
        self.c = None

    def _client(self):
        if self.c is None:
            self.c = redis.Redis(host="127.0.0.1", port=self.ports[self.i % len(self.ports)],
                                 socket_timeout=self.timeout,
                                 socket_connect_timeout=1.0)
        return self.c

    def rotate(self):
        if self.c is not None:
            try:
                self.c.close()
            except Exception:
                pass
        self.c = None
        self.i += 1

    def call(self, op, *args):
        """(True, reply) or (False, error text). Times successful calls."""
        t = time.monotonic()
        try:
            r = self._client().execute_command(*args)
        except redis.ResponseError as e:
            text = str(e)
            # redis-py drops the "ERR " of an error reply; put it back, so
            # that replies read as gcsd sent them.
            if not text[:1].isupper() or not text.split(" ", 1)[0].isupper():
                text = "ERR " + text
            self.stats.error(op, text)
            if text.startswith(self.TRANSIENT):
                time.sleep(0.05)
            return False, text
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self.stats.error(op, type(e).__name__)
            self.rotate()
            time.sleep(0.05)
            return False, type(e).__name__
        t1 = time.monotonic()
        self.stats.ok(op, (t1 - t) * 1000.0, t)
        return True, r


def pace(next_t, period):
    """Sleep until next_t; the next slot. Behind by more than a second (a
    fault): start afresh rather than burst."""
    now = time.monotonic()
    if next_t > now:
        time.sleep(next_t - now)
    elif now - next_t > 1.0:
        next_t = now
    return next_t + period


def kv_thread(ports, stats, stop, seed, rate, tid):
    rng = random.Random(seed)
    conn = Conn(ports, stats, tid)
    blob = bytes(rng.getrandbits(8) for _ in range(4096))
    ops = [("GET", 40), ("SET", 25), ("INCR", 12), ("HSET", 15), ("HGET", 3), ("DEL", 5)]
    names = [o for o, _ in ops]
    weights = [w for _, w in ops]
    next_t = time.monotonic()
    while not stop.is_set():
        next_t = pace(next_t, 1.0 / rate)
        op = rng.choices(names, weights)[0]
        if op in ("GET", "SET", "DEL"):
            key = "soak:k:%d" % rng.randrange(20000)
        if op == "GET":
            conn.call(op, "GET", key)
        elif op == "SET":
            n = rng.randrange(16, 512)
            o = rng.randrange(0, 4096 - n)
            conn.call(op, "SET", key, blob[o:o + n])
        elif op == "DEL":
            conn.call(op, "DEL", key)
        elif op == "INCR":
            conn.call(op, "INCR", "soak:c:%d" % rng.randrange(200))
        elif op == "HSET":
            n = rng.randrange(8, 128)
            conn.call(op, "HSET", "soak:h:%d" % rng.randrange(1000),
                      "f%d" % rng.randrange(20), blob[:n])
        elif op == "HGET":
            conn.call(op, "HGET", "soak:h:%d" % rng.randrange(1000), "f%d" % rng.randrange(20))


def probe_thread(ports, stats, stop):
    """SET soak:probe <monotonic ns> every 100 ms: the watchers time its
    delivery (CLOCK_MONOTONIC is shared by all processes)."""
    conn = Conn(ports, stats, 0)
    next_t = time.monotonic()
    while not stop.is_set():
        next_t = pace(next_t, 0.1)
        conn.call("PROBE", "SET", "soak:probe", str(time.monotonic_ns()))


def retrying(conn, stats, op, args, accept=(), give_up=30.0):
    """Call until it succeeds, fails with an error starting with one of
    @accept (an earlier attempt whose reply was lost did apply), or
    @give_up seconds pass. True unless it gave up or was refused."""
    end = time.monotonic() + give_up
    while True:
        ok, r = conn.call(op, *args)
        if ok:
            return True, r
        if isinstance(r, str) and any(r.startswith(a) for a in accept):
            stats.count("%s accepted after retry: %s" % (op, r[:60]))
            return True, r
        if isinstance(r, str) and r.startswith("ERR"):  # refused: no retry
            stats.count("%s refused" % op)
            return False, r
        if time.monotonic() > end:
            stats.count("%s gave up" % op)
            return False, r


class Nodes:
    """The live node ids the actors run on; replaced when declared dead."""

    def __init__(self, nonce):
        self.lock = threading.Lock()
        self.ids = []
        self.nonce = nonce
        self.made = 0

    def new_id(self):
        with self.lock:
            self.made += 1
            return self.nonce[:20] + struct.pack(">Q", self.made)

    def pick(self, rng):
        with self.lock:
            return rng.choice(self.ids) if self.ids else None


def node_thread(ports, stats, stop, nodes, count=4):
    conn = Conn(ports, stats, 1)
    for _ in range(count):
        nid = nodes.new_id()
        if retrying(conn, stats, "NODE.REGISTER", ("NODE.REGISTER", node_record(nid)))[0]:
            with nodes.lock:
                nodes.ids.append(nid)
    next_t = time.monotonic()
    while not stop.is_set():
        next_t = pace(next_t, 1.0)
        with nodes.lock:
            ids = list(nodes.ids)
        for nid in ids:
            ok, r = conn.call("NODE.HEARTBEAT", "NODE.HEARTBEAT", nid)
            if not ok and r in ("ERR node is dead", "ERR no such node"):
                stats.count("nodes declared dead (heartbeats missed in a fault)")
                new = nodes.new_id()
                if retrying(conn, stats, "NODE.REGISTER", ("NODE.REGISTER", node_record(new)))[0]:
                    with nodes.lock:
                        nodes.ids[nodes.ids.index(nid)] = new


def actor_thread(ports, stats, stop, nodes, seed, rate, tid, nonce):
    rng = random.Random(seed)
    conn = Conn(ports, stats, tid)
    job = struct.pack("<I", 100 + tid)
    n = 0
    next_t = time.monotonic()
    while not stop.is_set():
        next_t = pace(next_t, 1.0 / rate)
        node = nodes.pick(rng)
        if node is None:
            continue
        n += 1
        aid = nonce[:4] + struct.pack(">BxxxI", tid, n) + job  # 12 unique bytes + job
        owner = address(node, b"D" * 27 + bytes([tid]))
        ok, _ = retrying(conn, stats, "ACTOR.REGISTER",
                         ("ACTOR.REGISTER", actor_record(aid, job, owner)))
        if not ok:
            continue
        stats.count("actors registered")
        worker = b"W" * 20 + struct.pack(">II", tid, n)
        for state, addr in ((1, None), (2, address(node, worker)), (4, None)):
            ok, r = retrying(conn, stats, "ACTOR.UPDATE",
                             ("ACTOR.UPDATE", aid, actor_update(state, addr)),
                             accept=("ERR invalid actor state transition", "ERR actor is dead",
                                     "ERR node is not alive"))
            if not ok or (isinstance(r, str) and ("DEAD" in r or "dead" in r
                                                   or "not alive" in r)):
                break  # died on its own (its node was declared dead)


def pg_thread(ports, stats, stop, seed, rate, tid, nonce):
    conn = Conn(ports, stats, tid)
    job = struct.pack("<I", 200 + tid)
    n = 0
    next_t = time.monotonic()
    while not stop.is_set():
        next_t = pace(next_t, 1.0 / rate)
        n += 1
        pid = nonce[:6] + struct.pack(">BxxxI", tid, n) + job  # 14 unique bytes + job
        ok, _ = retrying(conn, stats, "PG.CREATE", ("PG.CREATE", pg_record(pid)))
        if ok:
            stats.count("placement groups created")
            retrying(conn, stats, "PG.REMOVE", ("PG.REMOVE", pid),
                     accept=("ERR placement group already removed",))


# ---- watchers --------------------------------------------------------------

class Resp:
    """Minimal RESP2 reader over a socket."""

    def __init__(self, sock):
        self.s, self.buf, self.pos = sock, bytearray(), 0

    def _fill(self):
        d = self.s.recv(1 << 16)
        if not d:
            raise ConnectionError("closed")
        if self.pos > 1 << 20:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RuntimeError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = bytes(self.buf[self.pos:self.pos + n])
            self.pos += n + 2
            return v
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("bad RESP type %r" % t)


def resp_cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def watch_thread(ports, stats, stop, wid):
    """Follow GCS.WATCH * across members; check revisions."""
    last = None
    i = wid
    while not stop.is_set():
        port = ports[i % len(ports)]
        sock = None
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
            sock.settimeout(4.0)  # progress comes every second: silence is a stall
            args = ["GCS.WATCH", "*"] + (["FROM", last + 1] if last is not None else [])
            sock.sendall(resp_cmd(*args))
            rd = Resp(sock)
            first = rd.read()
            if isinstance(first, RuntimeError):
                text = str(first)
                stats.error("WATCH", text)
                if "compacted" in text:  # legal, but it ends the checked run
                    stats.count("watch restarts after compaction")
                    last = None
                i += 1
                time.sleep(0.2)
                continue
            if last is not None:
                stats.count("watch resumes")
            while not stop.is_set():
                m = rd.read()
                if not isinstance(m, list) or len(m) != 3 or m[0] != b"message":
                    stats.error("WATCH", "unexpected message %r" % (m,))
                    continue
                if m[1] == b"__gcs__:progress":
                    r = int(m[2])
                    if last is not None and r > last:
                        stats.count("ANOMALY watch progress %d passed last revision %d" % (r, last))
                    continue
                rev = key = val = None
                for f, _, v in pb_fields(m[2]):
                    if f == 1:
                        rev = v
                    elif f == 3:
                        key = v
                    elif f == 5:
                        val = v
                if last is not None:
                    if rev <= last:
                        stats.count("ANOMALY watch duplicate or reordered revision")
                        stats.error("WATCH", "revision %d after %d" % (rev, last))
                    elif rev != last + 1:
                        stats.count("ANOMALY watch gap")
                        stats.error("WATCH", "gap: revision %d after %d" % (rev, last))
                last = rev if last is None or rev > last else last
                stats.count("watch events")
                if key == b"soak:probe" and val:
                    now = time.monotonic_ns()
                    stats.ok("WATCH_DELAY", (now - int(val)) / 1e6)
        except (OSError, ConnectionError, ValueError) as e:
            if not stop.is_set():
                stats.error("WATCH", "disconnect: %s" % type(e).__name__)
            i += 1
            time.sleep(0.1)
        finally:
            if sock is not None:
                sock.close()
    stats.count("watch last revision (watcher %d)" % wid, last or 0)


def client_proc(kind, ports, q, stop, t0, period, seed, rate):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stats = Stats(q, t0, period)
    nonce = random.Random(seed).randbytes(24)
    threads = []

    def spawn(fn, *a):
        t = threading.Thread(target=fn, args=a, daemon=True)
        t.start()
        threads.append(t)

    if kind.startswith("kv"):
        nthreads = 6
        for tid in range(nthreads):
            spawn(kv_thread, ports, stats, stop, seed * 100 + tid, rate / nthreads, tid)
        if kind == "kv0":
            spawn(probe_thread, ports, stats, stop)
    elif kind == "tables":
        nodes = Nodes(nonce)
        spawn(node_thread, ports, stats, stop, nodes)
        while not nodes.ids and not stop.is_set():
            time.sleep(0.1)
        for tid in range(2):
            spawn(actor_thread, ports, stats, stop, nodes, seed * 100 + tid, rate / 2, tid, nonce)
        spawn(pg_thread, ports, stats, stop, seed, rate / 2, 5, nonce)
    elif kind == "watch":
        for wid in range(2):
            spawn(watch_thread, ports, stats, stop, wid)
    while not stop.is_set():
        stop.wait(1.0)
        stats.flush()
    for t in threads:
        t.join(timeout=10)
    stats.flush(everything=True)
    q.put(("done", kind))


# ---- sampling and faults ----------------------------------------------------

def proc_status(pid):
    """{rss, rss_anon, rss_file, fds}: RssFile is mostly LMDB's map."""
    d = {}
    names = {"VmRSS:": "rss", "RssAnon:": "rss_anon", "RssFile:": "rss_file"}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                w = line.split()
                if w and w[0] in names:
                    d[names[w[0]]] = int(w[1]) * 1024
        d["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        pass
    return d


def dir_disk_bytes(d):
    total = 0
    try:
        for e in os.scandir(d):
            if e.is_file(follow_symlinks=False):
                total += e.stat().st_blocks * 512
    except OSError:
        pass
    return total


TABLE_NAMES = {1: "NODE", 2: "ACTOR", 3: "JOB", 4: "PLACEMENT_GROUP", 5: "node resources",
               16: "alive nodes", 17: "actor names", 18: "actors by job", 19: "actors by node",
               20: "actors by owner", 21: "actors by owner node", 22: "group names",
               23: "groups by job", 24: "groups by actor", 25: "groups by node",
               26: "group queue", 27: "queue slots", 254: "changelog", 255: "gcsd system"}


def lmdb_breakdown(state_dir):
    """Entries and key+value bytes per LMDB database, and in `tables` per
    record table, read with mdb_dump from a copy. None without lmdb-utils.

    Not mdb_dump on the live environment: its read transaction lasts as long
    as the dump (seconds), and LMDB cannot reuse pages freed meanwhile, so
    the member's file grows (by 45 MiB in a soak run). mdb_copy holds one
    for a fraction of a second."""
    if shutil.which("mdb_dump") is None or shutil.which("mdb_copy") is None:
        return None
    tmp = tempfile.mkdtemp(prefix="gcsd-soak-copy-")
    try:
        subprocess.run(["mdb_copy", state_dir, tmp], check=True, capture_output=True,
                       timeout=120)
        return _dump_breakdown(tmp)
    except (subprocess.SubprocessError, OSError):
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _dump_breakdown(state_dir):
    res = {}
    for db in ("keys", "fields", "meta", "tables"):
        p = subprocess.run(["mdb_dump", "-s", db, state_dir], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            continue
        body = p.stdout.split("HEADER=END\n", 1)[-1].split("DATA=END", 1)[0]
        lines = [l[1:] for l in body.split("\n") if l.startswith(" ")]  # empty value: " "
        for key, val in zip(lines[::2], lines[1::2]):
            name = db
            if db == "tables":
                t = int(key[:2], 16)
                name = "table %d %s" % (t, TABLE_NAMES.get(t, "?"))
            e = res.setdefault(name, [0, 0])
            e[0] += 1
            e[1] += (len(key) + len(val)) // 2
    return res


def lmdb_pages(state_dir):
    """(pages used, free pages, page size) from mdb_stat -ef, or None: the
    map's high-water mark and how much of it the freelist holds."""
    if shutil.which("mdb_stat") is None:
        return None
    try:
        p = subprocess.run(["mdb_stat", "-ef", state_dir], capture_output=True, text=True,
                           timeout=5)
    except subprocess.TimeoutExpired:
        return None
    used = free = size = None
    for line in p.stdout.splitlines():
        w = line.split()
        if line.strip().startswith("Number of pages used:"):
            used = int(w[-1])
        elif line.strip().startswith("Free pages:"):
            free = int(w[-1])
        elif line.strip().startswith("Page size:"):
            size = int(w[-1])
    return (used, free, size) if None not in (used, free, size) else None


def sample(members, t0):
    row = {"t": round(time.monotonic() - t0, 2), "members": {}}
    for m in members:
        pid = m.pid
        s = {"up": pid is not None}
        if pid is not None:
            s["pid"] = pid
            s.update(proc_status(pid))
        s["lmdb_file"] = os.path.getsize(os.path.join(m.dir, "state", "data.mdb")) \
            if os.path.exists(os.path.join(m.dir, "state", "data.mdb")) else None
        s["raft_disk"] = dir_disk_bytes(os.path.join(m.dir, "raft"))
        pg = lmdb_pages(os.path.join(m.dir, "state"))
        if pg is not None:
            s["lmdb_pages_used"], s["lmdb_free_pages"], s["lmdb_page_size"] = pg
        if pid is not None:
            i = info(m, "all", 1.0)
            if i:
                s["lmdb_used"] = i.get("lmdb_used_bytes")
                s["role"] = i.get("raft_role")
                s["applied"] = i.get("raft_applied_index")
                s["clients"] = i.get("connected_clients")
                if s.get("fds") is not None and s["clients"] is not None:
                    s["fds_not_clients"] = s["fds"] - s["clients"]
                s["keys"] = (i.get("db0") or {}).get("keys")
            try:
                c = m.client(1.0)
                r = c.execute_command("GCS.CHANGELOG.INFO")
                c.close()
                d = dict(zip(r[::2], r[1::2]))
                s["changelog_bytes"] = int(d[b"bytes"])
                s["changelog_events"] = int(d[b"newest"]) - int(d[b"oldest"]) + 1
            except Exception:
                pass
        row["members"][str(m.id)] = s
    return row


def fault_loop(members, gcsd, peers, extra, stop, rng, every, t0, fout, lock):
    kinds = ["kill-leader", "kill-follower", "pause", "transfer"]
    weights = [4, 2, 3, 3]

    def log(ev):
        ev["t"] = round(time.monotonic() - t0, 2)
        with lock:
            fout.write(json.dumps(ev) + "\n")
            fout.flush()
        print("# t=%6.0fs fault %s" % (ev["t"], json.dumps(ev)), flush=True)

    while not stop.wait(rng.uniform(0.6 * every, 1.4 * every)):
        kind = rng.choices(kinds, weights)[0]
        lead = leader_of(members)
        ev = {"kind": kind}
        try:
            if kind.startswith("kill"):
                # The last member is never killed: its process lives through
                # the whole run, so its memory and fds tell of leaks.
                keep = members[-1]
                if kind == "kill-leader" and lead is keep:
                    target = rng.choice(members[:-1])
                    try:
                        c = lead.client(5.0)
                        c.execute_command("RAFT.TRANSFER", target.id)
                        c.close()
                        ev["transferred_first"] = True
                    except Exception as e:
                        ev["transfer_error"] = str(e)
                    lead = wait_leader(members, 10)
                if kind == "kill-leader" and lead is not None and lead is not keep:
                    victim = lead
                else:
                    others = [m for m in members[:-1] if m is not lead] or members[:-1]
                    victim = rng.choice(others)
                down = rng.uniform(1.0, 8.0)
                ev.update(member=victim.id, was_leader=victim is lead, down_s=round(down, 1))
                t_fault = time.monotonic()
                log(ev)
                victim.proc.kill()
                victim.proc.wait()
                time.sleep(down)
                victim.start(gcsd, peers, extra)
            elif kind == "pause":
                victim = rng.choice(members)
                dur = rng.uniform(2.0, 8.0)
                ev.update(member=victim.id, was_leader=victim is lead, paused_s=round(dur, 1))
                t_fault = time.monotonic()
                log(ev)
                os.kill(victim.proc.pid, signal.SIGSTOP)
                time.sleep(dur)
                os.kill(victim.proc.pid, signal.SIGCONT)
            else:
                target = rng.choice([m for m in members if m is not lead]) if lead else None
                ev.update(member=lead.id if lead else None, to=target.id if target else None)
                t_fault = time.monotonic()
                log(ev)
                if lead is not None:
                    try:
                        c = lead.client(5.0)
                        c.execute_command("RAFT.TRANSFER", target.id)
                        c.close()
                    except Exception as e:
                        log({"kind": "note", "text": "RAFT.TRANSFER: %s" % e})
            l2 = wait_leader(members, 60)
            log({"kind": "recovered", "after": kind, "leader": l2.id if l2 else None,
                 "s_since_fault": round(time.monotonic() - t_fault, 2)})
        except Exception as e:  # the soak goes on; the report shows it
            log({"kind": "note", "text": "fault %s failed: %r" % (kind, e)})


def run(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for f in ("samples.jsonl", "clients.jsonl", "faults.jsonl", "totals.json"):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    work = tempfile.mkdtemp(prefix="gcsd-soak-", dir=args.workdir)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    rng = random.Random(seed)
    ports = free_ports(3 * NMEMBERS)
    members = [Member(i + 1, ports[i], ports[NMEMBERS + i], ports[2 * NMEMBERS + i],
                      os.path.join(work, "m%d" % (i + 1)), os.path.join(out, "gcsd%d.log" % (i + 1)))
               for i in range(NMEMBERS)]
    for m in members:
        if os.path.exists(m.log_path):
            os.remove(m.log_path)
    peers = ",".join("%d=127.0.0.1:%d" % (m.id, m.raft_port) for m in members)
    extra = args.gcsd_args.split() if args.gcsd_args else []
    meta = {"seed": seed, "minutes": args.minutes, "rate": args.rate, "sample_s": args.sample,
            "fault_every_s": args.fault_every, "gcsd": args.gcsd, "gcsd_args": extra,
            "work": work, "fs": subprocess.run(["findmnt", "-no", "FSTYPE", "-T", work],
                                               capture_output=True, text=True).stdout.strip(),
            "start_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cores": os.cpu_count(), "loadavg_start": os.getloadavg(),
            "command": args.command or " ".join(sys.argv)}
    print("# soak: seed %d, %s min, work dir %s (%s), output %s" %
          (seed, args.minutes, work, meta["fs"], out), flush=True)
    for m in members:
        m.start(args.gcsd, peers, extra)
    lead = wait_leader(members, 30)
    if lead is None:
        sys.exit("error: no leader within 30 s (see %s/gcsd*.log)" % out)
    print("# leader: member %d" % lead.id, flush=True)
    if args.dead_caps:
        caps = [int(x) for x in args.dead_caps.split(",")]
        c = lead.client(10)
        try:
            c.execute_command("GCS.TABLES.CAPS", *caps)
        finally:
            c.close()
        print("# dead-row caps: actors %d, nodes %d, placement groups %d" %
              tuple(caps), flush=True)

    t0 = time.monotonic()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    stop = ctx.Event()
    cports = [m.port for m in members]
    procs = [ctx.Process(target=client_proc, args=(k, cports, q, stop, t0, args.sample, seed + j,
                                                     r))
             for j, (k, r) in enumerate((("kv0", args.rate / 2), ("kv1", args.rate / 2),
                                         ("tables", args.table_rate), ("watch", 0)))]
    for p in procs:
        p.start()

    flock = threading.Lock()
    fout = open(os.path.join(out, "faults.jsonl"), "w")
    fstop = threading.Event()
    ft = threading.Thread(target=fault_loop, args=(members, args.gcsd, peers, extra, fstop,
                                                   rng, args.fault_every, t0, fout, flock),
                          daemon=True)
    if args.fault_every > 0:
        ft.start()

    intervals = {}
    totals = {"errors": collections.Counter(), "counters": collections.Counter()}
    done = set()

    def drain(block_s):
        end = time.monotonic() + block_s
        while True:
            try:
                item = q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                return
            if item[0] == "interval":
                _, k, lat, err = item
                iv = intervals.setdefault(k, {"lat": collections.defaultdict(list),
                                              "err": collections.Counter()})
                for op, v in lat.items():
                    iv["lat"][op].extend(v)
                iv["err"].update(err)
            elif item[0] == "totals":
                totals["errors"].update(item[1])
                totals["counters"].update(item[2])
            elif item[0] == "done":
                done.add(item[1])
            if time.monotonic() >= end:
                return

    stopped = {"flag": False}

    def on_signal(signum, frame):
        stopped["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sf = open(os.path.join(out, "samples.jsonl"), "w")
    end_t = t0 + args.minutes * 60
    next_s = t0
    bfile = open(os.path.join(out, "lmdb.jsonl"), "w")
    block = threading.Lock()

    def breakdown(label):
        t = round(time.monotonic() - t0, 1)
        b = lmdb_breakdown(os.path.join(members[0].dir, "state"))
        if b is not None:
            with block:
                bfile.write(json.dumps({"t": t, "label": label, "member": 1, "dbs": b}) + "\n")
                bfile.flush()
    bthreads = []
    marks = [(t0 + args.minutes * 60 / 3, "one third"), (t0 + args.minutes * 120 / 3, "two thirds")]
    try:
        while time.monotonic() < end_t and not stopped["flag"]:
            drain(max(0.0, next_s - time.monotonic()))
            if marks and time.monotonic() >= marks[0][0]:
                bt = threading.Thread(target=breakdown, args=(marks.pop(0)[1],), daemon=True)
                bt.start()
                bthreads.append(bt)
            if time.monotonic() >= next_s:
                row = sample(members, t0)
                sf.write(json.dumps(row) + "\n")
                sf.flush()
                next_s += args.sample
                ms = row["members"]
                print("# t=%5.0fs rss MiB %s  fds %s  lmdb MiB %s" % (
                    row["t"],
                    "/".join("%.0f" % (ms[k]["rss"] / 2**20) if ms[k].get("rss") else "-" for k in ms),
                    "/".join(str(ms[k].get("fds", "-")) for k in ms),
                    "/".join("%.1f" % (ms[k]["lmdb_used"] / 2**20) if ms[k].get("lmdb_used") else "-"
                             for k in ms)), flush=True)
    finally:
        fstop.set()
        ft.join(timeout=90) if ft.is_alive() else None
        stop.set()
        deadline = time.monotonic() + 60
        while len(done) < len(procs) and time.monotonic() < deadline:
            drain(0.5)
        drain(0.5)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        # Final state, before stopping: members should agree.
        final = sample(members, t0)
        sf.write(json.dumps(final) + "\n")
        sf.close()
        for m in members:
            if m.pid is not None:
                try:
                    os.kill(m.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
                m.proc.terminate()
        for m in members:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
        for bt in bthreads:
            bt.join(timeout=300)
        breakdown("end (members stopped)")
        bfile.close()
        meta["exit_codes"] = {m.id: m.proc.returncode for m in members}
        meta["starts"] = {m.id: m.starts for m in members}
        meta["end_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["elapsed_s"] = round(time.monotonic() - t0, 1)
        meta["loadavg_end"] = os.getloadavg()
        fout.close()
        with open(os.path.join(out, "clients.jsonl"), "w") as f:
            for k in sorted(intervals):
                f.write(json.dumps({"k": k, "t": (k + 1) * args.sample,
                                    "lat": intervals[k]["lat"], "err": intervals[k]["err"]}) + "\n")
        with open(os.path.join(out, "totals.json"), "w") as f:
            json.dump({"meta": meta, "errors": totals["errors"],
                       "counters": totals["counters"]}, f, indent=1)
        if not args.keep:
            subprocess.run(["rm", "-rf", work])
    report(out)


# ---- report -----------------------------------------------------------------

def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def load(out):
    with open(os.path.join(out, "totals.json")) as f:
        tot = json.load(f)
    samples = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl")) if l.strip()]
    clients = [json.loads(l) for l in open(os.path.join(out, "clients.jsonl")) if l.strip()]
    faults = [json.loads(l) for l in open(os.path.join(out, "faults.jsonl")) if l.strip()]
    return tot, samples, clients, faults


def plateau(ts, vs, dur):
    """max over the last third against max over the middle third (the first
    third is warm-up: the keyspace and the changelog window fill)."""
    mid = [v for t, v in zip(ts, vs) if dur / 3 <= t < 2 * dur / 3 and v is not None]
    last = [v for t, v in zip(ts, vs) if t >= 2 * dur / 3 and v is not None]
    if not mid or not last:
        return None, None, None
    a, b = max(mid), max(last)
    return a, b, (b - a) / a * 100.0 if a else None


PLATEAU_PCT = 10.0
OPS = ["GET", "SET", "INCR", "HSET", "HGET", "DEL", "ACTOR.REGISTER", "ACTOR.UPDATE",
       "PG.CREATE", "PG.REMOVE", "NODE.REGISTER", "NODE.HEARTBEAT", "PROBE", "WATCH_DELAY"]


def series(out):
    tot, samples, clients, faults = load(out)
    meta = tot["meta"]
    period = meta["sample_s"]
    dur = meta["elapsed_s"]
    for s in samples:
        for m in s["members"].values():
            if m.get("lmdb_pages_used") is not None:
                m["lmdb_in_use"] = ((m["lmdb_pages_used"] - m["lmdb_free_pages"])
                                    * m.get("lmdb_page_size", 4096))
    rows = []
    for c in clients:
        if c["t"] > dur:  # the interval the run ended in: partial
            continue
        r = {"t": c["t"], "ops": sum(len(v) for op, v in c["lat"].items() if op != "WATCH_DELAY"),
             "errors": sum(c["err"].values())}
        for op, v in c["lat"].items():
            r[op] = {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99), "p999": pct(v, 99.9)}
        allv = [x for op, v in c["lat"].items() if op not in ("WATCH_DELAY",) for x in v]
        r["all"] = {"p50": pct(allv, 50), "p99": pct(allv, 99), "p999": pct(allv, 99.9)}
        rows.append(r)
    return tot, meta, samples, rows, faults, dur, period


def write_csv(out, samples, rows):
    mids = sorted(samples[0]["members"]) if samples else []
    with open(os.path.join(out, "series.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s"] + ["m%s_%s" % (m, k) for m in mids for k in
                              ("rss", "fds", "lmdb_used", "lmdb_file", "changelog_bytes",
                               "changelog_events", "raft_disk")])
        for s in samples:
            w.writerow([s["t"]] + [s["members"][m].get(k) for m in mids for k in
                                   ("rss", "fds", "lmdb_used", "lmdb_file", "changelog_bytes",
                                    "changelog_events", "raft_disk")])
    with open(os.path.join(out, "latency.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "ops_per_s", "errors", "op", "n", "p50_ms", "p99_ms", "p999_ms"])
        for r in rows:
            for op in OPS + ["all"]:
                if op in r:
                    d = r[op]
                    w.writerow([r["t"], "", "", op, d.get("n", ""),
                                *("%.3f" % d[k] if d[k] is not None else "" for k in
                                  ("p50", "p99", "p999"))])
            w.writerow([r["t"], r["ops"] / (rows[1]["t"] - rows[0]["t"] if len(rows) > 1 else 10),
                        r["errors"], "", "", "", "", ""])


def plot(out, samples, rows, faults, meta):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    mids = sorted(samples[0]["members"])
    ts = [s["t"] / 60 for s in samples]
    fig, ax = plt.subplots(6, 1, figsize=(11, 17), sharex=True)

    def member_series(key, scale, what="", ls="-"):
        for j, m in enumerate(mids):
            ax_.plot(ts, [s["members"][m].get(key) / scale if s["members"][m].get(key) is not None
                          else float("nan") for s in samples], label="%smember %s" % (what, m),
                     lw=1, ls=ls, color="C%d" % j)

    ax_ = ax[0]
    member_series("rss", 2**20, "RSS, ")
    member_series("rss_anon", 2**20, "anon, ", "--")
    ax_.set_ylabel("RSS (MiB)")
    ax_.set_ylim(bottom=0)
    ax_ = ax[1]
    member_series("lmdb_used", 2**20, "used (high-water), ")
    member_series("lmdb_in_use", 2**20, "less free pages, ", "--")
    ax_.set_ylabel("LMDB (MiB)")
    ax_.set_ylim(bottom=0)
    ax_ = ax[2]
    for m in mids:
        ax_.plot(ts, [(s["members"][m].get("raft_disk") or 0) / 2**20 for s in samples],
                 lw=1, ls="--", label="raft log dir, member %s" % m)
        ax_.plot(ts, [s["members"][m].get("changelog_bytes", float("nan")) / 2**20
                      if s["members"][m].get("changelog_bytes") is not None else float("nan")
                      for s in samples], lw=1, label="changelog, member %s" % m)
    ax_.set_ylabel("MiB")
    ax_.set_ylim(bottom=0)
    ax_ = ax[3]
    member_series("fds", 1, "all, ")
    member_series("fds_not_clients", 1, "less client connections, ", "--")
    ax_.set_ylabel("open fds")
    ax_.set_ylim(bottom=0)
    rt = [r["t"] / 60 for r in rows]
    ax_ = ax[4]
    for key, ls in (("p50", "-"), ("p99", "--")):
        for op in ("GET", "SET", "ACTOR.UPDATE", "WATCH_DELAY"):
            ax_.plot(rt, [r[op][key] if op in r and r[op][key] is not None else float("nan")
                          for r in rows], ls=ls, lw=1, label="%s %s" % (op, key))
    ax_.set_yscale("log")
    ax_.set_ylabel("latency (ms)")
    ax_ = ax[5]
    per = meta["sample_s"]
    ax_.plot(rt, [r["ops"] / per for r in rows], lw=1, label="ops/s (all clients)")
    ax_.set_ylabel("ops/s")
    ax_.set_ylim(bottom=0)
    ax2 = ax_.twinx()
    ax2.bar([t - per / 120 for t in rt], [r["errors"] for r in rows], width=per / 60 * 0.8, color="tab:red", alpha=0.5,
            label="client errors per interval")
    ax2.set_ylabel("errors / interval", color="tab:red")
    ax_.set_xlabel("minutes")
    colors = {"kill-leader": "red", "kill-follower": "orange", "pause": "purple",
              "transfer": "green"}
    for a in ax:
        for f in faults:
            if f["kind"] in colors:
                a.axvline(f["t"] / 60, color=colors[f["kind"]], lw=0.7, alpha=0.6)
        a.grid(alpha=0.3)
    for a in ax[:5]:
        a.legend(fontsize=7, loc="upper left", ncol=4)
    ax[5].legend(fontsize=7, loc="upper left")
    handles = [plt.Line2D([], [], color=c, lw=1) for c in colors.values()]
    fig.legend(handles, list(colors), loc="upper right", fontsize=8, title="faults")
    fig.suptitle("gcsd soak: %s min, 3 members, seed %s (%s)" %
                 (meta["minutes"], meta["seed"], meta["start_utc"]))
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    fig.savefig(os.path.join(out, "soak.png"), dpi=80)


def fmt_b(v):
    return "-" if v is None else "%.1f MiB" % (v / 2**20)


def report(out):
    tot, meta, samples, rows, faults, dur, period = series(out)
    write_csv(out, samples, rows)
    ctr = collections.Counter(tot["counters"])
    errs = collections.Counter(tot["errors"])
    L = []
    L.append("# gcsd soak test")
    L.append("")
    L.append("Command: `%s`  " % meta["command"])
    L.append("Run: %s to %s (%.1f min), seed %d, %d cores, work dir on %s; "
             "machine load average %.1f at the start, %.1f at the end (shared with other work)."
             % (meta["start_utc"], meta["end_utc"], dur / 60, meta["seed"], meta["cores"],
                meta["fs"], meta["loadavg_start"][0], meta["loadavg_end"][0]))
    L.append("")
    nops = sum(r["ops"] for r in rows)
    nerr = sum(r["errors"] for r in rows)
    L.append("## Workload")
    L.append("")
    L.append("| op | count | errors | p50 ms | p99 ms | p99.9 ms |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for op in OPS:
        allv = []
        e = 0
        for c in load(out)[2]:
            allv.extend(c["lat"].get(op, []))
            e += c["err"].get(op, 0)
        if allv or e:
            L.append("| %s | %d | %d | %s | %s | %s |" % (
                op, len(allv), e, *("%.2f" % pct(allv, p) if allv else "-" for p in (50, 99, 99.9))))
    werr = sum(c["err"].get("WATCH", 0) for c in load(out)[2])
    L.append("| WATCH (reconnects/errors) | | %d | | | |" % werr)
    L.append("")
    L.append("%d client operations acknowledged (%.0f/s on average), %d errors "
             "(see the list at the end; a client retries on another member after a "
             "connection error or timeout). WATCH_DELAY is the time from a probe "
             "SET's send to its event's arrival at a watcher; PROBE is that SET." %
             (nops, nops / dur if dur else 0, nerr))
    L.append("")
    L.append("Counters: " + "; ".join("%s %d" % (k, v) for k, v in sorted(ctr.items())))
    L.append("")
    L.append("## Faults")
    L.append("")
    def fault_name(f):
        if f["kind"].startswith("kill"):
            return "kill -9 of %s" % ("the leader" if f.get("was_leader") else "a follower")
        if f["kind"] == "pause":
            return "SIGSTOP of %s" % ("the leader" if f.get("was_leader") else "a follower")
        return "RAFT.TRANSFER"

    fk = collections.Counter(fault_name(f) for f in faults
                             if f["kind"] not in ("recovered", "note"))
    rec = [f["s_since_fault"] for f in faults if f["kind"] == "recovered" and f.get("leader")]
    norec = [f for f in faults if f["kind"] == "recovered" and not f.get("leader")]
    L.append("%d faults: %s. A leader was found again after each in at most %.1f s "
             "(from the fault's start, including the pause or downtime)%s." % (
                 sum(fk.values()), ", ".join("%s %d" % kv for kv in sorted(fk.items())),
                 max(rec) if rec else 0,
                 "; %d times no leader within 60 s" % len(norec) if norec else ""))
    notes = [f["text"] for f in faults if f["kind"] == "note"]
    notes += ["before a kill: RAFT.TRANSFER away from member %s: %s" % (
        len(samples[0]["members"]), f["transfer_error"]) for f in faults if "transfer_error" in f]
    if notes:
        L.append("")
        L.append("Notes from the fault injector: " + "; ".join(notes[:10]))
    L.append("")
    L.append("Member exit codes at the end (SIGTERM): %s; starts per member: %s." %
             (meta["exit_codes"], meta["starts"]))
    L.append("")
    L.append("## Resources")
    L.append("")
    L.append("Plateau criterion: a series plateaus when its maximum over the last third of "
             "the run is at most %.0f%% above its maximum over the middle third (the first "
             "third is warm-up: the bounded keyspace and the changelog window fill up)." %
             PLATEAU_PCT)
    L.append("")
    L.append("Process series (RSS, anonymous RSS, fds other than client connections) are "
             "judged only on a process that lived through both thirds: member %s is never "
             "killed (only paused, and asked to hand over leadership); a killed member's "
             "new process starts empty, so its series are judged only if it was last "
             "restarted in the first third. Disk series (LMDB, changelog, raft log) survive "
             "restarts and are judged on every member. RSS counts LMDB's mapped file pages "
             "(RssFile), so it follows the LMDB size; anonymous RSS is the heap." %
             sorted(samples[0]["members"])[-1])
    L.append("")
    L.append("| member | series | max, middle third | max, last third | change | plateau |")
    L.append("|---|---|---:|---:|---:|---|")
    mids = sorted(samples[0]["members"])
    ts = [s["t"] for s in samples]
    verdict = {}
    for m in mids:
        pids = [s["members"][m].get("pid") for s in samples]
        lastpid = next((p for p in reversed(pids) if p), None)
        born = next((s["t"] for s in samples if s["members"][m].get("pid") == lastpid), 0)
        for key, name in (("rss", "RSS"), ("rss_anon", "RSS anon"), ("lmdb_used", "LMDB used"),
                          ("lmdb_in_use", "LMDB in use"),
                          ("lmdb_file", "LMDB file"), ("changelog_bytes", "changelog"),
                          ("raft_disk", "raft log dir"), ("fds", "open fds"),
                          ("fds_not_clients", "fds less clients")):
            vs = [s["members"][m].get(key) for s in samples]
            proc_series = key in ("rss", "rss_anon", "fds", "fds_not_clients")
            if proc_series:
                if born >= dur / 3:
                    L.append("| %s | %s | | | | n/a (process started at %.0f s) |" %
                             (m, name, born))
                    continue
                vs = [v if s["members"][m].get("pid") == lastpid else None
                      for v, s in zip(vs, samples)]
            a, b, ch = plateau(ts, vs, dur)
            if ch is None:
                L.append("| %s | %s | | | | n/a (no samples) |" % (m, name))
                continue
            ok = ch <= PLATEAU_PCT
            verdict.setdefault(name, []).append(ok)
            fa = (lambda v: "-" if v is None else str(v)) if key.startswith("fds") else fmt_b
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                m, name, fa(a), fa(b), "-" if ch is None else "%+.1f%%" % ch,
                "yes" if ok else "**no**"))
    L.append("")
    L.append("Summary: " + "; ".join("%s %s" % (k, "plateaued on every member" if all(v)
                                                  else "did **not** plateau on %d of %d members"
                                                  % (v.count(False), len(v)))
                                       for k, v in verdict.items()))
    L.append("")
    # Latency at the start against the end.
    if len(rows) >= 6:
        third = len(rows) // 3
        L.append("## Latency over time")
        L.append("")
        L.append("Per op, latency percentiles over the first and the last third of the run "
                 "(faults fall in both):")
        L.append("")
        L.append("| op | p50 first | p50 last | p99 first | p99 last | p99.9 first | p99.9 last |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        clients = load(out)[2]
        for op in ("GET", "SET", "INCR", "HSET", "ACTOR.UPDATE", "PG.CREATE", "WATCH_DELAY"):
            first = [x for c in clients[:third] for x in c["lat"].get(op, [])]
            last = [x for c in clients[-third:] for x in c["lat"].get(op, [])]
            if first and last:
                L.append("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                    op, pct(first, 50), pct(last, 50), pct(first, 99), pct(last, 99),
                    pct(first, 99.9), pct(last, 99.9)))
        L.append("")
    bpath = os.path.join(out, "lmdb.jsonl")
    bl = [json.loads(l) for l in open(bpath) if l.strip()] if os.path.exists(bpath) else []
    if bl:
        L.append("## What LMDB holds (member 1, from mdb_dump)")
        L.append("")
        L.append("Entries / key+value MiB per database and record table at %s:" %
                 ", ".join("%s (t=%.0f s)" % (b["label"], b["t"]) for b in bl))
        L.append("")
        L.append("| db or table | " + " | ".join(b["label"] for b in bl) + " |")
        L.append("|---|" + "---:|" * len(bl))
        names = sorted(set(n for b in bl for n in b["dbs"]))
        for n in names:
            L.append("| %s | %s |" % (n, " | ".join(
                "%d / %.2f" % tuple((b["dbs"][n][0], b["dbs"][n][1] / 2**20))
                if n in b["dbs"] else "-" for b in bl)))
        L.append("")
    anomalies = {k: v for k, v in ctr.items() if k.startswith("ANOMALY")}
    L.append("## Watch check")
    L.append("")
    L.append("%d events checked by 2 watchers, %d resumes on another member after a "
             "disconnect, %d restarts after compaction; anomalies (gaps, duplicates, "
             "reordering, progress past an unseen revision): %s." % (
                 ctr.get("watch events", 0), ctr.get("watch resumes", 0),
                 ctr.get("watch restarts after compaction", 0),
                 ", ".join("%s %d" % kv for kv in anomalies.items()) if anomalies else "none"))
    L.append("")
    L.append("## Most frequent client errors")
    L.append("")
    for e, n in errs.most_common(15):
        L.append("- %d × %s" % (n, e.replace("|", "/")))
    L.append("")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(L))
    try:
        plot(out, samples, rows, faults, meta)
    except ImportError:
        print("# matplotlib missing: no plot", file=sys.stderr)
    print("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gcsd", default="build/gcs/gcsd")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", default="soak-out")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--rate", type=float, default=1500, help="kv ops/s (default 1500)")
    ap.add_argument("--table-rate", type=float, default=10,
                    help="actor lifecycles/s and placement groups/s (default 10)")
    ap.add_argument("--sample", type=float, default=10, help="sample period, s")
    ap.add_argument("--fault-every", type=float, default=90, help="mean s between faults; 0: none")
    ap.add_argument("--gcsd-args", default="", help="extra options for every member")
    ap.add_argument("--workdir", default=None, help="parent of the data dirs (default $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs")
    ap.add_argument("--command", default="", help="the command line to quote in the report")
    ap.add_argument("--dead-caps", default="",
                    help="GCS.TABLES.CAPS actors,nodes,pgs to set at the start "
                         "(default: gcsd's, 100000,1000,100000)")
    ap.add_argument("--report-only", metavar="DIR")
    args = ap.parse_args()
    if args.report_only:
        report(args.report_only)
        return
    if redis is None:
        sys.exit("error: the redis module is missing (apt-get install python3-redis)")
    run(args)


if __name__ == "__main__":
    main()
