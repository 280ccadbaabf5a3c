"""Backend-specific pieces of the child process: compiled steps, device
memory, profiler traces, versions. Imported only inside `benchmarks.worker`.

Every step callable returns a Python float, which forces the device to
finish the work before the clock stops.
"""

import contextlib
import importlib
import os
import sys

from benchmarks import timing


def backend_name(runtime="keras"):
    if runtime == "tf_keras":
        return "tensorflow"
    import keras

    return keras.backend.backend()


def import_runtime(runtime):
    """Imports the frameworks a configuration needs before its baseline RSS."""
    if runtime == "keras":
        import keras  # noqa: F401

        if keras.backend.backend() == "jax":
            import jax  # noqa: F401
        else:
            import tensorflow  # noqa: F401
    elif runtime == "tf_keras":
        import tensorflow  # noqa: F401
    else:
        raise ValueError(f"`runtime` must be 'keras' or 'tf_keras'; received {runtime!r}")


class Context:
    """What a suite's `measure` needs from the harness: the timing protocol,
    the profiler and the options."""

    def __init__(self, spec, runtime="keras"):
        self.spec = spec
        self.runtime = runtime
        self.warmup = int(spec.get("warmup", 1))
        self.repeats = int(spec.get("repeats", 5))
        self.max_seconds = spec.get("max_timed_seconds")
        self.profile_dir = spec.get("profile_dir")
        self.backend = backend_name(runtime)

    def time(self, fn):
        """`timing.time_callable` with the run's options; the timed calls are
        traced by the profiler when `--profile` asked for this configuration."""
        if self.profile_dir:
            # Compile and warm up outside the trace, then trace the timed calls.
            first = timing.time_callable(fn, warmup=self.warmup, repeats=1)
            with profile_trace(self.profile_dir, self.backend):
                timed = timing.time_callable(fn, warmup=0, repeats=self.repeats)
            timed["first_call_s"] = first["first_call_s"]
            return timed
        return timing.time_callable(
            fn, warmup=self.warmup, repeats=self.repeats, max_seconds=self.max_seconds
        )


@contextlib.contextmanager
def profile_trace(logdir, backend):
    """A TensorBoard profiler trace (viewable in the Profile tab)."""
    os.makedirs(logdir, exist_ok=True)
    if backend == "jax":
        import jax

        with jax.profiler.trace(logdir):
            yield
    else:
        import tensorflow as tf

        tf.profiler.experimental.start(logdir)
        try:
            yield
        finally:
            tf.profiler.experimental.stop()


def compile_function(fn, jit):
    """jit=True: XLA (jax.jit / tf.function(jit_compile=True)); jit=False:
    what Keras runs without `jit_compile` (eager JAX / a plain tf.function)."""
    if backend_name() == "jax":
        import jax

        return jax.jit(fn) if jit else fn
    import tensorflow as tf

    return tf.function(fn, jit_compile=bool(jit))


def to_float(x):
    from keras import ops

    return float(ops.convert_to_numpy(x))


def build_symbolically(layer, inputs, call_kwargs):
    """Builds `layer` by a symbolic call: variables, no computation."""
    import keras

    symbolic = {
        k: keras.KerasTensor(
            tuple(v.shape), dtype=keras.backend.standardize_dtype(v.dtype)
        )
        for k, v in inputs.items()
    }
    layer(**symbolic, **call_kwargs)


def layer_steps(layer, inputs, call_kwargs, jit):
    """Forward and forward+backward callables for a Keras layer.

    Args:
        layer: a Keras layer, built by this function.
        inputs: dict of call-argument name to tensor; float inputs get
            gradients in the backward pass, with the trainable weights.
        call_kwargs: non-tensor call arguments.
        jit: compile with XLA.

    Returns:
        `(forward, forward_backward)`, each a no-argument callable that runs
        the step and returns a float (the sum of the output, or of the
        gradients), which waits for the device.
    """
    import keras
    from keras import ops

    build_symbolically(layer, inputs, call_kwargs)
    names = list(inputs)
    float_names = [
        n for n in names if "float" in keras.backend.standardize_dtype(inputs[n].dtype)
    ]

    def first_output(out):
        return out[0] if isinstance(out, (tuple, list)) else out

    if backend_name() == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss(tv, ntv, *values):
            kwargs = dict(zip(names, values))
            out, _ = layer.stateless_call(tv, ntv, **kwargs, **call_kwargs)
            return jnp.sum(first_output(out).astype("float32"))

        def grads_sum(tv, ntv, *values):
            float_idx = tuple(2 + names.index(n) for n in float_names)
            g = jax.grad(loss, argnums=(0,) + float_idx)(tv, ntv, *values)
            leaves = jax.tree_util.tree_leaves(g)
            return sum(jnp.sum(x.astype("float32")) for x in leaves)

        fwd = jax.jit(loss) if jit else loss
        bwd = jax.jit(grads_sum) if jit else grads_sum
        values = [inputs[n] for n in names]
        return (
            lambda: float(fwd(trainable, non_trainable, *values)),
            lambda: float(bwd(trainable, non_trainable, *values)),
        )

    import tensorflow as tf

    def forward(*values):
        out = layer(**dict(zip(names, values)), **call_kwargs)
        return tf.reduce_sum(tf.cast(first_output(out), "float32"))

    def forward_backward(*values):
        watched = [values[names.index(n)] for n in float_names]
        with tf.GradientTape() as tape:
            for w in watched:
                tape.watch(w)
            loss = forward(*values)
        grads = tape.gradient(loss, watched + list(layer.trainable_variables))
        # Weights a configuration leaves unused (e.g. global projections
        # without global tokens) get None.
        return tf.add_n(
            [tf.reduce_sum(tf.cast(g, "float32")) for g in grads if g is not None]
        )

    fwd = tf.function(forward, jit_compile=bool(jit))
    bwd = tf.function(forward_backward, jit_compile=bool(jit))
    values = [ops.convert_to_tensor(inputs[n]) for n in names]
    return (
        lambda: float(fwd(*values).numpy()),
        lambda: float(bwd(*values).numpy()),
    )


def device_info(runtime="keras", safe=False):
    """The accelerator (or CPU) the configuration ran on."""
    try:
        if backend_name(runtime) == "jax":
            import jax

            dev = jax.devices()[0]
            kind = getattr(dev, "device_kind", dev.platform)
            if dev.platform == "cpu":
                kind = f"{timing.cpu_model()} ({kind})"
            return {
                "platform": dev.platform,
                "kind": kind,
                "count": jax.device_count(),
            }
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return {
                "platform": "gpu",
                "kind": details.get("device_name", gpus[0].name),
                "count": len(gpus),
            }
        return {"platform": "cpu", "kind": timing.cpu_model(), "count": 1}
    except Exception as e:
        if not safe:
            raise
        return {"platform": "unknown", "kind": f"unknown ({e})", "count": 0}


def peak_device_memory_mb(runtime="keras"):
    """The framework's peak device memory on a GPU; None on a CPU."""
    if backend_name(runtime) == "jax":
        import jax

        dev = jax.devices()[0]
        if dev.platform == "cpu":
            return None
        stats = dev.memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return None if peak is None else peak / 2**20
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def versions():
    """Versions of the libraries already imported (none is imported here)."""
    out = {}
    for name in (
        "keras",
        "keras_hub",
        "tensorflow",
        "tf_keras",
        "jax",
        "jaxlib",
        "transformers",
        "numpy",
        "kzoo",
    ):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "unknown")
    return out
