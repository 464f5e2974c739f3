#!/usr/bin/env python3
"""The checkers must catch what they are for: known-bad histories fail."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

_seq = [0]


def op(f, v, r, t0, t1, st="ok", p=0, k="k"):
    return {"p": p, "k": k, "f": f, "v": v, "r": r, "t0": t0, "t1": t1,
            "st": st}


class Register(unittest.TestCase):
    def lin(self, ops, initial=None):
        return checker.check_register(ops, initial)[0]

    def test_sequential(self):
        self.assertTrue(self.lin([
            op("read", None, None, 0, 1),
            op("write", "a", "OK", 2, 3),
            op("read", None, "a", 4, 5),
            op("cas", ["a", "b"], "OK", 6, 7),
            op("cas", ["a", "c"], None, 8, 9),
            op("read", None, "b", 10, 11)]))

    def test_stale_read(self):
        self.assertFalse(self.lin([
            op("write", "a", "OK", 0, 1),
            op("write", "b", "OK", 2, 3, p=1),
            op("read", None, "a", 4, 5, p=2)]))

    def test_concurrent_read_sees_either(self):
        for seen in ("a", "b"):
            self.assertTrue(self.lin([
                op("write", "a", "OK", 0, 1),
                op("write", "b", "OK", 2, 10, p=1),
                op("read", None, seen, 3, 4, p=2)]))

    def test_value_read_before_its_write(self):
        self.assertFalse(self.lin([
            op("read", None, "a", 0, 1, p=1),
            op("write", "a", "OK", 2, 3)]))

    def test_unknown_write_may_apply_late(self):
        self.assertTrue(self.lin([
            op("write", "a", None, 0, None, st="info"),
            op("read", None, None, 5, 6, p=1),
            op("read", None, "a", 7, 8, p=1)]))

    def test_unknown_write_cannot_apply_before_it_is_sent(self):
        self.assertFalse(self.lin([
            op("read", None, "a", 0, 1, p=1),
            op("write", "a", None, 2, None, st="info")]))

    def test_unread_unknown_write_explains_failed_cas(self):
        self.assertTrue(self.lin([
            op("write", "a", "OK", 0, 1),
            op("write", "b", None, 2, None, st="info", p=1),
            op("cas", ["a", "c"], None, 5, 6, p=2)]))

    def test_failed_write_must_not_apply(self):
        self.assertFalse(self.lin([
            op("write", "a", None, 0, 1, st="fail"),
            op("read", None, "a", 2, 3, p=1)]))

    def test_cas_twice_from_one_value(self):
        self.assertFalse(self.lin([
            op("write", "a", "OK", 0, 1),
            op("cas", ["a", "b"], "OK", 2, 3, p=1),
            op("cas", ["a", "c"], "OK", 4, 5, p=2)]))

    def test_cas_failure_must_be_justified(self):
        self.assertFalse(self.lin([
            op("write", "a", "OK", 0, 1),
            op("cas", ["a", "b"], None, 2, 3, p=1)]))

    def test_lost_acknowledged_write(self):
        self.assertFalse(self.lin([
            op("write", "a", "OK", 0, 1),
            op("write", "b", "OK", 2, 3),
            op("read", None, "a", 10, 11, p=3)]))

    def test_many_concurrent(self):
        # 6 clients, overlapping writes and reads consistent with one order.
        ops = []
        t = 0
        for i in range(300):
            ops.append(op("write", "v%d" % i, "OK", t, t + 15, p=i % 6))
            ops.append(op("read", None, "v%d" % i, t + 14, t + 20, p=6))
            t += 10
        self.assertTrue(self.lin(ops))


class Counter(unittest.TestCase):
    def test_bounds(self):
        ops = [op("incr", 2, 2, 0, 1, k="c"), op("incr", 3, 5, 2, 3, k="c"),
               op("incr", 4, None, 4, None, st="info", k="c"),
               op("incr", 5, None, 4, 6, st="fail", k="c")]
        self.assertTrue(checker.check_counter(ops, 5)[0])
        self.assertTrue(checker.check_counter(ops, 9)[0])
        self.assertFalse(checker.check_counter(ops, 4)[0])   # lost
        self.assertFalse(checker.check_counter(ops, 14)[0])  # failed applied
        self.assertFalse(checker.check_counter(ops, 7)[0] and
                         checker.check_counter(ops, 12)[0])


def ev(rev, key="k", value="v", table="KEYSPACE"):
    return {"rev": rev, "table": table, "key": key, "kind": 0,
            "value": value, "field": None}


class Watch(unittest.TestCase):
    def check(self, watchers, acked=None, attempted=None):
        acked = acked or {}
        attempted = attempted or {"k": {"a", "b", "c", "d"}}
        return checker.check_watch(watchers, acked, attempted, {"k"})

    def test_good(self):
        s = [{"from": 1, "events": [ev(1, value="a"), ev(2, value="b")]},
             {"from": 3, "events": [ev(3, value="c")]}]
        self.assertEqual(self.check([s, s[:1]], {"k": {"a", "c"}}), [])

    def test_gap_duplicate_and_bad_resume(self):
        self.assertTrue(self.check([[{"from": 1, "events": [ev(1), ev(3)]}]]))
        self.assertTrue(self.check([[{"from": 1, "events": [ev(1), ev(1)]}]]))
        self.assertTrue(self.check([[{"from": 1, "events": [ev(1)]},
                                     {"from": 3, "events": [ev(3)]}]]))

    def test_streams_disagree(self):
        self.assertTrue(self.check([[{"from": 1, "events": [ev(1, value="a")]}],
                                    [{"from": 1, "events": [ev(1, value="b")]}]]))

    def test_missing_and_invented(self):
        self.assertTrue(self.check([[{"from": 1, "events": [ev(1, value="a")]}]],
                                   {"k": {"a", "b"}}))
        self.assertTrue(self.check([[{"from": 1, "events": [ev(1, value="z")]}]]))

    def test_decode(self):
        # revision 300, table "KEYSPACE", key "k", kind 1, value "v"
        b = bytes([0x08, 0xAC, 0x02, 0x12, 8]) + b"KEYSPACE" + \
            bytes([0x1A, 1]) + b"k" + bytes([0x20, 1, 0x2A, 1]) + b"v"
        e = checker.decode_change_event(b)
        self.assertEqual((e["rev"], e["table"], e["key"], e["kind"],
                          e["value"]), (300, "KEYSPACE", "k", 1, "v"))


if __name__ == "__main__":
    unittest.main()
