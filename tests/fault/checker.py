"""Checkers for the histories the fault harness records (standard library only).

An operation is a dict:
    p   client id            f   "read", "write", "cas" or "incr"
    k   key                  v   argument: value written, [expected, new]
                                 for cas, the increment for incr
    t0  invoke time (ns)     t1  completion time (ns), None if unknown
    st  "ok", "fail" (an error reply: gcsd promises it did not apply) or
        "info" (no reply: it may or may not have applied)
    r   result: the value read (str or None), "OK"/None for cas, the new
        counter value for incr

check_register: linearizability of one key as a read/write/compare-and-set
register, by the Wing & Gong search with Lowe's memoisation.
check_counter: the final value of a counter lies between the acknowledged
and the attempted sums.
check_watch: watch streams are ordered, gap- and duplicate-free, resume
where they left off, agree with each other, and carry every acknowledged
write and nothing invented.
"""
import random

_ZOBRIST = random.Random(20261126)  # fixed: a check is reproducible


class Inconclusive(Exception):
    """The search exceeded its budget: neither proof nor counterexample."""


def _observed(ops):
    """Values some completed operation depended on."""
    seen = set()
    for o in ops:
        if o["st"] != "ok":
            continue
        if o["f"] == "read" and o["r"] is not None:
            seen.add(o["r"])
        elif o["f"] == "cas" and o["r"] == "OK":
            seen.add(o["v"][0])
    return seen


# The value of writes of unknown outcome that nobody observed (see below).
UNOBSERVED = ("unobserved",)


def prepare_register(ops):
    """The operations the search must consider.

    Failed operations did not happen. Reads without a reply constrain
    nothing. A write or cas without a reply may be left out of a
    linearization. If nobody read its value, all that matters is that it
    replaced the value before (a failed compare-and-set may rely on that),
    so it writes the one token UNOBSERVED instead: no read can return it,
    and such writes are interchangeable, which keeps the search small.
    """
    seen = _observed(ops)
    out = []
    for o in ops:
        if o["st"] == "fail":
            continue
        if o["st"] == "info":
            if o["f"] == "read":
                continue
            new = o["v"] if o["f"] == "write" else o["v"][1]
            if new not in seen:
                o = dict(o)
                o["v"] = UNOBSERVED if o["f"] == "write" else \
                    [o["v"][0], UNOBSERVED]
        out.append(o)
    return out


def _step(state, o):
    """(legal, next state) of applying o to a register holding state."""
    f = o["f"]
    if f == "read":
        return o["r"] == state, state
    if f == "write":
        return True, o["v"]
    expected, new = o["v"]
    if o["st"] == "info":
        # Left out entirely when it failed; linearized only as a success.
        return state == expected, new
    if o["r"] == "OK":
        return state == expected, new
    return state != expected, state


def check_register(ops, initial=None, budget=None):
    """(True, None) if linearizable, else (False, explanation).

    Raises Inconclusive past @budget search steps (default: 1,000,000 plus
    100 per operation).
    """
    ops = prepare_register(ops)
    if budget is None:
        budget = 1_000_000 + 100 * len(ops)
    if not ops:
        return True, None
    # Entries: (time, is_return, op index). Invocations sort before returns
    # at equal times, which only makes more orders legal.
    ev = []
    for i, o in enumerate(ops):
        ev.append((o["t0"], 0, i))
        if o["st"] == "ok":
            ev.append((o["t1"], 1, i))
    ev.sort()
    n = len(ev)
    # Doubly linked list over entries 1..n; 0 is the head sentinel.
    nxt = list(range(1, n + 2))
    prv = list(range(-1, n))
    kind = [None] + [e[1] for e in ev]
    opi = [None] + [e[2] for e in ev]
    ret_of = {}
    for j in range(1, n + 1):
        if kind[j] == 1:
            ret_of[opi[j]] = j
    nxt[n] = None

    def lift(j):
        nxt[prv[j]] = nxt[j]
        if nxt[j] is not None:
            prv[nxt[j]] = prv[j]
        r = ret_of.get(opi[j])
        if r is not None:
            nxt[prv[r]] = nxt[r]
            if nxt[r] is not None:
                prv[nxt[r]] = prv[r]

    def unlift(j):
        r = ret_of.get(opi[j])
        if r is not None:
            nxt[prv[r]] = r
            if nxt[r] is not None:
                prv[nxt[r]] = r
        nxt[prv[j]] = j
        if nxt[j] is not None:
            prv[nxt[j]] = j

    required = sum(1 for o in ops if o["st"] == "ok")
    done = 0
    state = initial
    # The set of linearized operations, as a Zobrist hash (a random 128-bit
    # value per operation, xor-ed in and out): constant time and memory per
    # step, where a bitset costs the history's length in both. A collision
    # (odds about 2^-100 per pair) would prune a branch wrongly.
    zob = [_ZOBRIST.getrandbits(128) for _ in ops]
    lin = 0
    cache = set()
    stack = []
    steps = 0
    best = 0  # most required ops linearized at once, for the explanation
    j = nxt[0]
    while done < required:
        steps += 1
        if steps > budget:
            raise Inconclusive("more than %d search steps" % budget)
        if j is None:
            # Only optional invocations were left to try: backtrack.
            kind_here = 1
        else:
            kind_here = kind[j]
        if kind_here == 0:
            o = ops[opi[j]]
            legal, new_state = _step(state, o)
            if legal:
                new_lin = lin ^ zob[opi[j]]
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((j, state))
                    state = new_state
                    lin = new_lin
                    if o["st"] == "ok":
                        done += 1
                        best = max(best, done)
                    lift(j)
                    j = nxt[0]
                    continue
            j = nxt[j]
        else:
            if not stack:
                return False, _explain(ops, j, opi, best, required)
            j, state = stack.pop()
            lin ^= zob[opi[j]]
            if ops[opi[j]]["st"] == "ok":
                done -= 1
            unlift(j)
            j = nxt[j]
    return True, None


def _explain(ops, j, opi, best, required):
    o = ops[opi[j]] if j is not None else None
    what = ""
    if o is not None:
        what = "; no order explains %s %s -> %r by client %s" % (
            o["f"], o["v"], o.get("r"), o["p"])
    return ("not linearizable: at most %d of %d completed operations fit one "
            "order%s" % (best, required, what))


def check_counter(ops, final, initial=0):
    """(True, None) or (False, why): acked <= final - initial <= attempted."""
    acked = sum(o["v"] for o in ops if o["f"] == "incr" and o["st"] == "ok")
    maybe = sum(o["v"] for o in ops if o["f"] == "incr" and o["st"] == "info")
    got = final - initial
    if acked <= got <= acked + maybe:
        return True, None
    return False, ("counter %s: final increase %d outside [%d, %d] (acked "
                   "sum, plus increments with unknown outcome)" %
                   (ops[0]["k"] if ops else "?", got, acked, acked + maybe))


def check_watch(watchers, acked_values, attempted_values, register_keys):
    """Anomalies (a list of strings) in recorded watch streams.

    @watchers: list of watchers, each a list of segments (one per
    connection): {"from": rev, "events": [event dicts with rev, table, key,
    kind, value], "progress": [rev...], "error": text or None,
    "progress_bad": [..]}.
    @acked_values: {key: set of values acknowledged written} (register keys).
    @attempted_values: {key: set of values anybody tried to write}.
    """
    bad = []
    by_rev = {}
    covered = set()
    for w, segs in enumerate(watchers):
        last = None
        for s, seg in enumerate(segs):
            where = "watcher %d segment %d" % (w, s)
            if last is not None and seg["from"] != last + 1 and \
                    seg.get("error") is None:
                bad.append("%s: resumed FROM %d after revision %d" %
                           (where, seg["from"], last))
            expect = seg["from"]
            for e in seg["events"]:
                if e["rev"] != expect:
                    bad.append("%s: revision %d where %d was due (%s)" %
                               (where, e["rev"], expect,
                                "duplicate or reordered" if e["rev"] < expect
                                else "gap"))
                expect = e["rev"] + 1
                ident = (e["table"], e["key"], e["kind"], e["value"],
                         e.get("field"))
                prev = by_rev.setdefault(e["rev"], ident)
                if prev != ident:
                    bad.append("revision %d differs between streams: %r vs "
                               "%r" % (e["rev"], prev, ident))
                covered.add(e["rev"])
                last = e["rev"]
            for p in seg.get("progress_bad", []):
                bad.append("%s: %s" % (where, p))
    # Which register writes reached the streams.
    if covered:
        lo, hi = min(covered), max(covered)
        complete = len(covered) == hi - lo + 1
        seen = {}
        for rev, (table, key, kind, value, field) in by_rev.items():
            if table == "KEYSPACE" and key in register_keys and kind == 0:
                seen.setdefault(key, set()).add(value)
        for key in register_keys:
            got = seen.get(key, set())
            invented = got - attempted_values.get(key, set())
            if invented:
                bad.append("key %s: watch shows values nobody wrote: %s" %
                           (key, sorted(invented)[:5]))
            if complete and lo == 1:
                missing = acked_values.get(key, set()) - got
                if missing:
                    bad.append("key %s: %d acknowledged writes never appeared "
                               "in any watch stream, e.g. %s" %
                               (key, len(missing), sorted(missing)[:5]))
    return bad


# ---- protobuf: just enough to read gcs.ChangeEvent --------------------------

def _varint(b, i):
    x = 0
    shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, i
        shift += 7


def decode_change_event(b):
    """gcs.ChangeEvent bytes -> dict (rev, table, key, kind, value, field)."""
    e = {"rev": 0, "table": "", "key": "", "kind": 0, "value": "",
         "field": None}
    i = 0
    while i < len(b):
        tag, i = _varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            x, i = _varint(b, i)
            if num == 1:
                e["rev"] = x
            elif num == 4:
                e["kind"] = x
        elif wt == 2:
            ln, i = _varint(b, i)
            data = bytes(b[i:i + ln])
            i += ln
            text = data.decode("utf-8", "backslashreplace")
            if num == 2:
                e["table"] = text
            elif num == 3:
                e["key"] = text
            elif num == 5:
                e["value"] = text
            elif num == 6:
                e["field"] = text
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
    return e
