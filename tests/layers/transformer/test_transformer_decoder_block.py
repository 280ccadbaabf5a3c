import keras_hub
import numpy as np
import pytest
from keras import ops

from kzoo.layers import TransformerDecoderBlock
from tests.harness import run_layer_test


def _x(shape=(2, 6, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding(length=6, cut=4):
    mask = np.ones((2, length), bool)
    mask[1, cut:] = False
    return mask


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_harness_with_cross_attention(normalize_first):
    encoder_attention_mask = np.ones((2, 5, 7), bool)
    encoder_attention_mask[0, 1, :] = False  # a query that may see no encoder key
    run_layer_test(
        TransformerDecoderBlock,
        {
            "num_heads": 2,
            "intermediate_dim": 16,
            "dropout": 0.1,
            "normalize_first": normalize_first,
        },
        {
            "decoder_sequence": _x((2, 5, 8)),
            "encoder_sequence": _x((2, 7, 8), seed=1),
            "decoder_padding_mask": _padding(5, 3),
            "encoder_padding_mask": _padding(7, 4),
            "encoder_attention_mask": encoder_attention_mask,
        },
        expected_output_shape=(2, 5, 8),
    )


def test_harness_decoder_only_fully_masked_row():
    decoder_attention_mask = np.ones((2, 6, 6), bool)
    decoder_attention_mask[1, 3, :] = False
    run_layer_test(
        TransformerDecoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "normalize_first": True},
        {
            "decoder_sequence": _x(),
            "decoder_padding_mask": _padding(),
            "decoder_attention_mask": decoder_attention_mask,
        },
        expected_output_shape=(2, 6, 8),
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_equals_hand_composition_of_parts(normalize_first):
    x, enc = _x((2, 5, 8)), _x((2, 7, 8), seed=1)
    dpad, epad = _padding(5, 3), _padding(7, 4)
    block = TransformerDecoderBlock(2, 16, normalize_first=normalize_first)
    out = _np(block(x, enc, decoder_padding_mask=dpad, encoder_padding_mask=epad))

    def self_attn(h):
        return block.self_attention(h, padding_mask=dpad, use_causal_mask=True)

    def cross_attn(h):
        return block.cross_attention(h, enc, padding_mask=epad)

    def sub(h, ln, fn):
        return h + fn(ln(h)) if normalize_first else ln(h + fn(h))

    h = sub(x, block.self_attention_layer_norm, self_attn)
    h = sub(h, block.cross_attention_layer_norm, cross_attn)
    h = sub(h, block.feed_forward_layer_norm, block.feed_forward)
    np.testing.assert_allclose(out, _np(h), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_matches_keras_hub_transformer_decoder(normalize_first):
    x, enc = _x((2, 5, 8)), _x((2, 7, 8), seed=1)
    dpad, epad = _padding(5, 3), _padding(7, 4)
    ref = keras_hub.layers.TransformerDecoder(16, 2, normalize_first=normalize_first)
    ref(x, enc)
    ours = TransformerDecoderBlock(2, 16, normalize_first=normalize_first)
    ours(x, enc)
    # Same variables in the same order (only the feed-forward names differ).
    assert [tuple(w.shape) for w in ref.weights] == [tuple(w.shape) for w in ours.weights]
    ours.set_weights([w + np.float32(0.05) for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        _np(ours(x, enc, decoder_padding_mask=dpad, encoder_padding_mask=epad)),
        _np(ref(x, enc, decoder_padding_mask=dpad, encoder_padding_mask=epad)),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "normalize_first, cross, position_encoding",
    [(False, False, None), (True, False, None), (False, True, None), (True, True, None),
     (True, False, "rotary"), (False, True, "alibi"), (True, True, "t5")],
)
def test_cached_decoding_equals_full_forward_pass(normalize_first, cross, position_encoding):
    x, enc = _x((2, 6, 8)), _x((2, 7, 8), seed=1)
    epad = _padding(7, 4)
    block = TransformerDecoderBlock(
        2, 16, normalize_first=normalize_first, position_encoding=position_encoding
    )
    kwargs = {"encoder_sequence": enc, "encoder_padding_mask": epad} if cross else {}
    full = _np(block(x, **kwargs))
    self_cache = ops.zeros((2, 2, 9, 2, 4))  # longer than the sequence
    cross_cache = block.compute_cross_attention_cache(enc) if cross else None
    if cross:
        # The precomputed cache holds the cross-attention keys and values.
        np.testing.assert_allclose(
            _np(cross_cache[:, 0]), _np(block.cross_attention._key_dense(enc)), atol=1e-6
        )
    steps = []
    for i in range(6):
        outputs = block(
            x[:, i : i + 1],
            encoder_padding_mask=epad if cross else None,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=i,
            cross_attention_cache=cross_cache,
        )
        if cross:
            out, self_cache, cross_cache = outputs
        else:
            out, self_cache = outputs
        steps.append(_np(out))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_cache_from_encoder_sequence_is_returned():
    x, enc = _x((2, 1, 8)), _x((2, 7, 8), seed=1)
    block = TransformerDecoderBlock(2, 16)
    out, self_cache, cross_cache = block(
        x, enc, self_attention_cache=ops.zeros((2, 2, 4, 2, 4)),
        self_attention_cache_update_index=0,
    )
    assert tuple(self_cache.shape) == (2, 2, 4, 2, 4)
    np.testing.assert_allclose(
        _np(cross_cache), _np(block.compute_cross_attention_cache(enc)), atol=1e-6
    )
    assert block.compute_output_shape((2, 1, 8), (2, 7, 8), (2, 2, 4, 2, 4)) == (
        (2, 1, 8), (2, 2, 4, 2, 4), (2, 2, 7, 2, 4)
    )


def test_causal_future_does_not_leak():
    x = _x()
    block = TransformerDecoderBlock(2, 16)
    y = x.copy()
    y[:, 4:] = 50.0
    np.testing.assert_allclose(_np(block(x))[:, :4], _np(block(y))[:, :4], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": -1, "intermediate_dim": 4}, "num_heads"),
        ({"num_heads": 2, "intermediate_dim": 0}, "intermediate_dim"),
        ({"num_heads": 2, "intermediate_dim": 4, "dropout": 2}, "dropout"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerDecoderBlock(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"hidden_dim.*\(8\).*num_heads.*\(3\)"):
        TransformerDecoderBlock(3, 16)(_x())
    with pytest.raises(ValueError, match="decoder_sequence.*rank 3"):
        TransformerDecoderBlock(2, 16)(_x()[0])
    block = TransformerDecoderBlock(2, 16)
    block(_x())
    with pytest.raises(ValueError, match="encoder_sequence"):
        block(_x(), _x())
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 6\)"):
        block(_x(), decoder_padding_mask=np.ones((2, 5), bool))
