#!/usr/bin/env python3
"""Large values as a Ray head writes them (runtime_env packages, HSET into
RAY<ns>@KV), on gcsd with 3 members and on one durable redis-server
(appendonly yes, appendfsync always), in the same run, one after the other:

  - time to write a value of each size (HSET) and to read it back (HGET),
    checked byte for byte;
  - meanwhile, 4 other clients each SET small keys in a loop: their write
    latency (p50, p99, max) while the large value is written, and how many of
    their writes failed;
  - elections during the write (INFO raft leader changes, gcsd);
  - peak RSS of every server process (VmHWM), against the value size.

Usage: bench/large_values.py [SIZE_MB ...]   (default: 100 500)
Env:   GCSD_BIN (default build/gcs/gcsd). Needs python3-redis, redis-server.
Data directories are under one temp dir on disk, removed at the end."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import free_ports  # noqa: E402  (bench/soak.py, guarded main)

GCSD = os.environ.get("GCSD_BIN", "build/gcs/gcsd")
SIZES = [int(a) for a in sys.argv[1:]] or [100, 500]
BG_CLIENTS = 4


def wait_ping(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise SystemExit("server on port %d did not start" % port)


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def leader_changes(ports):
    n = 0
    for p in ports:
        try:
            info = redis.Redis(port=p, socket_timeout=5).info("raft")
            n = max(n, int(info.get("raft_leader_changes", 0)))
        except redis.RedisError:
            pass
    return n


class Background:
    """BG_CLIENTS clients writing small keys, recording each latency."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lat = []
        self.errors = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(BG_CLIENTS)]

    def run(self, i):
        c = redis.Redis(port=self.port, socket_timeout=120)
        k = 0
        while not self.stop.is_set():
            k += 1
            t0 = time.monotonic()
            try:
                c.set("bg:%d:%d" % (i, k % 1000), "x" * 64)
                ok = True
            except redis.RedisError:
                ok = False
                c = redis.Redis(port=self.port, socket_timeout=120)
            dt = (time.monotonic() - t0) * 1000
            with self.lock:
                if ok:
                    self.lat.append(dt)
                else:
                    self.errors += 1
            time.sleep(0.002)

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(0.5)
        with self.lock:
            self.lat.clear()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(130)

    def figures(self):
        with self.lock:
            lat = sorted(self.lat)
        if not lat:
            return "no write completed"
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        return "p50 %.1f ms, p99 %.1f ms, max %.0f ms over %d writes, %d failed" % (
            pick(0.5), pick(0.99), lat[-1], len(lat), self.errors)


def one_size(name, port, mb, ports=None):
    value = os.urandom(1 << 20) * mb  # mb MiB (a repeated random MiB)
    digest = hashlib.sha256(value).hexdigest()
    key = "RAY4d0c51a7@KV"
    field = "gcs://_ray_pkg_%d.zip" % mb
    c = redis.Redis(port=port, socket_timeout=600)
    before = leader_changes(ports) if ports else 0
    with Background(port) as bg:
        t0 = time.monotonic()
        c.hset(key, field, value)
        t_write = time.monotonic() - t0
        time.sleep(0.5)
    after = leader_changes(ports) if ports else 0
    del value
    t0 = time.monotonic()
    got = c.hget(key, field)
    t_read = time.monotonic() - t0
    ok = got is not None and hashlib.sha256(got).hexdigest() == digest
    del got
    c.hdel(key, field)
    line = "%-28s %4d MiB: write %6.2f s, read %6.2f s, %s; others' SET while writing: %s" % (
        name, mb, t_write, t_read, "read back intact" if ok else "READ BACK WRONG",
        bg.figures())
    if ports:
        line += "; leader changes %d" % (after - before)
    print(line, flush=True)


def main():
    work = tempfile.mkdtemp(prefix="gcsd-large-")
    procs = []
    try:
        cports = free_ports(3)
        rports = free_ports(3)
        peers = ",".join("%d=127.0.0.1:%d" % (i + 1, rports[i]) for i in range(3))
        print("# %s, %d cores; gcsd: 3 members on loopback; redis: appendonly yes, "
              "appendfsync always; temp dir %s" % (time.strftime("%Y-%m-%dT%H:%M:%SZ",
              time.gmtime()), os.cpu_count(), work), flush=True)
        for i in range(3):
            d = os.path.join(work, "gcsd%d" % (i + 1))
            os.makedirs(d)
            log = open(os.path.join(work, "gcsd%d.log" % (i + 1)), "w")
            procs.append(subprocess.Popen(
                [GCSD, "--id", str(i + 1), "--peers", peers, "--port", str(cports[i]),
                 "--raft-port", str(rports[i]), "--data-dir", d, "--log-level", "notice"],
                stderr=log))
        for p in cports:
            wait_ping(p)
        leader = None
        deadline = time.monotonic() + 30
        while leader is None and time.monotonic() < deadline:
            for i, p in enumerate(cports):
                try:
                    if redis.Redis(port=p).info("raft").get("raft_role") == "leader":
                        leader = i
                except redis.RedisError:
                    pass
            time.sleep(0.05)
        if leader is None:
            raise SystemExit("no gcsd leader")
        follower = (leader + 1) % 3
        for mb in SIZES:
            one_size("gcsd (via a follower)", cports[follower], mb, cports)
        print("  gcsd peak RSS per member: %s MiB" % ", ".join(
            "%.0f" % peak_rss_mb(p.pid) for p in procs), flush=True)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        procs.clear()

        rport = free_ports(1)[0]
        rdir = os.path.join(work, "redis")
        os.makedirs(rdir)
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", rdir,
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--proto-max-bulk-len", "1gb", "--client-query-buffer-limit", "1gb",
             "--logfile", os.path.join(work, "redis.log")]))
        wait_ping(rport)
        for mb in SIZES:
            one_size("durable redis", rport, mb)
        print("  redis peak RSS: %.0f MiB" % peak_rss_mb(procs[0].pid), flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
