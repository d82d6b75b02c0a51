"""Wall time of the README's first command, as a user meets it: ``timetic predict`` in a fresh
process on the example target, with and without the zero-shot pass, and ``timetic report`` for all
three tasks.

Three cache states (``TIMETIC_CACHE_DIR`` pointed at a fresh folder):

* ``cold``: nothing cached, the first predict after installing or after a KB change: fits the
  estimator on the KB and runs every candidate zero-shot;
* ``new data``: the fitted estimator is cached (it depends only on the KB, the parameters and the
  code) but the zero-shot scores are not (a new target): the usual case. The zero-shot cache is
  emptied before each run;
* ``repeat``: the same command again right after ``new data`` (the same target: its zero-shot
  scores are cached too, so no model library should be imported).

Each command runs ``--repeat`` times, interleaved; prints the median and the slowest wall time and
the peak memory (max RSS) of the slowest run. Targets (issue 13), on a quiet 2-core machine: <= 10 s
with the zero-shot pass, <= 3 s weight-free, report <= 60 s.

    python benchmarks/predict_latency.py [--repeat 3] [--target examples/example_target.parquet] [--kb DIR]
                                         [--also-sample-paths 100] [--only zero-shot,weight-free,report]

``--also-sample-paths N`` adds the zero-shot commands with ``--zero-shot-samples N`` (DeepAR's sample
paths per window; the default is 50, the KB's scores used 100), interleaved in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], cache: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of ``python -m timetic.cli ARGS`` in a fresh process."""
    env = {**os.environ, "TIMETIC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "timetic.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"timetic {' '.join(args)} failed: {err.decode(errors='replace')[-800:]}")
    return wall, usage.ru_maxrss / 1024**2  # KB -> GB


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--target", default="examples/example_target.parquet")
    p.add_argument("--kb", default=None)
    p.add_argument("--also-sample-paths", type=int, default=None,
                   help="also time the zero-shot commands with --zero-shot-samples N")
    p.add_argument("--only", default=None,
                   help="comma-separated subset of the commands: zero-shot, weight-free, report (default: all)")
    args = p.parse_args()
    kb = ["--kb", args.kb] if args.kb else []
    commands = {
        "predict (zero-shot)": ["predict", "--target", args.target, "-q", *kb],
        "predict --no-zero-shot": ["predict", "--target", args.target, "--no-zero-shot", "-q", *kb],
        "report --task all": ["report", "--target", args.target, "--task", "all", "-q", *kb,
                              "--out", str(Path(tempfile.gettempdir()) / "timetic_latency_report.md")],
    }
    if args.only and args.also_sample_paths is not None:
        raise SystemExit("--only and --also-sample-paths do not combine; run them separately")
    if args.only:
        keys = {"zero-shot": "predict (zero-shot)", "weight-free": "predict --no-zero-shot", "report": "report --task all"}
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        bad = [w for w in wanted if w not in keys]
        if bad:
            raise SystemExit(f"--only: unknown {', '.join(bad)}; choose from {', '.join(keys)}")
        commands = {keys[w]: commands[keys[w]] for w in wanted}
    if args.also_sample_paths is not None:
        n = ["--zero-shot-samples", str(args.also_sample_paths)]
        commands[f"predict (zs, {args.also_sample_paths} paths)"] = [*commands["predict (zero-shot)"], *n]
        commands[f"report all ({args.also_sample_paths} paths)"] = [*commands["report --task all"], *n]
    root = Path(tempfile.mkdtemp(prefix="timetic-latency-"))
    times: dict[tuple[str, str], list[float]] = {}
    peaks: dict[tuple[str, str], float] = {}
    try:
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                cold = root / "cold"
                shutil.rmtree(cold, ignore_errors=True)
                warm = root / f"warm-{name}"
                if not (warm / "fitted").exists():  # fill the fit cache once, untimed
                    timed(cmd, warm)
                shutil.rmtree(warm / "zero_shot", ignore_errors=True)
                shutil.rmtree(warm / "verify", ignore_errors=True)
                for state, cache in (("cold", cold), ("new data", warm), ("repeat", warm)):
                    wall, peak = timed(cmd, cache)
                    times.setdefault((name, state), []).append(wall)
                    peaks[(name, state)] = max(peaks.get((name, state), 0.0), peak)
                    print(f"{name:<24} {state:<9} {wall:6.2f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    goals = {"predict (zero-shot)": 10.0, "predict --no-zero-shot": 3.0, "report --task all": 60.0}
    goals.update({name: 10.0 if name.startswith("predict") else 60.0 for name in commands if name not in goals})
    print(f"target {args.target}; {args.repeat} runs each, fresh processes, load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(f"{'command':<24}{'cache':<10}{'median s':>9}{'max s':>8}{'peak GB':>9}  target")
    for (name, state), ts in times.items():
        med = statistics.median(ts)
        goal = goals[name]
        print(f"{name:<24}{state:<10}{med:>9.2f}{max(ts):>8.2f}{peaks[(name, state)]:>9.2f}  <= {goal:g} s: "
              f"{'met' if med <= goal else 'NOT met'}")


if __name__ == "__main__":
    main()
