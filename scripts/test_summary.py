#!/usr/bin/env python3
"""Summary of a ctest JUnit file (ctest --output-junit): how many tests ran, passed,
failed and were skipped, with the names of the failed and skipped ones. Called by
.ci/run after each ctest. Exit 1 if any test failed, or if any was skipped while
CI=true (under CI a missing independent reference is a failure, not a skip).
Usage: test_summary.py JUNIT.xml [LABEL]"""
import os
import sys
import xml.etree.ElementTree as ET

path = sys.argv[1]
label = sys.argv[2] if len(sys.argv) > 2 else os.path.basename(path)
try:
    cases = ET.parse(path).getroot().iter("testcase")
except (OSError, ET.ParseError) as e:
    print(f"test summary [{label}]: cannot read {path}: {e}")
    sys.exit(1)
passed, failed, skipped = [], [], []
for c in cases:
    name, status = c.get("name", "?"), c.get("status", "")
    if status == "run":
        passed.append(name)
    elif status == "fail":
        failed.append(name)
    else:  # notrun / disabled: ctest's SKIP_RETURN_CODE, GTEST_SKIP, or a missing executable
        skipped.append(name)
n = len(passed) + len(failed) + len(skipped)
print(f"test summary [{label}]: {n} tests: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
for name in failed:
    print(f"  failed:  {name}")
for name in skipped:
    print(f"  skipped: {name}")
in_ci = os.environ.get("CI", "") in ("true", "1")
if n == 0:
    print(f"test summary [{label}]: no tests ran")
    sys.exit(1)
if skipped and in_ci:
    print(f"test summary [{label}]: CI=true and {len(skipped)} tests were skipped: a skipped test is a failure in CI")
sys.exit(1 if failed or (skipped and in_ci) else 0)
