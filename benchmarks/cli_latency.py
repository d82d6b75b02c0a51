"""Start-up latency of the CLI: ``timetic --help``, ``timetic adapters``, ``import timetic``.

Each command runs ``--repeat`` times in a fresh process; prints the median and the slowest wall
time, and the modules that dominate the import (``python -X importtime``). Target (issue 13): each
command answers in <= 1.5 s on a quiet 2-core machine.

With ``--baseline DIR`` (a folder holding another version of the ``timetic`` package, e.g.
``mkdir /tmp/base && git archive HEAD~1 timetic | tar -x -C /tmp/base``) the same commands also
run against it, interleaved with the current ones, so before/after come from one run.

    python benchmarks/cli_latency.py [--repeat 5] [--baseline /tmp/base]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "timetic --help": ["-c", "import sys; from timetic.cli import main; main(['--help'], prog_name='timetic')"],
    "timetic adapters": ["-c", "import sys; from timetic.cli import main; main(['adapters'], prog_name='timetic')"],
    "import timetic": ["-c", "import timetic"],
}


def run(args: list[str], pythonpath: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    started = time.perf_counter()
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd="/")
    wall = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"{args} failed: {res.stderr[-500:]}")
    return wall, res.stderr


def top_imports(args: list[str], pythonpath: str, k: int = 5) -> str:
    """The packages (root modules, wherever first imported) with the largest cumulative import time,
    and timetic's own cumulative time."""
    _, err = run(["-X", "importtime", *args], pythonpath)
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            name = name.strip()
            if cumulative.strip().isdigit() and "." not in name and not name.startswith("_"):
                rows.append((int(cumulative), name))
    rows.sort(reverse=True)
    return ", ".join(f"{n} {c / 1e6:.2f} s" for c, n in rows[:k] if c >= 1000) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", type=Path, default=None, help="Folder holding a baseline timetic package.")
    args = parser.parse_args()
    versions = {"current": str(ROOT)}
    if args.baseline is not None:
        versions = {"baseline": str(args.baseline.resolve()), **versions}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):  # interleaved: load drifts hit both versions alike
        for label, argv in COMMANDS.items():
            for version, path in versions.items():
                times.setdefault((label, version), []).append(run(argv, path)[0])
    print(f"wall seconds over {args.repeat} runs (median / max), one run:")
    for label, argv in COMMANDS.items():
        parts = []
        for version in versions:
            t = times[(label, version)]
            parts.append(f"{version} {statistics.median(t):.2f} / {max(t):.2f}")
        ratio = ""
        if len(versions) == 2:
            base, cur = (statistics.median(times[(label, v)]) for v in versions)
            ratio = f"  ({base / cur:.1f}x faster)"
        print(f"  {label:<18} " + "   ".join(parts) + ratio)
    print("largest cumulative imports:")
    for label, argv in COMMANDS.items():
        for version, path in versions.items():
            print(f"  {label:<18} {version:<8} {top_imports(argv, path)}")


if __name__ == "__main__":
    main()
