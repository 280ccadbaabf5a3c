"""A Transformer decoder block: causal self-attention, optional
cross-attention, feed-forward; with key/value caches for decoding.

Einsum letters: B batch, T decoder length, S encoder length, S_max cache
length, D model width (`hidden_dim`), N heads, H head size (D / N).
"""

import keras
from keras import ops

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.dropout import Dropout
from kzoo.layers.transformer.attention_positions import check_attention_position
from kzoo.layers.transformer.attention_positions import position_bias
from kzoo.layers.transformer.attention_positions import position_bias_layer
from kzoo.layers.transformer.attention_positions import self_attention_layer
from kzoo.layers.transformer.feed_forward import FeedForward
from kzoo.layers.transformer.transformer_encoder_block import _sub_seed
from kzoo.utils.validation import check_divisible
from kzoo.utils.validation import check_positive_float
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerDecoderBlock(keras.layers.Layer):
    """One Transformer decoder layer, post-LN or pre-LN, with caches.

    The decoder layer of "Attention Is All You Need" (Vaswani et al., 2017):
    causal self-attention, then (when an `encoder_sequence` is given at
    build time) cross-attention on the encoder output, then a feed-forward
    network, each wrapped as `LN(x + Drop(f(x)))` (post-LN) or
    `x + Drop(f(LN(x)))` (pre-LN, `normalize_first=True`). Without an
    encoder it is the decoder-only (GPT-style) layer.

    Decoding with caches: pass `self_attention_cache` (B, 2, S_max, N, H) and
    `self_attention_cache_update_index`; the keys/values of the new
    positions are written there and the queries attend to the cache
    causally (query t at absolute position t + index). Cross-attention keys
    and values do not change during decoding: compute them once with
    `compute_cross_attention_cache(encoder_sequence)` (B, 2, S, N, H) and pass
    them as `cross_attention_cache`.

    Positions inside self-attention (`position_encoding`): "rotary",
    "alibi" or "t5" (causal buckets), as in `TransformerEncoderBlock`; with
    a cache each starts at the cache index, so cached decoding equals the
    full pass. Cross-attention has no position term.

    Extension hook: as in `TransformerEncoderBlock`, the self-attention
    sublayer comes from `_build_self_attention(hidden_dim)`, and extra
    keyword arguments of `call` go to it unchanged.

    Args:
        num_heads: number of attention heads N; must divide the input width.
        intermediate_dim: hidden width of the feed-forward network.
        dropout: dropout rate on attention probabilities and residual
            branches.
        activation: activation of the feed-forward network.
        normalize_first: pre-LN (True) or post-LN (False).
        layer_norm_epsilon: epsilon of the layer normalizations.
        kernel_initializer: initializer for all kernels.
        bias_initializer: initializer for all biases.
        seed: base seed of the dropout `SeedGenerator`s.
        position_encoding: None, "rotary", "alibi" or "t5".

    Call arguments:
        decoder_sequence: (B, T, D).
        encoder_sequence: (B, S, D_enc) or None.
        decoder_padding_mask: (B, T) bool, or (B, S_max) with a cache; True
            for real tokens.
        decoder_attention_mask: (B, T, T) (or (B, T, S_max)) bool.
        encoder_padding_mask: (B, S) bool, True for real encoder tokens.
        encoder_attention_mask: (B, T, S) bool.
        attention_bias: float, broadcastable to (B, N, T, T or S_max), added
            to the self-attention scores.
        self_attention_cache: (B, 2, S_max, N, H) or None.
        self_attention_cache_update_index: int or scalar tensor.
        cross_attention_cache: (B, 2, S, N, H) or None.
        use_causal_mask: causal self-attention (default True).
        training: whether dropout is active.
        **attention_kwargs: passed through to the self-attention layer.

    Returns:
        (B, T, D); with `self_attention_cache`, the tuple
        `(output, self_attention_cache)`, plus `cross_attention_cache` when
        the block has cross-attention.

    Example:

    >>> import keras
    >>> from kzoo.layers import TransformerDecoderBlock
    >>> block = TransformerDecoderBlock(num_heads=2, intermediate_dim=32)
    >>> x, enc = keras.random.normal((2, 4, 16)), keras.random.normal((2, 6, 16))
    >>> tuple(block(x, enc).shape)
    (2, 4, 16)
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
        keras.activations.get(activation)
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
        self.has_cross_attention = False

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

    def _dropout_layer(self, offset):
        return Dropout(
            self.dropout, seed=_sub_seed(self.seed, offset), dtype=self.dtype_policy
        )

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        check_rank("decoder_sequence", decoder_sequence_shape, 3, "(batch, length, hidden_dim)")
        hidden_dim = decoder_sequence_shape[-1]
        check_divisible("hidden_dim", hidden_dim, "num_heads", self.num_heads)
        self.self_attention = self._build_self_attention(hidden_dim)
        self.self_attention.build(decoder_sequence_shape)
        self.position_bias = position_bias_layer(
            self.position_encoding, self.num_heads, bidirectional=False,
            dtype=self.dtype_policy,
        )
        if self.position_bias is not None:
            self.position_bias.build(decoder_sequence_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm")
        self.self_attention_layer_norm.build(decoder_sequence_shape)
        self.self_attention_dropout = self._dropout_layer(2)
        if encoder_sequence_shape is not None:
            check_rank("encoder_sequence", encoder_sequence_shape, 3, "(batch, length, dim)")
            self.has_cross_attention = True
            self.cross_attention = MultiHeadAttention(
                num_heads=self.num_heads,
                key_dim=hidden_dim // self.num_heads,
                dropout=self.dropout,
                seed=_sub_seed(self.seed, 4),
                dtype=self.dtype_policy,
                name="cross_attention",
                **self._initializers(),
            )
            self.cross_attention.build(decoder_sequence_shape, encoder_sequence_shape)
            self.cross_attention_layer_norm = self._layer_norm("cross_attention_layer_norm")
            self.cross_attention_layer_norm.build(decoder_sequence_shape)
            self.cross_attention_dropout = self._dropout_layer(5)
        self.feed_forward = FeedForward(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="feed_forward",
            **self._initializers(),
        )
        self.feed_forward.build(decoder_sequence_shape)
        self.feed_forward_layer_norm = self._layer_norm("feed_forward_layer_norm")
        self.feed_forward_layer_norm.build(decoder_sequence_shape)
        self.feed_forward_dropout = self._dropout_layer(3)

    def compute_cross_attention_cache(self, encoder_sequence):
        """(B, S, D_enc) encoder output -> (B, 2, S, N, H) keys and values."""
        if not self.has_cross_attention:
            raise ValueError(
                "`compute_cross_attention_cache` needs a block built with an "
                "`encoder_sequence`; this block has no cross-attention"
            )
        key = self.cross_attention._key_dense(encoder_sequence)  # (B, S, N, H)
        value = self.cross_attention._value_dense(encoder_sequence)  # (B, S, N, H)
        return ops.stack((key, value), axis=1)

    def _sublayer(self, x, layer_norm, dropout, fn, training):
        residual = x
        if self.normalize_first:
            x = layer_norm(x)
        x = fn(x)
        x = ops.add(residual, dropout(x, training=training))
        if not self.normalize_first:
            x = layer_norm(x)
        return x

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        attention_bias=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        use_causal_mask=True,
        training=None,
        **attention_kwargs,
    ):
        uses_encoder = encoder_sequence is not None or cross_attention_cache is not None
        if uses_encoder and not self.has_cross_attention:
            raise ValueError(
                "`encoder_sequence` was given to a TransformerDecoderBlock built "
                "without one; build (first call) the block with its encoder"
            )
        if self.has_cross_attention and not uses_encoder:
            raise ValueError(
                "This TransformerDecoderBlock has cross-attention: pass "
                "`encoder_sequence` or `cross_attention_cache`"
            )
        new_self_cache = None
        if self_attention_cache is None:
            attention_bias = position_bias(
                self.position_bias, decoder_sequence, decoder_sequence, 0, attention_bias
            )
        else:
            attention_bias = position_bias(
                self.position_bias, decoder_sequence, self_attention_cache[:, 0],
                self_attention_cache_update_index, attention_bias,
            )

        def self_attention(x):
            nonlocal new_self_cache
            out = self.self_attention(
                x,
                padding_mask=decoder_padding_mask,
                attention_mask=decoder_attention_mask,
                attention_bias=attention_bias,
                use_causal_mask=use_causal_mask,
                cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
                training=training,
                **attention_kwargs,
            )  # (B, T, D)
            if self_attention_cache is not None:
                out, new_self_cache = out
            return out

        x = self._sublayer(
            decoder_sequence,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self_attention,
            training,
        )  # (B, T, D)

        if self.has_cross_attention:
            if cross_attention_cache is None and self_attention_cache is not None:
                cross_attention_cache = self.compute_cross_attention_cache(
                    encoder_sequence
                )

            def cross_attention(x):
                if cross_attention_cache is not None:
                    out, _ = self.cross_attention(
                        x,
                        padding_mask=encoder_padding_mask,
                        attention_mask=encoder_attention_mask,
                        cache=cross_attention_cache,
                        training=training,
                    )
                    return out
                return self.cross_attention(
                    x,
                    encoder_sequence,
                    padding_mask=encoder_padding_mask,
                    attention_mask=encoder_attention_mask,
                    training=training,
                )  # (B, T, D)

            x = self._sublayer(
                x,
                self.cross_attention_layer_norm,
                self.cross_attention_dropout,
                cross_attention,
                training,
            )

        x = self._sublayer(
            x,
            self.feed_forward_layer_norm,
            self.feed_forward_dropout,
            lambda h: self.feed_forward(h, training=training),
            training,
        )  # (B, T, D)
        if self_attention_cache is None:
            return x
        if self.has_cross_attention:
            return x, new_self_cache, cross_attention_cache
        return x, new_self_cache

    def compute_output_shape(
        self,
        decoder_sequence_shape,
        encoder_sequence_shape=None,
        self_attention_cache_shape=None,
        cross_attention_cache_shape=None,
    ):
        output_shape = tuple(decoder_sequence_shape)
        if self_attention_cache_shape is None:
            return output_shape
        shapes = (output_shape, tuple(self_attention_cache_shape))
        if self.has_cross_attention:
            if cross_attention_cache_shape is None:
                batch, s_len = encoder_sequence_shape[0], encoder_sequence_shape[1]
                cross_attention_cache_shape = (batch, 2, s_len) + tuple(
                    self_attention_cache_shape[3:]
                )
            shapes += (tuple(cross_attention_cache_shape),)
        return shapes

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
