"""The attention contract: one `call` in the dense core, every variant a
`_compute_attention`; masks and shapes as Keras takes them; one shared error
for what a pattern cannot honour; Keras' implicit masks honoured."""

import inspect

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.backend.keras_mask import get_keras_mask
from kzoo.layers import BigBirdAttention
from kzoo.layers import LinformerAttention
from kzoo.layers import LongformerAttention
from kzoo.layers import LSHAttention
from kzoo.layers import MultiHeadAttention
from kzoo.layers import PerformerAttention
from kzoo.layers import RelativeMultiHeadAttention
from kzoo.layers import RotaryMultiHeadAttention
from kzoo.layers import SparseTransformerAttention

# Each variant with small constructor arguments, the length it runs at, and
# the arguments it must reject (what its pattern has no form for).
VARIANTS = {
    MultiHeadAttention: ({}, set()),
    RotaryMultiHeadAttention: ({}, set()),
    LongformerAttention: (
        {"attention_window": 4},
        {"value", "attention_mask", "attention_bias", "use_causal_mask", "cache",
         "return_attention_scores"},
    ),
    BigBirdAttention: (
        {"block_size": 4, "num_random_blocks": 1, "seed": 1},
        {"value", "attention_mask", "attention_bias", "use_causal_mask", "cache",
         "return_attention_scores"},
    ),
    SparseTransformerAttention: (
        {"stride": 4},
        {"value", "attention_mask", "attention_bias", "not_causal", "cache",
         "return_attention_scores"},
    ),
    LSHAttention: (
        {"bucket_size": 4, "num_buckets": 2, "seed": 1},
        {"value", "attention_mask", "attention_bias", "cache", "return_attention_scores"},
    ),
    RelativeMultiHeadAttention: ({}, {"cache"}),
    PerformerAttention: (
        {"num_random_features": 16, "seed": 1},
        {"attention_mask", "attention_bias", "cache", "return_attention_scores"},
    ),
    LinformerAttention: (
        {"projected_length": 4, "max_sequence_length": 32},
        {"attention_mask", "attention_bias", "use_causal_mask", "cache"},
    ),
}
LENGTH = 24


def _x(batch=2, length=LENGTH, dim=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, dim)).astype("float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _layer(cls):
    layer = cls(num_heads=2, key_dim=4, **VARIANTS[cls][0])
    causal = cls is SparseTransformerAttention
    layer(_x(), use_causal_mask=causal)
    return layer


# -- the shape of the code -----------------------------------------------------


@pytest.mark.parametrize("cls", [c for c in VARIANTS if c is not MultiHeadAttention])
def test_variants_override_only_the_attention(cls):
    for name in ("call", "compute_output_shape", "compute_output_spec"):
        assert name not in vars(cls), f"{cls.__name__} defines `{name}`"
    if cls is RotaryMultiHeadAttention:  # the query/key hook instead
        assert "_project_query_key" in vars(cls)
        return
    assert "_compute_attention" in vars(cls)
    lines = inspect.getsource(cls._compute_attention).count("\n")
    assert lines <= 60, f"{cls.__name__}._compute_attention has {lines} lines"


# -- the shared error -----------------------------------------------------------


def _bad_call(argument, x):
    n = 2
    return {
        "value": {"value": _x(seed=1)},
        "attention_mask": {"attention_mask": np.ones((2, LENGTH, LENGTH), bool)},
        "attention_bias": {"attention_bias": np.zeros((1, n, LENGTH, LENGTH), "float32")},
        "use_causal_mask": {"use_causal_mask": True},
        "not_causal": {"use_causal_mask": False},
        "cache": {"cache": np.zeros((2, 2, LENGTH, n, 4), "float32"),
                  "cache_update_index": 0},
        "return_attention_scores": {"return_attention_scores": True},
    }[argument]


@pytest.mark.parametrize(
    "cls, argument",
    [(c, a) for c, (_, bad) in VARIANTS.items() for a in sorted(bad)],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_unsupported_argument_raises_the_shared_error(cls, argument):
    layer = _layer(cls)
    x = _x()
    kwargs = _bad_call(argument, x)
    if cls is SparseTransformerAttention and argument != "not_causal":
        kwargs.setdefault("use_causal_mask", True)
    named = "use_causal_mask" if argument == "not_causal" else argument
    with pytest.raises(ValueError, match=rf"{cls.__name__} .*does not support `{named}`"):
        layer(x, **kwargs)
    # The same check runs on symbolic inputs (a functional model fails at
    # construction, not at its first batch).
    sym = keras.Input((LENGTH, 8), batch_size=2)
    sym_kwargs = {k: keras.Input(v.shape[1:], batch_size=v.shape[0], dtype=str(v.dtype))
                  if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=rf"does not support `{named}`"):
        layer(sym, **sym_kwargs)


def test_unknown_call_argument_is_an_error():
    layer = _layer(MultiHeadAttention)
    with pytest.raises(ValueError, match="unknown call argument `global_attention_mask`"):
        layer(_x(), global_attention_mask=np.zeros((2, LENGTH), bool))
    longformer = _layer(LongformerAttention)
    with pytest.raises(ValueError, match="unknown call argument `memory`"):
        longformer(_x(), memory=_x())


# -- masks as Keras takes them ------------------------------------------------------


def test_attention_mask_shapes_broadcast_like_keras():
    x = _x(length=6)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    rng = np.random.default_rng(3)
    mask = rng.random((6, 6)) > 0.4
    mask[2] = False  # a row that may see nothing
    full = np.broadcast_to(mask, (2, 6, 6))
    want_out, want_scores = layer(x, attention_mask=full, return_attention_scores=True)
    for shaped in (mask, mask[None], np.broadcast_to(mask, (2, 2, 6, 6)),
                   np.broadcast_to(mask, (1, 1, 6, 6))):
        out, scores = layer(x, attention_mask=shaped, return_attention_scores=True)
        np.testing.assert_allclose(_np(out), _np(want_out), atol=1e-6)
        np.testing.assert_allclose(_np(scores), _np(want_scores), atol=1e-6)
    # Keras gives the same outputs for the shapes it takes (no empty row).
    mask[2] = True
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(x, x)
    ref.set_weights(layer.get_weights())
    for shaped in (mask, mask[None], np.broadcast_to(mask, (2, 6, 6))):
        np.testing.assert_allclose(
            _np(layer(x, attention_mask=shaped)), _np(ref(x, x, attention_mask=shaped)),
            atol=1e-5,
        )


def test_per_head_attention_mask():
    x = _x(length=6)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    rng = np.random.default_rng(4)
    masks = rng.random((2, 2, 6, 6)) > 0.5  # (B, N, T, S), different per head
    _, scores = layer(x, attention_mask=masks, return_attention_scores=True)
    for head in range(2):
        _, alone = layer(x, attention_mask=masks[:, head], return_attention_scores=True)
        np.testing.assert_allclose(_np(scores)[:, head], _np(alone)[:, head], atol=1e-6)
    assert np.all(_np(scores)[~masks] == 0)


@pytest.mark.parametrize(
    "shape", [(6,), (3, 6, 6), (2, 6, 5), (2, 3, 6, 6), (1, 2, 1, 6, 6)]
)
def test_bad_attention_mask_shape_names_what_is_accepted(shape):
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    with pytest.raises(ValueError, match=r"attention_mask.*\(query_length, key_length\)"):
        layer(_x(length=6), attention_mask=np.ones(shape, bool))


def test_relative_attention_takes_the_same_mask_shapes():
    x = _x(length=6)
    layer = RelativeMultiHeadAttention(num_heads=2, key_dim=4)
    mask = np.tril(np.ones((6, 6), bool))
    want = _np(layer(x, attention_mask=np.broadcast_to(mask, (2, 6, 6))))
    np.testing.assert_allclose(_np(layer(x, attention_mask=mask)), want, atol=1e-6)
    np.testing.assert_allclose(_np(layer(x, use_causal_mask=True)), want, atol=1e-6)


# -- lengths and batch sizes -----------------------------------------------------------


def test_key_value_length_mismatch_raises_on_every_backend():
    # On JAX a length-1 key used to broadcast across the values silently.
    layer = MultiHeadAttention(num_heads=4, key_dim=2)
    q, k1, v2 = np.ones((2, 4, 8)), np.ones((2, 1, 8)), np.ones((2, 2, 8))
    with pytest.raises(ValueError, match="same length.*key length 1 and value length 2"):
        layer(q, v2, k1)
    with pytest.raises(ValueError, match="same length"):
        layer.compute_output_shape((2, 4, 8), (2, 2, 8), (2, 1, 8))
    with pytest.raises(ValueError, match="same length"):
        layer(keras.Input((4, 8)), keras.Input((2, 8)), keras.Input((1, 8)))


def test_batch_size_mismatch_raises():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    with pytest.raises(ValueError, match="same batch size.*'query': 2, 'value': 3"):
        layer(np.ones((2, 4, 8)), np.ones((3, 5, 8)))
    with pytest.raises(ValueError, match="same batch size"):
        layer.compute_output_shape((2, 4, 8), (3, 5, 8))
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 5\)"):
        layer(np.ones((2, 4, 8)), np.ones((2, 5, 8)), padding_mask=np.ones((3, 5), bool))


# -- Keras' implicit masks ----------------------------------------------------------------


def _masked_embeddings():
    ids = np.array([[3, 5, 2, 7, 0, 0], [4, 1, 0, 0, 0, 0]], "int32")
    embedding = keras.layers.Embedding(10, 8, mask_zero=True)
    return ids, embedding


def test_implicit_mask_masks_keys_and_query_rows_like_keras():
    ids, embedding = _masked_embeddings()
    real = ids != 0
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    x = embedding(ids)
    assert get_keras_mask(x) is not None
    out = _np(layer(x))
    plain = _np(embedding(ids))  # same values; NumPy carries no mask
    explicit = _np(layer(plain, padding_mask=real))
    np.testing.assert_allclose(out[real], explicit[real], atol=1e-6)
    # Padded query rows attend to nothing: zero attention, the output bias.
    bias = _np(layer.weights[-1])
    np.testing.assert_allclose(out[~real], np.broadcast_to(bias, out[~real].shape), atol=1e-6)
    # keras.layers.MultiHeadAttention with the same weights agrees on real rows.
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    x = embedding(ids)
    ref(x, x)
    ref.set_weights(layer.get_weights())
    x = embedding(ids)
    np.testing.assert_allclose(out[real], _np(ref(x, x))[real], atol=1e-5)


def test_implicit_mask_in_a_functional_model_and_on_the_output():
    ids, embedding = _masked_embeddings()
    inputs = keras.Input((6,), dtype="int32")
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    model = keras.Model(inputs, layer(embedding(inputs)))
    out = _np(model(ids))
    x = _np(embedding(ids))
    want = _np(layer(x, padding_mask=ids != 0))
    real = ids != 0
    np.testing.assert_allclose(out[real], want[real], atol=1e-6)
    # The output carries the query's mask, as in Keras.
    result = layer(embedding(ids))
    np.testing.assert_array_equal(_np(get_keras_mask(result)) > 0, real)


def test_implicit_mask_reaches_a_sparse_variant():
    ids = np.ones((2, 16), "int32")
    ids[1, 10:] = 0
    embedding = keras.layers.Embedding(10, 8, mask_zero=True)
    layer = LongformerAttention(num_heads=2, key_dim=4, attention_window=4)
    out = _np(layer(embedding(ids)))
    x = _np(embedding(ids))
    want = _np(layer(x, padding_mask=ids != 0))
    real = ids != 0
    np.testing.assert_allclose(out[real], want[real], atol=1e-6)


# -- positions through the contract ------------------------------------------------------


def test_rotary_scores_depend_only_on_the_relative_offset():
    # Through the core's query/key hook: the same query and key vectors at
    # positions (m, n) and (m + 7, n + 7) give the same score, so a sequence
    # of identical tokens gives a Toeplitz score matrix.
    layer = RotaryMultiHeadAttention(num_heads=2, key_dim=8)
    x = np.broadcast_to(_x(batch=1, length=1), (1, 6, 8)).copy()
    layer(x)
    q = layer._query_dense(x)
    k = layer._key_dense(x)
    scores = []
    for offset in (0, 7):
        qr, kr = layer._project_query_key(q, k, offset)
        scores.append(_np(ops.einsum("btnh,bsnh->bnts", qr, kr)))
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-4)
    s = scores[0][0, 0]
    for d in range(-5, 6):
        diagonal = np.diagonal(s, offset=d)
        np.testing.assert_allclose(diagonal, diagonal[0], atol=1e-4)
    assert not np.allclose(np.diagonal(s, 0)[0], np.diagonal(s, 3)[0], atol=1e-3)


def test_t5_buckets_on_a_table_of_offsets():
    # The bucket of each relative offset (key - query), worked out by hand
    # from T5's definition (Raffel et al., 2020; mesh_tensorflow's
    # `_relative_position_bucket`): 32 buckets, max_distance 128.
    from kzoo.layers.position.relative_position_bias import relative_position_bucket

    table = {
        True: {0: 0, -1: 1, -7: 7, -8: 8, -16: 10, -32: 12, -64: 14, -127: 15,
               -500: 15, 1: 17, 7: 23, 8: 24, 16: 26, 128: 31},
        False: {0: 0, 5: 0, -1: 1, -15: 15, -16: 16, -32: 21, -64: 26, -127: 31,
                -128: 31, -1000: 31},
    }
    for bidirectional, expected in table.items():
        offsets = np.array(list(expected), "int32")
        got = _np(relative_position_bucket(ops.convert_to_tensor(offsets), bidirectional, 32, 128))
        np.testing.assert_array_equal(got.astype(int), list(expected.values()))
