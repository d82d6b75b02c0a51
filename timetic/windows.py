"""Window sampling: the target's series -> n windows of context + horizon points.

Windows are spread across series (equal share per series, leftovers to series with room) and
across time (stratified: each series' admissible start range is cut into as many equal strata as
it gets windows, one start drawn uniformly per stratum). Every window ends before the final
evaluation span of its series (:func:`timetic.tasks.test_length`), so features and selection never
see the data that fine-tuned scores are measured on. Seeded: same target, task and seed give the
same windows.

Missing values: a window is admissible only when at least :data:`MIN_OBSERVED` (half) of its
context and half of its horizon are observed, so long gaps (an outage filled with NaN by
:func:`timetic.data.load_target`) give no windows that are mostly NaN; a series with no admissible
window gets none (one warning), and a target with none at all is an error. Strata are cut over the
admissible starts, so a series without missing values gets the same windows as before the rule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from timetic.data import Target, power_of_ten_factors
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.tasks import Task, test_length

#: default number of windows per dataset (the TimeTic few-shot setting uses 100).
DEFAULT_WINDOWS = 256
#: hard cap on windows per dataset (features for 4096 windows take ~10 s).
MAX_WINDOWS = 4096
#: least fraction of a window's context, and of its horizon, that must be observed (not NaN).
MIN_OBSERVED = 0.5


@dataclass
class Windows:
    """Sampled windows of one target for one task.

    Attributes:
        values: shape (n, C + H), float64, NaN where the target is missing.
        item_ids: shape (n,), the series of each window.
        starts: shape (n,), index of each window's first point in its series.
        task: the task whose C and H define the window.
    """

    values: np.ndarray
    item_ids: np.ndarray
    starts: np.ndarray
    task: Task

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def context(self) -> np.ndarray:
        """Shape (n, C)."""
        return self.values[:, : self.task.context_length]

    @property
    def future(self) -> np.ndarray:
        """Shape (n, H)."""
        return self.values[:, self.task.context_length :]

    def for_models(self) -> "Windows":
        """The windows as models should see them: each window whose mean |observed context| lies
        outside :data:`MODEL_SCALE_RANGE` multiplied by the power of ten that brings it into
        [1, 10) (:func:`power_of_ten_factors`). Scores scaled by the in-sample error (MASE, WQL)
        do not change; models whose scalers have a floor (1e-5 and the like) or compute in
        float32 stop failing on values like 1e-4 or 1e12."""
        factors = power_of_ten_factors(self.context)
        if (factors == 1.0).all():
            return self
        return Windows(values=self.values * factors[:, None], item_ids=self.item_ids, starts=self.starts,
                       task=self.task)

    def subset(self, idx: np.ndarray) -> "Windows":
        """The windows at positions ``idx`` (same task)."""
        idx = np.asarray(idx, dtype=np.int64)
        return Windows(values=self.values[idx], item_ids=self.item_ids[idx], starts=self.starts[idx], task=self.task)

    def index_frame(self) -> pl.DataFrame:
        """One row per window: ``window`` (0..n-1), ``item_id``, ``start``."""
        return pl.DataFrame(
            {
                "window": np.arange(len(self), dtype=np.int64),
                "item_id": self.item_ids.astype(str),
                "start": self.starts.astype(np.int64),
            }
        )


def sample_windows(
    target: Target, task: Task, n_windows: int = DEFAULT_WINDOWS, seed: int = 0
) -> Windows:
    """Sample up to ``n_windows`` windows of ``task.window_length`` points.

    Fewer windows come back when the series hold fewer distinct admissible starts. Series too
    short for the task are dropped with a warning (:meth:`Target.for_task`); windows whose context
    or horizon is mostly missing are never drawn (module docstring).
    """
    if isinstance(n_windows, bool) or not isinstance(n_windows, (int, np.integer)) or not 1 <= n_windows <= MAX_WINDOWS:
        raise TimeticInputError(
            f"the number of windows (--windows, n_windows=) must be a whole number from 1 to {MAX_WINDOWS} "
            f"(got {n_windows!r}); pick a value in range"
        )
    target = target.for_task(task)
    series = target.series()
    ids = np.asarray(target.item_ids, dtype=object)
    L = task.window_length
    admissible = [_admissible_starts(s, task) for s in series]
    capacity = np.array([len(a) for a in admissible])
    if not capacity.any():
        raise TimeticInputError(
            f"no window of task {task.name!r} has at least half of its context ({task.context_length}) "
            f"and of its horizon ({task.horizon}) observed: the target is mostly missing; pass series "
            "with shorter gaps, or a shorter task (--task short)"
        )
    empty = np.flatnonzero(capacity == 0)
    if len(empty):
        shown = ", ".join(repr(ids[i]) for i in empty[:5]) + (" ..." if len(empty) > 5 else "")
        warnings.warn(
            f"{len(empty)} of {len(ids)} series get no windows: none of their windows of task "
            f"{task.name!r} has half of its context and of its horizon observed ({shown})",
            TimeticWarning,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    quota = _allocate(capacity, n_windows, rng)
    values, item_ids, starts = [], [], []
    for i in np.flatnonzero(quota):
        q, cap = int(quota[i]), int(capacity[i])
        edges = np.floor(np.linspace(0, cap, q + 1)).astype(np.int64)
        s = admissible[i][rng.integers(edges[:-1], edges[1:])]  # one start per stratum; strata are disjoint
        windows = np.lib.stride_tricks.sliding_window_view(series[i], L)[s]
        values.append(windows)
        item_ids.extend([ids[i]] * q)
        starts.append(s)
    return Windows(
        values=np.ascontiguousarray(np.concatenate(values), dtype=np.float64),
        item_ids=np.asarray(item_ids, dtype=object),
        starts=np.concatenate(starts),
        task=task,
    )


def _admissible_starts(series: np.ndarray, task: Task) -> np.ndarray:
    """Starts (ascending, int64) of the windows of ``series`` that end before its evaluation span
    and have at least :data:`MIN_OBSERVED` of their context and of their horizon observed."""
    C, L = task.context_length, task.window_length
    cap = len(series) - test_length(len(series), task) - L + 1
    if cap <= 0:
        return np.zeros(0, dtype=np.int64)
    observed = np.isfinite(series)
    if observed[: cap + L - 1].all():
        return np.arange(cap, dtype=np.int64)
    seen = np.concatenate([[0], np.cumsum(observed)])  # seen[i]: observed points before i
    s = np.arange(cap, dtype=np.int64)
    in_context, in_future = seen[s + C] - seen[s], seen[s + L] - seen[s + C]
    ok = (in_context >= MIN_OBSERVED * C) & (in_future >= MIN_OBSERVED * task.horizon)
    return s[ok]


def _allocate(capacity: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Split n windows over series: equal shares, capped by each series' capacity.

    Shape (n_series,) -> (n_series,). Leftovers from full series go to the others; ties broken by
    a seeded random order of the series.
    """
    quota = np.zeros_like(capacity)
    order = rng.permutation(len(capacity))
    remaining = min(n, int(capacity.sum()))
    while remaining > 0:
        open_ = order[quota[order] < capacity[order]]
        share = max(1, remaining // len(open_))
        for i in open_:
            take = min(share, capacity[i] - quota[i], remaining)
            quota[i] += take
            remaining -= take
            if remaining == 0:
                break
    return quota
