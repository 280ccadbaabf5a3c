"""Backend-specific pieces of the reversible stack's backward pass.

`ReversibleEncoder` (reversible.py) is written with `keras.ops`; the two
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
    (higher) step produced. The step itself is the same for both backends.
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
        return step(a1, a2, dy1, dy2, *rest)
    return step(*operands)
