"""Gyre's benchmark harness: interleaved rounds, medians, goals, CSV.

A benchmark (see registry.py) names *sides*: commands that each measure one
or more metrics and print them as lines

    @bench KEY VALUE UNIT

(any other output is kept in the log). Every round runs every side once, so
drift of a noisy machine falls on all alike; round r starts at side r mod n
and goes round (A B C, B C A, C A B, ...), so no side always runs right
after the same other one (a heavy side can slow the process that follows
it: measured here, 5-9% on the tracing benchmark with a fixed order). A *comparison* pairs a Gyre metric with an
anchor metric measured in the same run; its ratio is the median of Gyre's
values over the median of the anchor's, checked against the goal the issue
wrote ("<=1.3", ">=2", or None for a printed-only row).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import io
import os
import platform
import re
import shlex
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

CSV_HEADER = ["benchmark", "metric", "unit", "gyre", "anchor", "anchor_value", "ratio", "goal", "met"]
MIN_ROUNDS = 5
LINE_RE = re.compile(r"^@bench\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
GOAL_RE = re.compile(r"^(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)$")


class BenchError(Exception):
    """A benchmark could not be run or its output was not understood."""


@dataclasses.dataclass(frozen=True)
class Side:
    """One measured program. argv may use {build} (the Release build
    directory), {root} (the source tree) and {out} (build/bench)."""

    name: str
    argv: Tuple[str, ...]
    env: Tuple[Tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One CSV row: `metric` measured by side `gyre` against `anchor_value`
    measured by side `anchor_side` (key `anchor_key`, default the same)."""

    metric: str
    unit: str
    gyre: str
    anchor: str
    anchor_side: str
    goal: Optional[str] = None
    gyre_key: Optional[str] = None
    anchor_key: Optional[str] = None

    def gyre_metric(self) -> str:
        return self.gyre_key or self.metric

    def anchor_metric(self) -> str:
        return self.anchor_key or self.metric


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    sides: Tuple[Side, ...]
    comparisons: Tuple[Comparison, ...]
    rounds: int = MIN_ROUNDS
    targets: Tuple[str, ...] = ()  # CMake targets to build first
    packages: Tuple[str, ...] = ()  # Debian packages the anchors need
    per_run: Tuple[str, ...] = ()  # keys printed for every run (e.g. rss, collections)

    def validate(self) -> None:
        names = [s.name for s in self.sides]
        if len(set(names)) != len(names):
            raise BenchError(f"{self.name}: duplicate side names {names}")
        if self.rounds < MIN_ROUNDS:
            raise BenchError(f"{self.name}: {self.rounds} rounds, at least {MIN_ROUNDS} required")
        for c in self.comparisons:
            for side in (c.gyre, c.anchor_side):
                if side not in names:
                    raise BenchError(f"{self.name}/{c.metric}: unknown side '{side}'")
            if c.goal is not None:
                parse_goal(c.goal)


def format_per_run(bench: "Benchmark", results: Dict[str, Dict[str, List[float]]]) -> str:
    """One line per side and key of bench.per_run: its value in each round."""
    lines = []
    for key in bench.per_run:
        for side in bench.sides:
            values = results.get(side.name, {}).get(key)
            if values:
                lines.append(f"{key:<12} {side.name:<16} " +
                             " ".join(f"{v:.6g}" for v in values))
    return "\n".join(lines)


def with_baseline(bench: "Benchmark", label: str, base_build: str,
                  tolerance: float = 0.05) -> "Benchmark":
    """The same benchmark plus, for every side named gyre* that runs a
    program of the Release build, the same program of another build (a
    baseline commit's, `base_build`), interleaved with the rest, and one row
    per measured Gyre metric: this build against that one ("gyre@LABEL"),
    goal within `tolerance` (<=1+t where lower is better, >=1-t where the
    original goal says higher is better)."""
    sides = list(bench.sides)
    base_names = {}
    for side in bench.sides:
        if side.name.startswith("gyre") and any("{build}" in a for a in side.argv):
            base = Side(side.name + "@base",
                        tuple(a.replace("{build}", base_build) for a in side.argv), side.env)
            sides.append(base)
            base_names[side.name] = base.name
    rows = list(bench.comparisons)
    seen = set()
    for c in bench.comparisons:
        key = (c.gyre, c.gyre_metric())
        if c.gyre not in base_names or key in seen:
            continue
        seen.add(key)
        higher = c.goal is not None and c.goal.lstrip().startswith(">")
        goal = f">={1 - tolerance:g}" if higher else f"<={1 + tolerance:g}"
        rows.append(Comparison(c.metric, c.unit, c.gyre, f"gyre@{label}", base_names[c.gyre], goal,
                               gyre_key=c.gyre_key, anchor_key=c.gyre_metric()))
    out = dataclasses.replace(bench, sides=tuple(sides), comparisons=tuple(rows))
    out.validate()
    return out


def parse_goal(goal: str) -> Tuple[str, float]:
    """'<=1.3' -> ('<=', 1.3). Raises BenchError on anything else."""
    m = GOAL_RE.match(goal.strip())
    if not m:
        raise BenchError(f"bad goal '{goal}': expected <=X, >=X, <X or >X")
    return m.group(1), float(m.group(2))


def goal_met(ratio: float, goal: Optional[str]) -> str:
    """'yes' or 'no' against the goal; 'n/a' for a row without a goal."""
    if goal is None:
        return "n/a"
    op, bound = parse_goal(goal)
    ok = {"<=": ratio <= bound, ">=": ratio >= bound, "<": ratio < bound, ">": ratio > bound}[op]
    return "yes" if ok else "no"


def median(values: Sequence[float]) -> float:
    if not values:
        raise BenchError("median of no values")
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def parse_output(text: str) -> Dict[str, Tuple[float, str]]:
    """Collect '@bench KEY VALUE UNIT' lines: {key: (value, unit)}."""
    found: Dict[str, Tuple[float, str]] = {}
    for line in text.splitlines():
        m = LINE_RE.match(line.strip())
        if not m:
            continue
        key, value, unit = m.groups()
        try:
            v = float(value)
        except ValueError as e:
            raise BenchError(f"bad value in line '{line}'") from e
        if key in found:
            raise BenchError(f"metric '{key}' printed twice")
        found[key] = (v, unit)
    return found


Runner = Callable[[Side], str]


def run_rounds(bench: Benchmark, runner: Runner, rounds: Optional[int] = None,
               log: Optional[io.TextIOBase] = None) -> Dict[str, Dict[str, List[float]]]:
    """Run `rounds` interleaved rounds; returns {side: {key: [values...]}},
    one value per round for every key the side printed."""
    bench.validate()
    n = rounds if rounds is not None else bench.rounds
    if n < MIN_ROUNDS:
        raise BenchError(f"{n} rounds, at least {MIN_ROUNDS} required")
    results: Dict[str, Dict[str, List[float]]] = {s.name: {} for s in bench.sides}
    sides = list(bench.sides)
    for r in range(n):
        k = r % len(sides)
        for side in sides[k:] + sides[:k]:
            out = runner(side)
            if log is not None:
                log.write(f"--- round {r + 1} side {side.name}\n{out}\n")
            for key, (value, _unit) in parse_output(out).items():
                results[side.name].setdefault(key, []).append(value)
    return results


@dataclasses.dataclass
class Row:
    benchmark: str
    metric: str
    unit: str
    gyre: float
    gyre_min: float
    gyre_max: float
    anchor: str
    anchor_value: float
    anchor_min: float
    anchor_max: float
    ratio: float
    goal: Optional[str]
    met: str

    def csv_fields(self) -> List[str]:
        return [self.benchmark, self.metric, self.unit, fmt_num(self.gyre), self.anchor,
                fmt_num(self.anchor_value), f"{self.ratio:.4f}", self.goal or "none", self.met]


def fmt_num(v: float) -> str:
    return f"{v:.6g}"


def summarize(bench: Benchmark, results: Dict[str, Dict[str, List[float]]]) -> List[Row]:
    rows = []
    for c in bench.comparisons:
        g = results.get(c.gyre, {}).get(c.gyre_metric())
        a = results.get(c.anchor_side, {}).get(c.anchor_metric())
        if not g:
            raise BenchError(f"{bench.name}: side '{c.gyre}' printed no '{c.gyre_metric()}'")
        if not a:
            raise BenchError(f"{bench.name}: side '{c.anchor_side}' printed no '{c.anchor_metric()}'")
        gm, am = median(g), median(a)
        # A zero anchor (a pause of 0 us at the small heap: nothing stopped)
        # still compares: 0 against 0 is no growth (ratio 1), anything
        # against 0 is infinitely more (ratio inf, which misses a <= goal).
        if am == 0:
            ratio = 1.0 if gm == 0 else math.inf
        else:
            ratio = gm / am
        rows.append(Row(bench.name, c.metric, c.unit, gm, min(g), max(g), c.anchor, am, min(a),
                        max(a), ratio, c.goal, goal_met(ratio, c.goal)))
    return rows


def write_csv(path: str, rows: Sequence[Row]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_HEADER)
        for row in rows:
            w.writerow(row.csv_fields())


def write_rounds_csv(path: str, results: Dict[str, Dict[str, List[float]]]) -> None:
    """Every raw value, for anyone who wants more than the median."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["side", "key", "round", "value"])
        for side, keys in results.items():
            for key, values in keys.items():
                for i, v in enumerate(values):
                    w.writerow([side, key, i + 1, fmt_num(v)])


def format_table(rows: Sequence[Row]) -> str:
    head = ["metric", "unit", "gyre [min-max]", "anchor", "anchor [min-max]", "ratio", "goal",
            "result"]
    body = []
    for r in rows:
        verdict = {"yes": "PASS", "no": "MISS", "n/a": "-"}[r.met]
        body.append([r.metric, r.unit,
                     f"{fmt_num(r.gyre)} [{fmt_num(r.gyre_min)}-{fmt_num(r.gyre_max)}]",
                     r.anchor,
                     f"{fmt_num(r.anchor_value)} [{fmt_num(r.anchor_min)}-{fmt_num(r.anchor_max)}]",
                     f"{r.ratio:.3f}", r.goal or "-", verdict])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip()
             for line in [head] + body]
    return "\n".join(lines)


def expand_argv(side: Side, build: str, root: str, out: str) -> List[str]:
    return [a.format(build=build, root=root, out=out) for a in side.argv]


def subprocess_runner(build: str, root: str, out: str, timeout: float = 1800) -> Runner:
    def run(side: Side) -> str:
        argv = expand_argv(side, build, root, out)
        env = dict(os.environ)
        env.update(dict(side.env))
        try:
            p = subprocess.run(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BenchError(f"side {side.name}: {shlex.join(argv)}: {e}") from e
        if p.returncode != 0:
            raise BenchError(f"side {side.name}: {shlex.join(argv)} exited {p.returncode}:\n"
                             f"{p.stdout[-4000:]}")
        return p.stdout
    return run


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _cmd(argv: List[str]) -> str:
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "not available"


def machine_info(extra_packages: Sequence[str] = ()) -> str:
    """CPU model, cores, kernel, compiler and library versions, as text."""
    cpu = "unknown"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    lines = [f"cpu: {cpu}", f"cores: {os.cpu_count()}", f"kernel: {platform.release()}",
             f"os: {_read('/etc/debian_version').strip() or platform.platform()}",
             f"python: {sys.version.split()[0]} ({sys.executable})",
             f"cc: {_cmd(['cc', '--version']).splitlines()[0] if _cmd(['cc', '--version']) else '?'}"]
    mem = [l for l in _read("/proc/meminfo").splitlines() if l.startswith("MemTotal")]
    if mem:
        lines.append(f"memory: {mem[0].split(':', 1)[1].strip()}")
    pkgs = ["libjemalloc2", "libck0", *extra_packages]
    for p in pkgs:
        v = _cmd(["dpkg-query", "-W", "-f=${Version}", p])
        lines.append(f"package {p}: {v or 'not installed'}")
    return "\n".join(lines) + "\n"
