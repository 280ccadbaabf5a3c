"""A `tf.distribute` strategy from a command-line flag, and chief-only checkpoints.

`--distribute none|mirrored|multi_worker`:

- `none`: the default (single-device) strategy.
- `mirrored`: `tf.distribute.MirroredStrategy` over all local GPUs, or, on a
  machine without GPUs, over all logical CPU devices (tests split one CPU into
  two with `tf.config.set_logical_device_configuration`).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`, configured by
  the `TF_CONFIG` environment variable (`{"cluster": {"worker": [...]},
  "task": {"type": "worker", "index": i}}`). It must be created before any
  other TensorFlow op runs in the process.

Model weights and optimizer state are replicated, gradients are summed across
replicas and each replica's loss is divided by the number of replicas, so one
step on a global batch of B equals one single-device step on the same B (see
tests/training/test_distribute.py). Checkpoints are written by the chief only
(`ChiefBackupAndRestore`); since the saved weights are the replicated values
they restore onto any number of workers or devices.

TensorFlow only: this module imports `tensorflow` and is meant for the
recipes, never for layers or models.
"""

import json
import os

import keras

STRATEGIES = ("none", "mirrored", "multi_worker")


def _tf():
    import tensorflow as tf

    return tf


def tf_config():
    """The parsed `TF_CONFIG` environment variable, or {} when unset."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}); received {raw!r}") from None


def task_type_and_index():
    """(task type, index) from TF_CONFIG; ("worker", 0) without one."""
    task = tf_config().get("task", {})
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief():
    """True on the process that writes checkpoints and exports.

    With TF_CONFIG: the `chief` task, or worker 0 when the cluster has no
    chief. Without TF_CONFIG (single process): True.
    """
    config = tf_config()
    if not config:
        return True
    task_type, index = task_type_and_index()
    if "chief" in config.get("cluster", {}):
        return task_type == "chief"
    return task_type == "worker" and index == 0


def get_strategy(name, devices=None):
    """Returns the `tf.distribute.Strategy` named by `--distribute`.

    Args:
        name: "none", "mirrored" or "multi_worker".
        devices: for "mirrored", the device names to mirror over; default: all
            GPUs, or all logical CPUs where there is no GPU.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"`distribute` must be one of {list(STRATEGIES)}; received {name!r}"
        )
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"`distribute={name!r}` needs the TensorFlow backend (tf.distribute);"
            f" received KERAS_BACKEND={keras.backend.backend()!r}"
        )
    tf = _tf()
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(
            devices=devices,
            # The NCCL default needs GPUs; on CPUs sum with plain copies.
            cross_device_ops=None if any("GPU" in d for d in devices)
            else tf.distribute.ReductionToOneDevice(),
        )
    config = tf_config()
    workers = config.get("cluster", {}).get("worker")
    if not workers or "task" not in config:
        raise ValueError(
            "`distribute='multi_worker'` needs TF_CONFIG with a cluster and a "
            'task, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            f'"task": {{"type": "worker", "index": 0}}}}; received TF_CONFIG='
            f"{os.environ.get('TF_CONFIG', '')!r}"
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that only the chief writes.

    Every worker restores from the same `backup_dir` (a shared file system)
    at the start of `fit`; only the chief (see `is_chief`) saves and, at the
    end of training, deletes the backup. Weights of mirrored variables are
    identical on all replicas, so the chief's copy is the whole state.
    """

    def _save_model(self):
        if is_chief():
            super()._save_model()

    def on_train_end(self, logs=None):
        if is_chief():
            super().on_train_end(logs)
