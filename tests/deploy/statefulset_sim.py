#!/usr/bin/env python3
"""A StatefulSet of 3 gcsd pods, simulated with real processes.

    tests/deploy/statefulset_sim.py GCSD GCSCTL [SOURCE_ROOT]

Each "pod" gcsd-K runs the startup script of deploy/base/statefulset.yaml
with the container environment of that manifest (the Secret's password, the
downward API's pod name and namespace), exactly as the kubelet would start
it, except that it binds its pod IP (127.A.B.11+K, a block chosen per run)
instead of 0.0.0.0 (the pods share one host here) and that its volume is a temporary directory.
The pods' DNS names (gcsd-K.gcsd-peers.NS.svc.cluster.local) and the client
Service's (gcsd.NS.svc.cluster.local, pointed at a running member) are in a
private /etc/hosts: the script re-executes itself in its own mount namespace
(root needed; exit 77, "skipped", otherwise).

Under a steady write load through the "Service" (a writer that records
every acknowledged write):
  1. each pod in turn is killed (SIGKILL) and started again on its volume,
     as a pod restart: its /readyz goes from not ready to ready again;
  2. a pod loses its volume (directory emptied) and restarts: the startup
     script removes the member (RAFT.REMOVE) and joins it again, which is the
     documented recovery; the member holds everything again;
  3. the same by hand, as docs/kubernetes.md describes it for replacing a
     member: `gcsctl member remove ID` first, then the pod starts on an empty
     volume and joins as a new member.
At the end no acknowledged write is missing, on any member (read locally).
Exits 0 when every check passed.
"""

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import redis
    import yaml
except ImportError as e:  # pragma: no cover
    print("skipped: %s (apt-get install python3-redis python3-yaml)" % e)
    sys.exit(77)

NS = "sim"
DOMAIN = "cluster.local"
PASSWORD = "sim-password-from-the-secret"
PODS = 3


# A loopback block of this run's own (all of 127/8 is loopback on Linux), so
# that two runs on one machine never meet.
BLOCK = "127.%d.%d." % (random.randint(64, 250), random.randint(1, 250))


def ip_of(k):
    return BLOCK + str(11 + k)


def die_with_parent():
    """The pods die with this script, even on SIGKILL (prctl
    PR_SET_PDEATHSIG survives the script's exec of gcsd)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


class Sim:
    def __init__(self, gcsd, gcsctl, root):
        self.gcsd, self.gcsctl, self.root = gcsd, gcsctl, root
        self.w = tempfile.mkdtemp(prefix="gcsd-sts-sim-")
        self.procs = {}
        self.restarts = {}
        self.lock = threading.Lock()
        self.failed = 0
        self.checks = 0
        self.service = 0
        with open(os.path.join(root, "deploy", "base", "statefulset.yaml")) as f:
            sts = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "StatefulSet")
        c = sts["spec"]["template"]["spec"]["containers"][0]
        self.script = c["command"][2]
        self.shell = c["command"][:2]
        self.env = {}
        for e in c["env"]:
            if "value" in e:
                self.env[e["name"]] = str(e["value"])
            elif e.get("valueFrom", {}).get("secretKeyRef"):
                self.env[e["name"]] = PASSWORD
        self.peer_svc = self.env["GCSD_PEER_SERVICE"]
        self.client_svc = self.env["GCSD_CLIENT_SERVICE"]
        self.port = int(self.env["GCSD_PORT"])
        self.http = int(self.env["GCSD_HTTP_PORT"])
        self.sts = sts["metadata"]["name"]
        os.mkdir(os.path.join(self.w, "bin"))
        os.symlink(gcsd, os.path.join(self.w, "bin", "gcsd"))
        self.hosts = os.path.join(self.w, "hosts")
        self.write_hosts()
        subprocess.run(["mount", "--bind", self.hosts, "/etc/hosts"], check=True)

    # ---- the environment

    def fqdn(self, k):
        return "%s-%d.%s.%s.svc.%s" % (self.sts, k, self.peer_svc, NS, DOMAIN)

    def write_hosts(self):
        # Rewritten in place: the bind mount follows the inode.
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 localhost\n")
            for k in range(PODS):
                f.write("%s %s\n" % (ip_of(k), self.fqdn(k)))
            f.write("%s %s.%s.svc.%s\n" % (ip_of(self.service), self.client_svc, NS, DOMAIN))

    def route_service_to(self, k):
        """The client Service: a running, ready member."""
        self.service = k
        self.write_hosts()

    def data(self, k):
        return os.path.join(self.w, "data-%d" % k)

    def start(self, k):
        with self.lock:
            self.spawn(k)

    def spawn(self, k):
        env = dict(os.environ)
        env.update(self.env)
        env.update(POD_NAME="%s-%d" % (self.sts, k), POD_NAMESPACE=NS, GCSD_BIND=ip_of(k),
                   GCSD_DATA_DIR=self.data(k), PATH=os.path.join(self.w, "bin") + ":" + env["PATH"])
        os.makedirs(self.data(k), exist_ok=True)
        log = open(os.path.join(self.w, "pod-%d.log" % k), "a")
        log.write("---- start\n")
        log.flush()
        self.procs[k] = subprocess.Popen(self.shell + [self.script], env=env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        log.close()

    def kill(self, k):
        with self.lock:
            p = self.procs.pop(k, None)
        if p is not None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def kubelet(self, stop):
        """restartPolicy Always: a container that exited by itself (the
        startup script gives up when RAFT.REMOVE fails, say) is started
        again after a back-off."""
        while not stop.wait(0.2):
            with self.lock:
                for k, p in list(self.procs.items()):
                    if p.poll() is not None:
                        self.restarts[k] = self.restarts.get(k, 0) + 1
                        time.sleep(1)
                        self.spawn(k)

    def log(self, k):
        with open(os.path.join(self.w, "pod-%d.log" % k)) as f:
            return f.read()

    def gcsctl_job(self, args, via):
        """gcsctl as a Job with backoffLimit 5: run again while it fails."""
        env = dict(os.environ, GCSCTL_HOST=ip_of(via), GCSCTL_PORT=str(self.port), GCSCTL_PASSWORD=PASSWORD)
        out = ""
        for attempt in range(6):
            p = subprocess.run([self.gcsctl] + args, env=env, capture_output=True, text=True, timeout=60)
            out += "attempt %d: rc %d %s%s; " % (attempt + 1, p.returncode, p.stdout.strip(), p.stderr.strip())
            if p.returncode == 0:
                return True, out
            time.sleep(1)
        return False, out

    def dump_state(self):
        """What each member says, for the failure report."""
        for k in range(PODS):
            st = self.status(k)
            if st is None:
                print("  gcsd-%d: no answer" % k)
                continue
            ms = " ".join("%s:%s:%s" % (m.get("id"), m.get("role"), m.get("match_index")) for m in st["members"])
            print("  gcsd-%d: role %s term %s leader %s commit %s applied %s last %s members %s"
                  % (k, st.get("role"), st.get("term"), st.get("leader_id"), st.get("commit_index"),
                     st.get("applied_index"), st.get("last_index"), ms))
            try:
                info = self.client(k).execute_command("INFO", "raft")
                print("    " + " ".join(l for l in str(info).splitlines() if "forward" in l or "leader" in l))
            except redis.RedisError as e:
                print("    INFO raft: %s" % e)

    def leader(self):
        for k in range(PODS):
            st = self.status(k)
            if st and st.get("role") == "leader":
                return k, st
        return None, None

    def close(self):
        for k in list(self.procs):
            self.kill(k)
        subprocess.run(["umount", "/etc/hosts"], check=False)
        if not os.environ.get("KEEP"):
            shutil.rmtree(self.w, ignore_errors=True)

    # ---- probes and clients

    def readyz(self, k):
        """200, 503, or None when nothing answers."""
        try:
            with socket.create_connection((ip_of(k), self.http), timeout=2) as s:
                s.settimeout(5)
                s.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            return int(data.split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):
            return None

    def client(self, k, timeout=3):
        return redis.Redis(host=ip_of(k), port=self.port, password=PASSWORD, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)

    def status(self, k):
        try:
            r = self.client(k).execute_command("RAFT.STATUS")
        except redis.RedisError:
            return None
        st = dict(zip(r[0::2], r[1::2]))
        st["members"] = [dict(zip(m[0::2], m[1::2])) for m in st.get("members", [])]
        return st

    def voters(self, k):
        st = self.status(k)
        return sorted(int(m["id"]) for m in st["members"] if m["role"] == "voter") if st else []

    # ---- checks

    def check(self, ok, what):
        self.checks += 1
        print("%s %s" % ("PASS" if ok else "FAIL", what), flush=True)
        if not ok:
            self.failed += 1
        return ok

    def until(self, seconds, fn):
        end = time.monotonic() + seconds
        while True:
            v = fn()
            if v or time.monotonic() > end:
                return v
            time.sleep(0.05)


class Writer(threading.Thread):
    """SET w:N N through the client Service, one at a time; remembers what
    was acknowledged. A failed or unanswered write is not retried: its
    outcome may be either, and only acknowledged writes must survive."""

    def __init__(self, sim):
        super().__init__(daemon=True)
        self.sim = sim
        self.acked = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self):
        n = 0
        conn, at = None, None
        while not self.stop.is_set():
            if conn is None or at != self.sim.service:
                at = self.sim.service
                conn = self.sim.client(at)
            n += 1
            try:
                if conn.set("w:%d" % n, str(n)) is True:
                    self.acked.append(n)
            except redis.RedisError:
                self.errors += 1
                conn = None
                time.sleep(0.05)
            time.sleep(0.002)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    gcsd, gcsctl = os.path.realpath(argv[1]), os.path.realpath(argv[2])
    root = os.path.realpath(argv[3] if len(argv) > 3 else os.path.join(os.path.dirname(__file__), "..", ".."))
    if not os.environ.get("GCSD_STS_SIM_NS"):
        if os.geteuid() != 0:
            print("skipped: needs root (a private mount namespace for /etc/hosts)")
            return 77
        os.environ["GCSD_STS_SIM_NS"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                              os.path.abspath(argv[0]), gcsd, gcsctl, root])
    # meson's timeout sends SIGTERM: clean up as on any other exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed by SIGTERM"))
    sim = Sim(gcsd, gcsctl, root)
    t0 = time.monotonic()
    stop = threading.Event()
    kubelet = threading.Thread(target=sim.kubelet, args=(stop,), daemon=True)
    kubelet.start()
    try:
        run(sim)
    finally:
        stop.set()
        kubelet.join(5)
        if sim.failed:
            for k in range(PODS):
                try:
                    print("---- pod %d log (tail)\n%s" % (k, "".join(sim.log(k).splitlines(True)[-25:])))
                except OSError:
                    pass
        sim.close()
    print("statefulset_sim: %d checks, %d failed, %.0f s; pods restarted by the kubelet: %s"
          % (sim.checks, sim.failed, time.monotonic() - t0, sim.restarts or "none"))
    print("%d passed, %d failed" % (sim.checks - sim.failed, sim.failed))
    return 1 if sim.failed else 0


def all_ready(sim):
    return all(sim.readyz(k) == 200 for k in range(PODS))


def restart_pod(sim, w, k, wipe=False):
    """Kill pod k and start it again (its volume kept, or emptied); return
    the readiness it went through."""
    sim.route_service_to((k + 1) % PODS)
    before = len(w.acked)
    sim.kill(k)
    seen = [sim.readyz(k)]
    if wipe:
        shutil.rmtree(sim.data(k))
    # The kubelet restarts a crashed container after a back-off: a moment.
    time.sleep(0.5)
    sim.start(k)
    states = []

    def ready():
        s = sim.readyz(k)
        if not states or states[-1] != s:
            states.append(s)
        return s == 200
    ok = sim.until(60, ready)
    return seen, states, ok, before


def replace_by_hand(sim):
    print("== gcsd-1 replaced by hand: gcsctl member remove 2, then an empty volume", flush=True)
    sim.route_service_to(0)
    sim.kill(1)
    ok, out = sim.gcsctl_job(["member", "remove", "2"], via=0)
    if not sim.check(ok, "a Job runs gcsctl member remove 2: %s" % out):
        sim.dump_state()
        if os.environ.get("SIM_PAUSE_ON_FAIL"):  # to attach a debugger
            print("paused: pids %s" % {k: p.pid for k, p in sim.procs.items()}, flush=True)
            time.sleep(float(os.environ["SIM_PAUSE_ON_FAIL"]))
    sim.check(sim.until(10, lambda: sim.voters(0) == [1, 3]), "two voters left: %s" % sim.voters(0))
    shutil.rmtree(sim.data(1))
    sim.start(1)
    sim.check(sim.until(60, lambda: sim.readyz(1) == 200), "gcsd-1 ready on its new volume")
    last = sim.log(1).split("---- start")[-1]
    sim.check("joining it as a new member" in last, "gcsd-1 joined as a new member")
    sim.check(sim.until(30, lambda: sim.voters(0) == [1, 2, 3]), "three voters again: %s" % sim.voters(0))


def run(sim):
    print("== first start: three pods at once", flush=True)
    for k in range(PODS):
        sim.start(k)
    sim.check(sim.until(60, lambda: all_ready(sim)), "all three pods ready")
    sim.check(sim.until(20, lambda: sim.voters(0) == [1, 2, 3]), "three voters")
    for k in range(PODS):
        sim.check("--peers" in sim.log(k) and "--join" not in sim.log(k),
                  "gcsd-%d bootstrapped from --peers" % k)

    w = Writer(sim)
    w.start()
    sim.check(sim.until(20, lambda: len(w.acked) >= 50), "writes are acknowledged")

    print("== each pod restarted in turn on its own volume, under the write load", flush=True)
    for k in range(PODS):
        seen, states, ok, before = restart_pod(sim, w, k)
        sim.check(seen[0] != 200, "gcsd-%d not ready once killed (%s)" % (k, seen[0]))
        sim.check(ok, "gcsd-%d ready again after its restart (readiness: %s)" % (k, states))
        sim.check(sim.until(20, lambda: len(w.acked) >= before + 50),
                  "writes go on while gcsd-%d restarts (%d acknowledged)" % (k, len(w.acked)))
        sim.check("RAFT.REMOVE" not in sim.log(k).split("---- start")[-1],
                  "gcsd-%d restarted on its volume without asking anyone" % k)

    print("== gcsd-2 loses its volume: the startup script removes and re-adds it", flush=True)
    seen, states, ok, before = restart_pod(sim, w, 2, wipe=True)
    last = sim.log(2).split("---- start")[-1]
    sim.check("RAFT.REMOVE 3, then joining" in last, "gcsd-2's script removed member 3 and joined again")
    sim.check(ok, "gcsd-2 ready again on its new volume (readiness: %s)" % states)
    sim.check(sim.until(30, lambda: sim.voters(0) == [1, 2, 3]), "three voters again: %s" % sim.voters(0))

    # Once refused for good in a quarter of the runs: raft 0.22.1 recorded a
    # configuration entry received mid-batch at the wrong index (rglue now
    # trims AppendEntries at configuration entries; docs/architecture.md).
    replace_by_hand(sim)

    before = len(w.acked)
    sim.check(sim.until(20, lambda: len(w.acked) >= before + 50), "writes go on")
    w.stop.set()
    w.join(10)
    acked = set(w.acked)
    print("writer: %d acknowledged, %d errors" % (len(acked), w.errors), flush=True)

    print("== no acknowledged write lost, on any member", flush=True)
    _, leader = sim.until(20, lambda: sim.leader()[1] and sim.leader()) or (None, None)
    commit = int(leader["commit_index"]) if leader else 1 << 62
    for k in range(PODS):
        sim.check(sim.until(30, lambda: (sim.status(k) or {}).get("applied_index", 0) >= commit),
                  "gcsd-%d applied the log up to %d" % (k, commit))
        c = sim.client(k, timeout=10)
        c.execute_command("READONLY")  # this member's own copy, never forwarded
        keys = sorted(acked)
        missing = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            vals = c.mget(["w:%d" % n for n in chunk])
            missing += [n for n, v in zip(chunk, vals) if v != str(n)]
        sim.check(not missing, "gcsd-%d holds all %d acknowledged writes (missing: %s)"
                  % (k, len(keys), missing[:10]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
