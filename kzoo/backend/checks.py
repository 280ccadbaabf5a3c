"""Is a tensor concrete (its values readable now) or symbolic / traced?

Input checks that read values (token ids in range) run only on concrete
tensors; under tracing (`tf.function`, `jax.jit`, XLA, SavedModel) they fall
back to checks written as graph ops. This is the only place that needs to
know each backend's tensor types.
"""

import keras
import numpy as np


def is_concrete(x):
    """True for NumPy arrays, Python values, eager TF tensors and JAX arrays
    outside a trace; False for Keras symbolic tensors and traced tensors."""
    if isinstance(x, (np.ndarray, np.generic, int, list, tuple)):
        return True
    if isinstance(x, keras.KerasTensor):
        return False
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(x, "numpy")
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    return False
