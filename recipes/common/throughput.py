"""Tokens per second of a training run.

For batches of a fixed shape (B * S tokens a step, padding included),
`Throughput` times windows of steps. Where the tokens are counted by a
metric instead (the translation recipes' bucketed batches), kzoo.training's
`TokenCount` metric and `TrainingScalars` callback do it; they are
re-exported here.
"""

import os
import time

import keras
import numpy as np

from kzoo.training import TokenCount  # noqa: F401
from kzoo.training.tensorboard import TrainingScalars  # noqa: F401


class Throughput(keras.callbacks.Callback):
    """Tokens/s (B * S per step, padding included) and the learning rate, as
    TensorBoard scalars every `update_freq` steps; `tokens_per_second` holds
    the mean over the run without its first window (compilation)."""

    def __init__(self, tokens_per_step, log_dir=None, update_freq=10):
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.log_dir = log_dir
        self.update_freq = update_freq
        self.windows = []
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.log_dir:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))
        self._start, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self._steps < self.update_freq:
            return
        elapsed = time.perf_counter() - self._start
        rate = self._steps * self.tokens_per_step / max(elapsed, 1e-9)
        self.windows.append(rate)
        if self._writer is not None:
            import tensorflow as tf

            optimizer = self.model.optimizer
            step = int(keras.ops.convert_to_numpy(optimizer.iterations))
            lr = optimizer.learning_rate
            with self._writer.as_default(step=step):
                tf.summary.scalar("tokens_per_second", rate)
                tf.summary.scalar("learning_rate", float(keras.ops.convert_to_numpy(lr)))
        self._start, self._steps = time.perf_counter(), 0

    @property
    def tokens_per_second(self):
        rates = self.windows[1:] or self.windows
        return float(np.mean(rates)) if rates else float("nan")
