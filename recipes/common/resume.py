"""Resume and crash helpers.

Resuming is kzoo.training's (`make_backup_callback`, `resumed_step`,
`ResumableEarlyStopping`, re-exported here); the tests of resume need a run
that stops part-way, which these callbacks provide (`--stop_after_steps`):
`StopAfterSteps` raises `TrainingInterrupted` (in-process tests),
`CrashAfterSteps` exits the process without cleanup, like a killed run.
"""

import os
import sys

import keras

from kzoo.training import ResumableEarlyStopping, make_backup_callback, resumed_step  # noqa: F401


class TrainingInterrupted(RuntimeError):
    """Raised by `StopAfterSteps` (tests of resume)."""


class StopAfterSteps(keras.callbacks.Callback):
    """TEST ONLY: raises after the optimizer has made `steps` steps."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if done >= self.steps:
            raise TrainingInterrupted(f"stopped after {done} steps (--stop_after_steps)")


class CrashAfterSteps(keras.callbacks.Callback):
    """TEST ONLY: dies like a killed process (no cleanup) after `steps`
    batches of this run, with exit status `status`."""

    def __init__(self, steps, status=3):
        super().__init__()
        self.steps, self.status, self.seen = steps, status, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.steps:
            sys.stdout.flush()
            os._exit(self.status)
