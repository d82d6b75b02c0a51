"""Forecasting tasks: frequency, horizon, context length, seasonality, metric.

Presets follow GIFT-Eval's convention (base horizon by frequency; medium and long horizons as
multiples of the base for high-frequency data), scaled so that every task stays trainable on a
2-core CPU. See the README's task table; :func:`preset_table` prints the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from timetic.errors import TimeticInputError

TASK_NAMES = ("short", "medium", "long")
#: Fraction of every series held out at its end for final evaluation (GIFT-Eval: last 10%).
TEST_FRACTION = 0.1

# GIFT-Eval base horizons: S 60, T/H 48, D 30, W 8, M 12, Q 8, A 6.
_UNIT_TABLE: dict[str, tuple[int, int]] = {
    # unit: (base horizon, context length)
    "S": (60, 512),
    "T": (48, 512),
    "H": (48, 512),
    "D": (30, 256),
    "W": (8, 104),
    "M": (12, 64),
    "Q": (8, 32),
    "A": (6, 16),
}
#: multiples of the base horizon for (short, medium, long).
#: sub-daily: GIFT-Eval uses 1x / 10x / 15x; we use 1x / 5x / 10x so that context + horizon
#: stays <= 1024 points (480 + 512), which keeps fine-tuning of ~1M-parameter models at
#: seconds per epoch on 2 cores. Daily and coarser: GIFT-Eval has only short; timetic adds
#: 2x and 3x so that every dataset has three tasks (marked as our extension in the README).
_HIGH_FREQ_MULT = (1, 5, 10)
_LOW_FREQ_MULT = (1, 2, 3)


def freq_unit(freq: str) -> tuple[str, int]:
    """Split a pandas frequency alias into (unit, multiple): ``"30min" -> ("T", 30)``.

    Units: S (second), T (minute), H (hour), D (day), B (business day, treated as D),
    W (week), M (month), Q (quarter), A (year).
    """
    try:
        off = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as e:
        raise TimeticInputError(
            f"unknown frequency {freq!r}; give a pandas alias such as 'h', '30min', 'D', 'W', 'MS'"
        ) from e
    if off.name in ("ms", "us", "ns", "L", "U", "N"):
        raise TimeticInputError(
            f"sub-second frequency {freq!r} is not supported; resample to seconds or coarser"
        )
    name = off.name.upper()
    n = int(off.n)
    if name.startswith(("MIN", "T")):
        return "T", n
    first = name.split("-")[0]
    mapping = {
        "S": "S", "H": "H", "D": "D", "B": "D", "C": "D", "W": "W", "M": "M", "MS": "M",
        "ME": "M", "BM": "M", "BMS": "M", "BME": "M", "SM": "M", "SMS": "M", "SME": "M",
        "Q": "Q", "QS": "Q", "QE": "Q", "BQ": "Q", "BQS": "Q", "BQE": "Q",
        "A": "A", "AS": "A", "Y": "A", "YS": "A", "YE": "A", "BA": "A", "BY": "A",
        "BYS": "A", "BYE": "A", "BAS": "A",
    }
    if first in mapping:
        return mapping[first], n
    raise TimeticInputError(
        f"frequency {freq!r} is not supported; resample to seconds, minutes, hours, days, weeks, "
        "months, quarters or years"
    )


def is_high_frequency(freq: str) -> bool:
    """Sub-daily data (seconds, minutes, hours) get GIFT-Eval's medium and long multiples."""
    return freq_unit(freq)[0] in ("S", "T", "H")


def seasonality(freq: str) -> int:
    """Season length m of seasonal MASE, GluonTS' convention as in GIFT-Eval.

    hourly 24, 30min 48, 15min 96, 10min 144, daily 1, business-daily 5, weekly 1, monthly 12,
    quarterly 4, yearly 1.
    """
    freq_unit(freq)  # validates
    from gluonts.time_feature import get_seasonality

    return int(get_seasonality(freq))


def feature_period(freq: str) -> int:
    """Season length used by the seasonal meta-features (trend/seasonal strength, seasonal ACF).

    Same as :func:`seasonality` except daily data (7, the week) and weekly data (52, the year),
    where MASE's convention of 1 would hide the calendar season the features should see.
    Business days keep their MASE season (5, the business week).
    """
    unit, n = freq_unit(freq)
    if unit == "D" and n == 1 and seasonality(freq) == 1:
        return 7
    if unit == "W" and n == 1:
        return 52
    return seasonality(freq)


@dataclass(frozen=True)
class Task:
    """A forecasting task on one dataset.

    Attributes:
        freq: pandas frequency alias of the data (``"h"``, ``"30min"``, ``"D"``, ``"W-SUN"``, ...).
        horizon: number of future steps H to forecast.
        context_length: number of past steps C a model sees.
        seasonality: season length m (steps) of seasonal MASE (GluonTS / GIFT-Eval convention).
        metric: the score the knowledge base learns (``"MASE"``; ``"WQL"`` is also recorded).
        name: ``"short"``, ``"medium"``, ``"long"`` or ``"custom"``.
    """

    freq: str
    horizon: int
    context_length: int
    seasonality: int
    metric: str = "MASE"
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.context_length < 2 or self.seasonality < 1:
            raise TimeticInputError(
                f"invalid task (horizon={self.horizon}, context_length={self.context_length}, "
                f"seasonality={self.seasonality}); use horizon >= 1, context_length >= 2, "
                "seasonality >= 1"
            )
        if self.metric not in ("MASE", "WQL"):
            raise TimeticInputError(f"unknown metric {self.metric!r}; use 'MASE' or 'WQL'")

    @property
    def window_length(self) -> int:
        """C + H: the length of one sampled window."""
        return self.context_length + self.horizon

    @classmethod
    def preset(cls, name: str, freq: str) -> "Task":
        """The ``short`` / ``medium`` / ``long`` preset for a frequency (see the README table)."""
        if name not in TASK_NAMES:
            raise TimeticInputError(
                f"unknown task {name!r}; use one of {', '.join(TASK_NAMES)} (or 'all' in the CLI)"
            )
        unit, n = freq_unit(freq)
        base, context = _UNIT_TABLE[unit]
        mult = (_HIGH_FREQ_MULT if unit in ("S", "T", "H") else _LOW_FREQ_MULT)[
            TASK_NAMES.index(name)
        ]
        horizon = base * mult
        # context: at least the preset length, and never shorter than the horizon
        context = max(context, min(horizon, 512))
        return cls(
            freq=freq,
            horizon=horizon,
            context_length=context,
            seasonality=seasonality(freq),
            name=name,
        )

    @property
    def period(self) -> int:
        """Season length for the seasonal meta-features (see :func:`feature_period`)."""
        return feature_period(self.freq)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        return cls(**{k: d[k] for k in ("freq", "horizon", "context_length", "seasonality", "metric", "name")})


def test_length(series_length: int, task: Task) -> int:
    """Length of the final evaluation span of a series: max(ceil(10% of it), horizon).

    Nothing in this span is ever used for features, selection or fine-tuning.
    """
    return max(math.ceil(TEST_FRACTION * series_length), task.horizon)


test_length.__test__ = False  # not a pytest test when imported into test modules


def preset_table() -> list[dict]:
    """Rows of the README task table, one per frequency unit."""
    rows = []
    for unit, freq in (("S", "s"), ("T", "min"), ("H", "h"), ("D", "D"), ("W", "W"), ("M", "MS"), ("Q", "QS"), ("A", "YS")):
        tasks = [Task.preset(t, freq) for t in TASK_NAMES]
        rows.append(
            {
                "unit": unit,
                "short": tasks[0].horizon,
                "medium": tasks[1].horizon,
                "long": tasks[2].horizon,
                "context": [t.context_length for t in tasks],
                "seasonality": tasks[0].seasonality,
                "feature_period": tasks[0].period,
            }
        )
    return rows
