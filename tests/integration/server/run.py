#!/usr/bin/env python3
"""Run test classes of the test_*.py modules here: run.py GYRED CLASS... (ctest calls it)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if len(sys.argv) > 2 and sys.argv[1].startswith("--gyrectl="):
    os.environ["GYRECTL"] = os.path.abspath(sys.argv.pop(1).split("=", 1)[1])
os.environ["GYRED"] = os.path.abspath(sys.argv[1])

import test_admin  # noqa: E402
import test_faults  # noqa: E402
import test_gyred  # noqa: E402
import test_memory  # noqa: E402

MODULES = (test_admin, test_faults, test_gyred, test_memory)
suite = unittest.TestSuite()
for name in sys.argv[2:]:
    owners = [m for m in MODULES if hasattr(m, name)]
    if len(owners) != 1:
        sys.exit(f"run.py: test class {name} is in {len(owners)} modules")
    suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(getattr(owners[0], name)))
result = unittest.TextTestRunner(verbosity=2).run(suite)
if result.skipped:
    print(f"{len(result.skipped)} skipped", file=sys.stderr)
sys.exit(0 if result.wasSuccessful() and not result.skipped else 1)
