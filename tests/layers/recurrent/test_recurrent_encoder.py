import numpy as np
import pytest
from keras import ops

from kzoo.layers import RecurrentEncoder
from tests.harness import run_layer_test
from tests.layers.recurrent.reference import gru_sequence


def _data(batch=2, t=6, f=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, t, f)).astype("float32")
    mask = np.ones((batch, t), bool)
    mask[1, 3:] = False  # right padding
    return x, mask


@pytest.mark.parametrize(
    "cell, bidirectional, num_layers",
    [("gru", True, 2), ("lstm", True, 1), ("simple_rnn", False, 2)],
)
def test_harness_with_padding(cell, bidirectional, num_layers):
    x, mask = _data()
    width = 8 * (2 if bidirectional else 1)
    n_states = 2 if cell == "lstm" else 1
    run_layer_test(
        RecurrentEncoder,
        {
            "hidden_dim": 8,
            "num_layers": num_layers,
            "cell": cell,
            "bidirectional": bidirectional,
            "return_state": True,
        },
        {"inputs": x, "padding_mask": mask},
        expected_output_shape=[(2, 6, width)] + [(2, width)] * n_states,
    )


def test_bidirectional_gru_matches_numpy_stepped_cells():
    x, mask = _data()
    layer = RecurrentEncoder(hidden_dim=5, return_state=True)
    outputs, final = layer(x, padding_mask=mask)
    bi = layer._rnns[0]
    fwd_out, fwd_h = gru_sequence(bi.forward_layer.cell, x, mask)
    bwd_out, bwd_h = gru_sequence(bi.backward_layer.cell, x, mask, reverse=True)
    outputs = ops.convert_to_numpy(outputs)
    real = mask[..., None]
    np.testing.assert_allclose(
        np.where(real, outputs, 0.0),
        np.where(real, np.concatenate([fwd_out, bwd_out], -1), 0.0),
        atol=1e-5,
    )
    # Final forward state is at the last real token, backward at token 0.
    np.testing.assert_allclose(final, np.concatenate([fwd_h, bwd_h], -1), atol=1e-5)
    np.testing.assert_allclose(fwd_h[1], fwd_out[1, 2], atol=1e-6)


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_right_padding_does_not_change_real_positions(cell):
    x, mask = _data(t=5)
    layer = RecurrentEncoder(hidden_dim=6, num_layers=2, cell=cell, return_state=True)
    short = layer(x, padding_mask=mask)
    garbage = np.random.default_rng(5).normal(size=(2, 3, 4)).astype("float32") * 9
    longer = layer(
        np.concatenate([x, garbage], 1),
        padding_mask=np.concatenate([mask, np.zeros((2, 3), bool)], 1),
    )
    real = mask[..., None]
    np.testing.assert_allclose(
        np.where(real, ops.convert_to_numpy(longer[0])[:, :5], 0.0),
        np.where(real, ops.convert_to_numpy(short[0]), 0.0),
        atol=1e-5,
    )
    for a, b in zip(short[1:], longer[1:]):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"hidden_dim": 4, "num_layers": 0}, "num_layers"),
        ({"hidden_dim": 4, "cell": "transformer"}, "cell"),
        ({"hidden_dim": 4, "dropout": 1.0}, "dropout"),
        ({"hidden_dim": 4, "use_cudnn": "yes"}, "use_cudnn"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecurrentEncoder(**kwargs)


def test_bad_inputs():
    x, mask = _data()
    layer = RecurrentEncoder(hidden_dim=4)
    with pytest.raises(ValueError, match="inputs.*rank 3"):
        layer(x[0])
    with pytest.raises(ValueError, match="padding_mask"):
        layer(x, padding_mask=mask[:, :2])
