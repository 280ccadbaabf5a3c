import numpy as np
import pytest
from keras import ops

from kzoo.layers import AttentionDecoder
from tests.harness import run_layer_test
from tests.layers.recurrent.reference import bahdanau
from tests.layers.recurrent.reference import gru_step

COMBINATIONS = [
    (a, c) for a in ("bahdanau", "luong_dot", "luong_general") for c in ("gru", "lstm")
]


def _data(batch=2, t=5, s=6, e=4, m=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(batch, t, e)).astype("float32")
    memory = rng.normal(size=(batch, s, m)).astype("float32")
    memory_mask = np.ones((batch, s), bool)
    memory_mask[1, 4:] = False
    target_mask = np.ones((batch, t), bool)
    target_mask[0, 3:] = False
    return y, memory, memory_mask, target_mask


@pytest.mark.parametrize(
    "attention, cell", [("bahdanau", "gru"), ("luong_general", "lstm"), ("luong_dot", "gru")]
)
def test_harness_with_padding(attention, cell):
    y, memory, memory_mask, target_mask = _data()
    run_layer_test(
        AttentionDecoder,
        {"hidden_dim": 8, "cell": cell, "attention": attention},
        {
            "inputs": y,
            "memory": memory,
            "memory_padding_mask": memory_mask,
            "padding_mask": target_mask,
        },
        expected_output_shape=[(2, 5, 8), (2, 5, 6)],
    )


@pytest.mark.parametrize("attention, cell", COMBINATIONS)
def test_stepping_by_hand_equals_teacher_forced_call(attention, cell):
    y, memory, memory_mask, target_mask = _data()
    layer = AttentionDecoder(hidden_dim=8, cell=cell, attention=attention)
    rng = np.random.default_rng(2)
    state = [rng.normal(size=(2, 8)).astype("float32") for _ in range(layer.num_states)]
    outputs, weights = layer(
        y, memory, memory_padding_mask=memory_mask, padding_mask=target_mask,
        initial_state=state,
    )
    projected = layer.project_memory(memory)
    for t in range(5):
        out, w, state = layer.step(y[:, t], state, memory, projected, memory_mask)
        real = target_mask[:, t]
        np.testing.assert_allclose(
            ops.convert_to_numpy(out)[real], ops.convert_to_numpy(outputs)[real, t],
            atol=1e-5,
        )
        np.testing.assert_allclose(
            ops.convert_to_numpy(w)[real], ops.convert_to_numpy(weights)[real, t],
            atol=1e-5,
        )
    assert np.all(ops.convert_to_numpy(weights)[1, :, 4:] == 0.0)


def test_bahdanau_gru_matches_numpy_decoder():
    y, memory, memory_mask, _ = _data()
    layer = AttentionDecoder(hidden_dim=8, cell="gru", attention="bahdanau")
    outputs, weights = layer(y, memory, memory_padding_mask=memory_mask)
    w_c = ops.convert_to_numpy(layer._combine.kernel)
    h = np.zeros((2, 8), "float32")
    for t in range(5):
        # s_{t-1} attends, then s_t = GRU([y_t; c_t], s_{t-1}).
        context, w = bahdanau(layer._attention, h, memory, memory_mask)
        h = gru_step(layer._cell, np.concatenate([y[:, t], context], -1), h)
        out = np.tanh(np.concatenate([h, context], -1) @ w_c)
        np.testing.assert_allclose(outputs[:, t], out, atol=1e-5)
        np.testing.assert_allclose(weights[:, t], w, atol=1e-5)


@pytest.mark.parametrize("attention, cell", COMBINATIONS)
def test_right_padding_does_not_change_real_positions(attention, cell):
    y, memory, memory_mask, target_mask = _data()
    layer = AttentionDecoder(hidden_dim=8, cell=cell, attention=attention)
    short = layer(y, memory, memory_padding_mask=memory_mask, padding_mask=target_mask)
    rng = np.random.default_rng(7)
    longer = layer(
        np.concatenate([y, rng.normal(size=(2, 2, 4)).astype("float32")], 1),
        np.concatenate([memory, rng.normal(size=(2, 3, 8)).astype("float32")], 1),
        memory_padding_mask=np.concatenate([memory_mask, np.zeros((2, 3), bool)], 1),
        padding_mask=np.concatenate([target_mask, np.zeros((2, 2), bool)], 1),
    )
    real = target_mask
    np.testing.assert_allclose(
        ops.convert_to_numpy(longer[0])[:, :5][real],
        ops.convert_to_numpy(short[0])[real],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(longer[1])[:, :5, :6][real],
        ops.convert_to_numpy(short[1])[real],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dim": -1}, "hidden_dim"),
        ({"hidden_dim": 4, "cell": "simple_rnn"}, "cell"),
        ({"hidden_dim": 4, "attention": "luong_concat"}, "attention"),
        ({"hidden_dim": 4, "dropout": -0.1}, "dropout"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttentionDecoder(**kwargs)


def test_bad_inputs():
    y, memory, memory_mask, _ = _data()
    with pytest.raises(ValueError, match="luong_dot.*hidden_dim"):
        AttentionDecoder(hidden_dim=6, attention="luong_dot")(y, memory)
    layer = AttentionDecoder(hidden_dim=8, cell="lstm")
    with pytest.raises(ValueError, match="initial_state"):
        layer(y, memory, initial_state=[np.zeros((2, 8), "float32")])
    with pytest.raises(ValueError, match="memory_padding_mask"):
        layer(y, memory, memory_padding_mask=memory_mask[:, :2])
