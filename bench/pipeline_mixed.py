#!/usr/bin/env python3
"""One connection mixing writes and reads, as a Ray head does: N pipelined
SET k v; GET k pairs (and SET; PING pairs) through redis-py against a fresh
single-node gcsd. Prints the seconds each pipeline took.

Usage: bench/pipeline_mixed.py [pairs]   (default 20000; GCSD_BIN overrides
the binary, default build/gcs/gcsd). Needs python3-redis.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis

PAIRS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
BIN = os.environ.get("GCSD_BIN", "build/gcs/gcsd")
PORT = int(os.environ.get("GCSD_BENCH_PORT", "16395"))

data = tempfile.mkdtemp(prefix="gcsd-mixed-")
proc = subprocess.Popen([BIN, "--data-dir", data, "--port", str(PORT),
                         "--raft-port", str(PORT + 1000), "--log-level",
                         "warning"])
try:
    client = redis.Redis(port=PORT)
    deadline = time.time() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
    for second in ("GET", "PING"):
        pipe = client.pipeline(transaction=False)
        for i in range(PAIRS):
            pipe.set("k%d" % i, "v")
            if second == "GET":
                pipe.get("k%d" % i)
            else:
                pipe.ping()
        t0 = time.time()
        replies = pipe.execute()
        elapsed = time.time() - t0
        assert replies[1] in (b"v", True), replies[:2]
        print("%d pipelined SET;%s pairs: %.2f s" % (PAIRS, second, elapsed))
finally:
    proc.terminate()
    proc.wait()
    shutil.rmtree(data, ignore_errors=True)
