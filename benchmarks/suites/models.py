"""Classifier models of equal width around each sequence layer, for the
training-step suites (recurrent, precision). Child side only.

token ids (B, T) -> Embedding (B, T, D) -> sequence layer (B, T, D)
-> mean over T (B, D) -> Dense(2, float32) logits.

`kzoo_hybrid` is kzoo's `LSTMTransformerHybrid`, a whole classifier with
its own embedding, masked mean and output layer (same shapes): a
bidirectional LSTM of D / 2 units per direction, then one post-LN
`TransformerEncoderBlock` of width D.
"""

import numpy as np

from benchmarks.suites.common import kzoo_component
from benchmarks.suites.common import transformer_layer_flops

# name -> (description, kzoo names the model needs, or None for Keras/keras-hub)
MODELS = {
    "simple_rnn": ("keras.layers.SimpleRNN", None),
    "lstm": ("keras.layers.LSTM (reference)", None),
    "gru": ("keras.layers.GRU", None),
    "keras_hub_transformer": ("keras_hub.layers.TransformerEncoder", None),
    "kzoo_transformer": (
        "kzoo TransformerEncoderBlock (post-LN)",
        ("TransformerEncoderBlock",),
    ),
    "kzoo_recurrent_lstm": (
        "kzoo RecurrentEncoder(hidden_dim=D, cell='lstm', bidirectional=False)",
        ("RecurrentEncoder",),
    ),
    "kzoo_hybrid": (
        "kzoo LSTMTransformerHybrid(hidden_dim=D, num_recurrent_layers=1, "
        "num_transformer_layers=1, cell='lstm'): BiLSTM D/2 per direction, "
        "then one TransformerEncoderBlock",
        ("LSTMTransformerHybrid",),
    ),
}


def sequence_layer(kind, width, num_heads):
    import keras

    if kind == "simple_rnn":
        return keras.layers.SimpleRNN(width, return_sequences=True)
    if kind == "lstm":
        return keras.layers.LSTM(width, return_sequences=True)
    if kind == "gru":
        return keras.layers.GRU(width, return_sequences=True)
    if kind == "keras_hub_transformer":
        import keras_hub

        return keras_hub.layers.TransformerEncoder(
            intermediate_dim=4 * width, num_heads=num_heads
        )
    if kind == "kzoo_transformer":
        cls = kzoo_component("TransformerEncoderBlock")
        return cls(num_heads=num_heads, intermediate_dim=4 * width)
    if kind == "kzoo_recurrent_lstm":
        # kzoo/layers/recurrent/recurrent_encoder.py: RecurrentEncoder(
        # hidden_dim, num_layers=1, cell="gru", bidirectional=True, ...).
        cls = kzoo_component("RecurrentEncoder")
        return cls(hidden_dim=width, num_layers=1, cell="lstm", bidirectional=False)
    raise ValueError(f"`model` must be one of {sorted(MODELS)}; received {kind!r}")


def _hybrid(config):
    """kzoo/models/lstm_transformer_hybrid: LSTMTransformerHybrid(
    vocabulary_size, num_outputs, task, hidden_dim, num_recurrent_layers,
    num_transformer_layers, num_heads, intermediate_dim, cell, dropout)."""
    cls = kzoo_component("LSTMTransformerHybrid")
    width = config["width"]
    return cls(
        config["vocabulary_size"],
        2,
        task="classification",
        hidden_dim=width,
        num_recurrent_layers=1,
        num_transformer_layers=1,
        num_heads=config["num_heads"],
        intermediate_dim=4 * width,
        cell="lstm",
        dropout=0.0,
    )


def build_classifier(config):
    import keras

    batch, seq, width = config["batch_size"], config["seq_len"], config["width"]
    policy = config.get("dtype_policy", "float32")
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    if config["model"] == "kzoo_hybrid":
        model = _hybrid(config)
    else:
        inputs = keras.Input((seq,), batch_size=batch, dtype="int32")
        x = keras.layers.Embedding(config["vocabulary_size"], width)(inputs)  # (B, T, D)
        x = sequence_layer(config["model"], width, config["num_heads"])(x)  # (B, T, D)
        x = keras.layers.GlobalAveragePooling1D()(x)  # (B, D)
        logits = keras.layers.Dense(2, dtype="float32")(x)  # (B, 2)
        model = keras.Model(inputs, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=bool(config["jit"]),
    )
    return model


def recurrent_flops_per_token(cell, input_dim, units):
    """Forward multiply-add FLOPs (2 per MAC) of one recurrent step: each gate
    is a (input_dim + units) x units matmul; LSTM has 4 gates, GRU 3,
    SimpleRNN 1. Element-wise gate arithmetic is left out (O(units))."""
    gates = {"simple_rnn": 1, "gru": 3, "lstm": 4}[cell]
    return 2 * gates * (input_dim + units) * units


def training_flops(config):
    """Matmul FLOPs of one training step (forward + backward) of the classifier.

    Forward FLOPs per sequence (T tokens, width D, F = 4D feed-forward):
        recurrent layer: T * recurrent_flops_per_token
        Transformer layer: transformer_layer_flops(T, D, F)
        head: 2 * D * 2 (Dense to 2 logits)
    The embedding is a gather (no FLOPs). Training = 3 x forward: the
    backward pass does two matmuls of the forward's size per matmul
    (gradients for the input and for the weight).
    """
    t, d, b = config["seq_len"], config["width"], config["batch_size"]
    model = config["model"]
    if model in ("simple_rnn", "lstm", "gru"):
        body = t * recurrent_flops_per_token(model, d, d)
    elif model == "kzoo_recurrent_lstm":
        body = t * recurrent_flops_per_token("lstm", d, d)
    elif model in ("keras_hub_transformer", "kzoo_transformer"):
        body = transformer_layer_flops(t, d, 4 * d)
    elif model == "kzoo_hybrid":
        # BiLSTM: two directions of D / 2 units on D inputs, then one block.
        body = 2 * t * recurrent_flops_per_token("lstm", d, d // 2)
        body += transformer_layer_flops(t, d, 4 * d)
    else:
        raise ValueError(f"`model` must be one of {sorted(MODELS)}; received {model!r}")
    head = 2 * d * 2
    return 3 * b * (body + head)


def training_step(config):
    """A no-argument callable: one `train_on_batch` on synthetic data, which
    returns the loss as a host float (the step has finished)."""
    model = build_classifier(config)
    rng = np.random.default_rng(0)
    batch, seq = config["batch_size"], config["seq_len"]
    x = rng.integers(1, config["vocabulary_size"], (batch, seq)).astype("int32")
    if config["model"] == "kzoo_hybrid":
        x = {"token_ids": x, "padding_mask": np.ones((batch, seq), bool)}
    y = rng.integers(0, 2, (batch,)).astype("int32")

    def step():
        loss = model.train_on_batch(x, y)
        return float(loss[0] if isinstance(loss, (list, tuple)) else loss)

    return model, step


def measure_training(config, ctx):
    from benchmarks import timing

    model, step = training_step(config)
    timings = ctx.time(step)
    batch, seq = config["batch_size"], config["seq_len"]
    median = timings["median_s"]
    flops = training_flops(config)
    return {
        "timings": {"train_step": timings},
        "derived": {
            "sequences_per_s": batch / median,
            "tokens_per_s": batch * seq / median,
            "parameters": int(model.count_params()),
            "peak_memory_mb": timing.peak_rss_mb() - ctx.baseline_rss_mb,
            "flops_per_step": flops,
            "model_gflops_per_s": flops / median / 1e9,
        },
    }
