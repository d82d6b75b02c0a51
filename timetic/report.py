"""Presenting a ranking: a rich terminal table, the stable JSON schema and a self-contained HTML report."""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

#: version of the JSON document written by ``timetic predict --format json``.
JSON_SCHEMA_VERSION = 1
#: minimum line width of the table when stdout is not a terminal (wider when the table needs it).
PIPED_WIDTH = 150


def ranking_json(ranking: pl.DataFrame, info: dict[str, Any]) -> str:
    """``{"schema_version", "info", "rankings": [{task, rank, model_id, ...}, ...]}``; NaN -> null."""
    rows = []
    for r in ranking.iter_rows(named=True):
        rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return json.dumps({"schema_version": JSON_SCHEMA_VERSION, "info": info, "rankings": rows}, indent=2)


def naive_verdict(part: pl.DataFrame) -> str | None:
    """A plain sentence when no candidate of one task's ranking is likely to beat seasonal naive."""
    if "p_beats_naive" not in part.columns or part.get_column("p_beats_naive").is_null().all():
        return None
    best = float(part.get_column("p_beats_naive").max())
    if best >= 0.5:
        return None
    naive = float(part.get_column("naive_mase").drop_nulls()[0])
    return (f"No candidate is likely to beat seasonal naive here (its MASE on these windows: {naive:.3f}; "
            f"the best P(beats seasonal naive) is {best:.2f}): consider the seasonal-naive forecast.")


def _lenders(info: dict) -> str:
    """``; priors from a, b (new), none (other)`` for the unseen models of ``info``, or ""."""
    lenders = info.get("priors_from") or {}
    if not lenders:
        return ""
    return "; priors from " + "; ".join(f"{', '.join(v) or 'none'} ({m})" for m, v in lenders.items())


def render_table(ranking: pl.DataFrame, explanations: pl.DataFrame | None, info: dict[str, Any]) -> None:
    """Print the ranking (and nearest source datasets) as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    piped = not console.is_terminal
    if piped:
        console = Console(width=PIPED_WIDTH)

    def show(renderable: Any) -> None:
        """Print; when stdout is not a terminal (a pipe, a file) the line is as wide as the table
        needs (at least :data:`PIPED_WIDTH`), so no column is squeezed and no header cut or wrapped."""
        if piped:
            need = Console(width=10_000).measure(renderable).maximum
            Console(width=max(PIPED_WIDTH, need)).print(renderable)
        else:
            console.print(renderable)

    for task in ranking.get_column("task").unique(maintain_order=True):
        part = ranking.filter(pl.col("task") == task)
        table = Table(
            title=f"{info['target']} - task {task}: predicted fine-tuned MASE (learner {info['learner']})",
            caption="MASE: mean over the target's windows; interval: 90%; gain, P(improve): fine-tuning vs "
            "zero-shot, from a separate gain model (the ranking is by pred. MASE; the two can disagree); "
            "=k: tied with the model above (order < 60% sure)",
        )
        for col, justify in (("rank", "right"), ("model", "left"), ("adapter", "left"), ("pred. MASE", "right"),
                             ("90% interval", "right"), ("zero-shot", "right"), ("gain", "right"),
                             ("P(improve)", "right"), ("P(best)", "right"), (r"E\[regret]", "right"),
                             ("P(<naive)", "right")):
            table.add_column(col, justify=justify)
        for r in part.iter_rows(named=True):
            zs = r["zero_shot_mase"]
            warn = " [red]neg. transfer?[/red]" if r["negative_transfer"] else ""
            table.add_row(
                ("=" if r.get("tied_with_above") else "") + str(r["rank"]), r["model_id"], r["adapter"], f"{r['predicted_mase']:.3f}",
                f"{r['lower_90']:.3f}-{r['upper_90']:.3f}",
                "-" if zs is None else f"{zs:.3f}",
                "-" if r["predicted_gain"] is None else f"{100 * r['predicted_gain']:+.1f}%",
                ("-" if r["p_improve"] is None else f"{r['p_improve']:.2f}") + warn,
                f"{r['p_best']:.2f}", f"{100 * r['expected_regret']:.1f}%",
                "-" if r.get("p_beats_naive") is None else f"{r['p_beats_naive']:.2f}",
            )
        show(table)
        line = naive_verdict(part)
        if line:
            console.print(f"[bold yellow]{line}[/bold yellow]")
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
                show(et)
    weights = info.get("stack_weights")
    by_task = info.get("stack_weights_by_task")
    if by_task:
        shown = "stack weights: " + "; ".join(f"{t}: " + ", ".join(f"{k} {v:.2f}" for k, v in w.items())
                                              for t, w in by_task.items()) + "; "
    else:
        shown = f"stack weights: {', '.join(f'{k} {v:.2f}' for k, v in weights.items())}; " if weights else ""
    console.print(
        f"[dim]{shown}"
        + f"{info['n_context_rows']} context rows, {len(info['features'])} features"
        + (f" (kNN over {info['knn_components']} principal components)" if isinstance(info.get("knn_components"), int) else "")
        + ", "
        f"zero-shot column {'on' if info['zero_shot'] else 'off'}"
        + (f" (no weights here for {', '.join(info['no_weights'])})" if info.get("no_weights") else "")
        + (f"; no KB observations for {', '.join(info['unobserved'])} (ranked as unseen models"
           + _lenders(info) + ")" if info.get("unobserved") else "")
        + f", seed {info['seed']}, {info['seconds']:.1f} s[/dim]"
        + "".join(f"\n[yellow]task {t}: outside the knowledge base, intervals widened x{v:.2f}[/yellow]"
                  for t, v in (info.get("out_of_domain") or {}).items() if v > 1)
    )


# ---------------------------------------------------------------------------------------------
# HTML report


def _png(fig: Any) -> str:
    """A matplotlib figure as an ``<img>`` with a base64 data URI (the page needs no other file)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _esc(v: Any) -> str:
    import html

    return html.escape(str(v), quote=True)


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def _ranking_plot(part: pl.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = part.sort("rank", descending=True)
    y = list(range(part.height))
    fig, ax = plt.subplots(figsize=(7, 0.35 * part.height + 1.2))
    p = part["predicted_mase"].to_numpy()
    lo, hi = part["lower_90"].to_numpy(), part["upper_90"].to_numpy()
    ax.errorbar(p, y, xerr=[p - lo, hi - p], fmt="o", color="C0", capsize=3, label="predicted fine-tuned (90%)")
    zs = part["zero_shot_mase"].to_numpy().astype(float)
    if any(z == z for z in zs):
        ax.scatter(zs, y, marker="x", color="C3", label="zero-shot (measured)")
    ax.set_yticks(y, part["model_id"].to_list())
    ax.set_xlabel("MASE (lower is better)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _feature_plot(target_means: dict[str, float], source: pl.DataFrame, features: list[str]) -> str:
    """Target's mean of each selected feature, standardised against the KB's source datasets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 0.3 * len(features) + 1.2))
    for i, f in enumerate(features):
        v = source.get_column(f).to_numpy()
        mu, sd = v.mean(), v.std() or 1.0
        ax.scatter((v - mu) / sd, np.full(len(v), i), color="grey", s=12, alpha=0.6)
        ax.scatter([(target_means[f] - mu) / sd], [i], color="C3", s=40, marker="D")
    ax.set_yticks(range(len(features)), features)
    ax.set_xlabel("z-score against the KB's source datasets (grey); the target in red")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


#: interpretable features the report always shows next to the selected ones.
SUMMARY_FEATURES = ("trend_strength", "seasonal_strength", "spectral_entropy", "acf1", "hurst", "cv",
                    "lumpiness", "stability", "missing_ratio")

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}tr.neg td{background:#fdecea}.small{color:#666;font-size:90%}
.warn{background:#fff8e1;border-left:4px solid #f0a500;padding:0.3em 1em;margin:1em 0}"""


def html_report(result: dict[str, Any], info: dict[str, Any], source_means: pl.DataFrame) -> str:
    """A self-contained HTML page for a user's target.

    Args:
        result: :meth:`timetic.estimate.TimeTic.predict_detailed`'s output.
        info: run facts (target, freq, n_series, kb, learner, zero_shot, seed, features, seconds;
            ``warnings``: the run's warnings, shown at the top with the out-of-domain notes).
        source_means: (dataset_id, task, selected features...) the KB's dataset-level feature means.
    Returns:
        the page; plots are PNGs embedded as data URIs, so the file stands alone.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        from timetic.errors import TimeticInputError

        raise TimeticInputError("the HTML report needs matplotlib; pip install 'timetic[report]'") from e
    ranking, expl, feats = result["ranking"], result["explanations"], result["features"]
    # the stack reads every feature (through the kNN distance): summarise the usual few
    chosen = [] if info.get("method") == "stack" else list(info["features"])
    features = chosen + [f for f in SUMMARY_FEATURES if f not in chosen]
    features = [f for f in features if f in source_means.columns]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"/>',
           f"<title>timetic report: {_esc(info['target'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>timetic report: {_esc(info['target'])}</h1>",
           f"<p>{_esc(info['n_series'])} series, frequency {_esc(info['freq'])}; knowledge base "
           f"<code>{_esc(info['kb'])}</code>; method {_esc(info.get('method', ''))}, learner {_esc(info['learner'])}; zero-shot column "
           f"{'on' if info['zero_shot'] else 'off'}"
           + (f" (no weights here for {_esc(', '.join(info['no_weights']))})" if info.get("no_weights") else "")
           + (f"; no knowledge-base observations for {_esc(', '.join(info['unobserved']))} (ranked as unseen models"
              + _esc(_lenders(info)) + ")" if info.get("unobserved") else "")
           + f"; seed {_esc(info['seed'])}; {_num(info['seconds'], '{:.1f}')} s.</p>",
           "<p class=\"small\">Predicted fine-tuned MASE is the mean over the target's sampled windows of each "
           "model's predicted score after timetic's uniform fine-tuning recipe; intervals are 90%. Rows in red: "
           "P(fine-tuning beats zero-shot) &lt; 0.5 (negative-transfer warning); =k: tied with the model above "
           "(their order holds in fewer than 60% of joint samples); P(beats s-naive): the model's mean "
           "fine-tuned MASE below the seasonal-naive forecast's on the same windows.</p>"]
    notes = [f"task {t}: outside the knowledge base, intervals widened x{v:.2f}"
             for t, v in (info.get("out_of_domain") or {}).items() if v > 1] + list(info.get("warnings") or [])
    if notes:
        out.append("<div class=\"warn\"><strong>Warnings</strong><ul>"
                   + "".join(f"<li>{_esc(n)}</li>" for n in dict.fromkeys(notes)) + "</ul></div>")
    for task in ranking.get_column("task").unique(maintain_order=True).to_list():
        part = ranking.filter(pl.col("task") == task)
        out.append(f"<h2>Task {_esc(task)}</h2>")
        heads = ["rank", "model", "adapter", "pred. MASE", "90% interval", "zero-shot", "pred. gain",
                 "P(improve)", "P(best)", "E[regret]", "P(beats s-naive)"]
        verdict = naive_verdict(part)
        if verdict:
            out.append(f"<p><strong>{_esc(verdict)}</strong></p>")
        out.append("<table><thead><tr>" + "".join(
            f'<th class="{"l" if h in ("model", "adapter") else ""}">{h}</th>' for h in heads) + "</tr></thead><tbody>")
        for r in part.iter_rows(named=True):
            cls = ' class="neg"' if r["negative_transfer"] else ""
            gain = r["predicted_gain"]
            cells = [("=" if r.get("tied_with_above") else "") + str(r["rank"]), f'<td class="l">{_esc(r["model_id"])}</td>', f'<td class="l">{_esc(r["adapter"])}</td>',
                     _num(r["predicted_mase"]), f"{_num(r['lower_90'])}–{_num(r['upper_90'])}",
                     _num(r["zero_shot_mase"]), "–" if gain is None else f"{100 * gain:+.1f}%",
                     _num(r["p_improve"], "{:.2f}"), _num(r["p_best"], "{:.2f}"),
                     f"{100 * r['expected_regret']:.1f}%", _num(r.get("p_beats_naive"), "{:.2f}")]
            out.append(f"<tr{cls}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table>")
        out.append(_ranking_plot(part))
        ex = expl.filter(pl.col("task") == task)
        if ex.height:
            out.append("<h3>Nearest source datasets of the top models</h3>"
                       "<p class=\"small\">Distance: RMS of standardised differences of the dataset means of all "
                       "window meta-features; observed MASE: geometric mean over the source's windows.</p>")
            out.append('<table><thead><tr><th class="l">model</th><th class="l">source dataset</th><th>distance</th>'
                       "<th>observed fine-tuned</th><th>observed zero-shot</th></tr></thead><tbody>")
            for r in ex.iter_rows(named=True):
                out.append(f'<tr><td class="l">{_esc(r["model_id"])}</td><td class="l">{_esc(r["dataset_id"])}</td>'
                           f"<td>{_num(r['distance'], '{:.2f}')}</td><td>{_num(r['observed_ft_mase'])}</td>"
                           f"<td>{_num(r['observed_zs_mase'])}</td></tr>")
            out.append("</tbody></table>")
        tf = feats.get(task)
        if tf is not None and features:
            means = {f: float(tf.get_column(f).mean()) for f in features}
            src = source_means.filter(pl.col("task") == task)
            src = src if src.height else source_means
            out.append(f"<h3>Target features ({tf.height} windows)</h3>")
            out.append('<table><thead><tr><th class="l">feature</th><th class="l">selected</th><th>target mean</th><th>target sd</th>'
                       "<th>KB min</th><th>KB median</th><th>KB max</th></tr></thead><tbody>")
            for f in features:
                col = src.get_column(f)
                sel = "yes" if f in info["features"] else ""
                out.append(f'<tr><td class="l">{_esc(f)}</td><td class="l">{sel}</td><td>{_num(means[f])}</td>'
                           f"<td>{_num(float(tf.get_column(f).std() or 0.0))}</td><td>{_num(float(col.min()))}</td>"
                           f"<td>{_num(float(col.median()))}</td><td>{_num(float(col.max()))}</td></tr>")
            out.append("</tbody></table>")
            out.append(_feature_plot(means, src, features))
    out.append("<p class=\"small\">Generated by timetic (TimeTic method, arXiv 2509.23695).</p></body></html>")
    return "\n".join(out)
