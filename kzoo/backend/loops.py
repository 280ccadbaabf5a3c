"""A loop over time steps that XLA can differentiate on both backends.

JAX differentiates `lax.scan` (not `lax.while_loop`), so there the loop is
`ops.scan`. TensorFlow under `jit_compile` needs `maximum_iterations` on its
while loop, which Keras 3.15's TensorFlow `ops.scan` does not set, so there
the outputs are written into (T, ...) buffers inside an `ops.while_loop`
bounded by T.
"""

import keras
from keras import ops


def time_scan(step, carry, xs, output_specs):
    """Runs `step` over the leading (time) axis of `xs`; stacks its outputs.

    Args:
        step: `step(carry, *x_t) -> (new_carry, outputs)`, `carry` a list of
            tensors, `outputs` a tuple of tensors.
        carry: the initial list of tensors.
        xs: a tuple of (T, ...) tensors.
        output_specs: `(shape, dtype)` of each output of one step, the
            shape without the time axis (used for TensorFlow's buffers).

    Returns:
        A tuple of (T, ...) outputs.
    """
    if keras.backend.backend() != "tensorflow":

        def body(c, x):
            new, outputs = step(c, *x)
            return new, tuple(outputs)

        return tuple(ops.scan(body, carry, tuple(xs))[1])

    steps = ops.shape(xs[0])[0]
    buffers = [ops.zeros((steps,) + tuple(shape), dtype) for shape, dtype in output_specs]
    time_index = ops.arange(steps, dtype="int32")

    def cond(t, *_):
        return t < steps

    def body(t, *loop):
        outputs, c = loop[: len(buffers)], list(loop[len(buffers) :])
        new, out = step(c, *(x[t] for x in xs))
        outputs = [
            ops.where(_at(time_index == t, o), ops.cast(v, o.dtype)[None], o)
            for o, v in zip(outputs, out)
        ]
        return (t + 1, *outputs, *new)

    loop_vars = (ops.convert_to_tensor(0, "int32"), *buffers, *carry)
    result = ops.while_loop(cond, body, loop_vars, maximum_iterations=steps)
    return tuple(result[1 : 1 + len(buffers)])


def _at(here, buffer):
    """(T,) booleans shaped to broadcast against a (T, ...) buffer."""
    return ops.reshape(here, (-1,) + (1,) * (len(buffer.shape) - 1))
