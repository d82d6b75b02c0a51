"""Forecasting tasks: frequency, horizon, context length, seasonality, metric.

Presets follow GIFT-Eval's convention (base horizon by frequency; medium and long horizons as
multiples of the base for high-frequency data), scaled so that every task stays trainable on a
2-core CPU. See the README's task table; :func:`preset_table` prints the same numbers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import pandas as pd

from timetic.errors import TimeticInputError

TASK_NAMES = ("short", "medium", "long")
#: Fraction of every series held out at its end for final evaluation (GIFT-Eval: last 10%).
TEST_FRACTION = 0.1

# GIFT-Eval base horizons: S 60, T/H 48, D 30, W 8, M 12, Q 8, A 6. Business hours (BH, not in
# GIFT-Eval; our choice): one business week of 40 hours (5 days x 8), with the sub-daily multiples.
_UNIT_TABLE: dict[str, tuple[int, int]] = {
    # unit: (base horizon, context length)
    "S": (60, 512),
    "T": (48, 512),
    "H": (48, 512),
    "BH": (40, 512),
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
_SUB_DAILY = ("S", "T", "H", "BH")
#: steps of pandas' business hour (``bh``: 09:00 to 17:00, Monday to Friday) in one business day.
BUSINESS_HOURS_PER_DAY = 8


def freq_unit(freq: str) -> tuple[str, int]:
    """Split a pandas frequency alias into (unit, multiple): ``"30min" -> ("T", 30)``.

    Units: S (second), T (minute), H (hour), BH (business hour: ``bh`` / ``cbh``, 09:00-17:00
    Monday to Friday), D (day; business days ``B`` / ``C`` too), W (week), M (month),
    Q (quarter), A (year).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas' deprecated aliases ('BH', 'H')
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
    if first in ("BH", "CBH"):
        _check_business_hours(off, freq)
        return "BH", n
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
        f"frequency {freq!r} is not supported; resample to seconds, minutes, hours, business "
        "hours, days, business days, weeks, months, quarters or years"
    )


def _check_business_hours(off: pd.DateOffset, freq: str) -> None:
    """Only pandas' standard business-hour offset (09:00-17:00, Monday to Friday, no holidays): the
    frequency is stored as a string, which cannot carry other opening hours (the data may have
    other ones: :func:`timetic.data.load_target` reads any 8 hourly bars a weekday as ``bh``)."""
    weekmask = getattr(off, "weekmask", None) or "Mon Tue Wed Thu Fri"
    holidays = getattr(off, "holidays", None) or ()
    if (
        [t.strftime("%H:%M") for t in off.start] != ["09:00"]
        or [t.strftime("%H:%M") for t in off.end] != ["17:00"]
        or weekmask != "Mon Tue Wed Thu Fri"
        or len(holidays)
    ):
        raise TimeticInputError(
            f"business-hour offsets other than 09:00-17:00 Monday to Friday ({off!r}) are not "
            "supported; use freq 'bh' (any 8 hourly bars a weekday read as business hours), or "
            "aggregate to business days (freq 'B')"
        )


def is_high_frequency(freq: str) -> bool:
    """Sub-daily data (seconds, minutes, hours, business hours) get GIFT-Eval's medium and long
    multiples."""
    return freq_unit(freq)[0] in _SUB_DAILY


def seasonality(freq: str) -> int:
    """Season length m of seasonal MASE, GluonTS' convention as in GIFT-Eval.

    hourly 24, 30min 48, 15min 96, 10min 144, daily 1, business-daily 5, weekly 1, monthly 12,
    quarterly 4, yearly 1. Business hours (not in GluonTS, which says 1): 8, one business day
    (``2bh``: 4; a multiple that does not divide 8: 1). Custom business days (``C``): 5, as ``B``.
    """
    unit, n = freq_unit(freq)  # validates
    if unit == "BH":
        return BUSINESS_HOURS_PER_DAY // n if BUSINESS_HOURS_PER_DAY % n == 0 else 1
    from gluonts.time_feature import get_seasonality

    if _is_custom_business_day(freq):
        return 5 if n == 1 else 1
    return int(get_seasonality(freq))


def _is_custom_business_day(freq: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return isinstance(pd.tseries.frequencies.to_offset(freq), pd.offsets.CustomBusinessDay)


def feature_period(freq: str) -> int:
    """Season length used by the seasonal meta-features (trend/seasonal strength, seasonal ACF).

    Same as :func:`seasonality` except daily data (7, the week) and weekly data (52, the year),
    where MASE's convention of 1 would hide the calendar season the features should see.
    Business days keep their MASE season (5, the business week), business hours theirs (8, the
    business day).
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
        mult = (_HIGH_FREQ_MULT if unit in _SUB_DAILY else _LOW_FREQ_MULT)[
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
    for unit, freq in (("S", "s"), ("T", "min"), ("H", "h"), ("BH", "bh"), ("D", "D"), ("B", "B"), ("W", "W"),
                       ("M", "MS"), ("Q", "QS"), ("A", "YS")):
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
