import keras_hub
import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers import TransformerEncoderBlock
from tests.harness import run_layer_test


def _x(shape=(2, 6, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding():
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    return mask


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_harness_padding_and_fully_masked_row(normalize_first):
    attention_mask = np.ones((2, 6, 6), bool)
    attention_mask[0, 2, :] = False  # a query that may see nothing
    run_layer_test(
        TransformerEncoderBlock,
        {
            "num_heads": 2,
            "intermediate_dim": 16,
            "dropout": 0.1,
            "activation": "gelu",
            "normalize_first": normalize_first,
        },
        {"inputs": _x(), "padding_mask": _padding(), "attention_mask": attention_mask},
        expected_output_shape=(2, 6, 8),
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_equals_hand_composition_of_parts(normalize_first):
    x, pad = _x(), _padding()
    block = TransformerEncoderBlock(2, 16, normalize_first=normalize_first)
    out = _np(block(x, padding_mask=pad))
    attn, ln1, ffn, ln2 = (
        block.self_attention,
        block.self_attention_layer_norm,
        block.feed_forward,
        block.feed_forward_layer_norm,
    )
    if normalize_first:
        h = x + attn(ln1(x), padding_mask=pad)
        expected = h + ffn(ln2(h))
    else:
        h = ln1(x + attn(x, padding_mask=pad))
        expected = ln2(h + ffn(h))
    np.testing.assert_allclose(out, _np(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_matches_keras_hub_transformer_encoder(normalize_first):
    """Same weights as keras_hub.layers.TransformerEncoder give its outputs."""
    x, pad = _x(), _padding()
    ref = keras_hub.layers.TransformerEncoder(
        intermediate_dim=16, num_heads=2, normalize_first=normalize_first
    )
    ref(x)
    ours = TransformerEncoderBlock(2, 16, normalize_first=normalize_first)
    ours(x)
    by_name = {w.path.split("/", 1)[1]: w for w in ref.weights}
    rename = {
        "self_attention/": "self_attention_layer/",
        "feed_forward/intermediate/": "feedforward_intermediate_dense/",
        "feed_forward/output/": "feedforward_output_dense/",
        "feed_forward_layer_norm/": "feedforward_layer_norm/",
    }
    for w in ours.weights:
        name = w.path.split("/", 1)[1]
        for a, b in rename.items():
            if name.startswith(a):
                name = b + name[len(a):]
        w.assign(by_name[name] + np.float32(0.05))  # non-trivial biases/gains
    for w in ref.weights:
        w.assign(w + np.float32(0.05))
    np.testing.assert_allclose(
        _np(ours(x, padding_mask=pad)),
        _np(ref(x, padding_mask=pad)),
        atol=1e-5,
        rtol=1e-5,
    )


def test_padding_isolates_real_tokens():
    """Changing padded inputs does not change real tokens' outputs."""
    x, pad = _x(), _padding()
    block = TransformerEncoderBlock(2, 16)
    y = x.copy()
    y[1, 4:] = 100.0
    a, b = _np(block(x, padding_mask=pad)), _np(block(y, padding_mask=pad))
    np.testing.assert_allclose(a[1, :4], b[1, :4], atol=1e-5)
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)


def test_causal_mask_is_passed_through():
    x = _x()
    block = TransformerEncoderBlock(2, 16)
    full = _np(block(x, use_causal_mask=True))
    prefix = _np(block(x[:, :3], use_causal_mask=True))
    np.testing.assert_allclose(full[:, :3], prefix, atol=1e-5)


class _RecordingAttention(MultiHeadAttention):
    def call(self, query, extra_scale=None, **kwargs):
        out = super().call(query, **kwargs)
        return out if extra_scale is None else out * extra_scale


class _CustomBlock(TransformerEncoderBlock):
    def _build_self_attention(self, hidden_dim):
        return _RecordingAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dtype=self.dtype_policy,
            name="self_attention",
        )


def test_self_attention_hook_and_kwarg_pass_through():
    x = _x()
    block = _CustomBlock(2, 16, normalize_first=True)
    base = _np(block(x))
    assert isinstance(block.self_attention, _RecordingAttention)
    scaled = _np(block(x, extra_scale=0.0))
    # With the attention output zeroed, the block is x + FFN(LN(x)).
    expected = x + _np(block.feed_forward(block.feed_forward_layer_norm(x)))
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    assert not np.allclose(base, scaled)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0, "intermediate_dim": 4}, "num_heads"),
        ({"num_heads": 2, "intermediate_dim": -4}, "intermediate_dim"),
        ({"num_heads": 2, "intermediate_dim": 4, "dropout": 1.0}, "dropout"),
        ({"num_heads": 2, "intermediate_dim": 4, "layer_norm_epsilon": 0}, "layer_norm_epsilon"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerEncoderBlock(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"hidden_dim.*\(8\).*num_heads.*\(3\)"):
        TransformerEncoderBlock(3, 16)(_x())
    with pytest.raises(ValueError, match="inputs.*rank 3"):
        TransformerEncoderBlock(2, 16)(_x()[0])
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 6\)"):
        TransformerEncoderBlock(2, 16)(_x(), padding_mask=np.ones((2, 5), bool))
