"""Command-line interface: a thin shell over the Python API.

Every input problem is printed as one ``error: ...`` line and exits with status 2. Any other
exception is caught once, at the top (:class:`GuardedGroup`), and printed as one line
``error: <type>: <message> (run with --debug for the traceback)`` with exit status 1; with
``timetic --debug`` (or ``TIMETIC_DEBUG=1``) it propagates with its full traceback.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from timetic.errors import TimeticInputError, TimeticWarning


def _console():
    from rich.console import Console

    return Console(stderr=True)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GuardedGroup(click.Group):
    """The root group: turns any unexpected exception of a (sub)command into one line.

    ``TimeticInputError`` (raised outside a :func:`friendly` command) -> ``error: ...``, exit 2;
    click's own exceptions and exits pass through (usage errors keep exit 2); anything else ->
    ``error: <type>: <message> (run with --debug for the traceback)``, exit 1, unless the
    ``--debug`` option is set, in which case it is re-raised with its traceback.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Usage errors (unknown option, bad value) as one line too: ``error: ...; see `timetic CMD
        --help```, exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else (prog_name or "timetic")
            click.echo(f"error: {e.format_message().rstrip('.')}; see `{where} --help`", err=True)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except TimeticInputError as e:
            click.echo(f"error: {one_line(e, limit=2000)}", err=True)
            ctx.exit(2)
        except BrokenPipeError:  # `timetic ... | head`: the reader left; say nothing more
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except Exception as e:
            if ctx.params.get("debug"):
                raise
            message = one_line(e) or "(no message)"
            click.echo(f"error: {type(e).__name__}: {message} (run with --debug for the traceback)", err=True)
            ctx.exit(1)


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


def zero_shot_options(fn: Callable) -> Callable:
    """predict's and report's options of the zero-shot pass and the learning-curve probe."""
    fn = click.option("--probe-steps", type=int, default=None,
                      help="Opt-in learning-curve probe: fine-tune every candidate for the KB recipe's first K "
                           "steps on the target and use its early validation curve (K: a multiple of the "
                           "recipe's eval_every, e.g. 25; costs minutes, see benchmarks/probe.py).")(fn)
    fn = click.option("--zero-shot-samples", "zero_shot_sample_paths", type=int, default=50, show_default=True,
                      help="Sample paths per window for models that sample their forecasts (DeepAR) in the "
                           "zero-shot pass; the KB used 100, which doubles their cost.")(fn)
    return click.option("--zero-shot-windows", type=int, default=32, show_default=True,
                        help="How many of the sampled windows every candidate forecasts zero-shot (the KB "
                             "scores at most 32 per cell; more costs proportionally more).")(fn)


def _check_out(*paths: Path | None) -> None:
    """Fail at once (not after the work) on an output path that cannot be written as a file."""
    from timetic.io import check_output_path

    for p in paths:
        if p is not None:
            check_output_path(p)


def _load(target_path, freq, layout, item_id_col, timestamp_col, target_col):
    from timetic.data import load_target

    return load_target(
        target_path, freq=freq, layout=layout, item_id=item_id_col, timestamp=timestamp_col, target=target_col
    )


def _tasks(task: str, freq: str):
    from timetic.tasks import TASK_NAMES, Task

    names = TASK_NAMES if task == "all" else (task,)
    return [Task.preset(n, freq) for n in names]


def show_progress(quiet: bool = False) -> bool:
    """Progress goes to stderr unless ``--quiet``, and only when stderr is a terminal (a pipe, a
    file or a CI log gets none; ``TTY_COMPATIBLE=0`` turns it off too)."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return not quiet and tty and _console().is_terminal


def progress_bar(description: str, total: int):
    """A rich progress bar on stderr (off when stderr is not a terminal); returns (progress,
    advance_to) for ``with``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=_console(), transient=False, disable=not show_progress(),
    )
    task_id = progress.add_task(description, total=total)
    return progress, (lambda done: progress.update(task_id, completed=done))


#: labels of the stages that :meth:`timetic.estimate.TimeTic.predict` reports to its ``progress``.
STAGE_LABELS = {"zero-shot": "zero-shot forecasts, models done"}


class Steps:
    """Progress on stderr for the long commands (predict, report): a spinner with the elapsed time
    for each step (:meth:`step`), and a bar for each stage reported through the estimator's
    ``progress(stage, k, n)`` callback (the instance is that callback). Transient: it disappears
    when done, leaving only the answer. With ``enabled=False`` it shows nothing and costs nothing.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> "Steps":
        if self.enabled:
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
            )
            from rich.text import Text

            class Bar(BarColumn):  # a step without a count (total None) shows no bar
                def render(self, task):
                    return Text("") if task.total is None else super().render(task)

            class Count(MofNCompleteColumn):
                def render(self, task):
                    return Text("") if task.total is None else super().render(task)

            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), Bar(bar_width=30), Count(),
                TimeElapsedColumn(), console=_console(), transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """A spinner (and elapsed time) while the block runs."""
        if self._progress is None:
            yield
            return
        task_id = self._progress.add_task(description, total=None)
        try:
            yield
        finally:
            self._progress.remove_task(task_id)

    def __call__(self, stage: str, k: int, n: int) -> None:
        """``progress(stage, k, n)``: ``k`` of ``n`` done in ``stage``; a stage that starts again
        (the next task of ``--task all``) restarts its bar."""
        if self._progress is None:
            return
        task_id, last = self._bars.get(stage, (None, 0))
        if task_id is None:
            task_id = self._progress.add_task(STAGE_LABELS.get(stage, stage), total=n)
        elif k < last:
            self._progress.reset(task_id, total=n)
        self._bars[stage] = (task_id, k)
        self._progress.update(task_id, completed=k, total=n)


@click.group(cls=GuardedGroup)
@click.version_option(package_name="timetic")
@click.option("--debug", is_flag=True, envvar="TIMETIC_DEBUG",
              help="Show the full traceback of an unexpected error (also TIMETIC_DEBUG=1).")
def main(debug: bool) -> None:
    """timetic: which time-series foundation model will do best on your data after fine-tuning."""


@main.command()
@target_options
@click.option("--task", type=click.Choice(["short", "medium", "long", "all"]), default="short", show_default=True)
@click.option("--windows", "n_windows", type=int, default=256, show_default=True, help="Windows per task.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--backend", type=click.Choice(["fast", "tsfresh"]), default="fast", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .parquet/.csv/.json.")
@friendly
def features(target_path, freq, layout, item_id_col, timestamp_col, target_col, task, n_windows, seed, backend, out):
    """Sample windows of the target and compute their meta-features."""
    import polars as pl

    from timetic.characterize import dataset_features, feature_columns
    from timetic.io import write_table
    from timetic.windows import sample_windows

    _check_out(out)
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
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
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
    _check_out(out)
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
@click.option("--recipe", "recipe_path", default="kb", show_default=True,
              help="kb: the knowledge base's own recipe (its observations' most frequent one; the --kb "
                   "KB when it has observations, else the default KB), so the results compare with it; "
                   "or a named recipe (v1: the shipped KB's 40 fixed steps; v2: validation + early "
                   "stopping, at most 400 steps) or a recipe JSON file (fields of timetic.recipe.Recipe).")
@click.option("--max-eval-windows", type=int, default=100, show_default=True)
@click.option("--freq", default=None, help="Frequency alias (h, 30min, D, W, MS...); inferred if omitted.")
@click.option("--layout", type=click.Choice(["auto", "long", "wide"]), default="auto", show_default=True)
@click.option("--item-id-col", default="item_id", show_default=True)
@click.option("--timestamp-col", default="timestamp", show_default=True)
@click.option("--target-col", default="target", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Per-window results parquet (default: <dataset>-<model>-<task>.parquet).")
@click.option("--save-model", type=click.Path(path_type=Path), default=None, help="Save the fine-tuned model here.")
@click.option("--kb", "kb_path", type=click.Path(path_type=Path), default=None,
              help="Also record the results (and the dataset's windows if new) in this knowledge base.")
@click.option("--dataset-id", default=None, help="Dataset id in the KB (default: file stem).")
@click.option("--model-id", default=None, help="Model id in the KB (default: the model folder's name).")
@friendly
def finetune(model_source, adapter, dataset_path, task, recipe_path, max_eval_windows, freq, layout, item_id_col,
             timestamp_col, target_col, out, save_model, kb_path, dataset_id, model_id):
    """Zero-shot vs fine-tuned scores of one model on one dataset and task."""
    import polars as pl

    from timetic.adapters import load_model
    from timetic.finetune import run_finetune
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    _check_out(out)
    recipe = _kb_recipe(kb_path) if recipe_path == "kb" else Recipe.load(recipe_path)
    target = _load(dataset_path, freq, layout, item_id_col, timestamp_col, target_col)
    t = Task.preset(task, target.freq)
    model = load_model(model_source, adapter=adapter)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=_console(), disable=not show_progress()) as bar:
        ids: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=total)
            bar.update(ids[stage], completed=done, total=total)

        model_id = model_id or (Path(str(model_source)).name if kb_path else str(model_source))
        result = run_finetune(model, target, t, recipe, max_eval_windows=max_eval_windows, progress=progress,
                              model_id=model_id, dataset_id=dataset_id or target.name)
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
    p = result.provenance
    click.echo(
        f"recipe {p['recipe_name']} ({p['recipe_hash']}): {p['steps_run']} of {p['max_steps']} steps, "
        f"kept step {p['best_step']}" + (" (stopped early)" if p["stopped_early"] else "")
        + f"; validation: {p['validation']} ({p['n_val_windows']} windows)"
    )
    click.echo(f"fine-tuning {p['wall_seconds']['finetune']:.1f} s; results -> {out}")
    if kb_path is not None:
        from timetic.kb import KnowledgeBase
        from timetic.record import add_dataset, add_observations, model_row

        with _writing_kb(kb_path) as kb:
            ds = dataset_id or target.name
            if kb.windows(dataset_id=ds, task=task).height == 0:
                add_dataset(kb, target, ds, source=str(dataset_path), tasks=[task])
            if kb.models().filter(pl.col("model_id") == model_id).height == 0:
                kb.add_models(model_row(model, model_id, str(model_source)))
            n = add_observations(kb, result)
        click.echo(f"recorded {n} new observations in {kb_path}")


def _kb_recipe(kb_path):
    """``finetune --recipe kb``: the primary recipe of ``kb_path`` when that KB has observations,
    else of the default KB; :data:`timetic.recipe.DEFAULT_RECIPE` when neither has any."""
    from timetic.kb import KB_FILE, KnowledgeBase, default_kb_path
    from timetic.recipe import DEFAULT_RECIPE, Recipe

    if kb_path is not None and (Path(kb_path) / KB_FILE).exists():
        recipe = Recipe.from_kb(KnowledgeBase.open(kb_path))
        if recipe is not None:
            return recipe
    try:
        default = default_kb_path()
    except TimeticInputError:
        return Recipe.named(DEFAULT_RECIPE)
    recipe = Recipe.from_kb(KnowledgeBase.open(default)) if (default / KB_FILE).exists() else None
    return recipe if recipe is not None else Recipe.named(DEFAULT_RECIPE)


# ---------------------------------------------------------------------------------------------
# knowledge base


@contextlib.contextmanager
def _writing_kb(kb_path):
    """The KB folder ``kb_path`` opened for writing, created if missing; when the command then
    fails, a KB it created is removed again (nothing half-written). A folder that holds other
    files but no KB is refused rather than turned into one."""
    import shutil

    from timetic.kb import KB_FILE, KnowledgeBase

    path = Path(kb_path)
    existed = (path / KB_FILE).is_file()
    new_dir = not path.exists()
    if not existed and path.is_dir() and any(path.iterdir()):
        raise TimeticInputError(f"{path} is not a timetic knowledge base (no {KB_FILE}) and not empty; "
                                "pass a new or empty folder, or a KB made by `timetic kb init`")
    kb = KnowledgeBase.open_or_create(path)
    try:
        yield kb
    except BaseException:
        if not existed:
            if new_dir:
                shutil.rmtree(path, ignore_errors=True)
            else:  # it was empty
                for child in path.iterdir():
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise


def _out_format(fmt: str | None, out: Path | None) -> str:
    """--format, or the one --out's suffix names (.json, .csv); a contradiction is an error."""
    suffix = {".json": "json", ".csv": "csv"}.get(Path(out).suffix.lower()) if out is not None else None
    if fmt is None:
        return suffix or "table"
    if suffix is not None and fmt != suffix and not (fmt == "table" and suffix == "csv"):
        raise TimeticInputError(f"--out {out} ends in .{suffix} but --format is {fmt}; drop --format "
                                f"(the suffix decides) or name the file .{'csv' if fmt == 'table' else fmt}")
    return fmt


def _open_kb(kb_path, create: bool = False):
    """The KB to read (a user KB with the KBs it layers over, :mod:`timetic.layers`), or with
    ``create`` the one folder to write (created if missing)."""
    from timetic.kb import KnowledgeBase, default_kb_path

    if kb_path is None:
        if create:
            raise TimeticInputError("no knowledge base given; pass --kb DIR (it is created if missing)")
        kb_path = default_kb_path()
    if create:
        return KnowledgeBase.open_or_create(kb_path)
    from timetic.layers import open_kb

    return open_kb(kb_path)


kb_option = click.option("--kb", "kb_path", type=click.Path(path_type=Path), default=None,
                         help="Knowledge base folder (default: the shipped one, or TIMETIC_KB); a user KB "
                              "(made by verify --kb-out) is read with the KB it layers over.")


@main.group()
def kb():
    """Inspect and combine knowledge bases."""


@kb.command("init")
@click.argument("path", type=click.Path(path_type=Path))
@friendly
def kb_init(path):
    """Create an empty knowledge base at PATH."""
    from timetic.kb import KnowledgeBase

    KnowledgeBase.create(path)
    click.echo(f"created knowledge base {path}")


@kb.command("show")
@kb_option
@click.option("--table", type=click.Choice(["datasets", "models", "observations", "windows"]), default=None)
@click.option("--rows", type=int, default=20, show_default=True)
@friendly
def kb_show(kb_path, table, rows):
    """Print the datasets and models (or one table) of a knowledge base."""
    import polars as pl

    k = _open_kb(kb_path)
    tables = [table] if table else ["datasets", "models"]
    compact = {
        "datasets": ["dataset_id", "freq", "n_series", "total_length", "domain", "licence", "source"],
        "models": ["model_id", "adapter", "num_parameters", "depth", "profile_knn", "pretraining_corpus"],
    }
    with pl.Config(tbl_rows=rows, tbl_cols=14, fmt_str_lengths=40, tbl_width_chars=220,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        for name in tables:
            df = getattr(k, name)()
            if name == "models":
                df = df.with_columns(pl.col("profile_knn").list.eval(pl.element().round(2)))
            if table is None:
                df = df.select([c for c in compact[name] if c in df.columns])
            shown = min(rows, df.height)
            click.echo(f"{name} ({df.height} rows" + (f", the first {shown} shown; --rows N for more)" if shown < df.height
                                                     else ")"))
            click.echo(str(df.head(rows)))


@kb.command("stats")
@kb_option
@friendly
def kb_stats(kb_path):
    """Counts of datasets, models, windows, observations and cells."""
    import json

    click.echo(json.dumps(_open_kb(kb_path).stats(), indent=2, default=str))


@kb.command("export")
@kb_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder, or a file for one table.")
@click.option("--table", type=click.Choice(["datasets", "models", "observations", "windows"]), default=None)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default="csv", show_default=True)
@friendly
def kb_export(kb_path, out, table, fmt):
    """Export tables to CSV, parquet or JSON."""
    _open_kb(kb_path).export(out, table=table, format=fmt)
    click.echo(f"exported -> {out}")


@kb.command("merge")
@click.argument("other", type=click.Path(path_type=Path))
@click.option("--kb", "kb_path", type=click.Path(path_type=Path), required=True, help="The KB merged into.")
@friendly
def kb_merge(other, kb_path):
    """Merge the knowledge base OTHER into --kb (keyed dedupe, newest wins)."""
    from timetic.kb import KnowledgeBase

    other_kb = KnowledgeBase.open(other)
    if kb_path is None:
        raise TimeticInputError("no knowledge base given; pass --kb DIR (it is created if missing)")
    with _writing_kb(kb_path) as target_kb:
        added = target_kb.merge(other_kb)
    click.echo("merged: " + ", ".join(f"{k} +{v}" for k, v in added.items()))


@kb.command("check")
@kb_option
@click.option("--repair", is_flag=True, help="Fix what is safe to fix: leftovers of dead writers, duplicate keys, "
              "orphan windows, datasets without windows (observations are never dropped).")
@friendly
def kb_check(kb_path, repair):
    """Report inconsistencies of a knowledge base, one per line; exit 1 if any remain."""
    from timetic.kb import KnowledgeBase, default_kb_path

    problems = KnowledgeBase.open(kb_path or default_kb_path(), clean=False).check(repair=repair)
    for problem in problems:
        click.echo(str(problem))
    if not problems:
        click.echo(f"{kb_path or default_kb_path()}: consistent")
    if any(not problem.fixed for problem in problems):
        sys.exit(1)


@main.command("add-dataset")
@target_options
@click.option("--kb", "kb_path", type=click.Path(path_type=Path), required=True)
@click.option("--id", "dataset_id", default=None, help="Dataset id (default: file stem).")
@click.option("--source", default="", help="Where the data comes from (URL, repo@commit:path).")
@click.option("--licence", default="")
@click.option("--domain", default="")
@click.option("--task", type=click.Choice(["short", "medium", "long", "all"]), default="all", show_default=True)
@click.option("--backend", type=click.Choice(["fast", "tsfresh"]), default="fast", show_default=True)
@friendly
def add_dataset_cmd(target_path, freq, layout, item_id_col, timestamp_col, target_col, kb_path, dataset_id,
                    source, licence, domain, task, backend):
    """Register a dataset and the meta-features of its evaluation windows."""
    from timetic.record import add_dataset
    from timetic.tasks import TASK_NAMES

    target = _load(target_path, freq, layout, item_id_col, timestamp_col, target_col)
    tasks = TASK_NAMES if task == "all" else (task,)
    with _writing_kb(kb_path) as kb:
        known = (dataset_id or target.name) in kb.datasets().get_column("dataset_id").to_list()
        counts = add_dataset(kb, target, dataset_id, source=source or ("" if known else str(target_path)),
                             licence=licence, domain=domain, tasks=tasks, backend=backend)
    click.echo(f"{dataset_id or target.name}: " + ", ".join(f"{k} {v} window{'s' * (v != 1)}" for k, v in counts.items()))


@main.command("add-model")
@click.argument("source")
@click.option("--adapter", required=True)
@click.option("--kb", "kb_path", type=click.Path(path_type=Path), required=True)
@click.option("--id", "model_id", default=None, help="Model id (default: folder name).")
@click.option("--revision", default="")
@click.option("--pretraining-corpus", default="", help="Notes on the pretraining data.")
@click.option("--pretraining-datasets", default="", help="Comma-separated dataset ids seen in pretraining.")
@click.option("--length", type=int, default=6, show_default=True)
@friendly
def add_model_cmd(source, adapter, kb_path, model_id, revision, pretraining_corpus, pretraining_datasets, length):
    """Register a model: load it and store its entropy profiles."""
    from timetic.kb import KB_FILE
    from timetic.record import add_model, check_new_model

    if (Path(kb_path) / KB_FILE).is_file():  # a user KB: its id must not shadow another layer's model
        check_new_model(_open_kb(kb_path).models(), model_id or Path(str(source)).name, adapter, str(source))
    with _writing_kb(kb_path) as kb:
        row = add_model(kb, source, adapter, model_id, revision=revision,
                        pretraining_corpus=pretraining_corpus,
                        pretraining_datasets=[d for d in pretraining_datasets.split(",") if d], length=length)
    click.echo(f"{row['model_id'][0]}: {row['num_parameters'][0]:,} parameters, depth {row['depth'][0]}, "
               f"profile " + " ".join(f"{v:.2f}" for v in row["profile_knn"][0]))


@main.command("add-observation")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--kb", "kb_path", type=click.Path(path_type=Path), required=True)
@friendly
def add_observation_cmd(results, kb_path):
    """Store a fine-tuning results parquet (from `timetic finetune`)."""
    from timetic.finetune import FinetuneResult
    from timetic.record import add_observations

    result = FinetuneResult.read_parquet(results)  # before the KB is opened (or created)
    with _writing_kb(kb_path) as kb:
        n = add_observations(kb, result)
    click.echo(f"recorded {n} new observations in {kb_path}")


# ---------------------------------------------------------------------------------------------
# predict


@main.command()
@target_options
@click.option("--task", type=click.Choice(["short", "medium", "long", "all"]), default="short", show_default=True)
@click.option("--models", default=None, help="Comma-separated candidate model ids (default: all in the KB).")
@kb_option
@click.option("--method", type=click.Choice(["stack", "window"]), default=None,
              help="Formulation (default: stack; window when --learner is given). See the README.")
@click.option("--learner", type=click.Choice(["gp", "hgb", "tabpfn", "tabicl"]), default=None,
              help="The window formulation's tabular learner (implies --method window; default there: "
                   "tabpfn when TIMETIC_TABPFN_MODEL is set, else gp).")
@click.option("--windows", "n_windows", type=int, default=128, show_default=True)
@zero_shot_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default=None,
              help="Output format (default: json or csv when --out ends in .json / .csv, else table).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the ranking to a file (csv with the table format).")
@click.option("--no-zero-shot", is_flag=True, help="Rank from characteristics alone (no model weights needed).")
@click.option("--explain/--no-explain", default=True, show_default=True,
              help="Show the nearest source datasets for the top models (table format).")
@click.option("--quiet", "-q", is_flag=True,
              help="Nothing on stderr but warnings and errors: no progress (also off when stderr is "
                   "not a terminal), no 'written to' line.")
@friendly
def predict(target_path, freq, layout, item_id_col, timestamp_col, target_col, task, models, kb_path, method,
            learner, n_windows, zero_shot_windows, zero_shot_sample_paths, probe_steps, seed, fmt, out, no_zero_shot,
            explain, quiet):
    """Rank the knowledge base's models for a target by predicted fine-tuned MASE."""
    import time

    started = time.perf_counter()
    _check_out(out)
    fmt = _out_format(fmt, out)
    with Steps(show_progress(quiet)) as steps:
        with steps.step("loading"):
            from timetic.report import ranking_json, render_table
        est, k, target, res = _rank(steps, target_path, freq, layout, item_id_col, timestamp_col, target_col,
                                    task, models, kb_path, method, learner, n_windows, seed, no_zero_shot,
                                    zero_shot_windows, probe_steps, zero_shot_sample_paths)
    ranking, explanations = res["ranking"], res["explanations"]
    elapsed = time.perf_counter() - started
    info = {**_estimator_info(est, target, k, seed, no_zero_shot, _tasks_of(ranking)), "seconds": round(elapsed, 2)}
    if fmt == "table":
        text = None
        render_table(ranking, explanations if explain else None, info)
    elif fmt == "json":
        text = ranking_json(ranking, info)
    else:
        text = ranking.write_csv()
    if out is not None:
        from timetic.io import atomic_path

        with atomic_path(out) as tmp:
            tmp.write_text(text if text is not None else ranking.write_csv())
        if not quiet:
            click.echo(f"ranking -> {out}", err=True)
    elif text is not None:
        click.echo(text, nl=not text.endswith("\n"))


@main.command()
@target_options
@click.option("--task", type=click.Choice(["short", "medium", "long", "all"]), default="all", show_default=True)
@click.option("--models", default=None, help="Comma-separated candidate model ids (default: all in the KB).")
@kb_option
@click.option("--method", type=click.Choice(["stack", "window"]), default=None,
              help="Formulation (default: stack; window when --learner is given).")
@click.option("--learner", type=click.Choice(["gp", "hgb", "tabpfn", "tabicl"]), default=None,
              help="The window formulation's tabular learner (implies --method window).")
@click.option("--windows", "n_windows", type=int, default=128, show_default=True)
@zero_shot_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--no-zero-shot", is_flag=True, help="Rank from characteristics alone (no model weights needed).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The HTML file to write.")
@click.option("--quiet", "-q", is_flag=True,
              help="Nothing on stderr but warnings and errors: no progress (also off when stderr is "
                   "not a terminal), no 'written to' line.")
@friendly
def report(target_path, freq, layout, item_id_col, timestamp_col, target_col, task, models, kb_path, method, learner,
           n_windows, zero_shot_windows, zero_shot_sample_paths, probe_steps, seed, no_zero_shot, out, quiet):
    """Write a self-contained HTML report (ranking, intervals, gains, nearest sources, features, plots)."""
    import time

    from timetic.io import atomic_path

    started = time.perf_counter()
    _check_out(out)
    with Steps(show_progress(quiet)) as steps:
        with steps.step("loading"):
            from timetic.report import html_report
        with warnings.catch_warnings(record=True) as caught:  # shown as usual, and in the report
            warnings.simplefilter("default")
            est, k, target, res = _rank(steps, target_path, freq, layout, item_id_col, timestamp_col, target_col,
                                        task, models, kb_path, method, learner, n_windows, seed, no_zero_shot,
                                        zero_shot_windows, probe_steps, zero_shot_sample_paths)
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        info = {**_estimator_info(est, target, k, seed, no_zero_shot, _tasks_of(res["ranking"])),
                "seconds": time.perf_counter() - started,
                "warnings": [str(w.message) for w in caught if issubclass(w.category, TimeticWarning)]}
        with steps.step("writing the report"):
            page = html_report(res, info, est.source_means_)
            with atomic_path(out) as tmp:
                tmp.write_text(page, encoding="utf-8")
    if not quiet:
        click.echo(f"report -> {out}", err=True)


@main.command("verify")
@target_options
@click.option("--task", type=click.Choice(["short", "medium", "long", "all"]), default="short", show_default=True)
@click.option("--top-k", "top_k", type=int, default=3, show_default=True,
              help="Fine-tune the k best predicted models (per task).")
@click.option("--models", default=None, help="Comma-separated model ids to verify instead of the top-k.")
@click.option("--kb", "kb_path", type=click.Path(path_type=Path), default=None,
              help="Knowledge base that predicts (default: --kb-out when it is a user KB already, which reads "
                   "its base too; else the shipped one, or TIMETIC_KB).")
@click.option("--kb-out", "kb_out", type=click.Path(path_type=Path), default=None,
              help="User KB folder for the observations: created as a layer over --kb (whose files are never "
                   "written); `timetic predict --kb DIR` then reads both. Rerun with it to resume.")
@click.option("--dataset-id", default=None, help="The target's id in --kb-out (default: file stem).")
@click.option("--max-windows", "max_eval_windows", type=int, default=100, show_default=True,
              help="At most this many held-out windows per model (the runner's default; KB v2's grid used 32).")
@click.option("--windows", "n_windows", type=int, default=128, show_default=True,
              help="Target windows sampled for the prediction (as predict).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--no-zero-shot", is_flag=True, help="Predict from characteristics alone (as predict).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default=None,
              help="Output format (default: json or csv when --out ends in .json / .csv, else table).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the comparison to a file (csv with the table format).")
@click.option("--quiet", "-q", is_flag=True,
              help="Nothing on stderr but warnings and errors: no time estimate, no progress (also off when "
                   "stderr is not a terminal), no 'written to' line.")
@friendly
def verify_cmd(target_path, freq, layout, item_id_col, timestamp_col, target_col, task, top_k, models, kb_path,
               kb_out, dataset_id, max_eval_windows, n_windows, seed, no_zero_shot, fmt, out, quiet):
    """Fine-tune the top-k predicted models on the target and compare predicted with observed MASE."""
    from timetic.io import atomic_path

    _check_out(out)
    fmt = _out_format(fmt, out)
    if top_k < 1:
        raise TimeticInputError(f"--top-k must be at least 1 (got {top_k}); e.g. --top-k 3")
    if max_eval_windows < 1:
        raise TimeticInputError(f"--max-windows must be at least 1 (got {max_eval_windows}); e.g. --max-windows 30")
    if n_windows < 1:
        raise TimeticInputError(f"--windows must be at least 1 (got {n_windows}); e.g. --windows 128")
    done = {"k": 0, "n": None}
    with Steps(show_progress(quiet)) as steps:
        def say(text: str) -> None:
            if quiet:
                return
            if steps._progress is not None:
                steps._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                click.echo(text, err=True)

        def progress(stage: str, k: int, n: int) -> None:
            if stage == "models fine-tuned":
                done["k"], done["n"] = k, n
            steps(stage, k, n)

        with steps.step("loading the knowledge base"):
            from timetic.estimate import TimeTic
            from timetic.layers import is_user_kb

            if kb_path is None and kb_out is not None and is_user_kb(kb_out):
                kb_path = kb_out
            est = TimeTic(_open_kb(kb_path), zero_shot=not no_zero_shot, seed=seed)
        with steps.step(f"loading {Path(target_path).name}"):
            target = _load(target_path, freq, layout, item_id_col, timestamp_col, target_col)
        with steps.step("ranking, then fine-tuning"):
            try:
                res = est.verify(target, task=task, top_k=top_k, kb_out=kb_out, dataset_id=dataset_id,
                                 models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
                                 max_eval_windows=max_eval_windows, n_windows=n_windows, progress=progress,
                                 on_plan=lambda plan: say(plan.describe()),
                                 on_cell=lambda plan, k: say(plan.progress_line(k)), dataset_source=str(target_path))
            except KeyboardInterrupt:
                kept = f"kept in {kb_out}" if kb_out is not None else "kept in the cache"
                click.echo(f"interrupted: {done['k']} of {done['n'] or '?'} model(s) measured and {kept}; "
                           "run the same command again to continue", err=True)
                sys.exit(130)
    if fmt == "table":
        text = None
        res.render()
    elif fmt == "json":
        text = res.to_json()
    else:
        text = res.table.write_csv()
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(text if text is not None else res.table.write_csv())
        if not quiet:
            click.echo(f"verification -> {out}", err=True)
    elif text is not None:
        click.echo(text, nl=not text.endswith("\n"))


def _rank(steps: Steps, target_path, freq, layout, item_id_col, timestamp_col, target_col, task, models, kb_path,
          method, learner, n_windows, seed, no_zero_shot, zero_shot_windows=32, probe_steps=None,
          zero_shot_sample_paths=50):
    """predict and report: open the KB, fit, load the target, rank; each step shown by ``steps``.

    Returns (estimator, KB, target, ``predict_detailed``'s result)."""
    if zero_shot_windows < 1:
        raise TimeticInputError(f"--zero-shot-windows must be >= 1 (got {zero_shot_windows}); the default is 32")
    if zero_shot_sample_paths is not None and zero_shot_sample_paths < 1:
        raise TimeticInputError(f"--zero-shot-samples must be >= 1 (got {zero_shot_sample_paths}); the default is 50")
    if probe_steps is not None and probe_steps < 1:
        raise TimeticInputError(f"--probe-steps must be >= 1 (got {probe_steps}); e.g. --probe-steps 25")
    if probe_steps is not None and (no_zero_shot or method == "window" or learner):
        given = [o for o, on in (("--no-zero-shot", no_zero_shot), ("--method window", method == "window"),
                                 ("--learner", bool(learner))) if on]
        raise TimeticInputError(
            f"--probe-steps needs zero-shot scores and the stack method; drop {' / '.join(given)}, "
            "or drop --probe-steps"
        )
    with steps.step("loading the knowledge base"):
        from timetic.estimate import TimeTic

        k = _open_kb(kb_path)
        est = TimeTic(k, learner=learner, method=method, zero_shot=not no_zero_shot, seed=seed,
                      zero_shot_windows=zero_shot_windows, probe_steps=probe_steps,
                      zero_shot_sample_paths=zero_shot_sample_paths)
    with steps.step(f"loading {Path(target_path).name}"):
        target = _load(target_path, freq, layout, item_id_col, timestamp_col, target_col)
    if not hasattr(est, "learner_"):
        with steps.step("fitting the estimator on the knowledge base"):
            est.fit()
    what = "windows, features" + ("" if no_zero_shot else ", zero-shot")
    with steps.step(f"ranking ({'every task' if task == 'all' else task + ' task'}): {what}"):
        res = est.predict_detailed(target, task=task, n_windows=n_windows, progress=steps,
                                   models=[m.strip() for m in models.split(",")] if models else None)
    return est, k, target, res


@main.command()
@kb_option
@click.option("--scenario", "scenarios", multiple=True, default=("unseen-dataset",), show_default=True,
              type=click.Choice(["unseen-dataset", "unseen-model", "both-unseen", "few-shot"]))
@click.option("--learner", "learners", multiple=True, default=(),
              type=click.Choice(["gp", "hgb", "tabpfn", "tabicl"]),
              help="Also evaluate the window formulation with this learner (repeatable).")
@click.option("--no-zero-shot", is_flag=True, help="Leave the zero-shot column out of the context.")
@click.option("--few-shot-windows", type=int, default=20, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Per-fold metrics (.csv/.parquet/.json).")
@friendly
def evaluate(kb_path, scenarios, learners, no_zero_shot, few_shot_windows, seed, out):
    """Leave datasets / models out of the KB and measure the rankings against observed results."""
    import polars as pl

    from timetic.estimate import TimeTic
    from timetic.evaluate import evaluate as run_evaluation
    from timetic.io import write_table

    _check_out(out)
    k = _open_kb(kb_path)
    makers = {"timetic": lambda: TimeTic(k, zero_shot=not no_zero_shot, seed=seed)}
    makers.update({f"window-{l}": (lambda l=l: TimeTic(k, learner=l, zero_shot=not no_zero_shot, seed=seed))
                   for l in learners})
    res = run_evaluation(k, scenarios, makers, few_shot_windows=few_shot_windows, seed=seed,
                         progress=lambda msg: click.echo(msg, err=True))
    summary = res.summary(seed=seed)
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=200, float_precision=3,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        click.echo(str(summary.select("scenario", "method", "task", "n", "spearman", "weighted_tau", "top1",
                                      "top3", "regret")))
    if out is not None:
        write_table(res.rows, out)


def _tasks_of(ranking) -> list[str]:
    return ranking.get_column("task").unique(maintain_order=True).to_list()


def _estimator_info(est, target, kb, seed: int, no_zero_shot: bool, tasks: list[str] | None = None) -> dict:
    """What predict and report say about the estimator that ranked (JSON ``info``, table footer).

    ``stack_weights``: the stacking weights of the first ranked task; with several tasks ranked,
    ``stack_weights_by_task`` has every task's (a task with enough KB datasets has its own)."""
    info = {"target": target.name, "freq": target.freq, "n_series": target.n_series, "kb": str(kb.path),
            **({"kb_layers": [str(p) for p in kb.paths]} if hasattr(kb, "paths") else {}),
            "method": est.method_, "learner": est.learner_name_,
            "zero_shot": bool(getattr(est, "zero_shot_used_", not no_zero_shot)),
            "no_weights": sorted(getattr(est, "zero_shot_missing_", {})),
            "unobserved": sorted(getattr(est, "unobserved_ranked_", [])), "seed": seed,
            "zero_shot_windows": est.zero_shot_windows,
            "zero_shot_sample_paths": est.zero_shot_sample_paths, "probe_steps": est.probe_steps,
            "features": est.features_, "n_context_rows": est.n_context_rows_,
            "windows_used": {t: n for t, n in getattr(est, "windows_used_", {}).items() if t in (tasks or [t])},
            "frequency_in_kb": bool(getattr(est, "frequency_in_kb_", True))}
    used = getattr(est, "twin_", None) if not info["zero_shot"] and getattr(est, "twin_", None) else est
    if used.method_ == "stack":
        by_task = {t: {k: round(v, 3) for k, v in used.learner_.weights_for(t).items()} for t in tasks or []}
        info["stack_weights"] = (next(iter(by_task.values())) if by_task
                                 else {k: round(v, 3) for k, v in used.learner_.weights_.items()})
        if len(by_task) > 1:
            info["stack_weights_by_task"] = by_task
        info["out_of_domain"] = {t: round(v, 2) for t, v in getattr(used, "out_of_domain_", {}).items()}
        n = getattr(used.learner_, "components_", None)
        info["knn_components"] = "all" if n is None else int(n)
        a = getattr(used.learner_, "cross_alpha_", None)
        info["cross_alpha"] = None if a is None or not info["zero_shot"] else float(a)
        m = getattr(used.learner_, "meta_", None)
        info["meta_prior"] = None if m is None else {"components": int(m[0]), "alpha": float(m[1])}
        info["priors_from"] = used.lenders(info["unobserved"]) or {}
    return info


@main.command("adapters")
def adapters_cmd():
    """List the registered model adapters."""
    from timetic.adapters import adapter_sizes, available_adapters

    for name in available_adapters():  # static metadata: no model library is imported
        click.echo(f"{name}\tsizes: {', '.join(adapter_sizes(name))}")


if __name__ == "__main__":  # pragma: no cover
    main()
