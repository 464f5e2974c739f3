#!/usr/bin/env python3
"""Small load generator for etcd v3 through its HTTP/JSON gRPC gateway
(/v3/kv/put and /v3/kv/range), for when etcd's own `benchmark` tool is not
installed (Debian does not ship it). Standard library only.

CLIENTS workers (threads, spread over PROCS processes so that one GIL does
not cap the rate), each with its own persistent HTTP/1.1 connection, send one
request at a time (no pipelining), like redis-benchmark -c CLIENTS. Keys are
"key:" + 12 random digits out of KEYSPACE (as redis-benchmark -r), values are
VALUE_SIZE bytes (redis-benchmark's default is 3). Ranges are linearizable
(etcd's default, serializable=false) unless --serializable.

Prints one line:
  client=raw op=put requests=N errors=E seconds=S rps=R loader_cpu_s=C
  loader_cpu_pct=P us_per_op=U
(requests counts the successful ones.) loader_cpu_pct is the loader's own
CPU time (all its processes, user+sys) over the wall time, in percent of one
core; us_per_op is that CPU time per request. Exits non-zero if no request
succeeded; the first error, if any, goes to stderr.

Usage: etcd_load.py --endpoint 127.0.0.1:2379 --op put|range
                    [--clients 50] [--requests 20000] [--duration 30]
                    [--procs 2] [--keyspace 100000] [--value-size 3]
                    [--serializable] [--client raw|httpclient]
"""
import argparse
import base64
import http.client
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import threading
import time


def b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


class HttpClientConn:
    """http.client, persistent connection (the obvious stdlib way)."""

    def __init__(self, host, port):
        self.c = http.client.HTTPConnection(host, port, timeout=30)

    def post(self, path, body):
        self.c.request("POST", path, body=body,
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        return r.status, r.read()

    def close(self):
        self.c.close()


class RawConn:
    """The same exchange on a bare socket: one request written whole, the
    response read by Content-Length (or chunks). About 3x less client CPU per
    request than http.client, whose header parsing dominates."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = ("POST %%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %%d\r\n\r\n%%s" % (host, port))
        self.buf = b""

    def post(self, path, body):
        self.s.sendall((self.head % (path, len(body), body)).encode())
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server")
            buf += chunk
        head = buf[:end].lower()
        status = int(head[9:12])
        buf = buf[end + 4:]
        n = -1
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                n = int(line[15:])
        if n >= 0:
            while len(buf) < n:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by server")
                buf += chunk
            body, self.buf = buf[:n], buf[n:]
            return status, body
        if b"transfer-encoding: chunked" not in head:
            raise RuntimeError("no Content-Length and not chunked")
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += self.s.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            while len(buf) < n + 2:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by server")
                buf += chunk
            if n == 0:
                # no trailers expected from etcd's gateway
                self.buf = buf[2:]
                return status, body
            body += buf[:n]
            buf = buf[n + 2:]

    def close(self):
        self.s.close()


def worker_proc(args, nthreads, quota, start_evt, ready_q, result_q):
    host, port = args.endpoint.rsplit(":", 1)
    Conn = RawConn if args.client == "raw" else HttpClientConn
    path = "/v3/kv/put" if args.op == "put" else "/v3/kv/range"
    value = b64(b"x" * args.value_size)
    counts = [0] * nthreads
    errors = [0] * nthreads
    first_err = []
    lock = threading.Lock()
    remaining = [quota]
    tready = threading.Barrier(nthreads + 1)

    def take(n=64):
        # Hand out requests in small batches so the total is exact.
        with lock:
            k = min(n, remaining[0])
            remaining[0] -= k
            return k

    def body_for(rnd):
        key = b64(b"key:%012d" % rnd.randrange(args.keyspace))
        if args.op == "put":
            return '{"key":"%s","value":"%s"}' % (key, value)
        if args.serializable:
            return '{"key":"%s","serializable":true}' % key
        return '{"key":"%s"}' % key

    def run(i):
        rnd = random.Random(os.getpid() * 1000 + i)
        conn = Conn(host, int(port))
        # Open the connection before the clock starts.
        conn.post("/v3/kv/range", '{"key":"%s"}' % b64(b"warmup"))
        tready.wait()
        start_evt.wait()
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            k = take()
            if k == 0:
                break
            for _ in range(k):
                try:
                    status, data = conn.post(path, body_for(rnd))
                    if status != 200 or b'"header"' not in data:
                        raise RuntimeError("HTTP %d %r" % (status, data[:200]))
                    counts[i] += 1
                except Exception as e:  # count it, reconnect, go on
                    errors[i] += 1
                    if not first_err:
                        first_err.append(repr(e))
                    conn.close()
                    conn = Conn(host, int(port))

    threads = [threading.Thread(target=run, args=(i,), daemon=True)
               for i in range(nthreads)]
    for t in threads:
        t.start()
    tready.wait()
    ready_q.put(os.getpid())
    for t in threads:
        t.join()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    result_q.put((sum(counts), sum(errors), ru.ru_utime + ru.ru_stime,
                  first_err[0] if first_err else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--op", choices=("put", "range"), required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--duration", type=float, default=30.0,
                    help="stop after this many seconds even if requests remain")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--value-size", type=int, default=3)
    ap.add_argument("--serializable", action="store_true")
    ap.add_argument("--client", choices=("raw", "httpclient"), default="raw",
                    help="raw socket HTTP/1.1 (default) or http.client")
    args = ap.parse_args()

    procs = max(1, min(args.procs, args.clients))
    ctx = mp.get_context("fork")
    start_evt = ctx.Event()
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    ps = []
    for p in range(procs):
        nthreads = args.clients // procs + (1 if p < args.clients % procs else 0)
        quota = args.requests // procs + (1 if p < args.requests % procs else 0)
        pr = ctx.Process(target=worker_proc,
                         args=(args, nthreads, quota, start_evt, ready_q,
                               result_q), daemon=True)
        pr.start()
        ps.append(pr)
    for _ in ps:
        ready_q.get(timeout=60)
    t0 = time.monotonic()
    start_evt.set()
    results = [result_q.get(timeout=args.duration + 120) for _ in ps]
    t1 = time.monotonic()
    for pr in ps:
        pr.join()
    ok = sum(r[0] for r in results)
    err = sum(r[1] for r in results)
    cpu = sum(r[2] for r in results)
    secs = t1 - t0
    print("client=%s op=%s requests=%d errors=%d seconds=%.2f rps=%.0f loader_cpu_s=%.2f "
          "loader_cpu_pct=%.0f us_per_op=%.0f" %
          (args.client, args.op, ok, err, secs, ok / secs if secs else 0, cpu,
           100 * cpu / secs if secs else 0, 1e6 * cpu / ok if ok else 0))
    firsts = [r[3] for r in results if r[3]]
    if firsts:
        print("first error: %s" % firsts[0], file=sys.stderr)
    return 0 if ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
