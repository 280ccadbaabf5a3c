"""One Transformer-XL decoder layer: relative attention with memory, then FFN."""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.attention.relative_multi_head_attention import RelativeMultiHeadAttention
from kzoo.layers.transformer.feed_forward import FeedForward
from kzoo.utils.validation import check_divisible
from kzoo.utils.validation import check_positive_float
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerXLBlock(keras.layers.Layer):
    """A post-LN Transformer-XL layer.

    "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context"
    (Dai et al., 2019): `x = LN(x + Drop(RelAttn(x, memory)))`,
    `x = LN(x + Drop(FFN(x)))`, causal, with the memory of the previous
    segment as extra keys.

    Args:
        num_heads: heads N; must divide the width.
        intermediate_dim: feed-forward width.
        dropout: rate on attention probabilities and residual branches.
        activation: feed-forward activation.
        layer_norm_epsilon: epsilon of the layer normalizations.
        seed: base seed of the dropout generators.

    Call arguments:
        inputs: (B, T, D).
        memory: (B, M, D) or None.
        padding_mask: (B, T) bool over the segment; memory is all real.
        training: whether dropout is active.

    Returns:
        (B, T, D).

    Example:

    >>> import keras
    >>> from kzoo.models.transformer_xl.transformer_xl_block import TransformerXLBlock
    >>> block = TransformerXLBlock(num_heads=2, intermediate_dim=32)
    >>> tuple(block(keras.random.normal((2, 4, 16)),
    ...             memory=keras.random.normal((2, 6, 16))).shape)
    (2, 4, 16)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.dropout = check_rate("dropout", dropout)
        keras.activations.get(activation)
        self.activation = activation
        self.layer_norm_epsilon = check_positive_float(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.seed = seed

    def _seed(self, offset):
        return None if self.seed is None else self.seed + offset

    def build(self, inputs_shape, memory_shape=None, padding_mask_shape=None):
        check_rank("inputs", inputs_shape, 3, "(batch, length, hidden_dim)")
        dim = inputs_shape[-1]
        check_divisible("hidden_dim", dim, "num_heads", self.num_heads)
        self.self_attention = RelativeMultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=dim // self.num_heads,
            dropout=self.dropout,
            seed=self._seed(1),
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.self_attention.build(inputs_shape)
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="self_attention_layer_norm",
        )
        self.self_attention_layer_norm.build(inputs_shape)
        self.feed_forward = FeedForward(
            self.intermediate_dim, activation=self.activation,
            dtype=self.dtype_policy, name="feed_forward",
        )
        self.feed_forward.build(inputs_shape)
        self.feed_forward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="feed_forward_layer_norm",
        )
        self.feed_forward_layer_norm.build(inputs_shape)
        self.self_attention_dropout = Dropout(
            self.dropout, seed=self._seed(2), dtype=self.dtype_policy
        )
        self.feed_forward_dropout = Dropout(
            self.dropout, seed=self._seed(3), dtype=self.dtype_policy
        )

    def call(self, inputs, memory=None, padding_mask=None, training=None):
        key_mask = None
        if padding_mask is not None:
            key_mask = padding_mask
            if memory is not None:
                real_memory = ops.ones_like(memory[:, :, 0], dtype="bool")  # (B, M)
                key_mask = ops.concatenate(
                    [real_memory, ops.cast(padding_mask, "bool")], axis=1
                )  # (B, M + T)
        keys = inputs
        if memory is not None:
            memory = ops.stop_gradient(ops.cast(memory, inputs.dtype))  # SG(m)
            keys = ops.concatenate([memory, inputs], axis=1)  # (B, M + T, D)
        x = self.self_attention(
            inputs, value=keys, padding_mask=key_mask, use_causal_mask=True,
            training=training,
        )  # (B, T, D)
        x = self.self_attention_layer_norm(
            inputs + self.self_attention_dropout(x, training=training)
        )
        y = self.feed_forward(x, training=training)  # (B, T, D)
        return self.feed_forward_layer_norm(
            x + self.feed_forward_dropout(y, training=training)
        )

    def compute_output_shape(self, inputs_shape, memory_shape=None, padding_mask_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "seed": self.seed,
            }
        )
        return config
