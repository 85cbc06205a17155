"""The reliability figures: every bad input of tests/reliability_cases.py, run and classified.

    python benchmarks/reliability.py [--markdown]

Prints one line per case (entry point, category, outcome, seconds, the message a user sees) and the
totals the issue asks for: inputs tried, clear errors, hangs, tracebacks, data lost.
tests/test_reliability.py asserts the same cases; this script reports them.
"""
from __future__ import annotations

import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reliability_cases import cases, check  # noqa: E402


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases()):
            rows.append(check(case, Path(tmp) / f"case{i}"))
            r = rows[-1]
            print(f"| {r.case} | {r.entry} | {r.category} | {r.status} | {r.seconds:.1f} | "
                  f"{r.message[:110].replace('|', '/')} |", flush=True)
    count = collections.Counter(r.status for r in rows)
    by_entry = collections.Counter(r.entry for r in rows)
    print(f"\ninputs tried {len(rows)} ({by_entry['cli']} CLI, {by_entry['api']} Python API); "
          f"clear errors {count['clear']}; hangs {count['hang']}; tracebacks {count['traceback']}; "
          f"unclear messages {count['unclear message']}; accepted silently {count['no error']}; "
          f"data lost {count['data lost']}")
    return 0 if count["clear"] == len(rows) else 1


if __name__ == "__main__":
    print("| case | entry | category | outcome | s | message |\n|---|---|---|---|---|---|")
    sys.exit(main())
