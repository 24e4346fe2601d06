"""Every benchmark of ./tools/bench, registered in one place.

Each entry names its sides (programs that print '@bench KEY VALUE UNIT'
lines; see harness.py), the CMake targets they need, the Debian packages
their anchors need, and the comparisons the issues ask for, with the metric
names and goals exactly as the issues write them. Real benchmarks arrive with
the issues that build what they measure.
"""

import os

from harness import Benchmark, Comparison, Side

BENCHMARKS: dict = {}


def register(bench: Benchmark) -> Benchmark:
    bench.validate()
    if bench.name in BENCHMARKS:
        raise ValueError(f"benchmark {bench.name} registered twice")
    BENCHMARKS[bench.name] = bench
    return bench


def _instr_side(name: str, mode: str, part: str, key: str) -> Side:
    """A side counting instructions per step of one part of the alloc
    benchmark under callgrind, with the collector in `mode` (idle)."""
    return Side(name, ("env", f"GYRE_GC_MODE={mode}",
                       "{root}/tools/benchmarks/alloc/instructions.sh",
                       "{build}/tools/benchmarks/bench_alloc_gyre", part, key))


register(Benchmark(
    name="alloc",
    description="Gyre object alloc+incref+decref+free vs raw allocators; RSS per object vs CPython",
    sides=(
        Side("gyre", ("{build}/tools/benchmarks/bench_alloc_gyre",)),
        Side("jemalloc", ("{build}/tools/benchmarks/bench_alloc_jemalloc",)),
        Side("glibc", ("{build}/tools/benchmarks/bench_alloc_glibc",)),
        Side("mimalloc", ("{build}/tools/benchmarks/bench_alloc_mimalloc",)),
        # Debian's python3 package (3.11), named explicitly, not whatever
        # python3 comes first on PATH.
        Side("cpython", ("/usr/bin/python3", "{root}/tools/benchmarks/alloc/alloc_cpython.py")),
        # Instructions per step under callgrind, the same binary in each
        # collector mode (collector idle): what the barriers of the
        # concurrent collector cost where no collection watches.
        _instr_side("instr_owner", "concurrent", "owner", "alloc_owner_1t_instructions"),
        _instr_side("instr_owner_stw", "stw", "owner", "alloc_owner_1t_instructions"),
        _instr_side("instr_incref", "concurrent", "incref", "incref_decref_owner_instructions"),
        _instr_side("instr_incref_stw", "stw", "incref", "incref_decref_owner_instructions"),
    ),
    comparisons=(
        Comparison("alloc_owner_1t_instructions", "instr", "instr_owner", "stw",
                   "instr_owner_stw", "<=1.03"),
        Comparison("incref_decref_owner_instructions", "instr", "instr_incref", "stw",
                   "instr_incref_stw", "<=1.03"),
        Comparison("alloc_owner_1t", "ns", "gyre", "jemalloc", "jemalloc", "<=1.3"),
        Comparison("alloc_owner_1t", "ns", "gyre", "glibc", "glibc"),
        Comparison("alloc_owner_1t", "ns", "gyre", "mimalloc", "mimalloc"),
        Comparison("alloc_shared_2t", "ns", "gyre", "jemalloc_atomic_rc", "jemalloc", "<=1.1",
                   anchor_key="jemalloc_atomic_rc"),
        Comparison("rss_per_object", "B", "gyre", "cpython", "cpython", "<=0.75"),
        Comparison("header_bytes", "B", "gyre", "cpython", "cpython"),
    ),
    rounds=7,
    targets=("bench_alloc_gyre", "bench_alloc_jemalloc", "bench_alloc_glibc",
             "bench_alloc_mimalloc"),
    packages=("libmimalloc-dev", "python3", "valgrind"),
))


register(Benchmark(
    name="tracing",
    description="allocation tracing off vs compiled out (with an A/A row); tracing on; weakref get",
    sides=(
        Side("tracing_off", ("{build}/tools/benchmarks/bench_tracing", "off")),
        Side("compiled_out", ("{build}/tools/benchmarks/bench_tracing_compiled_out",)),
        Side("compiled_out_again", ("{build}/tools/benchmarks/bench_tracing_compiled_out",)),
        Side("tracing_on", ("{build}/tools/benchmarks/bench_tracing", "on")),
        # Instructions per step under callgrind: deterministic, so the cost
        # of the disabled hooks shows even where time is too noisy to.
        Side("instr_off", ("{root}/tools/benchmarks/tracing/instructions.sh",
                           "{build}/tools/benchmarks/bench_tracing", "off",
                           "alloc_tracing_off_instructions")),
        Side("instr_compiled_out", ("{root}/tools/benchmarks/tracing/instructions.sh",
                                    "{build}/tools/benchmarks/bench_tracing_compiled_out", "off",
                                    "tracing_compiled_out_instructions")),
    ),
    comparisons=(
        Comparison("alloc_tracing_off", "ns", "tracing_off", "tracing_compiled_out",
                   "compiled_out", "<=1.05", anchor_key="tracing_compiled_out"),
        # A/A: the same binary against itself shows the noise floor.
        Comparison("tracing_compiled_out", "ns", "compiled_out_again", "tracing_compiled_out",
                   "compiled_out"),
        Comparison("alloc_tracing_on", "ns", "tracing_on", "tracing_compiled_out",
                   "compiled_out", anchor_key="tracing_compiled_out"),
        Comparison("weakref_get", "ns", "tracing_on", "incref", "tracing_on",
                   anchor_key="incref"),
        Comparison("alloc_tracing_off_instructions", "instr", "instr_off",
                   "tracing_compiled_out_instructions", "instr_compiled_out",
                   anchor_key="tracing_compiled_out_instructions"),
    ),
    # Many short rounds: this machine's speed drifts 30% run to run, so the
    # 5% goal needs a tight median (the A/A row shows what is left).
    rounds=41,
    targets=("bench_tracing", "bench_tracing_compiled_out"),
    packages=("valgrind",),
))


# Rows and goals as the cycle-collection issue writes them; the per-phase
# rows put each phase's ns/object against CPython's whole ns/object.
_COLLECT_SIZES = ("collect_live_1M", "collect_live_5M", "collect_garbage_100k",
                  "collect_garbage_1M", "collect_garbage_5M")
_COLLECT_PHASES = ("update", "subtract", "mark", "handle", "finalize", "clear")
register(Benchmark(
    name="collect",
    description="stop-the-world collect(2) objects/s and gen-0 latency vs CPython's gc",
    sides=(
        Side("gyre", ("{build}/tools/benchmarks/bench_collect_gyre",)),
        Side("cpython", ("/usr/bin/python3", "{root}/tools/benchmarks/collect/collect_cpython.py")),
    ),
    comparisons=tuple(
        [Comparison(m, "objects/s", "gyre", "cpython", "cpython",
                    ">=2" if "live" in m else ">=1.5") for m in _COLLECT_SIZES]
        + [Comparison("gen0_young", "us", "gyre", "cpython", "cpython")]
        + [Comparison(f"{m}_ns_per_object", "ns", "gyre", "cpython", "cpython")
           for m in _COLLECT_SIZES]
        + [Comparison(f"{m}_phase_{p}", "ns", "gyre", "cpython", "cpython",
                      anchor_key=f"{m}_ns_per_object")
           for m in ("collect_live_5M", "collect_garbage_5M") for p in _COLLECT_PHASES]
    ),
    rounds=5,
    targets=("bench_collect_gyre",),
    packages=("python3",),
))


# The server issue's rows: wrk (Debian) on loopback, 64 connections, one
# freshly started server per side and round. Rows without a suffix measure
# gyred's default configuration (threads = 0: one loop per core, gc_mode
# concurrent); _stw the same in gc_mode = stw; _heap3M the default with 3M
# live objects held on demo_leaks' root list before the run; nginx gets
# as many workers (os.cpu_count(), as gyred's sysconf). Every side prints
# rps, p99, p50, rss and rss_peak (MiB, read from /proc just before the stop)
# and socket_errors; gyred's sides also print collections (total and per
# generation, from its summary line): see build/bench/server.rounds.csv.
_SERVER = ("/usr/bin/python3", "{root}/tools/benchmarks/server/server_bench.py")
_GYRED = (*_SERVER, "gyred", "{build}/server/gyred")
register(Benchmark(
    name="server",
    description="gyred under wrk: /tree?depth=8 with cycles left to the collector vs broken "
                "by the handler; / vs nginx; / on 1 loop vs a bare libuv server",
    sides=(
        Side("gyre_tree8", (*_GYRED, "/tree?depth=8", "255\\n")),
        Side("gyre_tree8_stw", (*_GYRED, "/tree?depth=8", "255\\n", "--",
                                "--set", "gc_mode=stw")),
        Side("gyre_tree8_heap3M", (*_SERVER, "--hold", "3000000", "gyred", "{build}/server/gyred",
                                   "/tree?depth=8", "255\\n", "--", "--set", "demo_leaks=on")),
        Side("break_cycles", (*_GYRED, "/tree?depth=8", "255\\n", "--",
                              "--set", "demo_break_cycles=on")),
        Side("gyre_root", (*_GYRED, "/", "hello")),
        Side("nginx", (*_SERVER, "nginx", "/usr/sbin/nginx", "/", "hello")),
        Side("gyre_root_1loop", (*_GYRED, "/", "hello", "--", "--threads", "1")),
        Side("uv_hello", (*_SERVER, "uv_hello", "{build}/tools/benchmarks/bench_uv_hello", "/",
                          "hello")),
    ),
    comparisons=(
        Comparison("rps_tree8", "req/s", "gyre_tree8", "break_cycles", "break_cycles", ">=0.9",
                   gyre_key="rps", anchor_key="rps"),
        Comparison("p99_tree8", "ms", "gyre_tree8", "break_cycles", "break_cycles", "<=1.2",
                   gyre_key="p99", anchor_key="p99"),
        Comparison("rps_tree8_stw", "req/s", "gyre_tree8_stw", "break_cycles", "break_cycles",
                   gyre_key="rps", anchor_key="rps"),
        Comparison("p99_tree8_stw", "ms", "gyre_tree8_stw", "break_cycles", "break_cycles",
                   gyre_key="p99", anchor_key="p99"),
        Comparison("p99_tree8_heap3M", "ms", "gyre_tree8_heap3M", "p99_tree8", "gyre_tree8",
                   "<=1.2", gyre_key="p99", anchor_key="p99"),
        Comparison("rps_tree8_heap3M", "req/s", "gyre_tree8_heap3M", "rps_tree8", "gyre_tree8",
                   ">=0.9", gyre_key="rps", anchor_key="rps"),
        Comparison("rps_root", "req/s", "gyre_root", "nginx", "nginx", ">=0.8",
                   gyre_key="rps", anchor_key="rps"),
        Comparison("rps_root_1loop", "req/s", "gyre_root_1loop", "uv_hello", "uv_hello",
                   ">=0.85", gyre_key="rps", anchor_key="rps"),
    ),
    # 7 rounds of 8 sides, about 55 s a round: wrk and the server share the
    # 2 cores here, so single runs spread widely (+-30%) and the median needs
    # more than the minimum 5.
    rounds=7,
    targets=("gyred", "bench_uv_hello"),
    packages=("wrk", "nginx-light"),
    per_run=("rss", "rss_peak", "collections"),
))


# The reliability issue's memory row: RSS of an idle gyred 30 s after a
# released burst of 1M objects, against its own RSS before the burst (the
# same process, the same run). One fresh gyred per round.
register(Benchmark(
    name="memory",
    description="gyred's RSS 30 s after a released burst of 1M objects vs before the burst",
    sides=(
        Side("gyred", ("/usr/bin/python3", "{root}/tools/benchmarks/memory/memory_bench.py",
                       "{build}/server/gyred")),
    ),
    comparisons=(
        Comparison("rss_after_burst", "MiB", "gyred", "rss_before_burst", "gyred", "<=1.25",
                   anchor_key="rss_before_burst"),
        Comparison("rss_peak", "MiB", "gyred", "rss_before_burst", "gyred",
                   anchor_key="rss_before_burst"),
    ),
    rounds=5,
    targets=("gyred",),
    packages=("python3",),
    per_run=("rss_excess", "retained_after", "heap_after"),
))


# The pause issue's rows (stage 5 of collector/DESIGN.md section 9), per live
# heap size N: two mutators over N tracked objects, the same number of steps
# on every side (tools/benchmarks/pauses/pauses_gyre.c says what each row
# measures). zgc_goal (1000 us) and ideal (1) are the fixed targets,
# printed by the Gyre binary; every other anchor is measured in the same run.
# GY_PAUSES_SIZES (default 100k,1M,10M) and GY_PAUSES_STEPS (steps per size)
# shrink a run for testing; the rows follow the sizes, and the growth row
# puts the largest size against the smallest (10M vs 100k by default).
_PAUSES_SIZES = tuple(s for s in (os.environ.get("GY_PAUSES_SIZES") or "100k,1M,10M").split(",")
                      if s)
_PAUSES_GYRE = ("{build}/tools/benchmarks/bench_pauses_gyre",)


def _pauses_rows() -> tuple:
    rows = []
    for n in _PAUSES_SIZES:
        rows += [
            Comparison(f"collector_pause_max_{n}", "us", "gyre", "zgc_goal", "gyre", "<=1",
                       anchor_key="zgc_goal"),
            Comparison(f"collector_pause_p99_{n}", "us", "gyre", "zgc_goal", "gyre",
                       anchor_key="zgc_goal"),
        ]
        if n == _PAUSES_SIZES[-1] and len(_PAUSES_SIZES) > 1:
            small = _PAUSES_SIZES[0]
            rows.append(Comparison(f"collector_pause_max_{n}", "us", "gyre",
                                   f"collector_pause_max_{small}", "gyre", "<=1.5",
                                   anchor_key=f"collector_pause_max_{small}"))
        rows += [
            Comparison(f"mmu_10ms_{n}", "ratio", "gyre", "ideal", "gyre", ">=0.7",
                       anchor_key="ideal"),
            Comparison(f"step_p999_{n}", "us", "gyre", "break_cycles", "break_cycles", "<=1.5"),
            Comparison(f"garbage_freed_{n}", "objects/s", "gyre", f"garbage_created_{n}", "gyre",
                       ">=0.95", anchor_key=f"garbage_created_{n}"),
            Comparison(f"throughput_{n}", "steps/s", "gyre", "break_cycles", "break_cycles",
                       ">=0.85"),
            Comparison(f"outstanding_garbage_max_{n}", "objects", "gyre", "stw", "stw", "<=2"),
            Comparison(f"stw_pause_max_{n}", "us", "stw", "cpython", "cpython",
                       gyre_key=f"collector_pause_max_{n}"),
        ]
    return tuple(rows)


register(Benchmark(
    name="pauses",
    description="collector pauses, MMU, step latency, garbage rates seen by two mutators over "
                "live heaps of 100k/1M/10M: concurrent vs stw vs cycles broken by hand vs CPython",
    sides=(
        Side("gyre", ("env", "GYRE_GC_MODE=concurrent", *_PAUSES_GYRE, "collector")),
        Side("stw", ("env", "GYRE_GC_MODE=stw", *_PAUSES_GYRE, "collector")),
        Side("break_cycles", ("env", "GYRE_GC_MODE=concurrent", *_PAUSES_GYRE, "break_cycles")),
        # Debian's python3 package (3.11), named explicitly.
        Side("cpython", ("/usr/bin/python3", "{root}/tools/benchmarks/pauses/pauses_cpython.py")),
    ),
    comparisons=_pauses_rows(),
    rounds=5,
    targets=("bench_pauses_gyre",),
    packages=("python3",),
    per_run=tuple(f"{k}_{n}" for n in _PAUSES_SIZES
                  for k in ("full_collections", "collections", "rss")),
))
