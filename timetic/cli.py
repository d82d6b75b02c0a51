"""Command-line interface: a thin shell over the Python API.

Every input problem is printed as one ``error: ...`` line and exits with status 2.
"""

from __future__ import annotations

import sys
import warnings
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import click

from timetic.errors import TimeticInputError, TimeticWarning


def _console():
    from rich.console import Console

    return Console(stderr=True)


def friendly(fn: Callable) -> Callable:
    """Turn TimeticInputError into ``error: ...`` + exit 2; print warnings as one line each."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, TimeticWarning):
                click.echo(f"warning: {message}", err=True)

        old = warnings.showwarning
        warnings.showwarning = show
        try:
            return fn(*args, **kwargs)
        except TimeticInputError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        finally:
            warnings.showwarning = old

    return wrapper


def target_options(fn: Callable) -> Callable:
    """Options shared by every command that reads a target file."""
    opts = [
        click.option("--target", "target_path", required=True, type=click.Path(path_type=Path),
                     help="Target file: parquet, CSV or Arrow (long or wide layout)."),
        click.option("--freq", default=None, help="Frequency alias (h, 30min, D, W, MS...); inferred if omitted."),
        click.option("--layout", type=click.Choice(["auto", "long", "wide"]), default="auto", show_default=True),
        click.option("--item-id-col", default="item_id", show_default=True),
        click.option("--timestamp-col", default="timestamp", show_default=True),
        click.option("--target-col", default="target", show_default=True),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _load(target_path, freq, layout, item_id_col, timestamp_col, target_col):
    from timetic.data import load_target

    return load_target(
        target_path, freq=freq, layout=layout, item_id=item_id_col, timestamp=timestamp_col, target=target_col
    )


def _tasks(task: str, freq: str):
    from timetic.tasks import TASK_NAMES, Task

    names = TASK_NAMES if task == "all" else (task,)
    return [Task.preset(n, freq) for n in names]


def progress_bar(description: str, total: int):
    """A rich progress bar on stderr; returns (progress, advance_to) for ``with``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=_console(), transient=False,
    )
    task_id = progress.add_task(description, total=total)
    return progress, (lambda done: progress.update(task_id, completed=done))


@click.group()
@click.version_option(package_name="timetic")
def main() -> None:
    """timetic: which time-series foundation model will do best on your data after fine-tuning."""


@main.command()
@target_options
@click.option("--task", type=click.Choice(["short", "medium", "long", "all"]), default="short", show_default=True)
@click.option("--windows", "n_windows", type=int, default=256, show_default=True, help="Windows per task.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backend", type=click.Choice(["fast", "tsfresh"]), default="fast", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .parquet/.csv/.json.")
@friendly
def features(target_path, freq, layout, item_id_col, timestamp_col, target_col, task, n_windows, seed, backend, out):
    """Sample windows of the target and compute their meta-features."""
    import polars as pl

    from timetic.characterize import dataset_features, feature_columns
    from timetic.io import write_table
    from timetic.windows import sample_windows

    target = _load(target_path, freq, layout, item_id_col, timestamp_col, target_col)
    frames = []
    for t in _tasks(task, target.freq):
        windows = sample_windows(target, t, n_windows=n_windows, seed=seed)
        bar, update = progress_bar(f"features {t.name}", len(windows))
        with bar:
            frames.append(dataset_features(target, t, seed=seed, backend=backend, progress=update, windows=windows))
            update(len(windows))
    df = pl.concat(frames, how="vertical")
    write_table(df, out)
    n_feat = len(feature_columns(df))
    click.echo(
        f"{target.name}: {target.n_series} series, freq {target.freq}; "
        f"{df.height} windows x {n_feat} features -> {out}"
    )


@main.command()
@click.argument("model_source")
@click.option("--adapter", required=True, help="Adapter name (timetic adapters lists them).")
@click.option("--estimator", type=click.Choice(["knn", "renyi"]), default="knn", show_default=True)
@click.option("--length", type=int, default=6, show_default=True, help="Points of the resampled profile.")
@click.option("--max-tokens", type=int, default=10_000, show_default=True)
@click.option("--probe-target", type=click.Path(path_type=Path), default=None,
              help="Probe on this target's windows instead of the synthetic probe corpus.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Save the profile as JSON.")
@friendly
def profile(model_source, adapter, estimator, length, max_tokens, probe_target, seed, out):
    """Entropy profile of a model's layer embeddings (model characterization)."""
    import json

    from timetic.adapters import load_model
    from timetic.io import atomic_path
    from timetic.profile import compute_profile

    if length < 2:
        raise TimeticInputError(f"--length must be at least 2 (got {length}); use e.g. 6")
    model = load_model(model_source, adapter=adapter)
    probe = None
    if probe_target is not None:
        from timetic.data import load_target
        from timetic.probe import probe_from_windows
        from timetic.tasks import Task
        from timetic.windows import sample_windows

        tgt = load_target(probe_target)
        task = Task.preset("short", tgt.freq)
        probe = probe_from_windows(sample_windows(tgt, task, 256, seed=seed).context, n=64, seed=seed)
    bar, update = progress_bar("profile", 1)
    with bar:
        res = compute_profile(
            model, probe, estimator=estimator, length=length, max_tokens=max_tokens, seed=seed,
            progress=lambda done, total: bar.update(bar.task_ids[0], completed=done, total=total),
        )
    record = {"source": str(model_source), **model.info(), **res.to_dict()}
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(record, indent=2))
    click.echo(f"{model_source} ({adapter}, {model.num_parameters:,} parameters, depth {model.depth})")
    click.echo(f"{estimator} entropy profile (L={length}): " + " ".join(f"{v:.3f}" for v in res.profile))
    click.echo("raw per layer: " + " ".join(f"{v:.3f}" for v in res.raw))
    if out is not None:
        click.echo(f"saved -> {out}")


@main.command()
@click.option("--model", "model_source", required=True, help="Model directory or hub id.")
@click.option("--adapter", required=True)
@click.option("--dataset", "dataset_path", required=True, type=click.Path(path_type=Path))
@click.option("--task", type=click.Choice(["short", "medium", "long"]), default="short", show_default=True)
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), default=None,
              help="Recipe JSON (fields of timetic.recipe.Recipe); default: the uniform recipe.")
@click.option("--max-eval-windows", type=int, default=100, show_default=True)
@click.option("--freq", default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Per-window results parquet (default: <dataset>-<model>-<task>.parquet).")
@click.option("--save-model", type=click.Path(path_type=Path), default=None, help="Save the fine-tuned model here.")
@friendly
def finetune(model_source, adapter, dataset_path, task, recipe_path, max_eval_windows, freq, out, save_model):
    """Zero-shot vs fine-tuned scores of one model on one dataset and task."""
    from timetic.adapters import load_model
    from timetic.data import load_target
    from timetic.finetune import run_finetune
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    recipe = Recipe.from_file(recipe_path) if recipe_path else Recipe()
    target = load_target(dataset_path, freq=freq)
    t = Task.preset(task, target.freq)
    model = load_model(model_source, adapter=adapter)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=_console()) as bar:
        ids: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=total)
            bar.update(ids[stage], completed=done, total=total)

        result = run_finetune(model, target, t, recipe, max_eval_windows=max_eval_windows, progress=progress,
                              model_id=str(model_source))
    out = out or Path(f"{target.name}-{Path(str(model_source)).name}-{task}.parquet")
    result.write_parquet(out)
    if save_model is not None:
        result.adapter.save_pretrained(save_model)
    s = result.summary()
    click.echo(
        f"{target.name} / {model_source} / {task} (H={t.horizon}, C={recipe.context_length or t.context_length}): "
        f"{s['n_windows']} windows"
    )
    click.echo(
        f"MASE zero-shot {s['zs_mase']:.4f} -> fine-tuned {s['ft_mase']:.4f} (gain {100 * s['gain_mase']:+.1f}%); "
        f"WQL {s['zs_wql']:.4f} -> {s['ft_wql']:.4f}"
    )
    click.echo(f"fine-tuning {result.provenance['wall_seconds']['finetune']:.1f} s; results -> {out}")


@main.command("adapters")
def adapters_cmd():
    """List the registered model adapters."""
    from timetic.adapters import available_adapters, get_adapter

    for name in available_adapters():
        cls = get_adapter(name)
        click.echo(f"{name}\tsizes: {', '.join(cls.sizes)}")


if __name__ == "__main__":  # pragma: no cover
    main()
