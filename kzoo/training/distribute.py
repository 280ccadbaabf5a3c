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
    _patch_keras_multi_worker_logs()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _patch_keras_multi_worker_logs():
    """Keras 3.15 reduces each replica's step logs with
    `strategy.reduce("MEAN", v, axis=0)` under MultiWorkerMirroredStrategy,
    which fails on the scalar loss and metrics ("Invalid reduction dimension 0
    for input with 0 dimensions"). Scalars are reduced over replicas only
    (`axis=None`); everything else goes to Keras unchanged. Idempotent."""
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "_kzoo_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        tf = _tf()
        if reduction in ("auto", "mean") and isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            def reduce(v):
                # With one device per worker, step outputs are plain tensors.
                local = (strategy.experimental_local_results(v)[0]
                         if isinstance(v, tf.distribute.DistributedValues) else v)
                if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            return keras.tree.map_structure(reduce, values)
        return original(values, strategy, reduction)

    reduce_per_replica._kzoo_patched = True
    trainer.reduce_per_replica = reduce_per_replica


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


def build_before_fit(model, batch):
    """Builds a compiled model, its loss, metrics and optimizer on `batch`.

    Call it inside `strategy.scope()` after `compile`, with one
    (x, y, sample_weight) batch from the undistributed dataset. Two reasons:

    - `BackupAndRestore` restores into built weights and optimizer slots;
    - Keras 3.15's `fit` under a `tf.distribute` strategy builds the model
      from one batch reduced with `strategy.reduce("MEAN", batch)`. That
      fails on booleans (`AddN` has no bool kernel), turns integer ids into
      float64 (which models' input checks rightly reject), and under
      `MultiWorkerMirroredStrategy` cannot reduce a dict at all. Once
      everything is built, that reduction is pointless, so it is switched
      off for this model.

    Uses Keras' private `_symbolic_build` / `_maybe_symbolic_build`, the
    hooks `fit` itself calls; revisit when Keras fixes the reduction.
    """
    model._symbolic_build(data_batch=batch)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = lambda *args, **kwargs: None
