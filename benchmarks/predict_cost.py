"""Cost curve of `timetic predict`: time and peak memory against the size of the target.

Predict reads a sample of windows (128 by default), so its cost should be bounded by that sample,
not by the target: <= 2 GB peak memory at every size. Generated hourly targets (seeded):

* ``1``, ``100``, ``10000``: that many series of ``--length`` points (1,000 by default);
* ``long``: one series of 1,000,000 points.

Each case runs in a fresh process, twice:

* ``cli``: ``timetic predict --target FILE --quiet --format json`` (what a user runs), wall time
  and peak resident memory of that process (``os.wait4``'s ``ru_maxrss``; this script itself
  stays small, since a child's peak starts from its parent's);
* ``stages``: the same steps through the Python API, timed one by one, with the peak memory
  reached by the end of each (open the KB and fit, load the target, sample the windows, compute
  their features, predict), so a size that breaks the bound shows where.

Weight-free (``--no-zero-shot``) at every size; with the zero-shot pass at the sizes of
``--zero-shot-sizes`` (the models forecast the same 128 windows whatever the target size, so the
small sizes show its cost). The zero-shot cache is off (``TIMETIC_CACHE_DIR=off``): cold cost;
``--cache`` keeps the user's cache. Timings are noisy on a loaded machine; compare within one run.

    python benchmarks/predict_cost.py [--sizes 1,100,10000,long] [--zero-shot-sizes 1,100]
        [--kb meta_features] [--windows 128] [--length 1000] [--no-stages] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the bound of issue 13: peak memory of predict at any target size.
BOUND_MB = 2048
LONG_POINTS = 1_000_000


def make_target(size: str, length: int, path: Path, seed: int = 0) -> tuple[int, int]:
    """Write the generated target ``size`` to ``path`` (parquet); returns (series, points)."""
    import numpy as np
    import polars as pl

    n, L = (1, LONG_POINTS) if size == "long" else (int(size), length)
    rng = np.random.default_rng(seed)
    t = np.arange(L)[None, :]
    amp = rng.uniform(0.2, 2.0, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    walk = np.cumsum(rng.normal(0, 1, (n, L)) * rng.uniform(0.1, 1.0, (n, 1)), axis=1)
    y = 50 + 10 * amp * np.sin(2 * np.pi * t / 24 + phase) + 5 * np.sin(2 * np.pi * t / 168) + walk
    start = np.datetime64("2020-01-01T00:00", "ns")
    stamps = start + np.arange(L).astype("timedelta64[h]").astype("timedelta64[ns]")
    frame = pl.DataFrame({
        "item_id": pl.Series(np.repeat(np.array([f"s{i:05d}" for i in range(n)]), L)),
        "timestamp": pl.Series(np.tile(stamps, n)),
        "target": y.ravel(),
    })
    frame.write_parquet(path)
    return n, n * L


def run_measured(cmd: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MB) of that process, exit status, stdout, stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"seconds": wall, "peak_mb": usage.ru_maxrss / 1024, "rc": proc.returncode,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def child(args: argparse.Namespace) -> None:
    """``--child FILE``: the predict steps one by one; prints one JSON line of stages."""
    stages = []
    t0 = last = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        stages.append({"stage": name, "seconds": round(now - last, 3),
                       "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
        last = now

    stage("start")
    from timetic.characterize import dataset_features
    from timetic.data import load_target
    from timetic.estimate import TimeTic
    from timetic.kb import KnowledgeBase, default_kb_path
    from timetic.tasks import Task
    from timetic.windows import sample_windows

    stage("import")
    est = TimeTic(KnowledgeBase.open(args.kb or default_kb_path()), zero_shot=args.zero_shot, seed=0)
    est.fit()
    stage("fit")
    target = load_target(args.child)
    stage("load target")
    task = Task.preset("short", target.freq)
    windows = sample_windows(target, task, n_windows=args.windows, seed=0)
    stage("windows")
    dataset_features(target, task, windows=windows, seed=0)
    stage("features")
    ranking = est.predict(target, task="short", n_windows=args.windows)
    stage("predict")
    print(json.dumps({"stages": stages, "total": round(time.perf_counter() - t0, 3),
                      "n_windows": len(windows), "best": ranking.get_column("model_id")[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,10000,long", help="Comma-separated: series counts and/or 'long'.")
    parser.add_argument("--zero-shot-sizes", default="1,100", help="Sizes also run with the zero-shot pass.")
    parser.add_argument("--kb", type=Path, default=None, help="Knowledge base (default: the shipped one).")
    parser.add_argument("--windows", type=int, default=128)
    parser.add_argument("--length", type=int, default=1000, help="Points per series of the N-series targets.")
    parser.add_argument("--no-stages", action="store_true", help="Only the CLI runs (no per-stage breakdown).")
    parser.add_argument("--cache", action="store_true", help="Keep the zero-shot cache (default: off, cold cost).")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per run.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--zero-shot", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args)
    if args.make is not None:
        print(json.dumps(make_target(args.make[0], args.length, Path(args.make[1]))))
        return

    env = dict(os.environ)
    if not args.cache:
        env["TIMETIC_CACHE_DIR"] = "off"
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    zs_sizes = {s.strip() for s in args.zero_shot_sizes.split(",") if s.strip()}
    kb_args = ["--kb", str(args.kb)] if args.kb else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="timetic-cost-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"target-{size}.parquet"
            # generated in a child: this process stays small, since a child's peak RSS starts
            # from its parent's (fork), which would inflate every measurement below
            made = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--make", size, str(path),
                                   "--length", str(args.length)], capture_output=True, text=True, check=True)
            n_series, n_points = json.loads(made.stdout)
            mb = path.stat().st_size / 2**20
            print(f"target {size}: {n_series:,} series, {n_points:,} points, parquet {mb:.1f} MB", flush=True)
            for zero_shot in ([False, True] if size in zs_sizes else [False]):
                mode = "zero-shot" if zero_shot else "weight-free"
                cmd = [sys.executable, "-m", "timetic.cli", "predict", "--target", str(path), *kb_args,
                       "--windows", str(args.windows), "--quiet", "--format", "json"]
                cli = run_measured(cmd + ([] if zero_shot else ["--no-zero-shot"]), env, args.timeout)
                row = {"size": size, "series": n_series, "points": n_points, "mode": mode,
                       "cli_seconds": round(cli["seconds"], 2), "cli_peak_mb": round(cli["peak_mb"], 1),
                       "cli_rc": cli["rc"], "cli_stderr": cli["stderr"].strip()[-2000:]}
                if cli["rc"] != 0:
                    print(f"  {mode}: predict failed (exit {cli['rc']}): {cli['stderr'].strip()[-500:]}", flush=True)
                if not args.no_stages:
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), *kb_args,
                           "--windows", str(args.windows)] + (["--zero-shot"] if zero_shot else [])
                    staged = run_measured(cmd, env, args.timeout)
                    if staged["rc"] == 0:
                        row.update(json.loads(staged["stdout"].strip().splitlines()[-1]))
                        row["stages_peak_mb"] = round(staged["peak_mb"], 1)
                    else:
                        row["stages_error"] = staged["stderr"].strip()[-2000:]
                        print(f"  {mode}: staged run failed: {row['stages_error'][-500:]}", flush=True)
                rows.append(row)
                print("  " + describe(row), flush=True)
    print()
    print(table(rows, args.windows))
    over = [r for r in rows if r["cli_peak_mb"] > BOUND_MB or r.get("stages_peak_mb", 0) > BOUND_MB]
    failed = [r for r in rows if r["cli_rc"] != 0]
    print(f"\nbound: peak <= {BOUND_MB} MB at every size: "
          + ("met" if not over else "BROKEN by " + ", ".join(f"{r['size']} ({r['mode']})" for r in over))
          + ("" if not failed else f"; {len(failed)} run(s) failed"))
    noisy = [r for r in rows if r["cli_stderr"]]
    if noisy:
        print("stderr of a --quiet predict was not empty for: "
              + "; ".join(f"{r['size']} ({r['mode']}): {r['cli_stderr'][:200]}" for r in noisy))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


def describe(row: dict) -> str:
    text = f"{row['mode']}: cli {row['cli_seconds']:.1f} s, peak {row['cli_peak_mb']:.0f} MB"
    if "stages" in row:
        text += "; stages " + ", ".join(
            f"{s['stage']} {s['seconds']:.1f} s (peak {s['peak_mb']:.0f} MB)" for s in row["stages"]
            if s["stage"] not in ("start",))
    return text


def table(rows: list[dict], windows: int) -> str:
    head = (f"| target | series | points | mode | predict (CLI) s | peak MB (CLI) | load target s | "
            f"windows s | features s | predict (API) s | peak MB after load / windows / features / predict |")
    lines = [f"predict cost, {windows} windows, short task, one run:", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        st = {s["stage"]: s for s in r.get("stages", [])}
        get = lambda k, f: f"{st[k][f]:.1f}" if k in st else "-"  # noqa: E731
        peaks = " / ".join(f"{st[k]['peak_mb']:.0f}" if k in st else "-"
                           for k in ("load target", "windows", "features", "predict"))
        lines.append(
            f"| {r['size']} | {r['series']:,} | {r['points']:,} | {r['mode']} | {r['cli_seconds']:.1f} | "
            f"{r['cli_peak_mb']:.0f} | {get('load target', 'seconds')} | {get('windows', 'seconds')} | "
            f"{get('features', 'seconds')} | {get('predict', 'seconds')} | {peaks} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
