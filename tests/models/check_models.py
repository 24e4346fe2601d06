#!/usr/bin/env python3
"""tests/models/check_models.py: check the Promela models (count protocol, collector).

For every .pml file in this folder (or those named on the command line):
read its first line, which must be `/* spin: ARGS */`, and run
`spin -run ARGS FILE` in a temporary directory (spin writes pan.* there).

- A clean model (no `mutant` in its name) passes when spin reports
  `errors: 0` after a full, exhaustive search.
- A mutant (`NAME_mutant_WHAT.pml`) passes when spin finds a counterexample
  (errors > 0). It must have its clean counterpart NAME.pml beside it and
  differ from it by a small change: at most MAX_DIFF added plus removed lines,
  one of them saying MUTANT.
- Either fails on 'max search depth too small', on a bitstate or hash-compact
  search (only a full state space search counts), on a search that did not
  complete (a clean model), on a timeout, or when spin's summary is missing.
- A model is one self-contained file: an `#include` fails it.

One line per model (name, states stored, pan's search time, wall time with
spin's translation and the compilation of pan.c, verdict), then a closing
line `N passed, N failed`. Exit status 1 when anything failed.
Python 3 standard library only.
"""
import argparse
import concurrent.futures
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_DIFF = 12
HEADER = re.compile(r"^/\*\s*spin:(.*?)\*/\s*$")


def counterpart(path):
    """The clean model a mutant belongs to: NAME_mutant_WHAT.pml -> NAME.pml."""
    base = os.path.basename(path)
    stem = base.split("_mutant_", 1)[0]
    return os.path.join(os.path.dirname(path), stem + ".pml")


def is_mutant(path):
    return "mutant" in os.path.basename(path)


def spin_args(path):
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    m = HEADER.match(first)
    if m is None:
        return None
    return shlex.split(m.group(1))


def check_mutant_shape(path):
    """None when the mutant is its clean model with one small change, else why not."""
    clean = counterpart(path)
    if "_mutant_" not in os.path.basename(path):
        return "a mutant is named NAME_mutant_WHAT.pml"
    if not os.path.exists(clean):
        return "no clean counterpart %s" % os.path.basename(clean)
    with open(clean, encoding="utf-8") as f:
        a = f.read().splitlines()
    with open(path, encoding="utf-8") as f:
        b = f.read().splitlines()
    changed = added_mutant = 0
    for line in difflib.unified_diff(a, b, lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith(("+", "-")):
            changed += 1
            if line.startswith("+") and "MUTANT" in line:
                added_mutant += 1
    if changed == 0:
        return "identical to %s" % os.path.basename(clean)
    if changed > MAX_DIFF:
        return "differs from %s by %d lines (at most %d)" % (
            os.path.basename(clean), changed, MAX_DIFF)
    if added_mutant == 0:
        return "no added line says MUTANT (name the C function whose rule it breaks)"
    return None


def without_unreached(out):
    """spin's output without its lists of unreached statements."""
    kept, skipping = [], False
    for line in out.splitlines():
        if line.startswith("unreached in "):
            skipping = True
        elif skipping and not line.startswith(("\t", " ")):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def run_spin(spin, path, args, timeout):
    """Run spin -run in a scratch directory; returns (output, seconds, timed_out)."""
    work = tempfile.mkdtemp(prefix="gy-model-")
    try:
        local = os.path.join(work, os.path.basename(path))
        shutil.copyfile(path, local)
        t0 = time.monotonic()
        try:
            p = subprocess.run([spin, "-run"] + args + [os.path.basename(local)], cwd=work,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, check=False)
            out = p.stdout.decode("utf-8", "replace")
            timed_out = False
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            timed_out = True
        secs = time.monotonic() - t0
        trail = local + ".trail"
        if not is_mutant(path) and os.path.exists(trail):
            # A clean model failed: replay the counterexample for the log.
            try:
                r = subprocess.run([spin, "-t", "-p", "-g", os.path.basename(local)], cwd=work,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=timeout, check=False)
                lines = r.stdout.decode("utf-8", "replace").splitlines()
                out += "--- counterexample (spin -t -p -g, last 120 lines) ---\n"
                out += "\n".join(lines[-120:]) + "\n"
            except subprocess.TimeoutExpired:
                pass
        return out, secs, timed_out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verdict(path, args, out, timed_out):
    """(ok, states, why) for one spin run."""
    mutant = is_mutant(path)
    m = re.search(r"(\d+) states, stored", out)
    states = int(m.group(1)) if m else None
    if timed_out:
        return False, states, "timed out"
    lossy = ("-DBITSTATE", "-DHC", "-bit", "-hc", "-swarm")
    if any(a.startswith(lossy) for a in args):
        return False, states, "bitstate/hash-compact/swarm arguments: the search must be exhaustive"
    if "Bit statespace search" in out or "Hash-Compact" in out:
        return False, states, "not a full state space search"
    if "max search depth too small" in out:
        return False, states, "max search depth too small (raise -m)"
    if "Full statespace search" not in out:
        return False, states, "no full state space search reported (spin or compiler error?)"
    m = re.search(r"errors: (\d+)", out)
    if m is None:
        return False, states, "no 'errors: N' in spin's output"
    errors = int(m.group(1))
    if mutant:
        if errors == 0:
            return False, states, "spin found no counterexample in a mutant"
        why = re.search(r"^pan:\d+: (.*)$", out, re.M)
        return True, states, "refuted: " + (why.group(1).strip() if why else "%d error(s)" % errors)
    if errors != 0:
        why = re.search(r"^pan:\d+: (.*)$", out, re.M)
        return False, states, "errors: %d%s" % (errors, ": " + why.group(1).strip() if why else "")
    if "Search not completed" in out or "pan: out of memory" in out:
        return False, states, "search not completed"
    return True, states, "verified"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", help="model files (default: every .pml here)")
    ap.add_argument("--spin", default=os.environ.get("GY_SPIN", "spin"))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per model")
    ap.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="models checked at once (default: 2, or 1 on one core)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print spin's output")
    opts = ap.parse_args()

    models = opts.models or sorted(
        os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".pml"))
    passed = failed = 0
    spin = shutil.which(opts.spin) or opts.spin
    if not models:
        print("no .pml models found")
        failed += 1
    elif not opts.models:
        clean = [m for m in models if not is_mutant(m)]
        mutants = [m for m in models if is_mutant(m)]
        if not clean or len(mutants) < 2:
            print("need at least one clean model and two mutants: %d clean, %d mutants"
                  % (len(clean), len(mutants)))
            failed += 1
    t_all = time.monotonic()

    def one(path):
        """(ok, line, spin output or None) for one model."""
        name = os.path.basename(path)
        args = spin_args(path)
        if args is None:
            return False, "%-58s  FAIL: first line is not /* spin: ARGS */" % name, None
        with open(path, encoding="utf-8") as f:
            if any(re.match(r"\s*#\s*include\b", line) for line in f):
                return False, "%-58s  FAIL: #include: a model is one self-contained file" % name, None
        if is_mutant(path):
            why = check_mutant_shape(path)
            if why is not None:
                return False, "%-58s  FAIL: %s" % (name, why), None
        out, secs, timed_out = run_spin(spin, path, args, opts.timeout)
        ok, states, why = verdict(path, args, out, timed_out)
        m = re.search(r"pan: elapsed time ([0-9.e+-]+) seconds", out)
        search = "%.2fs" % float(m.group(1)) if m else "-"
        line = "%-58s %8s states  search %6s  total %5.1fs  %s: %s" % (
            name, states if states is not None else "-", search, secs, "ok" if ok else "FAIL", why)
        return ok, line, out

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        for ok, line, out in pool.map(one, models):
            if out is not None and (opts.verbose or not ok):
                sys.stdout.write(out if opts.verbose else without_unreached(out))
            print(line)
            sys.stdout.flush()
            if ok:
                passed += 1
            else:
                failed += 1
    print("total %.1fs" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
