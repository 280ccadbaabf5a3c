"""Hugging Face's `TFLongformerSelfAttention` (transformers 4.57.6, tf-keras),
measured with the same protocol as kzoo's layers.

Runs in the reference environment only (TensorFlow + tf-keras +
transformers, no Keras 3). The layer's `call()` is called directly, not
`__call__`, so that `is_global_attn` stays a Python bool (False: local
attention only, like the kzoo configuration) and the global-attention
branch is not traced; the steps run under `tf.function(jit_compile=True)`,
its best configuration.
"""

import numpy as np


def build(width, num_heads, attention_window, sequence_length):
    import tensorflow as tf
    from transformers import LongformerConfig
    from transformers.models.longformer.modeling_tf_longformer import (
        TFLongformerSelfAttention,
    )

    config = LongformerConfig(
        hidden_size=width,
        num_attention_heads=num_heads,
        attention_window=[attention_window],
        attention_probs_dropout_prob=0.0,
    )
    layer = TFLongformerSelfAttention(config, layer_id=0)
    layer.build((1, sequence_length, width))
    batch = 1
    # What TFLongformerModel hands each layer when every token is real and
    # local: an additive mask of zeros, no masked and no global index.
    extra = [
        tf.zeros((batch, sequence_length, 1, 1), tf.float32),
        None,
        tf.zeros((batch, sequence_length), tf.bool),
        tf.zeros((batch, sequence_length), tf.bool),
        False,
    ]
    return layer, extra


def output_dense(width, sequence_length):
    """The Dense that TFLongformerSelfOutput applies to the attention output.

    With it, HF does the work kzoo's layer does: query, key, value and
    output projections around the band attention.
    """
    import tensorflow as tf

    dense = tf.keras.layers.Dense(width, name="output_dense")
    dense.build((1, sequence_length, width))
    return dense


def measure(config, ctx):
    import tensorflow as tf

    n, width = config["x"], config["width"]
    if n % config["attention_window"] != 0:
        raise ValueError(
            f"TFLongformerSelfAttention needs the sequence length ({n}) to be a "
            f"multiple of attention_window ({config['attention_window']})"
        )
    layer, extra = build(width, config["num_heads"], config["attention_window"], n)
    dense = None
    if config["component"] == "hf_longformer_output":
        dense = output_dense(width, n)
    x = tf.constant(
        np.random.default_rng(0).standard_normal((1, n, width)).astype("float32")
    )

    def forward(x):
        out = layer.call([x] + extra, training=False)[0]
        if dense is not None:
            out = dense(out)
        return tf.reduce_sum(out)

    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = forward(x)
        weights = list(layer.trainable_variables)
        if dense is not None:
            weights += list(dense.trainable_variables)
        grads = tape.gradient(loss, [x] + weights)
        # The global projections get no gradient when no token is global.
        return tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])

    fn = forward if config["phase"] == "forward" else forward_backward
    step = tf.function(fn, jit_compile=True)
    timings = ctx.time(lambda: float(step(x).numpy()))
    return {"timings": {config["phase"]: timings}}
