"""The dense multi-head attention core that every kzoo attention layer shares.

Einsum letters used in this file:
    B batch, T query length, S key length, D model width,
    N heads, H key_dim (per head), V value_dim (per head).
"""

import math

import keras
from keras import ops

from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.masking import merge_masks
from kzoo.layers.attention.masking import validate_masks
from kzoo.layers.dropout import Dropout
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention, weight-compatible with Keras.

    Implements the attention of "Attention Is All You Need" (Vaswani et al.,
    2017). Built with the same arguments, this layer has the same variables,
    in the same order and with the same shapes, as
    `keras.layers.MultiHeadAttention` on rank-3 inputs: `query`, `key`,
    `value` projections with kernels (D, N, H) and biases (N, H), and an
    `attention_output` projection with kernel (N, V, D) and bias (D,).
    `set_weights(keras_layer.get_weights())` therefore moves a trained Keras
    layer into kzoo (and back), and the outputs agree.

    What it adds: boolean `padding_mask` / `attention_mask` /
    `use_causal_mask` in one place; an additive `attention_bias` (ALiBi,
    T5-style relative bias); a key/value cache for step-by-step decoding;
    float32 softmax with masking that is safe in float16 (a fully masked
    query row outputs zeros, never NaN); and `_compute_attention`, the one
    override point that the sparse and long-context layers replace.

    Args:
        num_heads: number of attention heads N.
        key_dim: size H of each head for query and key.
        value_dim: size V of each head for value; defaults to `key_dim`.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: width of the output; defaults to the query's last dim.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.
        seed: seed for the dropout `SeedGenerator`.

    Call arguments:
        query: (B, T, D_q).
        value: (B, S, D_v); defaults to `query` (self-attention).
        key: (B, S, D_k); defaults to `value`.
        padding_mask: (B, S) bool, True for real key tokens.
        attention_mask: (B, T, S) bool, True where query t may see key s.
        attention_bias: float, broadcastable to (B, N, T, S), added to the
            scores before the softmax.
        use_causal_mask: query t sees only keys s <= t (plus the cache index
            when decoding with a cache).
        return_attention_scores: also return the (B, N, T, S) probabilities.
        cache: (B, 2, S_max, N, H) key/value cache. With `cache_update_index`
            the new keys and values of `key`/`value` are written at that
            index (self-attention decoding); without it the cache is used as
            it is (cross-attention on precomputed encoder keys).
        cache_update_index: int or scalar tensor, where to write in `cache`.
        training: whether dropout is active.

    Returns:
        `(B, T, output_dim)`; with `return_attention_scores`, a tuple
        `(output, scores)`; with `cache`, a tuple `(output, new_cache)` (or
        `(output, scores, new_cache)`).

    Example:

    >>> layer = MultiHeadAttention(num_heads=2, key_dim=8)
    >>> x = keras.random.normal((2, 5, 16))
    >>> layer(x, padding_mask=ops.ones((2, 5), "bool")).shape
    (2, 5, 16)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.output_dim = check_positive_int(
            "output_dim", output_dim, allow_none=True
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.supports_masking = False

    @property
    def _value_dim(self):
        return self.value_dim or self.key_dim

    def _dense(self, equation, output_shape, bias_axes, name):
        # Fresh initializer objects per sublayer, as Keras does, so that
        # seeded initializers do not give identical kernels.
        kernel_init = self.kernel_initializer.__class__.from_config(
            self.kernel_initializer.get_config()
        )
        bias_init = self.bias_initializer.__class__.from_config(
            self.bias_initializer.get_config()
        )
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=kernel_init,
            bias_initializer=bias_init,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        check_rank("query", query_shape, 3, "(batch, query_length, dim)")
        check_rank("value", value_shape, 3, "(batch, key_length, dim)")
        check_rank("key", key_shape, 3, "(batch, key_length, dim)")
        n, h, v = self.num_heads, self.key_dim, self._value_dim
        out_dim = self.output_dim or query_shape[-1]
        # Same names and creation order as keras.layers.MultiHeadAttention.
        self._query_dense = self._dense("abc,cde->abde", (None, n, h), "de", "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._dense("abc,cde->abde", (None, n, h), "de", "key")
        self._key_dense.build(key_shape)
        self._value_dense = self._dense("abc,cde->abde", (None, n, v), "de", "value")
        self._value_dense.build(value_shape)
        self._output_dense = self._dense(
            "abcd,cde->abe", (None, out_dim), "e", "attention_output"
        )
        self._output_dense.build((query_shape[0], query_shape[1], n, v))
        self._dropout_layer = Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy
        )
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(h))

    # -- the override point -------------------------------------------------

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        attention_bias=None,
        training=None,
        return_attention_scores=False,
    ):
        """Attention on projected heads; sparse layers override this.

        Args:
            query: (B, T, N, H), not yet scaled.
            key: (B, S, N, H).
            value: (B, S, N, V).
            attention_mask: bool, broadcastable to (B, T, S), or None.
            attention_bias: float, broadcastable to (B, N, T, S), or None.

        Returns:
            `(output, scores)`: output (B, T, N, V) and the (B, N, T, S)
            probabilities, or None for scores when not asked for.
        """
        query = ops.multiply(
            query, ops.cast(self._inverse_sqrt_key_dim, query.dtype)
        )
        scores = ops.einsum("bsnh,btnh->bnts", key, query)  # (B, N, T, S)
        if attention_bias is not None:
            scores = ops.add(
                ops.cast(scores, "float32"), ops.cast(attention_bias, "float32")
            )
        if attention_mask is not None:
            attention_mask = ops.expand_dims(attention_mask, 1)  # (B, 1, T, S)
        probs = ops.cast(masked_softmax(scores, attention_mask), query.dtype)
        dropped = self._dropout_layer(probs, training=training)
        output = ops.einsum("bnts,bsnv->btnv", dropped, value)  # (B, T, N, V)
        return output, (probs if return_attention_scores else None)

    # -- the call -----------------------------------------------------------

    def _project_query_key(self, query, key, query_offset):
        """Hook applied to projected (B, T, N, H) queries and keys.

        Identity here; a layer with rotary positions overrides it.
        """
        return query, key

    def call(
        self,
        query,
        value=None,
        key=None,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        value = query if value is None else value
        key = value if key is None else key
        validate_masks(
            static_shape(query),
            static_shape(key) if cache is None else static_shape(cache[:, 0]),
            padding_mask,
            attention_mask,
        )
        q = self._query_dense(query)  # (B, T, N, H)
        query_offset = 0
        if cache is not None:
            k_cache, v_cache = cache[:, 0], cache[:, 1]  # (B, S_max, N, H)
            if cache_update_index is None:
                k, v = k_cache, v_cache
            else:
                query_offset = cache_update_index
                k_new = self._key_dense(key)
                v_new = self._value_dense(value)
                q, k_new = self._project_query_key(q, k_new, query_offset)
                start = [0, cache_update_index, 0, 0]
                k = ops.slice_update(k_cache, start, ops.cast(k_new, k_cache.dtype))
                v = ops.slice_update(v_cache, start, ops.cast(v_new, v_cache.dtype))
            cache = ops.stack((k, v), axis=1)
        else:
            k = self._key_dense(key)  # (B, S, N, H)
            v = self._value_dense(value)  # (B, S, N, V)
            q, k = self._project_query_key(q, k, 0)

        mask = merge_masks(
            ops.shape(q)[1],
            ops.shape(k)[1],
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            query_offset=query_offset,
        )
        output, scores = self._compute_attention(
            q,
            k,
            v,
            attention_mask=mask,
            attention_bias=attention_bias,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        output = self._output_dense(output)  # (B, T, D_out)
        results = (output,)
        if return_attention_scores:
            results += (scores,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def compute_output_shape(
        self,
        query_shape,
        value_shape=None,
        key_shape=None,
        return_attention_scores=False,
        cache_shape=None,
    ):
        value_shape = query_shape if value_shape is None else value_shape
        if cache_shape is not None:
            value_shape = (cache_shape[0], cache_shape[2])
        out_dim = self.output_dim or query_shape[-1]
        shapes = ((query_shape[0], query_shape[1], out_dim),)
        if return_attention_scores:
            shapes += (
                (query_shape[0], self.num_heads, query_shape[1], value_shape[1]),
            )
        if cache_shape is not None:
            shapes += (tuple(cache_shape),)
        return shapes[0] if len(shapes) == 1 else shapes

    def compute_output_spec(
        self,
        query,
        value=None,
        key=None,
        return_attention_scores=False,
        cache=None,
        **kwargs,
    ):
        shapes = self.compute_output_shape(
            query.shape,
            None if value is None else value.shape,
            return_attention_scores=return_attention_scores,
            cache_shape=None if cache is None else cache.shape,
        )
        if not isinstance(shapes[0], (tuple, list)):
            return keras.KerasTensor(shapes, dtype=self.compute_dtype)
        return tuple(keras.KerasTensor(s, dtype=self.compute_dtype) for s in shapes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "seed": self.seed,
            }
        )
        return config
