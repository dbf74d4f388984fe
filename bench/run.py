"""Run every benchmark in bench/ in turn, one at a time, and end with each one's summary line.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...]

A benchmark is a module of this folder with a `main()` and an `if __name__ == "__main__"` guard
(common.py and this file excepted); each runs in a process of its own, so that one's memory and
settings never leak into the next, and gets `--quick` (a smaller size) when given here. Results
are recorded by hand in BENCHMARKS.md with the command that produced them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"common.py", "run.py"}
# run first, in this order; any other benchmark added later runs after them, by name
ORDER = ("assign_points", "import_cases", "tiles", "map_page", "reports")


def benchmarks() -> list[str]:
    """The benchmark modules of this folder, by name."""
    found = sorted(
        p.stem
        for p in HERE.glob("*.py")
        if p.name not in NOT_BENCHMARKS
        and not p.name.startswith("_")
        and '__name__ == "__main__"' in p.read_text(encoding="utf-8")
    )
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def run(name: str, quick: bool) -> tuple[int, str, float]:
    """Run one benchmark, echoing its output; (exit status, its last line, seconds)."""
    cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
    print(f"\n=== {name}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}", flush=True)
    t = time.perf_counter()
    last = ""
    with subprocess.Popen(
        cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last = line.strip()
    return proc.returncode, last, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smaller sizes)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    args = ap.parse_args()
    names = benchmarks()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            ap.error(f"no such benchmark: {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    results = [(name, *run(name, args.quick)) for name in names]
    print("\n=== summary" + (" (--quick)" if args.quick else ""))
    for name, status, last, seconds in results:
        mark = "ok " if status == 0 else f"FAILED (exit {status})"
        print(f"{mark} {name} ({seconds:.0f} s): {last}")
    failed = [name for name, status, *_ in results if status != 0]
    print(
        f"{len(results) - len(failed)} of {len(results)} benchmarks ran cleanly"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
