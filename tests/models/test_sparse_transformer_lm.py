import numpy as np
import pytest
from keras import ops

from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models.sparse_transformer import SparseTransformerLM
from tests.harness import run_model_test

SIZES = {"vocabulary_size": 50, "num_layers": 2, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16}


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _inputs(batch=2, length=14, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(batch, length)).astype("int32")
    pad = np.ones((batch, length), bool)
    pad[1, 10:] = False
    ids[~pad] = 0
    return {"token_ids": ids, "padding_mask": pad}


@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_harness(pattern):
    run_model_test(
        SparseTransformerLM,
        dict(SIZES, pattern=pattern, stride=4, num_summary=2, max_sequence_length=16),
        _inputs(),
        expected_output_shape=(2, 14, 50),
    )


@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_equals_dense_blocks_under_pattern_mask(pattern):
    model = SparseTransformerLM(
        **SIZES, pattern=pattern, stride=3, max_sequence_length=16, dropout=0.0
    )
    data = _inputs()
    got = _np(model(data))
    tokens = model.token_embedding(data["token_ids"])
    x = tokens + model.position_embedding(tokens)
    for layer in model.transformer_layers:
        dense = TransformerEncoderBlock(
            2, 16, dropout=0.0, activation="gelu", normalize_first=True
        )
        dense(x)
        dense.set_weights(layer.get_weights())
        mask = np.broadcast_to(layer.self_attention.attention_pattern(14), (2, 14, 14))
        x = dense(x, padding_mask=data["padding_mask"], attention_mask=mask)
    x = model.final_layer_norm(x)
    want = _np(model.token_embedding(x, reverse=True))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_logits_depend_only_on_the_past():
    model = SparseTransformerLM(**SIZES, stride=4, max_sequence_length=16, dropout=0.0)
    data = _inputs()
    before = _np(model(data))
    changed = dict(data, token_ids=data["token_ids"].copy())
    changed["token_ids"][:, 9:] = 7
    after = _np(model(changed))
    np.testing.assert_allclose(after[:, :9], before[:, :9], atol=1e-6)
    assert not np.allclose(after[0, 9:], before[0, 9:])


def test_bad_arguments():
    with pytest.raises(ValueError, match="pattern"):
        SparseTransformerLM(**SIZES, pattern="axial")
    with pytest.raises(ValueError, match="num_summary"):
        SparseTransformerLM(**SIZES, pattern="fixed", stride=4, num_summary=5)
