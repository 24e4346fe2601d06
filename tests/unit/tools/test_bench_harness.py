"""tools.bench_harness: the bench harness's CSV, median, interleaving and
goal logic (tools/benchmarks/harness.py), with fake sides."""

import csv
import os
import sys
import tempfile
import unittest

import harness
from harness import Benchmark, BenchError, Comparison, Side


def fake_bench(rounds=5, goal="<=1.3"):
    return Benchmark(
        name="fake", description="fake",
        sides=(Side("gyre", ("gyre",)), Side("jemalloc", ("jemalloc",)),
               Side("glibc", ("glibc",))),
        comparisons=(Comparison("alloc_owner_1t", "ns", "gyre", "jemalloc", "jemalloc", goal,
                                gyre_key="t", anchor_key="t"),
                     Comparison("alloc_owner_1t", "ns", "gyre", "glibc", "glibc", None,
                                gyre_key="t", anchor_key="t")),
        rounds=rounds)


class FakeRunner:
    """Returns scripted values and records the order sides ran in."""

    def __init__(self, values):
        self.values = {k: list(v) for k, v in values.items()}
        self.order = []

    def __call__(self, side):
        self.order.append(side.name)
        return f"noise line\n@bench t {self.values[side.name].pop(0)} ns\n"


class MedianTest(unittest.TestCase):
    def test_odd_even_unsorted(self):
        self.assertEqual(harness.median([5, 1, 3]), 3)
        self.assertEqual(harness.median([4, 1, 3, 2]), 2.5)
        self.assertEqual(harness.median([7]), 7)
        with self.assertRaises(BenchError):
            harness.median([])

    def test_median_resists_outlier(self):
        self.assertEqual(harness.median([10, 10, 11, 10, 1000]), 10)


class GoalTest(unittest.TestCase):
    def test_per_run_lines(self):
        b = Benchmark(name="s", description="d", sides=(Side("a", ("a",)), Side("b", ("b",))),
                      comparisons=(Comparison("m", "u", "a", "b", "b"),), per_run=("rss",))
        text = harness.format_per_run(b, {"a": {"rss": [1.5, 2.0]}, "b": {"x": [1.0]}})
        self.assertEqual(text.splitlines(), ["rss          a                1.5 2"])

    def test_parse(self):
        self.assertEqual(harness.parse_goal("<=1.3"), ("<=", 1.3))
        self.assertEqual(harness.parse_goal(">=2"), (">=", 2.0))
        self.assertEqual(harness.parse_goal(">= 0.85"), (">=", 0.85))
        for bad in ("1.3", "=<1", "<=x", "", "<=1.3x"):
            with self.assertRaises(BenchError, msg=bad):
                harness.parse_goal(bad)

    def test_met(self):
        self.assertEqual(harness.goal_met(1.3, "<=1.3"), "yes")
        self.assertEqual(harness.goal_met(1.31, "<=1.3"), "no")
        self.assertEqual(harness.goal_met(2.0, ">=2"), "yes")
        self.assertEqual(harness.goal_met(1.99, ">=2"), "no")
        self.assertEqual(harness.goal_met(0.5, "<0.5"), "no")
        self.assertEqual(harness.goal_met(5, None), "n/a")


class OutputTest(unittest.TestCase):
    def test_parse_output(self):
        out = "hello\n@bench a 1.5 ns\n  @bench b 2e3 B  \n@benchx c 1 ns\n"
        self.assertEqual(harness.parse_output(out), {"a": (1.5, "ns"), "b": (2000.0, "B")})

    def test_duplicate_and_bad_values(self):
        with self.assertRaises(BenchError):
            harness.parse_output("@bench a 1 ns\n@bench a 2 ns\n")
        with self.assertRaises(BenchError):
            harness.parse_output("@bench a fast ns\n")


class RoundsTest(unittest.TestCase):
    def test_interleaved_order_and_medians(self):
        runner = FakeRunner({"gyre": [10, 12, 11, 50, 11], "jemalloc": [8, 9, 8, 8, 100],
                             "glibc": [20, 20, 21, 19, 20]})
        results = harness.run_rounds(fake_bench(), runner)
        # Interleaved, each round starting one side further round.
        self.assertEqual(runner.order, ["gyre", "jemalloc", "glibc",
                                        "jemalloc", "glibc", "gyre",
                                        "glibc", "gyre", "jemalloc",
                                        "gyre", "jemalloc", "glibc",
                                        "jemalloc", "glibc", "gyre"])
        self.assertEqual(results["gyre"]["t"], [10, 12, 11, 50, 11])
        rows = harness.summarize(fake_bench(), results)
        self.assertEqual(len(rows), 2)
        r = rows[0]
        self.assertEqual((r.gyre, r.anchor_value), (11, 8))
        self.assertEqual((r.gyre_min, r.gyre_max, r.anchor_min, r.anchor_max), (10, 50, 8, 100))
        self.assertAlmostEqual(r.ratio, 11 / 8)
        self.assertEqual(r.met, "no")  # 1.375 > 1.3
        self.assertEqual(rows[1].met, "n/a")
        self.assertAlmostEqual(rows[1].ratio, 11 / 20)

    def test_fewer_than_five_rounds_refused(self):
        with self.assertRaises(BenchError):
            harness.run_rounds(fake_bench(), FakeRunner({}), rounds=4)
        with self.assertRaises(BenchError):
            fake_bench(rounds=3).validate()

    def test_missing_metric_is_an_error(self):
        results = {"gyre": {"t": [1.0] * 5}, "jemalloc": {}, "glibc": {"t": [1.0] * 5}}
        with self.assertRaises(BenchError):
            harness.summarize(fake_bench(), results)

    def test_zero_anchor(self):
        """A zero anchor median compares instead of aborting the run: 0 vs 0
        is ratio 1 (met by <=1.3), x vs 0 is inf (missed)."""
        results = {"gyre": {"t": [0.0] * 5}, "jemalloc": {"t": [0.0] * 5},
                   "glibc": {"t": [0.0] * 5}}
        rows = harness.summarize(fake_bench(), results)
        self.assertEqual((rows[0].ratio, rows[0].met), (1.0, "yes"))
        results["gyre"]["t"] = [2.0] * 5
        rows = harness.summarize(fake_bench(), results)
        self.assertEqual(rows[0].ratio, float("inf"))
        self.assertEqual(rows[0].met, "no")

    def test_unknown_side_refused(self):
        b = Benchmark("x", "x", (Side("a", ("a",)),),
                      (Comparison("m", "ns", "a", "zz", "zz", "<=1"),))
        with self.assertRaises(BenchError):
            b.validate()


class BaselineTest(unittest.TestCase):
    def test_baseline_sides_and_rows(self):
        bench = Benchmark(
            name="fake", description="fake",
            sides=(Side("gyre", ("{build}/bench_gyre", "x")), Side("jemalloc", ("{build}/je",)),
                   Side("gyre_rps", ("{build}/srv",))),
            comparisons=(Comparison("t", "ns", "gyre", "jemalloc", "jemalloc", "<=1.3"),
                         Comparison("t", "ns", "gyre", "glibc", "jemalloc"),
                         Comparison("rps", "req/s", "gyre_rps", "nginx", "jemalloc", ">=0.8")),
            rounds=5)
        b = harness.with_baseline(bench, "abc123", "/base")
        names = [s.name for s in b.sides]
        # Only Gyre's sides get a baseline twin (anchors are the same programs).
        self.assertEqual(names, ["gyre", "jemalloc", "gyre_rps", "gyre@base", "gyre_rps@base"])
        self.assertEqual(b.sides[3].argv, ("/base/bench_gyre", "x"))
        extra = b.comparisons[3:]
        # One row per Gyre metric (not per anchor), direction from the goal.
        self.assertEqual([(c.metric, c.anchor, c.anchor_side, c.goal) for c in extra],
                         [("t", "gyre@abc123", "gyre@base", "<=1.05"),
                          ("rps", "gyre@abc123", "gyre_rps@base", ">=0.95")])
        runner = FakeRunner({"gyre": [10] * 5, "jemalloc": [9] * 5, "gyre_rps": [10] * 5,
                             "gyre@base": [9] * 5, "gyre_rps@base": [10] * 5})
        # The fake runner prints key t for every side: rps reads key t too.
        b2 = dataclasses_replace_rps(b)
        rows = harness.summarize(b2, harness.run_rounds(b2, runner))
        self.assertEqual(rows[3].met, "no")   # 10 vs 9: 11% slower
        self.assertEqual(rows[4].met, "yes")  # same throughput


def dataclasses_replace_rps(b):
    import dataclasses
    comps = tuple(dataclasses.replace(c, gyre_key="t", anchor_key="t") if c.metric == "rps"
                  else c for c in b.comparisons)
    return dataclasses.replace(b, comparisons=comps)


class CsvTest(unittest.TestCase):
    def test_header_and_rows(self):
        runner = FakeRunner({"gyre": [10] * 5, "jemalloc": [10] * 5, "glibc": [40] * 5})
        rows = harness.summarize(fake_bench(), harness.run_rounds(fake_bench(), runner))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "fake.csv")
            harness.write_csv(path, rows)
            with open(path) as f:
                lines = f.read().splitlines()
            self.assertEqual(lines[0],
                             "benchmark,metric,unit,gyre,anchor,anchor_value,ratio,goal,met")
            with open(path) as f:
                parsed = list(csv.DictReader(f))
        self.assertEqual(parsed[0], {"benchmark": "fake", "metric": "alloc_owner_1t",
                                     "unit": "ns", "gyre": "10", "anchor": "jemalloc",
                                     "anchor_value": "10", "ratio": "1.0000", "goal": "<=1.3",
                                     "met": "yes"})
        self.assertEqual(parsed[1]["goal"], "none")
        self.assertEqual(parsed[1]["met"], "n/a")
        self.assertEqual(parsed[1]["ratio"], "0.2500")

    def test_table_marks_pass_and_miss(self):
        runner = FakeRunner({"gyre": [20] * 5, "jemalloc": [10] * 5, "glibc": [40] * 5})
        rows = harness.summarize(fake_bench(), harness.run_rounds(fake_bench(), runner))
        table = harness.format_table(rows)
        self.assertIn("MISS", table)
        self.assertIn("2.000", table)
        runner = FakeRunner({"gyre": [10] * 5, "jemalloc": [10] * 5, "glibc": [40] * 5})
        rows = harness.summarize(fake_bench(), harness.run_rounds(fake_bench(), runner))
        self.assertIn("PASS", harness.format_table(rows))


class SubprocessRunnerTest(unittest.TestCase):
    def test_real_commands_and_failures(self):
        with tempfile.TemporaryDirectory() as d:
            run = harness.subprocess_runner(build=d, root=d, out=d)
            ok = Side("ok", (sys.executable, "-c", "print('@bench k 3 ns'); print('{build}')"))
            out = run(ok)
            self.assertIn("@bench k 3 ns", out)
            self.assertIn(d, out)
            bad = Side("bad", (sys.executable, "-c", "import sys; sys.exit(3)"))
            with self.assertRaises(BenchError):
                run(bad)

    def test_machine_info(self):
        info = harness.machine_info()
        self.assertIn("cpu:", info)
        self.assertIn("cores:", info)
        self.assertIn("kernel:", info)


if __name__ == "__main__":
    unittest.main()
