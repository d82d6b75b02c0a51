"""Recording into a knowledge base: datasets (with window meta-features), models (with entropy
profiles) and observations (fine-tuning results), each computed by timetic's own stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from timetic.data import Target
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.features import add_descriptors, dataset_descriptors, window_features
from timetic.finetune import FinetuneResult, split_series
from timetic.kb import KnowledgeBase, content_hash, series_hash
from timetic.tasks import TASK_NAMES, Task

#: every evaluation window of a dataset gets features (the runner's capped subsets are all covered).
ALL_EVAL_WINDOWS = 1_000_000


def dataset_windows(target: Target, task: Task, dataset_id: str, backend: str = "fast") -> pl.DataFrame:
    """Meta-features of every evaluation window of ``target`` for ``task``.

    A window is the C points of context plus the H points of its future, keyed by the index of
    its first forecast step (``window_start``), as in the observations the runner produces.
    """
    _, ev = split_series(target, task, max_eval_windows=ALL_EVAL_WINDOWS)
    values = np.concatenate([ev.context, ev.future], axis=1)
    feats = window_features(values, period=task.period, backend=backend)
    feats = add_descriptors(feats, dataset_descriptors(target.freq, target.lengths))
    keys = pl.DataFrame(
        {
            "dataset_id": [dataset_id] * len(ev),
            "task": [task.name] * len(ev),
            "item_id": [str(i) for i in ev.item_ids],
            "window_start": ev.starts.astype(np.int64),
        }
    )
    return pl.concat([keys, feats], how="horizontal")


def add_dataset(
    kb: KnowledgeBase,
    target: Target,
    dataset_id: str | None = None,
    source: str = "",
    licence: str = "",
    domain: str = "",
    tasks: Sequence[str] = TASK_NAMES,
    backend: str = "fast",
) -> dict[str, int]:
    """Register a dataset and the features of its evaluation windows for each task.

    The dataset row and its windows are written as one transaction: a reader (or a process killed
    while writing) never sees the dataset without its windows. Tasks the dataset is too short for
    are skipped with a warning. Returns windows per task.
    """
    import warnings

    dataset_id = dataset_id or target.name
    frames, counts = [], {}
    for name in tasks:
        task = Task.preset(name, target.freq)
        try:
            df = dataset_windows(target, task, dataset_id, backend=backend)
        except TimeticInputError as e:
            warnings.warn(f"{dataset_id}: task {name} skipped ({e})", TimeticWarning, stacklevel=2)
            continue
        frames.append(df)
        counts[name] = df.height
    if not frames:
        raise TimeticInputError(f"dataset {dataset_id!r} is too short for every task; nothing was added")
    digest, series_digest = content_hash(target.frame), series_hash(target.frame)
    have = kb.datasets()
    if "series_hash" not in have.columns:
        have = have.with_columns(pl.lit(None, dtype=pl.Utf8).alias("series_hash"))
    twins = have.filter((pl.col("dataset_id") != dataset_id) & ((pl.col("content_hash") == digest)
                                                               | (pl.col("series_hash") == series_digest)))
    if twins.height:
        warnings.warn(f"{dataset_id}: the knowledge base holds the same series already as "
                      f"{', '.join(repr(d) for d in twins.get_column('dataset_id'))}; the kNN prior will count "
                      "them twice", TimeticWarning, stacklevel=2)
    row = pl.DataFrame(
        {
            "dataset_id": [dataset_id],
            "content_hash": [digest],
            "series_hash": [series_digest],
            "freq": [target.freq],
            "n_series": [target.n_series],
            "total_length": [int(target.lengths.sum())],
            "source": [source],
            "licence": [licence],
            "domain": [domain],
        }
    )
    if have.filter(pl.col("dataset_id") == dataset_id).height:  # re-added: empty notes keep the stored ones
        row = row.drop([c for c, v in (("source", source), ("licence", licence), ("domain", domain)) if not v])
    windows = pl.concat(frames, how="diagonal")
    with kb.transaction() as tx:  # both tables or neither, even if the process is killed
        tx.add_datasets(row)
        tx.add_windows(windows)
    return counts


def model_row(
    adapter: Any,
    model_id: str,
    source: str,
    revision: str = "",
    pretraining_corpus: str = "",
    pretraining_datasets: Sequence[str] = (),
    length: int = 6,
    seed: int = 0,
    probe: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """One ``models`` row: description and kNN + Rényi entropy profiles on the probe corpus.

    Without a ``revision``, an adapter whose ``info()`` has ``weights_sha256`` (the ttm family)
    records ``"sha256:<hex>"`` of its weights file there.
    """
    from timetic.profile import compute_profile

    if not revision:
        sha = adapter.info().get("weights_sha256", "") if hasattr(adapter, "info") else ""
        revision = f"sha256:{sha}" if sha else ""

    knn = compute_profile(adapter, probe, estimator="knn", length=length, seed=seed, progress=progress)
    renyi = compute_profile(adapter, probe, estimator="renyi", length=length, seed=seed)
    return pl.DataFrame(
        {
            "model_id": [model_id],
            "adapter": [adapter.name],
            "source": [source],
            "revision": [revision],
            "num_parameters": [int(adapter.num_parameters)],
            "depth": [int(adapter.depth)],
            "profile_knn": [knn.profile.tolist()],
            "profile_renyi": [renyi.profile.tolist()],
            "profile_raw_knn": [knn.raw.tolist()],
            "pretraining_corpus": [pretraining_corpus],
            "pretraining_datasets": [list(pretraining_datasets)],
        },
        schema_overrides={"pretraining_datasets": pl.List(pl.Utf8)},
    )


def check_new_model(models: pl.DataFrame, model_id: str, adapter: str, source: str, revision: str = "") -> None:
    """Refuse ``model_id`` when ``models`` (a KB's models table) holds it with another adapter, source
    or weight revision: the KB's observations of that id belong to those weights."""
    have = models.filter(pl.col("model_id") == model_id)
    if not have.height:
        return
    old = have.row(0, named=True)
    other_revision = bool(revision) and bool(old.get("revision")) and old["revision"] != revision
    if old["adapter"] != adapter or str(old["source"]) != source or other_revision:
        what = f"weights revision {str(old['revision'])[:19]}..." if other_revision else \
            f"adapter {old['adapter']}, source {old['source']}"
        raise TimeticInputError(
            f"model {model_id!r} is already in the knowledge base ({what}) and its observations belong to "
            "those weights; pick another --id or a new --kb"
        )


def add_model(kb: KnowledgeBase, source: str | Path, adapter: str, model_id: str | None = None, **kwargs: Any) -> pl.DataFrame:
    """Load a model, compute its profiles and store its row (``revision``: by default the sha256 of a
    local folder's or file's weights). A model id already in the KB with other weights is refused
    (:func:`check_new_model`). Returns the row."""
    from timetic.adapters import load_model

    model_id = model_id or Path(str(source)).name
    where = source  # what is loaded; ``source`` is what the KB records
    if str(source).startswith(("zoo:", "weights:")):  # the KB's own source forms
        from timetic.kb import resolve_model_source

        where = resolve_model_source(kb, str(source))
        if not Path(where).exists():
            raise TimeticInputError(f"{source} resolves to {where}, which does not exist; check the name "
                                    "(timetic/zoo/<id>, zoo:v2/<id>) or set TIMETIC_WEIGHTS_DIR")
    if not kwargs.get("revision") and Path(str(where)).exists():
        from timetic.zoo import folder_revision

        kwargs["revision"] = folder_revision(where)
    check_new_model(kb.models(), model_id, adapter, str(source), kwargs.get("revision", ""))
    model = load_model(where, adapter=adapter)
    row = model_row(model, model_id, str(source), **kwargs)
    kb.add_models(row)
    return row


#: provenance entries kept with every observation (``fit_log``, JSON): the validation curve of the
#: run (``[[step, val_mase], ...]``) and how it stopped, for learning-curve features, and the CPU
#: seconds of its stages (``cpu_seconds``: zero_shot, finetune, evaluate; the column
#: ``wall_time_s`` also counts time the machine was busy with other work or the grid was paused).
FIT_LOG_KEYS = ("val_curve", "best_step", "best_val", "steps_run", "stopped_early", "learning_rate", "cpu_seconds")


def observation_rows(result: FinetuneResult, source: str | None = None) -> pl.DataFrame:
    """The ``observations`` rows of one fine-tuning run; ``source`` (e.g. ``"verify"``) says what
    produced them (the column is left out when ``None``, as for the grid's rows)."""
    prov = result.provenance
    t = result.table
    rows = t.select(
        pl.col("dataset").alias("dataset_id"),
        pl.col("model").alias("model_id"),
        "task", "item_id", "window_start", "horizon", "zs_mase", "ft_mase", "zs_wql", "ft_wql",
        "sn_mase", "sn_wql",
    ).with_columns(
        pl.lit(result.recipe.to_json()).alias("recipe"),
        pl.lit(int(result.recipe.seed), dtype=pl.Int64).alias("seed"),
        pl.lit(json.dumps(prov.get("versions", {}), sort_keys=True)).alias("versions"),
        pl.lit(json.dumps(prov.get("hardware", {}), sort_keys=True, default=str)).alias("hardware"),
        pl.lit(float(prov.get("wall_seconds", {}).get("finetune", float("nan")))).alias("wall_time_s"),
        pl.lit(str(prov.get("date", ""))).alias("date"),
        pl.lit(json.dumps({k: prov.get(k) for k in FIT_LOG_KEYS}, default=str)).alias("fit_log"),
    )
    return rows if source is None else rows.with_columns(pl.lit(source, dtype=pl.Utf8).alias("source"))


def add_observations(kb: KnowledgeBase, results: FinetuneResult | str | Path) -> int:
    """Store a run's per-window results (a :class:`FinetuneResult` or its parquet file).

    Warns when observation windows have no features in the KB (add the dataset first).
    """
    import warnings

    if not isinstance(results, FinetuneResult):
        results = FinetuneResult.read_parquet(Path(results))
    rows = observation_rows(results)
    known = kb.windows(dataset_id=rows.get_column("dataset_id").unique().to_list()).select(
        "dataset_id", "task", "item_id", "window_start"
    )
    missing = rows.join(known, on=["dataset_id", "task", "item_id", "window_start"], how="anti").height
    if missing:
        warnings.warn(
            f"{missing} of {rows.height} observed windows have no meta-features in the KB; run "
            f"`timetic add-dataset` for {rows.get_column('dataset_id')[0]!r} (and `timetic add-model` for a "
            "model the KB lacks) so they can be used",
            TimeticWarning,
            stacklevel=2,
        )
    return kb.add_observations(rows)
