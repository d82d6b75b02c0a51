"""Build a small but real knowledge base from tiny random-weight models and generated datasets.

Every number in it is measured: tiny models of real architectures are saved, profiled, fine-tuned
for a few steps with the uniform runner and scored on the datasets' evaluation windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from timetic.adapters import get_adapter
from timetic.data import load_target
from timetic.finetune import run_finetune
from timetic.kb import KnowledgeBase
from timetic.recipe import Recipe
from timetic.record import add_dataset, add_observations, model_row
from timetic.tasks import Task

TINY_ADAPTERS = ("chronos-bolt", "patchtst", "timesfm", "deepar")


def synthetic_dataset(kind: int, n_series: int = 5, length: int = 1200, freq: str = "h", seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed + 100 * kind)
    t = np.arange(length, dtype=float)
    frames = []
    for i in range(n_series):
        if kind % 4 == 0:
            y = 10 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, length)
        elif kind % 4 == 1:
            y = np.cumsum(rng.normal(0, 1, length)) + 50
        elif kind % 4 == 2:
            y = 0.02 * t + 2 * np.sin(2 * np.pi * t / 12) + rng.standard_t(3, length)
        else:
            y = rng.poisson(2 + np.sin(2 * np.pi * t / 24), length).astype(float)
        frames.append(pl.DataFrame({
            "item_id": [f"k{kind}_{i}"] * length,
            "timestamp": pd.date_range("2023-01-01", periods=length, freq=freq),
            "target": y * (1 + i),
        }))
    return pl.concat(frames)


def build_tiny_kb(
    path: Path,
    adapters: tuple[str, ...] = TINY_ADAPTERS,
    n_datasets: int = 4,
    tasks: tuple[str, ...] = ("short",),
    steps: int = 4,
    models_dir: Path | None = None,
    max_eval_windows: int = 12,
) -> KnowledgeBase:
    """Datasets ``ds0..``, models ``<adapter>-tiny`` (saved under ``models_dir``), observations
    for every (dataset, model, task)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kb = KnowledgeBase.create(path)
        models_dir = models_dir or path / "models"
        models_dir.mkdir(parents=True, exist_ok=True)
        recipe = Recipe(steps=steps, batch_size=8, learning_rate=1e-3)
        targets = {}
        for k in range(n_datasets):
            tgt = load_target(synthetic_dataset(k), name=f"ds{k}")
            targets[f"ds{k}"] = tgt
            add_dataset(kb, tgt, f"ds{k}", source="generated", tasks=tasks)
        for a in adapters:
            model = get_adapter(a).from_config("tiny", seed=0)
            folder = models_dir / f"{a}-tiny"
            model.save_pretrained(folder)
            rel = folder.relative_to(path) if folder.is_relative_to(path) else folder
            kb.add_models(model_row(model, f"{a}-tiny", str(rel), pretraining_corpus="none (random weights)"))
            for ds, tgt in targets.items():
                for name in tasks:
                    task = Task.preset(name, tgt.freq)
                    res = run_finetune(model, tgt, task, recipe, max_eval_windows=max_eval_windows,
                                       dataset_id=ds, model_id=f"{a}-tiny")
                    add_observations(kb, res)
        return kb
    finally:
        torch.set_num_threads(threads)
