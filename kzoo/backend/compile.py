"""A Python function compiled once per input shape, on either backend.

Generation loops (`kzoo.models.generation`, `GRUTranslator.generate`) run a
whole decode as one compiled program. TensorFlow compiles with
`tf.function`; JAX with `jax.jit`, which is pure, so the model's variables
are passed in as arguments (a `keras.StatelessScope` maps each variable to
its value inside the trace) and the variables that the function updates (a
sampler's seed state) are written back after the call. Other backends run
the function eagerly.

The compiled function is returned to the caller, who keeps it where saving
and export do not look (not as a tracked attribute of a Keras object).
"""

import keras
from keras import ops


def compiled_function(fn, read_variables=(), state_variables=(), jit_compile=False):
    """`fn(*args)` compiled once per input shape.

    Args:
        fn: a function of tensors (nested structures allowed).
        read_variables: the variables `fn` reads (a model's), in any order.
        state_variables: variables `fn` may update (a sampler's seed
            generator); their new values are assigned after each call.
        jit_compile: on TensorFlow, compile the graph with XLA too.

    Returns:
        A callable with `fn`'s signature.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile)
    if backend != "jax":
        return fn

    import jax

    read_variables, state_variables = list(read_variables), list(state_variables)

    @jax.jit
    def compiled(args, read_values, state_values):
        mapping = list(zip(read_variables, read_values)) + list(
            zip(state_variables, state_values)
        )
        with keras.StatelessScope(state_mapping=mapping) as scope:
            outputs = fn(*args)
        new_state = []
        for variable, value in zip(state_variables, state_values):
            updated = scope.get_current_value(variable)
            new_state.append(value if updated is None else updated)
        return outputs, new_state

    def run(*args):
        args = keras.tree.map_structure(ops.convert_to_tensor, args)
        outputs, new_state = compiled(
            args,
            [v.value for v in read_variables],
            [v.value for v in state_variables],
        )
        for variable, value in zip(state_variables, new_state):
            variable.assign(value)
        return outputs

    return run
