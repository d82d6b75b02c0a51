"""Build (or grow) a knowledge base: every model x dataset x task, fine-tuned with the uniform recipe.

    python benchmarks/build_kb.py [--kb meta_features] [--models zoo,ttm-r2] [--datasets all] [--seed 0]
        [--tasks short,medium,long] [--recipe v2|v1|FILE] [--executor local|ray] [--address ADDR] [--workers 2]
    python benchmarks/build_kb.py --kb my_kb --dataset-files a.parquet,b.csv [--freq F] [--layout auto|long|wide]
        [--item-id-col C] [--timestamp-col C] [--target-col C] [--max-series N] [--max-length N] ...

``--max-series`` / ``--max-length`` cap every dataset, registered or file (the first N series, the
last N points of each). The target options (``--freq``, ``--layout``, ``--item-id-col``,
``--timestamp-col``, ``--target-col``) are ``timetic predict``'s and apply to every file of
``--dataset-files``.

Resumable: models, datasets and (dataset, model, task, recipe) cells already in the KB are skipped,
and each finished cell is written at once (atomic, locked), so an interrupted build continues
where it stopped. Executors: a local process pool (default) or Ray (``--executor ray``; with
``--address`` it joins a cluster, else starts a local instance), so the same grid fans out over
GPU machines; each cell runs on CUDA where the worker has it (``Recipe(device="auto")``).
Workers return observation rows; only the driver writes to the KB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timetic.grid import plan, run_local, run_ray  # noqa: E402
from timetic.errors import TimeticInputError  # noqa: E402
from timetic.recipe import Recipe  # noqa: E402
from timetic.kb import default_kb_path  # noqa: E402

#: the grid's recipe unless --recipe says otherwise (v1: the shipped KB's 40 fixed steps).
DEFAULT_RECIPE = "v2"
#: per-dataset caps that keep the grid inside its CPU budget (recorded in the datasets table).
DEFAULT_MAX_SERIES = 24
DEFAULT_MAX_LENGTH = 20000
DEFAULT_EVAL_WINDOWS = 32
#: KB v1's 14 datasets (``--datasets v1``); KB v2 (the default) uses every registered dataset.
V1_DATASETS = (
    "etth1", "ettm1", "weather", "exchange_rate", "ili", "m4_hourly", "m4_weekly", "nn5",
    "gefcom_load", "nyc_taxi", "bike_sharing", "air_quality", "vic_electricity", "beijing_pm25",
)
#: datasets of the noise-ceiling runs (``--datasets ceiling --tasks short --seed 1``, then 2): eight
#: datasets of different domains and frequencies, all cheap enough to re-run twice.
CEILING_DATASETS = (
    "etth1", "exchange_rate", "ili", "nn5", "nyc_taxi", "air_quality", "us_retail", "co2_fossil",
)


def file_load_options(args: argparse.Namespace) -> dict:
    """The target options given on the command line (those left at their default are left out), as
    :func:`timetic.grid.load_file_target` arguments."""
    given = {"freq": args.freq, "layout": None if args.layout == "auto" else args.layout,
             "item_id": None if args.item_id_col == "item_id" else args.item_id_col,
             "timestamp": None if args.timestamp_col == "timestamp" else args.timestamp_col,
             "target": None if args.target_col == "target" else args.target_col}
    return {k: v for k, v in given.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=default_kb_path(),
                        help="knowledge base folder (default: the shipped one, %(default)s)")
    parser.add_argument("--models", default="zoo,external",
                        help="comma-separated: 'zoo' (every zoo model), 'external' (every published checkpoint "
                             "of timetic.pretrained.EXTERNAL found in the weights folder), or model ids")
    parser.add_argument("--zoo", default="v2",
                        help="zoo generation of 'zoo' models: 'v2' (the retrained zoo of KB v2, default) or 'v1' "
                             "(the shipped zoo of the shipped KB)")
    parser.add_argument("--model-dirs", default=None,
                        help="comma-separated ID=ADAPTER:DIR models to use instead of the zoo")
    parser.add_argument("--datasets", default="all",
                        help="'all' (default: every registered dataset), 'v1' (KB v1's 14), 'ceiling' (the 8 of the noise-ceiling runs) or comma-separated dataset ids")
    parser.add_argument("--dataset-files", default=None,
                        help="comma-separated target files to use instead of the registered datasets")
    parser.add_argument("--tasks", default="short,medium,long")
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    parser.add_argument("--address", default=None, help="Ray cluster address")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipe", default=DEFAULT_RECIPE,
                        help="named recipe (v1, v2) or recipe JSON file; its cells are resumed by recipe hash")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step cap")
    parser.add_argument("--seed", type=int, default=None,
                        help="the recipe's seed (default the recipe's, 0); other seeds measure the noise ceiling")
    parser.add_argument("--max-series", type=int, default=DEFAULT_MAX_SERIES,
                        help=f"keep the first N series of every dataset, registered or file (default {DEFAULT_MAX_SERIES})")
    parser.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH,
                        help=f"keep the last N points of every series (default {DEFAULT_MAX_LENGTH})")
    files = parser.add_argument_group("target options of --dataset-files (as timetic predict's)")
    files.add_argument("--freq", default=None, help="frequency alias (h, 30min, D, W, MS...); inferred if omitted")
    files.add_argument("--layout", choices=["auto", "long", "wide"], default="auto")
    files.add_argument("--item-id-col", default="item_id")
    files.add_argument("--timestamp-col", default="timestamp")
    files.add_argument("--target-col", default="target")
    parser.add_argument("--max-eval-windows", type=int, default=DEFAULT_EVAL_WINDOWS)
    parser.add_argument("--limit", type=int, default=None, help="run at most this many cells (then stop)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    load_options = file_load_options(args)
    if load_options and not args.dataset_files:
        parser.error("--freq, --layout, --item-id-col, --timestamp-col and --target-col apply to --dataset-files only")

    import torch

    torch.set_num_threads(1)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from timetic.kb import KnowledgeBase
    from timetic.record import add_dataset, model_row
    from timetic.adapters import load_model

    recipe = Recipe.load(args.recipe)
    if args.steps is not None:
        recipe = Recipe(**{**asdict(recipe), "steps": args.steps})
    if args.seed is not None:
        recipe = Recipe(**{**asdict(recipe), "seed": args.seed})
    tasks = args.tasks.split(",")
    kb = KnowledgeBase.open_or_create(args.kb)
    t0 = time.perf_counter()

    # models
    have_models = set(kb.models().get_column("model_id").to_list())
    if args.model_dirs:
        entries = []
        for item in args.model_dirs.split(","):
            mid, rest = item.split("=", 1)
            adapter, path = rest.split(":", 1)
            entries.append((mid, adapter, Path(path), str(Path(path).resolve()), {}, {}))
    else:
        from timetic.pretrained import EXTERNAL, available_external, file_sha256
        from timetic.zoo import zoo_models, zoo_path, zoo_revision

        gen = None if args.zoo == "v1" else args.zoo
        prefix = f"{gen}/" if gen else ""
        zoo = {m["model_id"]: m for m in zoo_models(gen)}
        external = available_external()
        wanted: list[str] = []
        for item in args.models.split(","):
            add = list(zoo) if item == "zoo" else list(external) if item == "external" else [item]
            wanted += [m for m in add if m not in wanted]
        entries = []
        for mid in wanted:
            if mid in zoo:
                entries.append((mid, zoo[mid]["adapter"], zoo_path(prefix + mid), f"zoo:{prefix}{mid}",
                                zoo[mid].get("load_kwargs", {}),
                                {**zoo[mid].get("corpus", {}), "revision": zoo_revision(prefix + mid)}))
            elif mid in EXTERNAL:
                if mid not in external:
                    raise SystemExit(f"the weights of {mid} are not in the weights folder; set TIMETIC_WEIGHTS_DIR")
                spec = EXTERNAL[mid]
                sha = file_sha256(external[mid] / spec["file"])
                entries.append((mid, spec["adapter"], external[mid], f"weights:{spec['folder']}", {},
                                {"summary": {"corpus": spec["pretraining_corpus"], "sha256": sha,
                                             "hub_id": spec["hub_id"], "licence": spec["licence"]},
                                 "datasets": spec["pretraining_datasets"], "revision": f"sha256:{sha}"}))
            else:
                raise SystemExit(f"unknown model {mid!r}; zoo: {', '.join(zoo)}; external: {', '.join(EXTERNAL)}")
    models = []
    revisions = dict(kb.models().select("model_id", "revision").iter_rows())
    sources = dict(kb.models().select("model_id", "source").iter_rows())
    for mid, adapter, path, source, load_kwargs, corpus in entries:
        rev = corpus.get("revision", "")
        if mid in have_models and rev and revisions.get(mid) not in (rev, "", None):
            raise SystemExit(f"{mid} in {args.kb} was built from other weights ({revisions[mid][:19]}...) than "
                             f"today's ({rev[:19]}...); use a new --kb folder for the new model")
        # a KB without revisions (KB v1) still names where its weights came from
        if mid in have_models and source.startswith("zoo:") and str(sources.get(mid)).startswith("zoo:") \
                and sources[mid] != source:
            raise SystemExit(f"{mid} in {args.kb} was built from {sources[mid]}, not {source}; pick the same "
                             "weights (e.g. --zoo v1 for KB v1) or use a new --kb folder")
        if mid not in have_models:
            model = load_model(path, adapter=adapter, **load_kwargs)
            row = model_row(model, mid, source, revision=rev,
                            pretraining_corpus=json.dumps(corpus.get("summary", corpus), default=str)[:2000],
                            pretraining_datasets=corpus.get("datasets", []))
            kb.add_models(row)
            print(f"model {mid}: profile {[round(v, 2) for v in row['profile_knn'][0]]}", flush=True)
        models.append({"model": mid, "adapter": adapter, "model_path": str(path), "load_kwargs": load_kwargs})

    # datasets (a dataset already in the KB gets the windows of the requested tasks it lacks)
    have_ds = set(kb.datasets().get_column("dataset_id").to_list())
    have_tasks: dict[str, set[str]] = {}
    for d, t in kb.windows().select("dataset_id", "task").unique().iter_rows():
        have_tasks.setdefault(d, set()).add(t)

    def missing(name: str) -> list[str]:
        return [t for t in tasks if t not in have_tasks.get(name, set())]

    datasets = []
    if args.dataset_files:
        from timetic.grid import load_file_target

        for f in args.dataset_files.split(","):
            name = Path(f).name.split(".")[0]
            entry = {"dataset": name, "dataset_file": f, "max_series": args.max_series,
                     "max_length": args.max_length, "load_options": load_options}
            if name not in have_ds or missing(name):
                target = load_file_target(f, name, max_series=args.max_series, max_length=args.max_length,
                                          **load_options)
                add_dataset(kb, target, name, source=f"{f} (first {args.max_series} series, last {args.max_length} points)",
                            tasks=missing(name))
            datasets.append(entry)
    else:
        from timetic.datasets import DATASETS, load_dataset

        names = {"all": list(DATASETS), "v1": list(V1_DATASETS), "ceiling": list(CEILING_DATASETS)}.get(
            args.datasets) or args.datasets.split(",")
        for name in names:
            spec = DATASETS[name]
            if name not in have_ds or missing(name):
                ts = time.perf_counter()
                target = load_dataset(name, max_series=args.max_series, max_length=args.max_length)
                try:
                    counts = add_dataset(
                        kb, target, name,
                        source=f"{spec.source} (first {args.max_series} series, last {args.max_length} points)",
                        licence=spec.licence, domain=spec.domain, tasks=missing(name),
                    )
                except TimeticInputError as e:  # too short for every task still missing
                    if name not in have_ds:
                        raise
                    print(f"dataset {name}: no new task ({e})", flush=True)
                    counts = {}
                print(f"dataset {name}: {counts} ({time.perf_counter() - ts:.1f} s)", flush=True)
            datasets.append({"dataset": name, "dataset_file": None, "max_series": args.max_series,
                             "max_length": args.max_length})

    cells = plan(kb, datasets, models, tasks, recipe, args.max_eval_windows)
    if args.limit is not None:
        cells = cells[: args.limit]
    print(f"{len(cells)} cells to run ({args.executor}, {args.workers} workers)", flush=True)
    seconds = []
    with Progress(TextColumn("[bold]grid"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[last]}")) as bar:
        task_id = bar.add_task("grid", total=len(cells), last="")

        def on_result(res: dict) -> None:
            kb.add_observations(pl.read_parquet(io.BytesIO(res["rows"])))
            seconds.append(res["seconds"])
            bar.update(task_id, advance=1, last=f"{res['cell']} {res['seconds']:.0f}s")

        if args.executor == "ray":
            run_ray(cells, args.workers, on_result, args.address)
        else:
            run_local(cells, args.workers, on_result)
    wall = time.perf_counter() - t0
    print(f"done: {len(seconds)} cells, wall {wall:.0f} s, mean cell {sum(seconds) / max(len(seconds), 1):.1f} s")
    print(json.dumps(kb.stats(), default=str)[:2000])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
