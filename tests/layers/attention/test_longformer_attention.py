import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers.attention.longformer_attention import LongformerAttention
from tests.harness import run_layer_test


def _data(batch=2, length=11, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, dim)).astype("float32")


def _masks(batch=2, length=11):
    pad = np.ones((batch, length), bool)
    pad[1, 8:] = False  # right padding on the second sequence
    glob = np.zeros((batch, length), bool)
    glob[0, [0, 5]] = True
    glob[1, 3] = True
    return pad, glob


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _pair(x, **kwargs):
    """A Longformer layer and a dense kzoo layer holding the same weights."""
    layer = LongformerAttention(num_heads=2, key_dim=4, **kwargs)
    layer(x)
    dense = MultiHeadAttention(num_heads=2, key_dim=4)
    dense(x)
    dense.set_weights(layer.get_weights()[: len(dense.weights)])
    return layer, dense


def _grads(layer, x, **call_kwargs):
    """Gradients of sum(out * r) w.r.t. the input and trainable weights.

    Computed with the backend's own autodiff (tf.GradientTape / jax.grad).
    """
    r = np.random.default_rng(5).normal(size=(x.shape[0], x.shape[1], 8))
    r = r.astype("float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(layer(xt, **call_kwargs) * r)
        grads = tape.gradient(loss, [xt] + layer.trainable_variables)
        return [g.numpy() for g in grads]
    if keras.backend.backend() == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss(x_, trainable):
            out, _ = layer.stateless_call(
                trainable, non_trainable, x_, **call_kwargs
            )
            return (out * r).sum()

        gx, gw = jax.grad(loss, argnums=(0, 1))(
            x, [v.value for v in layer.trainable_variables]
        )
        return [np.asarray(gx)] + [np.asarray(g) for g in gw]
    pytest.skip("gradient check written for the TensorFlow and JAX backends")


# -- shared harness ------------------------------------------------------------


def test_harness_padding_and_fully_masked_row():
    x = _data(length=12)
    pad = np.ones((2, 12), bool)
    pad[1, 4:] = False  # query 11 of sequence 1 sees only padding: zero row
    out = run_layer_test(
        LongformerAttention,
        {"num_heads": 2, "key_dim": 4, "attention_window": 2},
        {"query": x, "padding_mask": pad},
        expected_output_shape=(2, 12, 8),
    )
    assert np.all(np.isfinite(_np(out)))


def test_harness_global_dilated_separate_projections():
    x = _data()
    pad, glob = _masks()
    run_layer_test(
        LongformerAttention,
        {
            "num_heads": 2,
            "key_dim": 4,
            "attention_window": 4,
            "dilation": 2,
            "separate_global_projections": True,
            "max_global_tokens": 3,
            "value_dim": 3,
            "output_dim": 6,
        },
        {"query": x, "padding_mask": pad, "global_attention_mask": glob},
        expected_output_shape=(2, 11, 6),
    )


# -- equal to dense attention -------------------------------------------------


def test_window_covering_sequence_equals_dense():
    x = _data()
    pad, _ = _masks()
    layer, dense = _pair(x, attention_window=22)
    np.testing.assert_allclose(_np(layer(x)), _np(dense(x)), atol=1e-5)
    np.testing.assert_allclose(
        _np(layer(x, padding_mask=pad)),
        _np(dense(x, padding_mask=pad)),
        atol=1e-5,
    )


@pytest.mark.parametrize("window, dilation", [(2, 1), (4, 1), (4, 2), (2, 3)])
@pytest.mark.parametrize("with_global", [False, True])
def test_small_window_equals_dense_under_band_mask(window, dilation, with_global):
    x = _data()
    pad, glob = _masks()
    glob = glob if with_global else None
    layer, dense = _pair(x, attention_window=window, dilation=dilation)
    mask = layer.attention_pattern(pad, glob)
    # The explicit mask really is sparse (the test could fail).
    assert not mask[0].all()
    got = layer(x, padding_mask=pad, global_attention_mask=glob)
    want = dense(x, attention_mask=mask)
    np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)

    got_grads = _grads(layer, x, padding_mask=pad, global_attention_mask=glob)
    want_grads = _grads(dense, x, attention_mask=mask)
    assert len(got_grads) == len(want_grads) == 9
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_explicit_pattern_by_hand():
    layer = LongformerAttention(num_heads=1, key_dim=2, attention_window=2, dilation=2)
    pad = np.ones((1, 6), bool)
    pad[0, 5] = False
    glob = np.zeros((1, 6), bool)
    glob[0, 1] = True
    mask = layer.attention_pattern(pad, glob)[0].astype(int)
    # Query t sees t-2, t, t+2 (dilation 2, one step each side), the global
    # token 1, and all tokens if it is token 1; never the padding token 5.
    expected = np.array(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 0],
            [1, 1, 1, 0, 1, 0],
            [0, 1, 0, 1, 0, 0],
            [0, 1, 1, 0, 1, 0],
            [0, 1, 0, 1, 0, 0],
        ]
    )
    np.testing.assert_array_equal(mask, expected)


def test_separate_global_projections_against_two_dense_layers():
    x = _data()
    pad, glob = _masks()
    layer = LongformerAttention(
        num_heads=2, key_dim=4, attention_window=2, separate_global_projections=True
    )
    layer(x)
    # Initialised as copies of the local projections.
    weights = layer.get_weights()
    for local, glob_w in zip(weights[:6], weights[8:]):
        np.testing.assert_array_equal(local, glob_w)
    # Make the global projections differ, then check against dense layers.
    rng = np.random.default_rng(9)
    weights[8:] = [w + rng.normal(size=w.shape).astype("float32") for w in weights[8:]]
    layer.set_weights(weights)
    local = MultiHeadAttention(num_heads=2, key_dim=4)
    local(x)
    local.set_weights(weights[:8])
    glob_layer = MultiHeadAttention(num_heads=2, key_dim=4)
    glob_layer(x)
    glob_layer.set_weights(weights[8:] + weights[6:8])
    mask = layer.attention_pattern(pad, glob)
    want = np.where(
        glob[:, :, None],
        _np(glob_layer(x, padding_mask=pad)),
        _np(local(x, attention_mask=mask)),
    )
    got = _np(layer(x, padding_mask=pad, global_attention_mask=glob))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_padding_invariance():
    x = _data(length=10)
    pad, glob = _masks(length=10)
    layer = LongformerAttention(num_heads=2, key_dim=4, attention_window=4)
    short = _np(layer(x, padding_mask=pad, global_attention_mask=glob))
    more = np.concatenate([x, _data(length=7, seed=3)], axis=1)  # junk tokens
    more_pad = np.concatenate([pad, np.zeros((2, 7), bool)], axis=1)
    more_glob = np.concatenate([glob, np.zeros((2, 7), bool)], axis=1)
    long = _np(layer(more, padding_mask=more_pad, global_attention_mask=more_glob))
    real = pad[:, :, None]
    np.testing.assert_allclose(np.where(real, long[:, :10], 0), np.where(real, short, 0), atol=1e-5)


def test_traced_call_with_static_global_bound_equals_eager():
    x = _data()
    pad, glob = _masks()
    for bound in (None, 2):
        layer = LongformerAttention(
            num_heads=2, key_dim=4, attention_window=2, max_global_tokens=bound
        )
        inputs = {
            "query": keras.Input((11, 8), batch_size=2, name="query"),
            "padding_mask": keras.Input(
                (11,), batch_size=2, dtype="bool", name="padding_mask"
            ),
            "global_attention_mask": keras.Input(
                (11,), batch_size=2, dtype="bool", name="global_attention_mask"
            ),
        }
        model = keras.Model(inputs, layer(**inputs))
        model.compile(jit_compile=True)
        data = {"query": x, "padding_mask": pad, "global_attention_mask": glob}
        traced = model.predict(data, verbose=0)
        eager = _np(layer(**data))
        want = MultiHeadAttention(num_heads=2, key_dim=4)
        want(x)
        want.set_weights(layer.get_weights())
        np.testing.assert_allclose(traced, eager, atol=1e-5)
        np.testing.assert_allclose(
            eager,
            _np(want(x, attention_mask=layer.attention_pattern(pad, glob))),
            atol=1e-5,
        )


# -- compatibility with dense layers -------------------------------------------


def test_same_variables_as_keras_and_set_weights_from_keras():
    x = _data()
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(x, x)
    layer = LongformerAttention(num_heads=2, key_dim=4, attention_window=22)
    layer(x)
    assert [w.path.split("/", 1)[1] for w in ref.weights] == [
        w.path.split("/", 1)[1] for w in layer.weights
    ]
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(_np(layer(x)), _np(ref(x, x)), atol=1e-5)


def test_fully_masked_rows_finite_in_float16():
    x = _data(length=12) * 100
    pad = np.zeros((2, 12), bool)
    pad[:, :3] = True
    layer = LongformerAttention(
        num_heads=2, key_dim=4, attention_window=2, dtype="mixed_float16"
    )
    out = _np(layer(x, padding_mask=pad))
    assert np.all(np.isfinite(out))
    # Rows 5.. see only padding: zero attention, only the zero output bias.
    np.testing.assert_array_equal(out[:, 5:], 0.0)


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attention_window": 7}, "attention_window.*received 7"),
        ({"attention_window": 0}, "attention_window.*received 0"),
        ({"attention_window": -4}, "attention_window.*received -4"),
        ({"attention_window": 4.0}, "attention_window"),
        ({"attention_window": 4, "dilation": 0}, "dilation"),
        ({"attention_window": 4, "max_global_tokens": 0}, "max_global_tokens"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LongformerAttention(num_heads=2, key_dim=4, **kwargs)


def test_bad_inputs():
    x = _data()
    layer = LongformerAttention(
        num_heads=2, key_dim=4, attention_window=4, max_global_tokens=1
    )
    with pytest.raises(ValueError, match=r"global_attention_mask.*\(2, 11\)"):
        layer(x, global_attention_mask=np.ones((2, 10), bool))
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 11\)"):
        layer(x, padding_mask=np.ones((2, 11, 1), bool))
    with pytest.raises(ValueError, match="query.*rank 3"):
        layer(x[0])
    glob = np.zeros((2, 11), bool)
    glob[0, :2] = True
    with pytest.raises(ValueError, match="max_global_tokens"):
        layer(x, global_attention_mask=glob)
    with pytest.raises(ValueError, match="attention_mask"):
        layer(x, attention_mask=np.ones((2, 11, 11), bool))
    with pytest.raises(ValueError, match="use_causal_mask"):
        layer(x, use_causal_mask=True)


@pytest.mark.tf_only
def test_dynamic_length_signature_falls_back_to_same_numbers():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function with a None-length signature is TensorFlow only")
    import tensorflow as tf

    x = _data()
    pad, glob = _masks()
    for separate in (False, True):
        layer = LongformerAttention(
            num_heads=2,
            key_dim=4,
            attention_window=2,
            dilation=2,
            separate_global_projections=separate,
        )
        eager = _np(layer(x, padding_mask=pad, global_attention_mask=glob))
        if separate:  # make the global projections differ from the local ones
            w = layer.get_weights()
            layer.set_weights(w[:8] + [a * 1.5 + 0.1 for a in w[8:]])
            eager = _np(layer(x, padding_mask=pad, global_attention_mask=glob))
        fn = tf.function(
            lambda a, b, c: layer(a, padding_mask=b, global_attention_mask=c),
            input_signature=[
                tf.TensorSpec((None, None, 8)),
                tf.TensorSpec((None, None), tf.bool),
                tf.TensorSpec((None, None), tf.bool),
            ],
        )
        np.testing.assert_allclose(fn(x, pad, glob).numpy(), eager, atol=1e-5)


@pytest.mark.parametrize("dilation", [1, 2])
def test_multi_block_window_equals_dense_forward_and_gradients(monkeypatch, dilation):
    # Blocks of 2 lane steps: a window of 10 (5 each side) spans 3 blocks on
    # each side and the band cuts through the outer ones, as window 256 does
    # with its blocks of 64 (which a tiny test cannot reach).
    from kzoo.layers.attention import longformer_attention

    monkeypatch.setattr(longformer_attention, "_BLOCK_TARGET", 2)
    assert LongformerAttention._blocking(5) == (2, 3)
    x = _data(length=23)
    pad, glob = _masks(length=23)
    pad[0, 20:] = False
    glob[1, 17] = True
    layer, dense = _pair(x, attention_window=10, dilation=dilation)
    for g in (None, glob):
        mask = layer.attention_pattern(pad, g)
        assert not mask[0].all()
        got = layer(x, padding_mask=pad, global_attention_mask=g)
        want = dense(x, attention_mask=mask)
        np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
        got_grads = _grads(layer, x, padding_mask=pad, global_attention_mask=g)
        want_grads = _grads(dense, x, attention_mask=mask)
        assert len(got_grads) == len(want_grads) == 9
        for a, b in zip(got_grads, want_grads):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_traced_without_global_bound_warns_of_quadratic_rows():
    length = 16
    data = {
        "query": _data(length=length),
        "padding_mask": np.ones((2, length), bool),
        "global_attention_mask": np.arange(length)[None, :].repeat(2, 0) == 0,
    }

    weights = []

    def trace(bound):
        layer = LongformerAttention(
            num_heads=2, key_dim=4, attention_window=4, max_global_tokens=bound
        )
        layer(data["query"][:, :4])  # build
        if weights:
            layer.set_weights(weights)
        weights[:] = layer.get_weights()
        inputs = {
            "query": keras.Input((length, 8), batch_size=2, name="query"),
            "padding_mask": keras.Input(
                (length,), batch_size=2, dtype="bool", name="padding_mask"
            ),
            "global_attention_mask": keras.Input(
                (length,), batch_size=2, dtype="bool", name="global_attention_mask"
            ),
        }
        model = keras.Model(inputs, layer(**inputs))
        return model.predict(data, verbose=0)

    with pytest.warns(UserWarning, match="max_global_tokens=None.*all 16 positions"):
        unbounded = trace(None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        bounded = trace(1)
    # One global token a sequence: the bound changes the cost, not the numbers.
    np.testing.assert_allclose(bounded, unbounded, atol=1e-5)


def test_traced_global_tokens_over_the_bound_give_nan_rows_not_silent_local_tokens():
    """Eager: more global tokens than `max_global_tokens` raise (test_bad_inputs).
    Traced and XLA-compiled: that sequence's outputs are NaN, the others exact."""
    x = _data()
    glob = np.zeros((2, 11), bool)
    glob[0, :3] = True  # 3 > the bound of 2
    glob[1, :1] = True
    layer = LongformerAttention(num_heads=2, key_dim=4, attention_window=2,
                                max_global_tokens=2)
    inputs = {
        "query": keras.Input((11, 8), batch_size=2, name="query"),
        "global_attention_mask": keras.Input((11,), batch_size=2, dtype="bool",
                                             name="global_attention_mask"),
    }
    model = keras.Model(inputs, layer(**inputs))
    model.compile(jit_compile=True)
    traced = model.predict({"query": x, "global_attention_mask": glob}, verbose=0)
    assert np.isnan(traced[0]).all()
    eager = _np(layer(x[1:], global_attention_mask=glob[1:]))
    np.testing.assert_allclose(traced[1], eager[0], atol=1e-5)
    with pytest.raises(ValueError, match="more global tokens than `max_global_tokens`=2"):
        layer(x, global_attention_mask=glob)
