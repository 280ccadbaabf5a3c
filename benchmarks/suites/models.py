"""Classifier models of equal width around each sequence layer, for the
training-step suites (recurrent, precision). Child side only.

token ids (B, T) -> Embedding (B, T, D) -> sequence layer (B, T, D)
-> mean over T (B, D) -> Dense(2, float32) logits.
"""

import numpy as np

from benchmarks.suites.common import Unavailable
from benchmarks.suites.common import kzoo_component

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
        "kzoo RecurrentEncoder(cell='lstm', unidirectional)",
        ("RecurrentEncoder",),
    ),
    "kzoo_hybrid": ("kzoo LSTMTransformerHybrid", ("LSTMTransformerHybrid",)),
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
        cls = kzoo_component("RecurrentEncoder")
        return cls(hidden_dim=width, cell="lstm", bidirectional=False)
    if kind == "kzoo_hybrid":
        cls = kzoo_component("LSTMTransformerHybrid")
        try:
            return cls(hidden_dim=width, num_heads=num_heads, intermediate_dim=4 * width)
        except TypeError as e:
            raise Unavailable(
                f"LSTMTransformerHybrid landed with other arguments; update "
                f"benchmarks/suites/models.py ({e})"
            ) from e
    raise ValueError(f"`model` must be one of {sorted(MODELS)}; received {kind!r}")


def build_classifier(config):
    import keras

    batch, seq, width = config["batch_size"], config["seq_len"], config["width"]
    policy = config.get("dtype_policy", "float32")
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
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


def training_step(config):
    """A no-argument callable: one `train_on_batch` on synthetic data, which
    returns the loss as a host float (the step has finished)."""
    model = build_classifier(config)
    rng = np.random.default_rng(0)
    batch, seq = config["batch_size"], config["seq_len"]
    x = rng.integers(0, config["vocabulary_size"], (batch, seq)).astype("int32")
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
    return {
        "timings": {"train_step": timings},
        "derived": {
            "sequences_per_s": batch / median,
            "tokens_per_s": batch * seq / median,
            "parameters": int(model.count_params()),
            "peak_memory_mb": timing.peak_rss_mb() - ctx.baseline_rss_mb,
        },
    }
