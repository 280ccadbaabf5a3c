import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.reversible.reversible_block import ReversibleBlock
from kzoo.layers.reversible.reversible_encoder import ReversibleEncoder
from tests.harness import run_layer_test


@keras.saving.register_keras_serializable(package="kzoo_tests")
class _MaskedMix(keras.layers.Layer):
    """A tiny F that uses its padding mask: tanh(Dense(x)) + masked mean."""

    def build(self, x_shape):
        self.dense = keras.layers.Dense(x_shape[-1], dtype=self.dtype_policy)
        self.dense.build(x_shape)

    def call(self, x, padding_mask=None):
        h = ops.tanh(self.dense(x))
        if padding_mask is None:
            return h + ops.mean(h, axis=1, keepdims=True)
        m = ops.cast(padding_mask, h.dtype)[..., None]
        mean = ops.sum(h * m, axis=1, keepdims=True) / ops.maximum(
            ops.sum(m, axis=1, keepdims=True), 1.0
        )
        return h + mean


@keras.saving.register_keras_serializable(package="kzoo_tests")
class _Dropped(keras.layers.Layer):
    """`Dropout(inner(x))` with its own seed: a stochastic F or G."""

    def __init__(self, inner, rate=0.3, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.rate, self.seed = rate, seed
        self.drop = keras.layers.Dropout(rate, seed=seed)

    def build(self, x_shape):
        self.inner.build(x_shape)

    def call(self, x, padding_mask=None, training=None):
        kwargs = {} if padding_mask is None else {"padding_mask": padding_mask}
        return self.drop(self.inner(x, **kwargs), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "inner": keras.saving.serialize_keras_object(self.inner),
            "rate": self.rate,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)


def _dropout_blocks(n=3):
    """Blocks with dropout in F and G, each with its own seed."""
    return [
        ReversibleBlock(
            _Dropped(_MaskedMix(), seed=10 + i),
            _Dropped(
                keras.layers.Dense(
                    8, activation="tanh",
                    kernel_initializer=keras.initializers.GlorotUniform(i),
                ),
                seed=20 + i,
            ),
        )
        for i in range(n)
    ]


def _blocks(n=3, seed=0):
    return [
        ReversibleBlock(
            _MaskedMix(),
            keras.layers.Dense(
                8, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed + i)
            ),
        )
        for i in range(n)
    ]


def _data(t=6):
    return np.random.default_rng(0).normal(size=(2, t, 8)).astype("float32")


def _padding(t=6):
    m = np.ones((2, t), bool)
    m[1, 4:] = False
    return m


def _grads(layer, x, mask, compiled=False, training=None):
    """Gradients of sum(sin(out) * w) w.r.t. the input and every weight.

    `compiled`: False (eager / traced once by `jax.grad`), "graph"
    (`tf.function` / `jax.jit`) or "xla" (`tf.function(jit_compile=True)` /
    `jax.jit`): the backward pass is built differently in each.
    """
    weight = np.random.default_rng(1).normal(size=(2, x.shape[1], 16)).astype("float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        def tf_grads(xt):
            with tf.GradientTape() as tape:
                tape.watch(xt)
                out = layer(xt, padding_mask=mask, training=training)
                loss = tf.reduce_sum(tf.sin(out) * weight)
            return tape.gradient(loss, [xt] + list(layer.trainable_variables))

        if compiled:
            tf_grads = tf.function(tf_grads, jit_compile=compiled == "xla")
        return [np.asarray(g) for g in tf_grads(tf.constant(x))]
    import jax

    def f(x, ws, state):
        out, state = layer.stateless_call(
            ws, state, x, padding_mask=mask, training=training
        )
        return jax.numpy.sum(jax.numpy.sin(out) * weight), state

    grad_fn = jax.grad(f, argnums=(0, 1), has_aux=True)
    if compiled:
        grad_fn = jax.jit(grad_fn)
    (gx, gws), state = grad_fn(
        x,
        [v.value for v in layer.trainable_variables],
        [v.value for v in layer.non_trainable_variables],
    )
    for variable, value in zip(layer.non_trainable_variables, state):
        variable.assign(value)
    return [np.asarray(gx)] + [np.asarray(g) for g in gws]


def _saving_and_plain(make_blocks, x, mask):
    """A memory-saving stack and a plain one with the same weights (and, the
    blocks being made alike, the same seed states)."""
    saving = ReversibleEncoder(make_blocks(), memory_saving=True)
    plain = ReversibleEncoder(make_blocks(), memory_saving=False)
    saving(x, padding_mask=mask)
    plain(x, padding_mask=mask)
    plain.set_weights(saving.get_weights())
    return saving, plain


def _assert_same_gradients(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        assert np.abs(b).max() > 0, f"gradient {i} is zero: the test cannot fail"
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4, err_msg=f"grad {i}")


@pytest.mark.parametrize("compiled", [False, "graph", "xla"])
def test_memory_saving_gradients_equal_plain_autodiff(compiled):
    x, mask = _data(), _padding()
    saving, plain = _saving_and_plain(_blocks, x, mask)
    np.testing.assert_allclose(
        ops.convert_to_numpy(saving(x, padding_mask=mask)),
        ops.convert_to_numpy(plain(x, padding_mask=mask)),
        atol=1e-6,
    )
    got, want = _grads(saving, x, mask, compiled), _grads(plain, x, mask, compiled)
    assert len(got) == len(want) == 1 + 3 * 4
    _assert_same_gradients(got, want)


def test_block_inverse_and_hand_computed_forward():
    x1, x2 = _data(), _data()[:, ::-1].copy()
    block = _blocks(1)[0]
    y1, y2 = block(x1, x2)
    f = ops.convert_to_numpy(block.f(x2))
    np.testing.assert_allclose(ops.convert_to_numpy(y1), x1 + f, atol=1e-6)
    g = ops.convert_to_numpy(block.g(y1))
    np.testing.assert_allclose(ops.convert_to_numpy(y2), x2 + g, atol=1e-6)
    r1, r2 = block.inverse(y1, y2)
    np.testing.assert_allclose(ops.convert_to_numpy(r1), x1, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(r2), x2, atol=1e-5)


@pytest.mark.parametrize("memory_saving", [True, False])
def test_harness(memory_saving):
    run_layer_test(
        ReversibleEncoder,
        {"blocks": _blocks(2), "memory_saving": memory_saving},
        {"inputs": _data(), "padding_mask": _padding()},
        expected_output_shape=(2, 6, 16),
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="blocks"):
        ReversibleEncoder([])
    with pytest.raises(ValueError, match="`f`"):
        ReversibleBlock("dense", keras.layers.Dense(8))


@pytest.mark.parametrize("compiled", [False, "xla"])
def test_dropout_masks_are_replayed_by_the_recomputation(compiled):
    """With dropout in F and G (training), the memory-saving backward pass
    recomputes each block with the forward pass's seeds: its gradients equal
    plain autodiff's, from the same seed states; the states advance."""
    x, mask = _data(), _padding()
    saving, plain = _saving_and_plain(_dropout_blocks, x, mask)
    assert len(saving.non_trainable_variables) == 6  # one seed state per dropout
    before = [ops.convert_to_numpy(v.value) for v in saving.non_trainable_variables]
    got = _grads(saving, x, mask, compiled, training=True)
    want = _grads(plain, x, mask, compiled, training=True)
    after = [ops.convert_to_numpy(v.value) for v in saving.non_trainable_variables]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    for a, b in zip(after, plain.non_trainable_variables):
        np.testing.assert_array_equal(a, ops.convert_to_numpy(b.value))
    # Dropout was active: the gradients differ from the inference ones.
    inference = _grads(plain, x, mask, compiled, training=False)
    assert not np.allclose(want[0], inference[0], atol=1e-3)
    _assert_same_gradients(got, want)


def _reformer_stack(num_layers, memory_saving):
    """Blocks as in ReformerLM (LSH attention, chunked feed-forward), tiny."""
    from kzoo.layers.transformer.chunked_feed_forward import ChunkedFeedForward
    from kzoo.layers.attention.lsh_attention import LSHAttention
    from kzoo.models.reformer.pre_norm_branch import PreNormBranch

    blocks = [
        ReversibleBlock(
            PreNormBranch(
                LSHAttention(
                    num_heads=2, key_dim=16, num_hashes=2, bucket_size=16,
                    seed=i,
                )
            ),
            PreNormBranch(ChunkedFeedForward(64, chunk_size=64)),
        )
        for i in range(num_layers)
    ]
    stack = ReversibleEncoder(blocks, memory_saving=memory_saving)
    stack.build((1, 256, 32))
    return stack


def _xla_gradient_temp_bytes(stack):
    """Bytes of temporaries (activations, workspace) of the compiled gradient."""
    import jax

    x = np.random.default_rng(0).normal(size=(1, 256, 32)).astype("float32")

    def loss(ws, x):
        return jax.numpy.sum(stack.stateless_call(ws, [], x, use_causal_mask=True)[0])

    ws = [v.value for v in stack.trainable_variables]
    compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(ws, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="reads XLA's memory analysis of the compiled gradient, which only "
    "the JAX backend exposes; TensorFlow's step memory is measured by "
    "benchmarks/reversible_memory.py (RSS)",
)
def test_memory_saving_activation_memory_does_not_grow_with_depth():
    # Memory, not time: XLA's buffer assignment is deterministic. Before each
    # block's backward step became a sub-computation of its own, XLA kept
    # per-block buffers alive for the whole pass (2.1 MB -> 3.2 MB here).
    shallow = _xla_gradient_temp_bytes(_reformer_stack(2, True))
    deep = _xla_gradient_temp_bytes(_reformer_stack(4, True))
    assert deep <= 1.02 * shallow, (shallow, deep)
    # The same blocks under plain autodiff store every block's activations.
    plain_shallow = _xla_gradient_temp_bytes(_reformer_stack(2, False))
    plain_deep = _xla_gradient_temp_bytes(_reformer_stack(4, False))
    assert plain_deep >= 1.5 * plain_shallow, (plain_shallow, plain_deep)
