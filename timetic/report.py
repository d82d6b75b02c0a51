"""Presenting a ranking: a rich terminal table and the stable JSON schema."""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

#: version of the JSON document written by ``timetic predict --format json``.
JSON_SCHEMA_VERSION = 1


def ranking_json(ranking: pl.DataFrame, info: dict[str, Any]) -> str:
    """``{"schema_version", "info", "rankings": [{task, rank, model_id, ...}, ...]}``; NaN -> null."""
    rows = []
    for r in ranking.iter_rows(named=True):
        rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return json.dumps({"schema_version": JSON_SCHEMA_VERSION, "info": info, "rankings": rows}, indent=2)


def render_table(ranking: pl.DataFrame, explanations: pl.DataFrame | None, info: dict[str, Any]) -> None:
    """Print the ranking (and nearest source datasets) as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    for task in ranking.get_column("task").unique(maintain_order=True):
        part = ranking.filter(pl.col("task") == task)
        table = Table(
            title=f"{info['target']} - task {task}: predicted fine-tuned MASE (learner {info['learner']})",
            caption="MASE: geometric mean over the target's windows; interval: 90%; "
            "P(improve): fine-tuning beats zero-shot",
        )
        for col, justify in (("rank", "right"), ("model", "left"), ("adapter", "left"), ("pred. MASE", "right"),
                             ("90% interval", "right"), ("zero-shot", "right"), ("gain", "right"),
                             ("P(improve)", "right"), ("P(best)", "right"), ("E[regret]", "right")):
            table.add_column(col, justify=justify)
        for r in part.iter_rows(named=True):
            zs = r["zero_shot_mase"]
            warn = " [red]neg. transfer?[/red]" if r["negative_transfer"] else ""
            table.add_row(
                str(r["rank"]), r["model_id"], r["adapter"], f"{r['predicted_mase']:.3f}",
                f"{r['lower_90']:.3f}-{r['upper_90']:.3f}",
                "-" if zs is None else f"{zs:.3f}",
                "-" if r["predicted_gain"] is None else f"{100 * r['predicted_gain']:+.1f}%",
                ("-" if r["p_improve"] is None else f"{r['p_improve']:.2f}") + warn,
                f"{r['p_best']:.2f}", f"{100 * r['expected_regret']:.1f}%",
            )
        console.print(table)
        if explanations is not None:
            ex = explanations.filter(pl.col("task") == task)
            if ex.height:
                et = Table(title="nearest source datasets (observed geometric-mean MASE)")
                for col in ("model", "dataset", "distance", "fine-tuned", "zero-shot"):
                    et.add_column(col)
                for r in ex.iter_rows(named=True):
                    f = r["observed_ft_mase"]
                    z = r["observed_zs_mase"]
                    et.add_row(r["model_id"], r["dataset_id"], f"{r['distance']:.2f}",
                               "-" if f is None else f"{f:.3f}", "-" if z is None else f"{z:.3f}")
                console.print(et)
    console.print(
        f"[dim]{info['n_context_rows']} context rows, {len(info['features'])} selected features, "
        f"zero-shot column {'on' if info['zero_shot'] else 'off'}, seed {info['seed']}, {info['seconds']:.1f} s[/dim]"
    )
