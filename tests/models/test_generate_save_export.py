"""The natural order of use: `generate`, then `.keras` save and load, then
`export`. Compiled generate functions are cached off the tracked state
(`kzoo.models.generation.function_cache`), so none of these steps breaks the
next, and the loaded model generates what the original did."""

import os

import keras
import numpy as np
import pytest

from kzoo import GRUTranslator, ReformerLM, SparseTransformerLM, TransformerLM, TransformerSeq2Seq
from kzoo.models.generation import BeamSampler

IDS = np.array([[5, 6, 7, 0], [3, 4, 5, 6]], "int32")


def _seq2seq_inputs():
    return {"encoder_token_ids": IDS, "encoder_padding_mask": IDS > 0,
            "decoder_token_ids": IDS, "decoder_padding_mask": IDS > 0}


def _gru():
    model = GRUTranslator(30, 30, embedding_dim=8, hidden_dim=8)
    generate = lambda m: m.generate(
        {"encoder_token_ids": IDS, "encoder_padding_mask": IDS > 0},
        max_length=5, sampler=BeamSampler(2), stop_token_ids=(2,), start_token_id=1)
    return model, _seq2seq_inputs(), generate


def _seq2seq():
    model = TransformerSeq2Seq(30, num_layers=1, num_heads=2, hidden_dim=8,
                               intermediate_dim=16, max_sequence_length=8)
    generate = lambda m: m.generate(
        {"encoder_token_ids": IDS, "encoder_padding_mask": IDS > 0},
        max_length=5, stop_token_ids=(2,), start_token_id=1)
    return model, _seq2seq_inputs(), generate


def _lm():
    model = TransformerLM(30, num_layers=1, num_heads=2, hidden_dim=8,
                          intermediate_dim=16, max_sequence_length=8)
    prompt = {"token_ids": IDS[:, :2], "padding_mask": IDS[:, :2] > 0}
    generate = lambda m: m.generate(prompt, max_length=6, stop_token_ids=(2,))
    return model, {"token_ids": IDS, "padding_mask": IDS > 0}, generate


def _lm_prompt_generate():
    prompt = {"token_ids": IDS[:, :2], "padding_mask": IDS[:, :2] > 0}
    return lambda m: m.generate(prompt, max_length=8, stop_token_ids=(2,))


def _sparse():
    model = SparseTransformerLM(30, num_layers=1, num_heads=2, hidden_dim=8,
                                intermediate_dim=16, stride=2, max_sequence_length=8)
    return model, {"token_ids": IDS, "padding_mask": IDS > 0}, _lm_prompt_generate()


def _reformer():
    model = ReformerLM(30, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                       axial_shape=(2, 4), bucket_size=4, seed=1)
    return model, {"token_ids": IDS, "padding_mask": IDS > 0}, _lm_prompt_generate()


@pytest.mark.parametrize("make", [_gru, _seq2seq, _lm, _sparse, _reformer],
                         ids=["gru", "seq2seq", "lm", "sparse", "reformer"])
def test_generate_then_save_load_then_export(make, tmp_path):
    keras.utils.set_random_seed(0)
    model, inputs, generate = make()
    logits = np.asarray(model(inputs))
    generated = np.asarray(generate(model))

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)  # after generate: must not fail
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(generate(loaded)), generated)
    np.testing.assert_array_equal(np.asarray(generate(model)), generated)

    if keras.backend.backend() != "tensorflow":
        return  # Model.export writes a TF SavedModel; the backend's own part ran above
    import tensorflow as tf

    model.export(os.path.join(tmp_path, "saved_model"))  # after generate
    served = tf.saved_model.load(os.path.join(tmp_path, "saved_model"))
    out = served.serve({k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(np.asarray(out), logits, rtol=1e-5, atol=1e-6)
