"""Verifying a ranking on the user's own data: fine-tune the top-k predicted models, score them on
the target's held-out span and set the observations beside the predictions.

:func:`verify` (``TimeTic.verify``, ``timetic verify``):

1. ranks every candidate for the target with the estimator (the same ranking as ``predict``), from
   a knowledge base that leaves out any dataset with the target's content (its own earlier
   verification included), so that the prediction never sees what it is checked against;
2. takes the top-k models (or the ones named) and fine-tunes each with the KB's *primary recipe*
   (the recipe whose observations the estimator reads) through the runner that builds the KB
   (:func:`timetic.finetune.run_finetune`: the last max(10%, H) points of every series are the
   test span, tiled by at most ``max_eval_windows`` H-step windows; fine-tuning sees only the
   points before it), so the observed score is the quantity the KB holds and the estimator
   predicts: the mean fine-tuned MASE over the evaluation windows (the windows the KB's cells
   count: finite, positive zero-shot and fine-tuned MASE, as :func:`timetic.context.build_context`);
3. reports per model the predicted MASE and 90% interval, the observed fine-tuned and zero-shot
   MASE, whether the observation fell inside the interval, the predicted and observed ranks, and
   per task whether the predicted best was the observed best, the interval coverage k/n and the
   regret of taking the predicted best.

With ``kb_out``, the observations (with provenance: recipe, seed, package versions, hardware, wall
time, date, fit log and ``source = "verify"``), the target's dataset row and its window features go
into a *user KB* that layers over the estimator's KB (:mod:`timetic.layers`); the base is never
written. Each (model, task) cell is written when it finishes (one atomic write), and also kept in
the on-disk cache (``TIMETIC_CACHE_DIR/verify``), so an interrupted run, rerun, skips the cells
already measured (in ``kb_out`` or the cache) and continues.

Before fine-tuning, :attr:`VerifyPlan.estimate_s` estimates the time from the KB's recorded
fine-tuning wall times (``wall_time_s``) of comparable cells: the median over the KB's datasets of
the same model and task (else the same model, any task; else every model, same task), per cell to
run. The runner's steps do not depend on the target's size, so the KB's times are not scaled; the
two forecasts of the evaluation windows (zero-shot and fine-tuned) add a little.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from timetic.errors import TimeticInputError, TimeticWarning

#: columns of :attr:`VerifyResult.table`, in order (the CSV and JSON schema).
VERIFY_COLUMNS = (
    "task", "predicted_rank", "model_id", "adapter", "predicted_mase", "lower_90", "upper_90",
    "observed_mase", "observed_zs_mase", "observed_gain", "inside_90", "observed_rank", "n_windows",
    "status", "seconds",
)
#: version of the JSON document of :meth:`VerifyResult.to_json`.
JSON_SCHEMA_VERSION = 1
#: what the observations of ``timetic verify`` say in their ``source`` column.
SOURCE = "verify"
#: statuses of a cell: measured now, found in the user KB, found in the cache.
STATUSES = ("run", "kb-out", "cache")


@dataclass
class Cell:
    """One (task, model) to verify.

    Attributes:
        predicted: the model's row of the ranking (``RANKING_COLUMNS``).
        status: ``"todo"`` before it runs; then ``"run"``, ``"kb-out"`` (already in the user
            KB) or ``"cache"`` (already in the on-disk cache).
        estimate_s: estimated seconds to run it (``None``: the KB has no comparable time).
        rows: its observation rows once measured.
    """

    task: str
    model_id: str
    adapter: str
    source: str
    revision: str
    predicted: dict
    status: str = "todo"
    estimate_s: float | None = None
    rows: pl.DataFrame | None = None
    seconds: float | None = None


@dataclass
class VerifyPlan:
    """What :func:`verify` is about to do (given to ``on_plan`` before any fine-tuning).

    Attributes:
        cells: every (task, model) to verify, best predicted first per task.
        recipe: the fine-tuning recipe; ``recipe_hash`` its hash.
        n_eval_windows: task -> evaluation windows of the target per cell.
        estimate_s: estimated seconds for the cells still to run (those with a comparable KB time).
        estimate_basis: how it was estimated, in words.
        excluded: KB datasets left out of the prediction (they hold the target's data).
    """

    target: str
    dataset_id: str
    cells: list[Cell]
    recipe: Any
    recipe_hash: str
    n_eval_windows: dict[str, int]
    kb: list[str]
    kb_out: str | None
    estimate_s: float
    estimate_basis: str
    excluded: list[str] = field(default_factory=list)

    @property
    def todo(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "todo"]

    def describe(self) -> str:
        """Two lines for stderr: what runs, with which recipe, and how long it should take."""
        todo, done = self.todo, [c for c in self.cells if c.status != "todo"]
        windows = ", ".join(f"{t}: {n}" for t, n in self.n_eval_windows.items())
        text = (
            f"verify: {len(self.cells)} model(s) on {self.target} (held-out windows {windows}), recipe "
            f"{self.recipe.name} ({self.recipe_hash})"
        )
        if done:
            text += f"; {len(done)} already measured ({', '.join(sorted({c.status for c in done}))}), skipped"
        if not todo:
            return text + "; nothing to fine-tune"
        known = [c for c in todo if c.estimate_s is not None]
        text += "\nfine-tuning " + ", ".join(
            c.model_id + (f" ~{_fmt_s(c.estimate_s)}" if c.estimate_s is not None else "") for c in todo
        )
        if known:
            text += f": about {_fmt_s(self.estimate_s)}" + (
                "" if len(known) == len(todo) else f" for the {len(known)} with a comparable KB time"
            ) + f" at the knowledge base's pace ({self.estimate_basis})"
        else:
            text += f" ({self.estimate_basis})"
        busy = machine_load()
        if busy is not None:
            text += f"; this machine is busy (load {busy[0]:.1f} on {busy[1]} cores): expect longer"
        return text

    def progress_line(self, finished: int) -> str:
        """After the ``finished``-th cell to run: its time against the estimate, and the rest at
        the pace seen so far."""
        todo = [c for c in self.cells if c.seconds is not None or c.status == "todo"]
        done, left = todo[:finished], todo[finished:]
        last = done[-1]
        text = f"{last.task}/{last.model_id}: measured in {_fmt_s(last.seconds or 0.0)}"
        if last.estimate_s is not None:
            text += f" (knowledge base pace {_fmt_s(last.estimate_s)})"
        pairs = [(c.seconds, c.estimate_s) for c in done if c.seconds is not None and c.estimate_s]
        rest = [c.estimate_s for c in left if c.estimate_s is not None]
        if left and pairs and rest:
            pace = sum(a for a, _ in pairs) / sum(e for _, e in pairs)
            text += f"; {len(left)} left, ~{_fmt_s(pace * sum(rest))} at this pace"
        elif left:
            text += f"; {len(left)} left"
        return text


@dataclass
class VerifyResult:
    """Predictions beside observations.

    Attributes:
        table: one row per verified (task, model), :data:`VERIFY_COLUMNS`, best predicted first.
        observations: the per-window observation rows of those cells (the KB's observations schema).
        info: target, KB layers, user KB, recipe, windows, seed, timings.
    """

    table: pl.DataFrame
    observations: pl.DataFrame
    info: dict

    def summary(self) -> list[dict]:
        """Per task: predicted best, observed best, whether they agree, interval coverage (inside
        of n with an interval) and the regret of taking the predicted best (its observed MASE over
        the best observed one, minus 1)."""
        out = []
        for task in self.table.get_column("task").unique(maintain_order=True).to_list():
            part = self.table.filter(pl.col("task") == task)
            scored = part.filter(pl.col("observed_mase").is_not_null())
            pred_best = part.sort("predicted_rank").get_column("model_id")[0]
            obs_best = scored.sort("observed_mase").get_column("model_id")[0] if scored.height else None
            inside = part.get_column("inside_90").drop_nulls()
            regret = None
            if obs_best is not None and pred_best in scored.get_column("model_id").to_list():
                mine = scored.filter(pl.col("model_id") == pred_best).get_column("observed_mase")[0]
                regret = float(mine / scored.get_column("observed_mase").min() - 1.0)
            out.append({
                "task": task, "predicted_best": pred_best, "observed_best": obs_best,
                "best_match": None if obs_best is None else pred_best == obs_best,
                "inside": int(inside.sum()), "n_intervals": int(inside.len()), "n_models": part.height,
                "regret_of_predicted_best": regret,
            })
        return out

    def summary_lines(self) -> list[str]:
        lines = []
        for s in self.summary():
            best = ("yes" if s["best_match"] else "no") if s["best_match"] is not None else "unknown"
            line = (f"task {s['task']}: predicted best {s['predicted_best']} = observed best "
                    f"{s['observed_best'] or '-'}? {best}; 90% intervals cover {s['inside']}/{s['n_intervals']}")
            if s["regret_of_predicted_best"] is not None and not s["best_match"]:
                line += f"; taking the predicted best costs {100 * s['regret_of_predicted_best']:+.1f}% MASE"
            lines.append(line)
        return lines

    def to_json(self) -> str:
        """``{"schema_version", "info", "summary": [...], "verified": [rows]}``; NaN -> null."""
        rows = [{k: _json_value(v) for k, v in r.items()} for r in self.table.iter_rows(named=True)]
        summary = [{k: _json_value(v) for k, v in s.items()} for s in self.summary()]
        return json.dumps({"schema_version": JSON_SCHEMA_VERSION, "info": self.info, "summary": summary,
                           "verified": rows}, indent=2, default=str)

    def render(self, console: Any = None) -> None:
        """Print the comparison as rich tables (one per task) and the summary lines."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        if console is None:
            console = Console()
            if not console.is_terminal:
                console = Console(width=150)
        summaries = {s["task"]: line for s, line in zip(self.summary(), self.summary_lines())}
        for task in self.table.get_column("task").unique(maintain_order=True).to_list():
            part = self.table.filter(pl.col("task") == task)
            table = Table(
                title=f"{self.info['target']} - task {task}: predicted vs observed fine-tuned MASE "
                      f"(recipe {self.info['recipe']['name']}, {_count(self.info['n_eval_windows'][task], 'held-out window')})",
                caption="observed: mean MASE over the target's held-out windows after fine-tuning; inside: the "
                        "observation lies in the 90% interval",
            )
            for col, justify in (("pred. rank", "right"), ("model", "left"), ("pred. MASE", "right"),
                                 ("90% interval", "right"), ("observed", "right"), ("zero-shot", "right"),
                                 ("inside", "right"), ("obs. rank", "right"), ("status", "left")):
                table.add_column(col, justify=justify, no_wrap=col in ("model", "90% interval", "status"))
            for r in part.iter_rows(named=True):
                lo, hi = r["lower_90"], r["upper_90"]
                inside = r["inside_90"]
                table.add_row(
                    str(r["predicted_rank"]), escape(r["model_id"]), _num(r["predicted_mase"]),
                    "-" if lo is None or hi is None else f"{lo:.3f}-{hi:.3f}",
                    _num(r["observed_mase"]), _num(r["observed_zs_mase"]),
                    "-" if inside is None else ("[green]yes[/green]" if inside else "[red]no[/red]"),
                    "-" if r["observed_rank"] is None else str(r["observed_rank"]),
                    r["status"] + (f" {r['seconds']:.0f}s" if r["status"] == "run" and r["seconds"] is not None else ""),
                )
            console.print(table)
            console.print(summaries[task], highlight=False, markup=False)
        kb = " <- ".join(self.info["kb"])
        out = self.info["kb_out"]
        console.print(escape(
            f"knowledge base {kb}"
            + (f" (left out, same data as the target: {', '.join(self.info['excluded'])})" if self.info["excluded"] else "")
            + (f"; observations -> {out} (predict --kb {out} reads them over the knowledge base)" if out else "")
            + f"; seed {self.info['seed']}, {self.info['seconds']:.1f} s"
        ), style="dim", highlight=False)


# ---------------------------------------------------------------------------------------------
# verify


def verify(
    estimator: Any,
    target: Any,
    /,
    task: str | Sequence[str] = "short",
    top_k: int = 3,
    models: Sequence[str] | None = None,
    kb_out: str | Path | None = None,
    dataset_id: str | None = None,
    max_eval_windows: int | None = None,
    n_windows: int = 128,
    recipe: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_plan: Callable[[VerifyPlan], None] | None = None,
    on_cell: Callable[[VerifyPlan, int], None] | None = None,
    dataset_source: str | None = None,
    **load_kwargs: Any,
) -> VerifyResult:
    """Fine-tune the top-k predicted models on ``target`` and compare (see the module docstring).

    Args:
        estimator: a :class:`timetic.estimate.TimeTic` (fitted or not) on its knowledge base.
        target: a path, frame or :class:`timetic.data.Target` (``load_kwargs`` go to
            :func:`timetic.load_target`).
        task: ``"short"``, ``"medium"``, ``"long"``, several, or ``"all"``.
        top_k: verify the k best predicted models of each task.
        models: verify these models instead (ranked among every candidate all the same).
        kb_out: a user KB folder for the observations: a new (or empty) folder, created as a layer
            over the estimator's KB, or a user KB made before (over the same KB, or the
            estimator's KB itself). ``None``: nothing is written but the on-disk cache.
        dataset_id: the target's id in ``kb_out`` (default: its name, the file stem).
        max_eval_windows: at most this many held-out windows per cell (default: the runner's, 100,
            as the KB grid).
        n_windows: target windows sampled for the prediction (as ``predict --windows``).
        recipe: a :class:`timetic.recipe.Recipe`, name or file to fine-tune with instead of the
            KB's primary recipe (a warning says the observations then measure another recipe than
            the prediction).
        progress: ``progress(stage, done, total)``: the estimator's stages (``"zero-shot"``),
            ``"models fine-tuned"`` and ``"fine-tune steps"`` (of the model being fine-tuned).
        on_plan: called with the :class:`VerifyPlan` once the ranking is known, before any
            fine-tuning (the CLI prints the time estimate from it).
        on_cell: called as ``on_cell(plan, k)`` after the k-th cell to run has been measured and
            stored (the CLI prints :meth:`VerifyPlan.progress_line`).
        dataset_source: the ``source`` of the target's dataset row in ``kb_out`` (default: the
            file path, else ``"verify"``).
    """
    from timetic.data import Target, load_target
    from timetic.finetune import DEFAULT_EVAL_WINDOWS, split_series
    from timetic.kb import content_hash, series_hash
    from timetic.layers import LayeredKB, layers_of
    from timetic.tasks import TASK_NAMES, Task

    started = time.perf_counter()
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise TimeticInputError(f"top_k must be a whole number >= 1 (got {top_k!r}); e.g. --top-k 3")
    max_eval_windows = DEFAULT_EVAL_WINDOWS if max_eval_windows is None else max_eval_windows
    if isinstance(max_eval_windows, bool) or not isinstance(max_eval_windows, (int, np.integer)) or max_eval_windows < 1:
        raise TimeticInputError(
            f"max_eval_windows must be a whole number >= 1 (got {max_eval_windows!r}); e.g. --max-windows 30"
        )
    names = list(TASK_NAMES) if task == "all" else ([task] if isinstance(task, str) else list(task))
    unknown = [t for t in names if t not in TASK_NAMES]
    if unknown or not names:
        raise TimeticInputError(f"unknown task(s) {', '.join(map(str, unknown)) or '(none)'}; use short, medium, long or all")
    path = Path(target) if isinstance(target, (str, Path)) else None
    tgt = target if isinstance(target, Target) else load_target(target, **load_kwargs)
    dataset_id = str(dataset_id or tgt.name)
    if not dataset_id.strip():
        raise TimeticInputError("the dataset id is empty; pass --dataset-id")
    kb = estimator._require_kb()
    layers = layers_of(kb)
    digest, series_digest = content_hash(tgt.frame), series_hash(tgt.frame)

    # the KB that predicts: every layer, without the datasets that hold the target's data (the
    # same series under any names)
    known = kb.datasets()
    if "series_hash" not in known.columns:
        known = known.with_columns(pl.lit(None, dtype=pl.Utf8).alias("series_hash"))
    known = known.select("dataset_id", "content_hash", "series_hash")
    same = (pl.col("content_hash") == digest) | (pl.col("series_hash") == series_digest).fill_null(False)
    exact = known.filter(pl.col("content_hash") == digest).get_column("dataset_id").to_list()
    if kb_out is not None and exact and dataset_id not in exact:
        warnings.warn(f"the target's data is in the knowledge base already as {exact[0]!r}; its results are "
                      f"recorded under that id (not {dataset_id!r}), so they are not counted twice",
                      TimeticWarning, stacklevel=2)
        dataset_id = exact[0]
    clash = known.filter((pl.col("dataset_id") == dataset_id) & (pl.col("content_hash") != digest))
    if clash.height:
        raise TimeticInputError(
            f"dataset id {dataset_id!r} already names other data in the knowledge base {kb.path}; "
            f"pass --dataset-id with another id"
        )
    excluded = sorted(known.filter(same).get_column("dataset_id").to_list())
    renamed = [d for d in excluded if d not in exact]
    if kb_out is not None and renamed:
        raise TimeticInputError(
            f"the target's series are in the knowledge base already, as dataset {renamed[0]!r} under other "
            "series names; recording them again would count them twice: name the series as the KB does, "
            "or verify without --kb-out"
        )
    out_kb = _check_kb_out(kb_out, kb, dataset_id, digest)  # before anything runs or is written
    if excluded:
        view = LayeredKB(layers, exclude_datasets=excluded)
        params = {k: getattr(estimator, k) for k in inspect.signature(type(estimator).__init__).parameters
                  if k != "self" and hasattr(estimator, k)}
        est = type(estimator)(**{**params, "kb": view})
    else:
        view, est = kb, estimator
    if not hasattr(est, "learner_"):
        est.fit()
    candidates = est._candidates(list(models)) if models is not None else None  # unknown ids: one-line error

    # the prediction (fits the estimator if needed)
    res = est.predict_detailed(tgt, task=names, n_windows=n_windows, explain_top=1, progress=progress)
    ranking = res["ranking"]
    rh = est.recipe_hash(view)
    kb_recipe = _kb_recipe(view, rh)
    fine_recipe = kb_recipe
    if recipe is not None:
        from timetic.recipe import Recipe

        fine_recipe = Recipe.load(recipe)
        if fine_recipe.hash != rh:
            warnings.warn(
                f"fine-tuning with recipe {fine_recipe.name} ({fine_recipe.hash}), but the predictions are for the "
                f"knowledge base's recipe {kb_recipe.name} ({rh}): the observations measure another recipe",
                TimeticWarning,
                stacklevel=2,
            )

    # the cells: top-k per task (or the named models), skipping models without weights here
    no_weights = est.missing_weights(ranking.get_column("model_id").unique().to_list())
    model_rows = {r["model_id"]: r for r in view.models().iter_rows(named=True)}
    cells: list[Cell] = []
    n_eval: dict[str, int] = {}
    eval_keys: dict[str, pl.DataFrame] = {}
    for name in names:
        t = Task.preset(name, tgt.freq)
        C = int(fine_recipe.context_length or t.context_length)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # predict has warned about dropped series already
            _, ev = split_series(tgt, t, max_eval_windows, seed=fine_recipe.seed, context_length=C)
        n_eval[name] = len(ev)
        eval_keys[name] = pl.DataFrame({"item_id": [str(i) for i in ev.item_ids],
                                        "window_start": ev.starts.astype(np.int64)})
        part = ranking.filter(pl.col("task") == name).sort("rank")
        chosen = []
        for r in part.iter_rows(named=True):
            m = r["model_id"]
            if candidates is not None and m not in candidates:
                continue
            if m in no_weights:
                warnings.warn(f"no weights on this machine for {m} ({no_weights[m]}); it is not verified",
                              TimeticWarning, stacklevel=2)
                continue
            chosen.append(r)
            if candidates is None and len(chosen) == top_k:
                break
        if not chosen:
            raise TimeticInputError(
                f"no model to verify for task {name}: no candidate has its weights on this machine; "
                "set TIMETIC_WEIGHTS_DIR"
            )
        for r in chosen:
            row = model_rows[r["model_id"]]
            cells.append(Cell(task=name, model_id=r["model_id"], adapter=row["adapter"], source=row["source"],
                              revision=row.get("revision") or "", predicted=r))

    # what is already measured: in the user KB, else in the cache
    rh_fine = fine_recipe.hash
    for c in cells:
        rows = None
        if out_kb is not None and out_kb.exists:
            rows = _stored_rows(out_kb.path, dataset_id, c, rh_fine, eval_keys[c.task])
            if rows is not None:
                c.status, c.rows = "kb-out", rows
        if rows is None:
            rows = _cache_get(_cache_key(digest, dataset_id, c, view, rh_fine, max_eval_windows))
            if rows is not None and _covers(rows, eval_keys[c.task]):
                c.status, c.rows = "cache", rows

    estimate, basis = _estimate(view, rh, cells)
    plan = VerifyPlan(
        target=tgt.name, dataset_id=dataset_id, cells=cells, recipe=fine_recipe, recipe_hash=rh_fine,
        n_eval_windows=n_eval, kb=[str(p) for p in getattr(kb, "paths", [kb.path])],
        kb_out=None if out_kb is None else str(out_kb.path), estimate_s=estimate, estimate_basis=basis,
        excluded=excluded,
    )
    if on_plan is not None:
        on_plan(plan)

    # the user KB: created (a layer over the estimator's KB) and the target registered, once
    user = None
    if out_kb is not None:
        user = _open_user_kb(out_kb, kb)
        _register(user, tgt, dataset_id, names, dataset_source or (str(path) if path is not None else SOURCE))

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    todo = plan.todo
    report("models fine-tuned", 0, len(todo))
    for k, c in enumerate(todo):
        c.rows, c.seconds = _run_cell(c, tgt, fine_recipe, view, dataset_id, max_eval_windows, report)
        c.status = "run"
        _cache_put(_cache_key(digest, dataset_id, c, view, rh_fine, max_eval_windows), c.rows)
        if user is not None:
            user.add_observations(c.rows)
        report("models fine-tuned", k + 1, len(todo))
        if on_cell is not None:
            on_cell(plan, k + 1)
    if user is not None:  # cells found only in the cache go into the user KB too
        for c in cells:
            if c.status == "cache":
                user.add_observations(c.rows)

    table = _table(cells, names)
    observations = pl.concat([c.rows for c in cells], how="diagonal_relaxed")
    info = {
        "target": tgt.name, "freq": tgt.freq, "n_series": tgt.n_series, "dataset_id": dataset_id,
        "content_hash": digest, "kb": plan.kb, "excluded": excluded, "kb_out": plan.kb_out,
        "recipe": {"name": fine_recipe.name, "hash": rh_fine, "kb_hash": rh},
        "n_eval_windows": n_eval, "max_eval_windows": int(max_eval_windows), "top_k": int(top_k),
        "models": None if models is None else list(models), "seed": int(getattr(est, "seed", 0)),
        "method": est.method_, "zero_shot": bool(getattr(est, "zero_shot_used_", getattr(est, "zero_shot", False))),
        "estimate_s": round(estimate, 1), "statuses": {s: sum(c.status == s for c in cells) for s in STATUSES},
        "seconds": round(time.perf_counter() - started, 2),
    }
    return VerifyResult(table=table, observations=observations, info=info)


# ---------------------------------------------------------------------------------------------
# the user KB


def _check_kb_out(kb_out: str | Path | None, kb: Any, dataset_id: str, digest: str) -> Any:
    """Validate ``kb_out`` without writing anything; returns a handle (``path``, ``exists``) or None.

    Accepted: a path that does not exist (its parent must), an empty folder, or a user KB whose
    base is the estimator's KB (its top layer) or which *is* the estimator's top layer.
    """
    from timetic.kb import KB_FILE, KnowledgeBase
    from timetic.layers import base_of, is_user_kb, layers_of

    if kb_out is None:
        return None
    out = Path(kb_out)
    top = Path(kb.path).resolve()
    layer_paths = [Path(k.path).resolve() for k in layers_of(kb)]
    hint = "pass a new folder (it becomes a user KB layered over the knowledge base) or a user KB made by verify"
    if out.exists() and not out.is_dir():
        raise TimeticInputError(f"--kb-out {out} is a file; {hint}")
    if not out.exists():
        if not out.resolve().parent.is_dir():
            raise TimeticInputError(f"--kb-out {out}: folder {out.resolve().parent} does not exist; create it first")
        if not os.access(out.resolve().parent, os.W_OK | os.X_OK):
            raise TimeticInputError(f"--kb-out {out}: folder {out.resolve().parent} is not writable; pick another")
        return _Out(out, exists=False)
    if not (out / KB_FILE).is_file():
        if any(out.iterdir()):
            raise TimeticInputError(f"--kb-out {out} is a folder with files but no knowledge base; {hint}")
        if not os.access(out, os.W_OK | os.X_OK):
            raise TimeticInputError(f"--kb-out {out} is not writable; pick another folder")
        return _Out(out, exists=False)
    if not is_user_kb(out):
        what = "a layer of the knowledge base that predicts" if out.resolve() in layer_paths else "a knowledge base"
        raise TimeticInputError(
            f"--kb-out {out} is {what} that layers over nothing, which verify never writes into; {hint}"
        )
    base = base_of(out)
    if out.resolve() != top and (base is None or base.resolve() != top):
        raise TimeticInputError(
            f"--kb-out {out} layers over {base}, not over {kb.path}; pass --kb {out} (reads both) or another --kb-out"
        )
    if out.resolve() != top:  # the estimator's KB does not read it: check the target's id there
        existing = KnowledgeBase.open(out).datasets().filter(pl.col("dataset_id") == dataset_id)
        if existing.height and existing.get_column("content_hash")[0] != digest:
            raise TimeticInputError(
                f"dataset id {dataset_id!r} already names other data in {out}; pass --dataset-id with another id"
            )
    return _Out(out, exists=True)


@dataclass
class _Out:
    path: Path
    exists: bool


def _open_user_kb(out: _Out, kb: Any) -> Any:
    from timetic.kb import KB_FILE, KnowledgeBase
    from timetic.layers import create_user_kb

    if (out.path / KB_FILE).is_file():
        return KnowledgeBase.open(out.path)
    return create_user_kb(out.path, kb.path)


def _register(user: Any, target: Any, dataset_id: str, tasks: list[str], source: str) -> None:
    """The target's dataset row and the features of its evaluation windows, for the tasks it lacks."""
    from timetic.record import add_dataset

    have = set(user.windows(dataset_id=dataset_id).get_column("task").unique().to_list())
    missing = [t for t in tasks if t not in have]
    if missing:
        add_dataset(user, target, dataset_id, source=source, domain="", tasks=missing)


def _stored_rows(path: Path, dataset_id: str, cell: Cell, rh: str, keys: pl.DataFrame) -> pl.DataFrame | None:
    """The cell's rows in the user KB when they cover exactly the windows this run would score."""
    from timetic.kb import KnowledgeBase

    rows = KnowledgeBase.open(path).observations(dataset_id=dataset_id, model_id=cell.model_id, task=cell.task,
                                                 recipe_hash=rh)
    return rows if rows.height and _covers(rows, keys) else None


def _covers(rows: pl.DataFrame, keys: pl.DataFrame) -> bool:
    got = rows.select(pl.col("item_id").cast(pl.Utf8), pl.col("window_start").cast(pl.Int64)).unique()
    return got.height == keys.height and got.join(keys, on=["item_id", "window_start"], how="anti").height == 0


# ---------------------------------------------------------------------------------------------
# running one cell (the KB's runner)


def _run_cell(cell: Cell, target: Any, recipe: Any, kb: Any, dataset_id: str, max_eval_windows: int,
              report: Callable[[str, int, int], None]) -> tuple[pl.DataFrame, float]:
    from timetic.adapters import load_model
    from timetic.finetune import run_finetune
    from timetic.kb import resolve_model_source
    from timetic.record import observation_rows
    from timetic.tasks import Task

    started = time.perf_counter()
    task = Task.preset(cell.task, target.freq)
    model = load_model(resolve_model_source(kb, cell.source), adapter=cell.adapter)

    def step(stage: str, done: int, total: int) -> None:
        if stage == "fine-tune":
            report("fine-tune steps", done, total)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TimeticWarning)  # dropped series: predict has said so
        result = run_finetune(model, target, task, recipe, max_eval_windows=max_eval_windows, progress=step,
                              dataset_id=dataset_id, model_id=cell.model_id)
    return observation_rows(result, source=SOURCE), time.perf_counter() - started


def _kb_recipe(kb: Any, rh: str | None) -> Any:
    from timetic.recipe import Recipe

    if rh is None:
        raise TimeticInputError("the knowledge base has no observations, so no recipe to verify with; pass --kb")
    text = kb.observations(recipe_hash=rh).get_column("recipe").drop_nulls()
    if text.len() == 0:
        raise TimeticInputError(f"the knowledge base's observations of recipe {rh} do not store the recipe; rebuild it")
    try:
        recipe = Recipe.from_dict(json.loads(text[0]))
    except (ValueError, TypeError) as e:
        raise TimeticInputError(f"the knowledge base's recipe {rh} cannot be read ({e}); rebuild it") from e
    if recipe.hash != rh:
        warnings.warn(f"the knowledge base's recipe reads back with hash {recipe.hash}, not {rh}; "
                      "the observations are stored under the new hash", TimeticWarning, stacklevel=3)
    return recipe


# ---------------------------------------------------------------------------------------------
# the time estimate


def _estimate(kb: Any, rh: str | None, cells: list[Cell]) -> tuple[float, str]:
    """Seconds for the cells to run, from the KB's fine-tuning wall times (module docstring)."""
    todo = [c for c in cells if c.status == "todo"]
    if not todo:
        return 0.0, "nothing to run"
    obs = kb.observations(recipe_hash=rh) if rh is not None else kb.observations()
    per_cell = (
        obs.filter(pl.col("wall_time_s").is_finite())
        .group_by("dataset_id", "model_id", "task")
        .agg(pl.col("wall_time_s").first())
    )
    hardware = obs.get_column("hardware").drop_nulls()
    total, n_basis = 0.0, {"model and task": 0, "model": 0, "task": 0}
    for c in todo:
        for basis, cond in (
            ("model and task", (pl.col("model_id") == c.model_id) & (pl.col("task") == c.task)),
            ("model", pl.col("model_id") == c.model_id),
            ("task", pl.col("task") == c.task),
        ):
            times = per_cell.filter(cond).get_column("wall_time_s")
            if times.len():
                c.estimate_s = float(times.median())
                n_basis[basis] += 1
                total += c.estimate_s
                break
    used = [f"{k} ({v})" if len(todo) > 1 else k for k, v in n_basis.items() if v]
    where = ""
    if hardware.len():
        try:
            hw = json.loads(hardware[0])
            where = f" on {hw.get('cpu', '?')} x{hw.get('cpu_count', '?')} ({hw.get('device', 'cpu')})"
        except ValueError:
            pass
    if not used:
        return 0.0, "the knowledge base records no fine-tuning times"
    return total, f"median fine-tuning time of the same {' / '.join(used)}, measured{where}"


# ---------------------------------------------------------------------------------------------
# the on-disk cache of measured cells (resuming without --kb-out)


def _cache_key(digest: str, dataset_id: str, cell: Cell, kb: Any, rh: str, max_eval_windows: int) -> str:
    from timetic.cache import _files_signature
    from timetic.kb import resolve_model_source

    source = resolve_model_source(kb, cell.source)
    h = hashlib.sha256()
    for part in ("verify-v1", digest, dataset_id, cell.model_id, cell.adapter, str(Path(source).resolve()),
                 _files_signature(source), cell.revision, cell.task, rh, str(int(max_eval_windows))):
        h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def _cache_file(key: str) -> Path | None:
    from timetic.cache import cache_dir

    d = cache_dir()
    return None if d is None else d / "verify" / f"{key}.parquet"


def _cache_get(key: str) -> pl.DataFrame | None:
    f = _cache_file(key)
    if f is None or not f.is_file():
        return None
    try:
        return pl.read_parquet(f)
    except Exception:  # noqa: BLE001 - an unreadable entry is measured again
        return None


def _cache_put(key: str, rows: pl.DataFrame) -> None:
    f = _cache_file(key)
    if f is None:
        return
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        rows.write_parquet(buf)
        tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, f)
    except OSError:  # a read-only or full disk costs a rerun, not correctness
        return


# ---------------------------------------------------------------------------------------------
# the comparison table


def observed_scores(rows: pl.DataFrame) -> tuple[float | None, float | None, int]:
    """(mean fine-tuned MASE, mean zero-shot MASE, windows) over the windows a KB cell counts:
    finite, positive zero-shot and fine-tuned MASE below the context table's cap
    (:func:`timetic.context.build_context`), so the observation is the quantity the KB holds."""
    from timetic.context import MAX_VALID_MASE

    ok = rows.filter(
        pl.col("ft_mase").is_finite() & (pl.col("ft_mase") > 0) & (pl.col("ft_mase") < MAX_VALID_MASE)
        & pl.col("zs_mase").is_finite() & (pl.col("zs_mase") > 0) & (pl.col("zs_mase") < MAX_VALID_MASE)
    )
    if ok.height == 0:
        return None, None, 0
    return float(ok.get_column("ft_mase").mean()), float(ok.get_column("zs_mase").mean()), ok.height


def _table(cells: list[Cell], tasks: list[str]) -> pl.DataFrame:
    records = []
    for c in cells:
        obs, zs, n = observed_scores(c.rows)
        p = c.predicted
        lo, hi = p.get("lower_90"), p.get("upper_90")
        inside = None
        if obs is not None and _finite(lo) and _finite(hi):
            inside = bool(lo <= obs <= hi)
        records.append({
            "task": c.task, "predicted_rank": int(p["rank"]), "model_id": c.model_id, "adapter": c.adapter,
            "predicted_mase": _float(p.get("predicted_mase")), "lower_90": _float(lo), "upper_90": _float(hi),
            "observed_mase": obs, "observed_zs_mase": zs,
            "observed_gain": None if obs is None or not zs else 1.0 - obs / zs,
            "inside_90": inside, "observed_rank": None, "n_windows": n, "status": c.status,
            "seconds": None if c.seconds is None else round(c.seconds, 2),
        })
    schema = {
        "task": pl.Utf8, "predicted_rank": pl.Int64, "model_id": pl.Utf8, "adapter": pl.Utf8,
        "predicted_mase": pl.Float64, "lower_90": pl.Float64, "upper_90": pl.Float64, "observed_mase": pl.Float64,
        "observed_zs_mase": pl.Float64, "observed_gain": pl.Float64, "inside_90": pl.Boolean,
        "observed_rank": pl.Int64, "n_windows": pl.Int64, "status": pl.Utf8, "seconds": pl.Float64,
    }
    df = pl.DataFrame(records, schema=schema) if records else pl.DataFrame(schema=schema)
    df = df.with_columns(
        pl.col("observed_mase").rank("ordinal").over("task").cast(pl.Int64).alias("observed_rank"),
        pl.col("task").replace_strict({t: i for i, t in enumerate(tasks)}, return_dtype=pl.Int64).alias("_order"),
    )
    return df.sort("_order", "predicted_rank", maintain_order=True).select(VERIFY_COLUMNS)


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _float(v: Any) -> float | None:
    return float(v) if _finite(v) else None


def _num(v: Any) -> str:
    return "-" if not _finite(v) else f"{v:.3f}"


def _json_value(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def machine_load() -> tuple[float, int] | None:
    """(1-minute load average, cores) when the machine runs more than one job per core, else None."""
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except (AttributeError, OSError):
        return None
    return (load, cores) if load > cores + 0.5 else None


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _fmt_s(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["VERIFY_COLUMNS", "Cell", "VerifyPlan", "VerifyResult", "observed_scores", "verify"]
