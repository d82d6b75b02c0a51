"""The fine-tuning grid: cells (dataset x model x task) run by a local process pool or by Ray.

Workers load everything themselves and return observation rows (parquet bytes); only the driver
writes to the knowledge base. Lives in the package so that Ray workers (which install timetic)
can import :func:`run_cell`.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict
from typing import Callable, Iterable

from timetic.recipe import Recipe


def cell_id(cell: dict) -> str:
    return f"{cell['dataset']}/{cell['model']}/{cell['task']}"


def run_cell(cell: dict) -> dict:
    """Fine-tune one model on one dataset and task; returns {"cell", "rows" (parquet bytes), "seconds"}.

    Runs in a worker process: loads everything itself, writes nothing.
    """
    import torch

    torch.set_num_threads(int(cell.get("threads", 1)))
    from timetic.adapters import load_model
    from timetic.finetune import run_finetune
    from timetic.record import observation_rows
    from timetic.tasks import Task

    started = time.perf_counter()
    target = load_cell_target(cell)
    task = Task.preset(cell["task"], target.freq)
    model = load_model(cell["model_path"], adapter=cell["adapter"], **cell.get("load_kwargs", {}))
    res = run_finetune(
        model, target, task, Recipe(**cell["recipe"]), max_eval_windows=cell["max_eval_windows"],
        dataset_id=cell["dataset"], model_id=cell["model"],
    )
    buf = io.BytesIO()
    observation_rows(res).write_parquet(buf)
    return {"cell": cell_id(cell), "rows": buf.getvalue(), "seconds": time.perf_counter() - started}


def load_cell_target(cell: dict):
    if cell.get("dataset_file"):
        return load_file_target(cell["dataset_file"], cell["dataset"], max_series=cell.get("max_series"),
                                max_length=cell.get("max_length"), **cell.get("load_options", {}))
    from timetic.datasets import load_dataset

    return load_dataset(cell["dataset"], max_series=cell["max_series"], max_length=cell["max_length"])


#: the :func:`timetic.data.load_target` arguments of a target file (``load_options`` of a cell), named
#: as ``timetic predict``'s target options: ``--freq``, ``--layout``, ``--item-id-col``,
#: ``--timestamp-col``, ``--target-col``.
FILE_LOAD_OPTIONS = ("freq", "layout", "item_id", "timestamp", "target")


def load_file_target(path: str, name: str, max_series: int | None = None, max_length: int | None = None,
                     **load_options):
    """A target file as a grid dataset: :func:`timetic.data.load_target` with ``load_options``
    (:data:`FILE_LOAD_OPTIONS`), then capped like a registered dataset: the first ``max_series``
    series (in item order) and the last ``max_length`` points of each (``None``: no cap)."""
    import polars as pl

    from timetic.data import load_target
    from timetic.errors import TimeticInputError

    unknown = sorted(set(load_options) - set(FILE_LOAD_OPTIONS))
    if unknown:
        raise TimeticInputError(f"unknown target option(s) {', '.join(unknown)}; use {', '.join(FILE_LOAD_OPTIONS)}")
    for arg, v in (("max_series", max_series), ("max_length", max_length)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise TimeticInputError(f"{arg} must be a positive integer, got {v!r}; pass N >= 1 or None")
    target = load_target(path, name=name, **{k: v for k, v in load_options.items() if v is not None})
    frame = target.frame
    if max_series is not None and target.n_series > max_series:
        keep = pl.Series(target.item_ids[:max_series])
        frame = frame.filter(pl.col("item_id").is_in(keep.implode()))
    if max_length is not None and int(target.lengths.max()) > max_length:
        frame = frame.group_by("item_id", maintain_order=True).tail(max_length)
    if frame.height == target.frame.height:
        return target
    return load_target(frame, layout="long", name=name, freq=target.freq)


# ---------------------------------------------------------------------------------------------
# executors


def run_local(cells: list[dict], workers: int, on_result: Callable[[dict], None]) -> None:
    if workers <= 1:
        for cell in cells:
            on_result(run_cell(cell))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_cell, c) for c in cells]
        for f in as_completed(futures):
            on_result(f.result())


def run_ray(cells: list[dict], workers: int, on_result: Callable[[dict], None], address: str | None) -> None:
    import os
    from pathlib import Path

    import ray

    root = str(Path(__file__).resolve().parents[1])
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            env = {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                   "OMP_NUM_THREADS": "1"}
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env})
    try:
        remote = ray.remote(num_cpus=1)(run_cell)
        pending = [remote.remote(c) for c in cells]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            on_result(ray.get(done[0]))
    finally:
        if started_here:
            ray.shutdown()


def plan(kb, datasets: Iterable[dict], models: Iterable[dict], tasks: list[str], recipe: Recipe,
         max_eval_windows: int) -> list[dict]:
    """Cells not yet in the KB (for this recipe), for the tasks each dataset supports."""
    from timetic.kb import recipe_hash

    rh = recipe_hash(recipe.to_json())
    obs = kb.observations(recipe_hash=rh).select("dataset_id", "model_id", "task").unique()
    have = {tuple(r) for r in obs.iter_rows()}
    win = kb.windows().select("dataset_id", "task").unique()
    supported = {tuple(r) for r in win.iter_rows()}
    cells = []
    for d in datasets:
        for task in tasks:
            if (d["dataset"], task) not in supported:
                continue
            for m in models:
                if (d["dataset"], m["model"], task) in have:
                    continue
                cells.append({**d, **m, "task": task, "recipe": asdict(recipe), "max_eval_windows": max_eval_windows})
    # whole (task, dataset) groups in turn, short tasks first: an interrupted build leaves complete
    # rankings (every model on a dataset) rather than scattered cells
    order = {"short": 0, "medium": 1, "long": 2}
    return sorted(cells, key=lambda c: (order.get(c["task"], 3), c["dataset"], c["model"]))
