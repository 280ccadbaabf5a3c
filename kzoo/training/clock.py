"""Training wall time that survives a restart. Backend-agnostic."""

import json
import os
import time

import keras


class TrainingClock(keras.callbacks.Callback):
    """Records cumulative training time and the monitored value per epoch.

    A run that is killed and resumed from its backup would otherwise only
    know the time of its last part. At the end of every epoch this callback
    appends `{"epoch", "seconds", monitor}` to a JSON file, where `seconds`
    is the wall time of all epochs so far, across restarts. On resume, pass
    `initial_epoch` (the epoch the backup restores); records of later epochs
    (written before a kill, after the last backup) are dropped, since those
    epochs run again.

    Put it before the backup callback in the callback list, so that an epoch
    is on the clock before the backup that makes it final.

    Args:
        path: the JSON file (its folder is created).
        monitor: the log entry recorded with each epoch (e.g. `"val_loss"`).
        initial_epoch: the number of epochs already done by earlier runs.
    """

    def __init__(self, path, monitor="val_loss", initial_epoch=0):
        super().__init__()
        if not isinstance(initial_epoch, int) or initial_epoch < 0:
            raise ValueError(
                "`initial_epoch` must be a non-negative integer; "
                f"received {initial_epoch!r}"
            )
        self.path = path
        self.monitor = monitor
        self.records = []
        if os.path.exists(path):
            with open(path) as f:
                records = json.load(f)
            self.records = [r for r in records if r["epoch"] <= initial_epoch]
        self._offset = self.records[-1]["seconds"] if self.records else 0.0
        self._done = initial_epoch

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self._done += 1
        value = (logs or {}).get(self.monitor)
        self.records.append(
            {
                "epoch": self._done,
                "seconds": self._offset + time.perf_counter() - self._start,
                self.monitor: None if value is None else float(value),
            }
        )
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.records, f)
        os.replace(tmp, self.path)

    def summary(self):
        """`{"total_seconds", "best_epoch", "seconds_to_best"}` (lowest value).

        Empty when no epoch has been recorded.
        """
        if not self.records:
            return {}
        scored = [r for r in self.records if r.get(self.monitor) is not None]
        out = {"total_seconds": self.records[-1]["seconds"]}
        if scored:
            best = min(scored, key=lambda r: r[self.monitor])
            out.update(
                {"best_epoch": best["epoch"], "seconds_to_best": best["seconds"]}
            )
        return out
