"""A Transformer encoder block: self-attention then feed-forward.

Einsum letters: B batch, T length, D model width (`hidden_dim`), N heads.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.transformer.attention_positions import check_attention_position
from kzoo.layers.transformer.attention_positions import position_bias
from kzoo.layers.transformer.attention_positions import position_bias_layer
from kzoo.layers.transformer.attention_positions import self_attention_layer
from kzoo.layers.transformer.feed_forward import FeedForward
from kzoo.utils.validation import check_divisible
from kzoo.utils.validation import check_positive_float
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate


def _sub_seed(seed, offset):
    return None if seed is None else seed + offset


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """One Transformer encoder layer, post-LN or pre-LN.

    The encoder layer of "Attention Is All You Need" (Vaswani et al., 2017):
    `x = LN(x + Drop(SelfAttn(x)))`, `x = LN(x + Drop(FFN(x)))` (post-LN, the
    paper and BERT). With `normalize_first=True` it is the pre-LN layer of
    "On Layer Normalization in the Transformer Architecture" (Xiong et al.,
    2020): `x = x + Drop(SelfAttn(LN(x)))`, `x = x + Drop(FFN(LN(x)))`.

    Positions inside attention (`position_encoding`): "rotary" rotates
    queries and keys (`RotaryMultiHeadAttention`, through the core's
    query/key hook); "alibi" (`ALiBiBias`) and "t5" (`RelativePositionBias`,
    bidirectional buckets, a table per block) add a bias to the scores
    through `attention_bias`. None adds nothing here: learned or sinusoidal
    positions are added to the embeddings by the model.

    Extension hook: the self-attention sublayer comes from
    `_build_self_attention(hidden_dim)`, which returns a
    `kzoo.layers.MultiHeadAttention` here. A subclass with another attention
    pattern (e.g. `LongformerEncoderBlock`) overrides only that method; any
    extra keyword argument given to `call` (e.g. `global_attention_mask`) is
    passed through unchanged to the self-attention layer.

    Args:
        num_heads: number of attention heads N; must divide the input width.
        intermediate_dim: hidden width of the feed-forward network.
        dropout: dropout rate on attention probabilities and on the residual
            branches.
        activation: activation of the feed-forward network.
        normalize_first: pre-LN (True) or post-LN (False).
        layer_norm_epsilon: epsilon of the layer normalizations.
        kernel_initializer: initializer for all kernels.
        bias_initializer: initializer for all biases.
        seed: base seed of the dropout `SeedGenerator`s.
        position_encoding: None, "rotary", "alibi" or "t5" (see above).

    Call arguments:
        inputs: (B, T, D).
        padding_mask: (B, T) bool, True for real tokens. Padded tokens are
            never attended to; their own outputs are computed but meaningless.
        attention_mask: (B, T, T) bool, True where query t may see key s.
        attention_bias: float, broadcastable to (B, N, T, T), added to the
            attention scores (ALiBi, T5 relative bias).
        use_causal_mask: query t sees only keys s <= t.
        training: whether dropout is active.
        **attention_kwargs: passed through to the self-attention layer.

    Returns:
        (B, T, D).

    Example:

    >>> import keras
    >>> from keras import ops
    >>> from kzoo.layers import TransformerEncoderBlock
    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32,
    ...                                 position_encoding="alibi")
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple(block(x, padding_mask=ops.ones((2, 5), "bool")).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="relu",
        normalize_first=False,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        position_encoding=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.dropout = check_rate("dropout", dropout)
        keras.activations.get(activation)  # fails early on an unknown name
        self.activation = activation
        self.normalize_first = bool(normalize_first)
        self.layer_norm_epsilon = check_positive_float(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.position_encoding = check_attention_position(position_encoding)
        self.supports_masking = True

    def _initializers(self):
        return {
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }

    def _build_self_attention(self, hidden_dim):
        """The hook: returns the (unbuilt) self-attention sublayer."""
        return self_attention_layer(
            self.position_encoding,
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            seed=_sub_seed(self.seed, 1),
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, inputs_shape):
        check_rank("inputs", inputs_shape, 3, "(batch, length, hidden_dim)")
        hidden_dim = inputs_shape[-1]
        check_divisible("hidden_dim", hidden_dim, "num_heads", self.num_heads)
        self.self_attention = self._build_self_attention(hidden_dim)
        self.self_attention.build(inputs_shape)
        self.position_bias = position_bias_layer(
            self.position_encoding, self.num_heads, bidirectional=True,
            dtype=self.dtype_policy,
        )
        if self.position_bias is not None:
            self.position_bias.build(inputs_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm")
        self.self_attention_layer_norm.build(inputs_shape)
        self.feed_forward = FeedForward(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="feed_forward",
            **self._initializers(),
        )
        self.feed_forward.build(inputs_shape)
        self.feed_forward_layer_norm = self._layer_norm("feed_forward_layer_norm")
        self.feed_forward_layer_norm.build(inputs_shape)
        self.self_attention_dropout = Dropout(
            self.dropout, seed=_sub_seed(self.seed, 2), dtype=self.dtype_policy
        )
        self.feed_forward_dropout = Dropout(
            self.dropout, seed=_sub_seed(self.seed, 3), dtype=self.dtype_policy
        )

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        training=None,
        **attention_kwargs,
    ):
        x = inputs  # (B, T, D)
        attention_bias = position_bias(self.position_bias, x, x, 0, attention_bias)
        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        x = self.self_attention(
            x,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            attention_bias=attention_bias,
            use_causal_mask=use_causal_mask,
            training=training,
            **attention_kwargs,
        )  # (B, T, D)
        x = ops.add(residual, self.self_attention_dropout(x, training=training))
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        residual = x
        if self.normalize_first:
            x = self.feed_forward_layer_norm(x)
        x = self.feed_forward(x, training=training)  # (B, T, D)
        x = ops.add(residual, self.feed_forward_dropout(x, training=training))
        if not self.normalize_first:
            x = self.feed_forward_layer_norm(x)
        return x

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "normalize_first": self.normalize_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "seed": self.seed,
                "position_encoding": self.position_encoding,
                **self._initializers(),
            }
        )
        return config
