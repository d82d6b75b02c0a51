"""Choose the fine-tuning learning rate of each model family once, on the zoo's own held-out data.

    python benchmarks/zoo/select_lr.py [--zoo timetic/zoo] [--lrs 1e-5,1e-4,1e-3,3e-3] [--workers 2]
                                       [--out benchmarks/zoo/learning_rates.json]

Recipe v2 fine-tunes every family with its own learning rate (``timetic.recipe.
FAMILY_LEARNING_RATES``). The rates are chosen here, never on an evaluation dataset: the data are
the pretraining corpus' *held-out validation series* (``pretrain.split_corpus``: series no zoo
model was trained on, disjoint from every evaluation dataset), as one target of hourly-stamped
series (the stamps only give the runner a regular grid). Every family's representative model
(the zoo's ``<family>-s``; TTM-R2 from the weights folder for ``ttm``) is fine-tuned with recipe v2
at each candidate rate (validation split and early stopping as in the KB grid) on one task
(:data:`TASK`: horizon 24, context 128, MASE season 1, as the corpus' series have no common
calendar) and scored on the series' final windows. The chosen rate minimises the geometric mean
over windows of the fine-tuned MASE; on a tie within 0.5 % the rate whose run stopped soonest
(the cheaper fine-tuning; a rate still improving at the step cap is not converged), then the
smaller rate.

The result (every rate's score, steps, and the choice) is written to ``--out``; the chosen rates
are then copied into ``FAMILY_LEARNING_RATES`` (a test checks that the two agree).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for p in (HERE, ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

#: the task of the selection runs (corpus series have no common calendar: MASE season 1).
TASK = {"freq": "h", "horizon": 24, "context_length": 128, "seasonality": 1, "name": "custom"}
DEFAULT_LRS = (1e-5, 1e-4, 1e-3, 3e-3)
MAX_EVAL_WINDOWS = 96
MIN_LENGTH = 128 + 3 * 24
OUT = HERE / "learning_rates.json"


def selection_target(seed: int = 0):
    """The held-out corpus series long enough for the task, as one hourly-stamped target."""
    import polars as pl
    from pretrain import load_or_build_corpus, split_corpus

    from timetic.data import load_target

    series, info, _ = load_or_build_corpus(seed)
    _, val_idx = split_corpus(info, seed)
    rows = []
    for i in val_idx:
        s = series[int(i)]
        if len(s) >= MIN_LENGTH:
            rows.append(pl.DataFrame({
                "item_id": [f"{info[int(i)]['group']}-{int(i)}"] * len(s),
                "timestamp": pl.datetime_range(pl.datetime(2000, 1, 1), pl.datetime(2000, 1, 1) + pl.duration(hours=len(s) - 1),
                                               "1h", eager=True),
                "target": s,
            }))
    return load_target(pl.concat(rows), freq="h", name="zoo-corpus-holdout")


def family_models(zoo: Path, weights: Path | None) -> dict[str, tuple[str, str]]:
    """family -> (model folder, adapter)."""
    out = {}
    for fam in ("chronos-bolt", "chronos-2", "timesfm", "patchtst", "deepar", "tide"):
        path = zoo / f"{fam}-s"
        if (path / "card.json").is_file():
            out[fam] = (str(path), fam)
    ttm = (weights or Path()) / "ttm-r2-512-96"
    if weights is not None and (ttm / "model.safetensors").is_file():
        out["ttm"] = (str(ttm), "ttm")
    return out


def run_one(family: str, path: str, adapter: str, lr: float, seed: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    from timetic.adapters import load_model
    from timetic.finetune import run_finetune
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    target = selection_target(seed)
    task = Task(**TASK)
    recipe = dataclasses.replace(Recipe.named("v2"), learning_rates=None, learning_rate=lr, device="cpu")
    t = time.perf_counter()
    res = run_finetune(load_model(path, adapter=adapter), target, task, recipe, max_eval_windows=MAX_EVAL_WINDOWS)
    tab = res.table
    zs = tab.get_column("zs_mase").to_numpy()
    ft = tab.get_column("ft_mase").to_numpy()
    ok = np.isfinite(zs) & np.isfinite(ft) & (zs > 0) & (ft > 0)
    prov = res.provenance
    return {
        "family": family, "lr": lr, "n_windows": int(ok.sum()),
        "gmean_zs_mase": float(np.exp(np.mean(np.log(zs[ok])))),
        "gmean_ft_mase": float(np.exp(np.mean(np.log(ft[ok])))),
        "steps_run": prov.get("steps_run"), "best_step": prov.get("best_step"),
        "seconds": round(time.perf_counter() - t, 1),
    }


def choose(results: list[dict]) -> dict[str, float]:
    best: dict[str, float] = {}
    for fam in sorted({r["family"] for r in results}):
        rs = sorted((r for r in results if r["family"] == fam), key=lambda r: r["lr"])
        top = min(r["gmean_ft_mase"] for r in rs)
        ties = [r for r in rs if r["gmean_ft_mase"] <= top * 1.005]
        best[fam] = min(ties, key=lambda r: (r["steps_run"] or 0, r["lr"]))["lr"]
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=str(ROOT / "timetic" / "zoo"))
    parser.add_argument("--weights", default=None, help="weights folder (default: TIMETIC_WEIGHTS_DIR or ../shared/weights)")
    parser.add_argument("--lrs", default=",".join(f"{x:g}" for x in DEFAULT_LRS))
    parser.add_argument("--families", default=None, help="comma-separated families (default: all found)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in --out and run only the missing (family, rate) pairs")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if args.weights:
        weights = Path(args.weights)
    else:
        try:
            from timetic.adapters.ttm import weights_dir

            weights = weights_dir()
        except ImportError:
            weights = None
    models = family_models(Path(args.zoo), weights)
    if args.families:
        models = {f: m for f, m in models.items() if f in args.families.split(",")}
    lrs = [float(x) for x in args.lrs.split(",")]
    target = selection_target(args.seed)
    print(f"selection target: {len(target.item_ids)} held-out corpus series; families {', '.join(models)}; "
          f"learning rates {lrs}", flush=True)
    results: list[dict] = []
    if args.resume and Path(args.out).is_file():
        results = json.loads(Path(args.out).read_text())["results"]
    done = {(r["family"], r["lr"]) for r in results}
    jobs = [(fam, path, adapter, lr, args.seed) for fam, (path, adapter) in models.items() for lr in lrs
            if (fam, lr) not in done]
    t0 = time.perf_counter()
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max(args.workers, 1), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, *j): j for j in jobs}
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            print(f"{r['family']:<13} lr {r['lr']:<8g} zero-shot {r['gmean_zs_mase']:.4f} fine-tuned "
                  f"{r['gmean_ft_mase']:.4f} steps {r['steps_run']} (best {r['best_step']}) {r['seconds']} s", flush=True)
    chosen = choose(results)
    doc = {"task": TASK, "learning_rates_tried": sorted({r["lr"] for r in results}), "criterion": "geometric mean of fine-tuned MASE",
           "data": "held-out validation series of the zoo's pretraining corpus (pretrain.split_corpus)",
           "zoo": str(args.zoo), "results": sorted(results, key=lambda r: (r["family"], r["lr"])),
           "chosen": chosen, "seconds": round(time.perf_counter() - t0, 1)}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print("chosen:", json.dumps(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
