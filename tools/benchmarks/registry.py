"""Every benchmark of ./tools/bench, registered in one place.

Each entry names its sides (programs that print '@bench KEY VALUE UNIT'
lines; see harness.py), the CMake targets they need, the Debian packages
their anchors need, and the comparisons the issues ask for, with the metric
names and goals exactly as the issues write them. Real benchmarks arrive with
the issues that build what they measure.
"""

from harness import Benchmark

BENCHMARKS: dict = {}


def register(bench: Benchmark) -> Benchmark:
    bench.validate()
    if bench.name in BENCHMARKS:
        raise ValueError(f"benchmark {bench.name} registered twice")
    BENCHMARKS[bench.name] = bench
    return bench
