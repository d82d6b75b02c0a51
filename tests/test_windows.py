import numpy as np
import pandas as pd
import polars as pl
import pytest

from conftest import make_long
from timetic.data import load_target
from timetic.errors import TimeticInputError
from timetic.tasks import TASK_NAMES, Task, preset_table, test_length
from timetic.windows import MAX_WINDOWS, sample_windows


def test_presets_follow_gift_eval_base_and_multiples():
    assert Task.preset("short", "h").horizon == 48
    assert Task.preset("medium", "h").horizon == 5 * 48 and Task.preset("long", "h").horizon == 10 * 48
    assert Task.preset("short", "D").horizon == 30 and Task.preset("short", "W-SUN").horizon == 8
    assert Task.preset("short", "MS").horizon == 12
    assert Task.preset("short", "h").seasonality == 24 and Task.preset("short", "D").period == 7
    for row in preset_table():
        assert row["short"] < row["medium"] < row["long"]
    with pytest.raises(TimeticInputError):
        Task.preset("huge", "h")


def test_windows_deterministic_spread_and_outside_eval_span():
    t = load_target(make_long(4, 3000))
    task = Task.preset("short", "h")
    w1 = sample_windows(t, task, 200, seed=3)
    w2 = sample_windows(t, task, 200, seed=3)
    w3 = sample_windows(t, task, 200, seed=4)
    np.testing.assert_array_equal(w1.values, w2.values)
    assert not np.array_equal(w1.starts, w3.starts)
    assert len(w1) == 200 and w1.values.shape == (200, task.window_length)
    counts = pd.Series(w1.item_ids).value_counts()
    assert counts.min() == 50  # equal share per series
    for item, series in zip(t.item_ids, t.series()):
        starts = w1.starts[w1.item_ids == item]
        end = len(series) - test_length(len(series), task)
        assert (starts + task.window_length <= end).all()
        # spread over time: windows in every quarter of the admissible range
        assert len(np.unique(np.floor(4 * starts / (end - task.window_length + 1)))) == 4
        for s in starts[:5]:
            np.testing.assert_array_equal(w1.values[w1.item_ids == item][list(starts).index(s)], series[s : s + task.window_length])


def test_windows_capacity_and_limits():
    t = load_target(make_long(2, 700))
    task = Task.preset("short", "h")
    w = sample_windows(t, task, 4000, seed=0)
    cap = sum(len(s) - test_length(len(s), task) - task.window_length + 1 for s in t.series())
    assert len(w) == cap  # all distinct admissible starts, no duplicates
    assert len({(i, s) for i, s in zip(w.item_ids, w.starts)}) == len(w)
    with pytest.raises(TimeticInputError, match="from 1 to"):
        sample_windows(t, task, MAX_WINDOWS + 1)


@pytest.mark.parametrize("freq,period", [("B", 5), ("D", 7), ("W-SUN", 52), ("h", 24), ("MS", 12), ("QS", 4), ("YS", 1)])
def test_feature_period_sees_the_calendar_season(freq, period):
    from timetic.tasks import feature_period

    assert feature_period(freq) == period
