"""Dropout with a random-number algorithm that XLA compiles well everywhere.

Why this exists: on the TensorFlow backend Keras draws dropout masks with
`tf.nn.experimental.stateless_dropout`, whose random numbers use the
"auto_select" algorithm. Under `jit_compile=True` on a CPU, XLA expands
that algorithm into a very slow loop: on the project's 2-core CPU a
(4, 2, 1024, 1024) mask took 2.5 s, against 66 ms when the Philox
algorithm is named explicitly and 34 ms without XLA
(`python benchmarks/dropout_rng.py`, 2026-11-30). Without XLA "auto_select" already is
Philox on CPU and GPU, so naming it changes no number there; under XLA the
masks differ from the uncompiled ones either way.

On JAX (and any other backend) this is `keras.random.dropout`.
"""

import keras


def dropout(inputs, rate, noise_shape=None, seed=None):
    """`keras.random.dropout`, with Philox named on TensorFlow.

    Args:
        inputs: the tensor to drop from.
        rate: fraction of entries set to zero, in [0, 1].
        noise_shape: None, or the mask's shape (None entries take the
            input's size), broadcast against `inputs`.
        seed: a `keras.random.SeedGenerator` (the fast path), or an int or
            None (then this is `keras.random.dropout` on every backend).

    Returns:
        `inputs` with entries zeroed at `rate` and the rest scaled by
        1 / (1 - rate).
    """
    if keras.backend.backend() != "tensorflow" or not isinstance(
        seed, keras.random.SeedGenerator
    ):
        return keras.random.dropout(
            inputs, rate, noise_shape=noise_shape, seed=seed
        )
    import tensorflow as tf

    if rate == 1.0:
        return tf.zeros_like(inputs)
    if rate == 0.0:
        return inputs
    seed = seed.next()  # (2,) the generator's state, which it then advances
    if seed.dtype != tf.int32:  # as keras' own TensorFlow backend does
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    if noise_shape is not None:
        dynamic = tf.shape(inputs)
        noise_shape = [
            dynamic[i] if size is None else size
            for i, size in enumerate(noise_shape)
        ]
    return tf.nn.experimental.stateless_dropout(
        inputs, rate=rate, seed=seed, rng_alg="philox", noise_shape=noise_shape
    )
