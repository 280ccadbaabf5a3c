"""The one test harness that every kzoo layer and model test calls.

In the spirit of keras-hub's `TestCase.run_layer_test`, it checks, for one
layer class, constructor arguments and inputs:

1. `get_config` / `from_config` round trip, and every constructor argument
   appears in the config;
2. eager and symbolic (functional) calls give the same values, and
   `compute_output_shape` (where the layer implements it) matches;
3. one `fit` step with `jit_compile=True`: finite loss, weights that move;
4. `mixed_float16` and `mixed_bfloat16`: finite outputs, close to float32
   within the stated tolerance, with the test's own inputs (tests put padding
   and fully masked rows in them);
5. `.keras` save and load give equal outputs;
6. for models on the TensorFlow backend, `model.export()` to a SavedModel,
   reloaded with `tf.saved_model.load`, gives equal outputs.

Inputs are a dict of call-argument name to NumPy array; `call_kwargs` holds
the non-tensor call arguments (`use_causal_mask=True`, ...).
"""

import inspect
import os
import tempfile

import keras
import numpy as np
from keras import ops

# Tolerances for mixed precision against float32, on outputs of unit scale:
# |mixed - float32| <= atol + rtol * |float32|. float16 keeps 10 mantissa
# bits, bfloat16 only 7, and errors add up over a few matmuls.
PRECISION_TOLERANCE = {
    "mixed_float16": 2e-2,
    "mixed_bfloat16": 8e-2,
}


def _to_numpy(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _flatten(outputs):
    return [o for o in keras.tree.flatten(outputs)]


def _float_outputs(outputs):
    return [o for o in _flatten(outputs) if "float" in str(o.dtype)]


def _assert_outputs_close(actual, expected, atol, rtol, what):
    actual, expected = _flatten(actual), _flatten(expected)
    assert len(actual) == len(expected), f"{what}: number of outputs differ"
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = _to_numpy(a), _to_numpy(e)
        assert a.shape == e.shape, f"{what}: output {i} shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(
            a, e, atol=atol, rtol=rtol, err_msg=f"{what}: output {i}"
        )


def _assert_finite(outputs, what):
    for i, o in enumerate(_float_outputs(outputs)):
        o = _to_numpy(o)
        assert np.all(np.isfinite(o)), f"{what}: output {i} has NaN or inf"


def _symbolic_inputs(input_data):
    return {
        name: keras.Input(
            shape=value.shape[1:],
            batch_size=value.shape[0],
            dtype=str(value.dtype),
            name=name,
        )
        for name, value in input_data.items()
    }


def _functional(layer, input_data, call_kwargs):
    sym = _symbolic_inputs(input_data)
    return keras.Model(sym, layer(**sym, **call_kwargs))


def _check_config(cls, obj, init_kwargs):
    config = obj.get_config()
    for name in init_kwargs:
        assert name in config, f"get_config() misses constructor argument `{name}`"
    revived = cls.from_config(config)
    assert revived.get_config() == config, "from_config(get_config()) changed the config"
    return config


def _train_one_step(model, input_data, output_index=0):
    """One jit-compiled fit step on mean squared output; checks it moves."""
    outputs = model.outputs if hasattr(model, "outputs") and model.outputs else None
    if outputs is not None and len(outputs) > 1:
        model = keras.Model(model.inputs, outputs[output_index])
    before = [_to_numpy(w) for w in model.trainable_weights]
    assert before, "no trainable weights to train"
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss="mean_squared_error",
        jit_compile=True,
    )
    # The target's shape from an eager call: `predict` would compile a second
    # XLA program for nothing.
    preds = model(input_data)
    target = np.ones_like(_to_numpy(keras.tree.flatten(preds)[output_index]))
    history = model.fit(input_data, target, epochs=1, batch_size=len(target), verbose=0)
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"training loss is not finite: {loss}"
    after = [_to_numpy(w) for w in model.trainable_weights]
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, after)
    ), "one fit step changed no trainable weight: gradients do not flow"


def _check_output_shape(layer, input_data, call_kwargs, outputs):
    if type(layer).compute_output_shape is keras.layers.Layer.compute_output_shape:
        return
    params = inspect.signature(layer.compute_output_shape).parameters
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kwargs = {}
    for name, value in input_data.items():
        key = f"{name}_shape"
        if key in params or takes_kwargs:
            kwargs[key] = tuple(value.shape)
    for name, value in call_kwargs.items():
        if name in params or takes_kwargs:
            kwargs[name] = value
    first = next(iter(params))
    if first.endswith("_shape") and first not in kwargs:
        kwargs[first] = tuple(next(iter(input_data.values())).shape)
    shapes = layer.compute_output_shape(**kwargs)
    actual = [tuple(o.shape) for o in _flatten(outputs)]
    expected = (
        [tuple(shapes)]
        if shapes and not isinstance(shapes[0], (tuple, list))
        else [tuple(s) for s in shapes]
    )
    assert actual == expected, f"compute_output_shape {expected} != real {actual}"


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    call_kwargs=None,
    expected_output_shape=None,
    run_training=True,
    run_precision=True,
    run_saving=True,
    precision_tolerance=None,
    training_output_index=0,
):
    """Runs the shared checks on a layer; returns its float32 eager outputs."""
    keras.utils.set_random_seed(1)
    call_kwargs = dict(call_kwargs or {})
    tolerance = dict(PRECISION_TOLERANCE, **(precision_tolerance or {}))

    layer = layer_cls(**init_kwargs)
    config = _check_config(layer_cls, layer, init_kwargs)

    eager = layer(**input_data, **call_kwargs)
    _assert_finite(eager, "float32 eager call")
    if expected_output_shape is not None:
        got = [tuple(o.shape) for o in _flatten(eager)]
        want = (
            [tuple(expected_output_shape)]
            if not isinstance(expected_output_shape[0], (tuple, list))
            else [tuple(s) for s in expected_output_shape]
        )
        assert got == want, f"output shapes {got} != expected {want}"
    _check_output_shape(layer, input_data, call_kwargs, eager)
    # The config of a built layer must still round-trip.
    _check_config(layer_cls, layer, init_kwargs)

    model = _functional(layer, input_data, call_kwargs)
    _assert_outputs_close(
        model(input_data), eager, 1e-5, 1e-5, "symbolic vs eager call"
    )

    if run_saving:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "layer.keras")
            model.save(path)
            restored = keras.saving.load_model(path)
        _assert_outputs_close(
            restored(input_data), eager, 1e-6, 1e-6, ".keras save/load"
        )

    if run_precision:
        weights = layer.get_weights()
        for policy in ("mixed_float16", "mixed_bfloat16"):
            mixed = layer_cls.from_config({**config, "dtype": policy})
            mixed(**input_data, **call_kwargs)
            mixed.set_weights(weights)
            out = mixed(**input_data, **call_kwargs)
            _assert_finite(out, policy)
            tol = tolerance[policy]
            _assert_outputs_close(out, eager, tol, tol, f"{policy} vs float32")

    if run_training:
        _train_one_step(model, input_data, training_output_index)
    return eager


def run_model_test(
    model_cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    run_training=True,
    run_precision=True,
    run_saving=True,
    run_export=True,
    precision_tolerance=None,
    training_output_index=0,
):
    """Runs the shared checks on a `keras.Model` subclass taking a dict."""
    keras.utils.set_random_seed(1)
    tolerance = dict(PRECISION_TOLERANCE, **(precision_tolerance or {}))

    model = model_cls(**init_kwargs)
    config = _check_config(model_cls, model, init_kwargs)

    eager = model(input_data)
    _assert_finite(eager, "float32 eager call")
    if expected_output_shape is not None:
        got = [tuple(o.shape) for o in _flatten(eager)]
        want = (
            [tuple(expected_output_shape)]
            if not isinstance(expected_output_shape[0], (tuple, list))
            else [tuple(s) for s in expected_output_shape]
        )
        assert got == want, f"output shapes {got} != expected {want}"

    sym = _symbolic_inputs(input_data)
    symbolic = keras.Model(sym, model(sym))
    _assert_outputs_close(
        symbolic(input_data), eager, 1e-5, 1e-5, "symbolic vs eager call"
    )

    if run_saving:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            restored = keras.saving.load_model(path)
        _assert_outputs_close(
            restored(input_data), eager, 1e-6, 1e-6, ".keras save/load"
        )

    if run_export and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "saved_model")
            symbolic.export(path, verbose=False)
            reloaded = tf.saved_model.load(path)
            exported = reloaded.serve(
                {k: tf.constant(v) for k, v in input_data.items()}
            )
        _assert_outputs_close(
            keras.tree.flatten(exported),
            keras.tree.flatten(eager),
            1e-5,
            1e-5,
            "SavedModel export",
        )

    if run_precision:
        weights = model.get_weights()
        for policy in ("mixed_float16", "mixed_bfloat16"):
            mixed = model_cls.from_config({**config, "dtype": policy})
            mixed(input_data)
            mixed.set_weights(weights)
            out = mixed(input_data)
            _assert_finite(out, policy)
            tol = tolerance[policy]
            _assert_outputs_close(out, eager, tol, tol, f"{policy} vs float32")

    if run_training:
        _train_one_step(symbolic, input_data, training_output_index)
    return eager


def from_serialized(cls):
    """`cls` with a constructor that also takes its `encoder` serialized, as
    `from_config` does, so that task models (a classifier around a nested
    encoder) can go through `run_model_test`, whose config must be plain."""

    class Wrapped(cls):
        def __init__(self, encoder, **kwargs):
            if isinstance(encoder, dict):
                encoder = keras.saving.deserialize_keras_object(encoder)
            super().__init__(encoder=encoder, **kwargs)

    Wrapped.__name__ = cls.__name__
    return keras.saving.register_keras_serializable(package="kzoo_tests")(Wrapped)
