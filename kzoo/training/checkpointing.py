"""Checkpoints that resume a killed run exactly, built on Keras' own callbacks.

`keras.callbacks.BackupAndRestore` saves the weights, the optimizer state and
the epoch counter, and on restart sets the epoch to resume from; with
`save_freq=N` steps it would also save in the middle of an epoch, but on
restart Keras replays that epoch from its first batch, so the resumed run
sees some batches twice. kzoo therefore makes one Keras "epoch" a period of
`steps_per_period` steps over an endless, deterministic data stream (see
`kzoo.data.translation.make_translation_dataset(shuffle_seed=...)`), backs up
at the end of every period, and starts the stream of a resumed run at
`resumed_step(...)`: the resumed run then sees exactly the batches an
uninterrupted run sees. `ResumableEarlyStopping` keeps early stopping's state
(best loss, patience count, best weights) on disk so that it survives too.

Model-agnostic and backend-agnostic.
"""

import json
import os
import shutil

import keras
import numpy as np

BACKUP_METADATA = "training_metadata.json"


def resumed_epoch(backup_dir):
    """The Keras epoch a `BackupAndRestore(backup_dir)` run will resume at.

    0 when there is no backup (a fresh run). Read it BEFORE `fit`, to start
    the data stream at the right batch.
    """
    path = os.path.join(backup_dir, BACKUP_METADATA)
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def resumed_step(backup_dir, steps_per_period):
    """Number of training steps already done by a backed-up run."""
    return resumed_epoch(backup_dir) * int(steps_per_period)


def _random_state_variables(model):
    """The model's variables that are not weights: seed-generator states."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that also backs up the random state.

    Keras' backup holds the weights, the optimizer and the epoch, but not the
    states of the layers' `SeedGenerator`s (dropout), so a resumed run would
    draw other dropout masks than an uninterrupted one. This subclass saves
    them beside the backup and restores them with it. Backs up at the end
    of every (Keras) epoch; see `make_backup_callback`.

    Args:
        backup_dir: a directory of its own; deleted when `fit` finishes.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch")
        self._random_state_path = os.path.join(backup_dir, "random_state.npz")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if os.path.exists(self._random_state_path) and os.path.exists(
            self._training_metadata_path
        ):
            states = _random_state_variables(self.model)
            with np.load(self._random_state_path) as data:
                if len(data.files) != len(states):
                    raise ValueError(
                        f"{self._random_state_path} holds {len(data.files)} "
                        f"random states; the model has {len(states)}"
                    )
                for i, variable in enumerate(states):
                    variable.assign(data[f"s{i}"])

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        states = _random_state_variables(self.model)
        tmp = self._random_state_path + ".tmp.npz"
        np.savez(
            tmp,
            **{f"s{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(states)},
        )
        os.replace(tmp, self._random_state_path)


def make_backup_callback(backup_dir):
    """A `BackupAndRestore` (weights, optimizer, epoch, random state).

    With kzoo's period-sized Keras epochs this is "a checkpoint every
    `steps_per_period` steps"; the optimizer's step counter drives the
    learning-rate schedule; the backup is deleted when `fit` finishes.
    """
    return BackupAndRestore(backup_dir)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` whose state survives a killed run.

    Keras keeps the best value, the patience count and the best weights in
    memory, so a run restarted by `BackupAndRestore` would forget them. This
    subclass writes them to `state_dir` at the end of every epoch and reads
    them back at the start of `fit`; everything else is Keras' own logic.
    `state_dir` is removed when `fit` ends normally (as the backup is).
    Put it BEFORE the `BackupAndRestore` callback in the list so that its
    state is never older than the backup.

    Args:
        state_dir: a directory of its own.
        **kwargs: `keras.callbacks.EarlyStopping` arguments (`monitor`,
            `patience`, `restore_best_weights`, ...).
    """

    def __init__(self, state_dir, **kwargs):
        super().__init__(**kwargs)
        if not state_dir:
            raise ValueError(f"`state_dir` must be a directory; received {state_dir!r}")
        self.state_dir = state_dir
        self._state_path = os.path.join(state_dir, "early_stopping.json")
        self._weights_path = os.path.join(state_dir, "best_weights.npz")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not os.path.exists(self._state_path):
            return
        with open(self._state_path) as f:
            state = json.load(f)
        self.wait = state["wait"]
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        if self.restore_best_weights and os.path.exists(self._weights_path):
            with np.load(self._weights_path) as data:
                self.best_weights = [data[f"w{i}"] for i in range(len(data.files))]

    def on_epoch_end(self, epoch, logs=None):
        previous_best_epoch = self.best_epoch
        had_weights = self.best_weights is not None
        super().on_epoch_end(epoch, logs)
        os.makedirs(self.state_dir, exist_ok=True)
        if self.restore_best_weights and self.best_weights is not None and (
            self.best_epoch != previous_best_epoch or not had_weights
        ):
            tmp = self._weights_path + ".tmp.npz"
            np.savez(tmp, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            os.replace(tmp, self._weights_path)
        best = None if self.best is None else float(self.best)
        tmp = self._state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {"wait": self.wait, "best": best, "best_epoch": self.best_epoch}, f
            )
        os.replace(tmp, self._state_path)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        shutil.rmtree(self.state_dir, ignore_errors=True)
