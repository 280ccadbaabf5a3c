"""Backend-specific pieces of the reversible stack's backward pass.

`ReversibleEncoder` (kzoo/layers/reversible/reversible_encoder.py) is written with `keras.ops`; the two
things Keras 3 has no backend-neutral form for live here, each dispatched on
`keras.backend.backend()`:

- `vjp`: a vector-Jacobian product with respect to inputs and weights
  (`jax.vjp` / `tf.GradientTape`).
- `separate_computation`: run one block's backward step only after the step
  above it, with nothing of it computed earlier or kept longer (a
  sub-computation of its own on JAX, control dependencies on TensorFlow).
"""

import keras


def vjp(fn, primals, cotangent):
    """`(fn(*primals), d<fn(*primals), cotangent>/d primals)` (a list)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        out, pullback = jax.vjp(fn, *primals)
        return out, list(pullback(cotangent))
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(primals)
            out = fn(*primals)
        grads = tape.gradient(
            out,
            primals,
            output_gradients=cotangent,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return out, list(grads)
    raise NotImplementedError(
        "the memory-saving backward pass of ReversibleEncoder supports the "
        f"tensorflow and jax backends; received backend {backend!r}. Use "
        "memory_saving=False."
    )


def _in_tf_xla_context():
    """Whether the TensorFlow graph being traced will be compiled by XLA.

    Uses TensorFlow's internal `control_flow_util` (no public API says it);
    if that ever moves, the answer is False and only the XLA case loses the
    isolation.
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def separate_computation(step, operands):
    """`step(a1, a2, dy1, dy2, *rest)`, run strictly after the step above it.

    `operands` are `(a1, a2, dy1, dy2, ...)`: the block's outputs, their
    gradients, then anything else `step` takes.

    Under `jit`, XLA inlines every function into one graph and schedules it
    as a whole. In the unrolled backward pass of a reversible stack its
    scheduler then places buffers that depend on no data (the zero-filled
    buffers that the gradients of `ops.map` loops and gathers write into) at
    the start of the program, where they stay alive until their block's
    backward step: memory grows with depth again (measured: about 100 MiB a
    block at n=4096, benchmarks/reversible_memory.py). A `lax.cond` whose two
    branches are both `step` is a sub-computation that XLA does not inline,
    so those buffers live only while `step` runs; as both branches are the
    same function, the predicate does not change the result. It also keeps
    XLA from merging the recomputation with the forward pass, which
    `jax.lax.optimization_barrier` is otherwise used for.

    On TensorFlow a graph runs each op as soon as its inputs are ready, and
    the recomputation of the activations needs no gradient: every block's
    recomputation (and the residuals of its `vjp`) would run, and be kept,
    before the gradients reach it. The step's inputs are therefore made to
    wait, by control dependencies, for the gradients `dy` that the previous
    (higher) step produced. Under `jit_compile=True` XLA reschedules as on
    JAX, so there the step also runs in a `tf.cond` with two identical
    branches; not outside XLA, where Grappler's arithmetic optimizer gives
    both branches the same temporary-variable name and the graph fails
    (AlreadyExistsError, TensorFlow 2.21).
    """
    if keras.backend.backend() == "jax":
        import jax

        probe = operands[0]
        if probe.size == 0:
            return step(*operands)
        pred = jax.numpy.isfinite(probe.ravel()[0])  # any traced boolean
        return jax.lax.cond(pred, step, step, *operands)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        a1, a2, dy1, dy2, *rest = operands
        with tf.control_dependencies([dy1, dy2]):
            a1, a2 = tf.identity(a1), tf.identity(a2)
        operands = (a1, a2, dy1, dy2, *rest)
        if not _in_tf_xla_context() or a1.shape.num_elements() == 0:
            return step(*operands)
        pred = tf.math.is_finite(tf.reshape(a1, [-1])[0])  # any traced boolean
        return tf.cond(pred, lambda: step(*operands), lambda: step(*operands))
    return step(*operands)
