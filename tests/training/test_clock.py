"""TrainingClock: cumulative time and best epoch across a restart."""

import json

import pytest

from kzoo.training.clock import TrainingClock


def _run_epochs(clock, first, losses):
    clock.on_train_begin()
    for i, loss in enumerate(losses):
        clock.on_epoch_end(first + i, {"val_loss": loss})


def test_clock_accumulates_across_a_restart(tmp_path):
    path = str(tmp_path / "clock.json")
    clock = TrainingClock(path)
    _run_epochs(clock, 0, [3.0, 2.0, 2.5])
    with open(path) as f:
        first = json.load(f)
    assert [r["epoch"] for r in first] == [1, 2, 3]
    assert first[0]["seconds"] <= first[1]["seconds"] <= first[2]["seconds"]

    # Killed after epoch 3 was on the clock but before its backup: the
    # backup restores epoch 2, so epoch 3's record is dropped and rerun.
    resumed = TrainingClock(path, initial_epoch=2)
    assert [r["epoch"] for r in resumed.records] == [1, 2]
    _run_epochs(resumed, 2, [1.5, 1.8])
    records = resumed.records
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert [r["val_loss"] for r in records] == [3.0, 2.0, 1.5, 1.8]
    assert records[2]["seconds"] >= first[1]["seconds"]  # offset kept
    summary = resumed.summary()
    assert summary["best_epoch"] == 3
    assert summary["seconds_to_best"] == records[2]["seconds"]
    assert summary["total_seconds"] == records[3]["seconds"]


def test_clock_rejects_a_negative_initial_epoch(tmp_path):
    with pytest.raises(ValueError, match="initial_epoch"):
        TrainingClock(str(tmp_path / "c.json"), initial_epoch=-1)


def test_empty_clock_has_an_empty_summary(tmp_path):
    assert TrainingClock(str(tmp_path / "c.json")).summary() == {}
