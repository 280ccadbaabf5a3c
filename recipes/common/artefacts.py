"""What a run writes beside its model: config.json, metrics.json, and the
environment it ran in. Files are written to `<name>.tmp` and moved into
place, so a crash never leaves half a file."""

import dataclasses
import json
import os
import sys

import numpy as np


def to_jsonable(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def write_json(path, obj, sort_keys=True):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(to_jsonable(obj), f, indent=2, sort_keys=sort_keys)
    os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_run(output_dir, config, metrics, size=None):
    """`config.json` (with the size name, if any) and `metrics.json`."""
    os.makedirs(output_dir, exist_ok=True)
    record = dataclasses.asdict(config)
    if size is not None:
        record = {"size": size, **record}
    write_json(os.path.join(output_dir, "config.json"), record, sort_keys=False)
    write_json(os.path.join(output_dir, "metrics.json"), metrics, sort_keys=False)


def environment():
    """Python, TensorFlow, Keras, backend, CPUs, GPUs and the command line."""
    import platform

    import keras

    env = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }
    try:
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
        env["gpus"] = len(tf.config.list_physical_devices("GPU"))
    except ImportError:
        pass
    return env
