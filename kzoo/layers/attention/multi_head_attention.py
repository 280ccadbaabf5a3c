"""The dense multi-head attention core that every kzoo attention layer shares.

The contract: `MultiHeadAttention.call` alone validates the inputs, projects
query, key and value, calls `_compute_attention` with the masks unmerged and
applies the output projection. A variant (Longformer, BigBird, LSH, ...)
overrides only `_compute_attention` (and `build` for variables of its own),
and says with a few class attributes which call arguments its pattern can
honour; `call` rejects the others with one shared error.

Einsum letters used in this file:
    B batch, T query length, S key length, D model width,
    N heads, H key_dim (per head), V value_dim (per head).
"""

import dataclasses
import inspect
import math

import keras
from keras import ops

from kzoo.backend.keras_mask import get_keras_mask
from kzoo.backend.keras_mask import set_keras_mask
from kzoo.layers.attention.masking import check_padding_mask
from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.masking import merge_masks
from kzoo.layers.attention.masking import standardize_attention_mask
from kzoo.layers.dropout import Dropout
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import static_shape

# The arguments `call` hands to every `_compute_attention`; any other
# parameter of a variant's `_compute_attention` is a pattern input of its own
# (e.g. Longformer's `global_attention_mask`), passed through from `call`.
_CORE_ARGUMENTS = (
    "self",
    "query",
    "key",
    "value",
    "padding_mask",
    "attention_mask",
    "attention_bias",
    "use_causal_mask",
    "query_offset",
    "training",
    "return_attention_scores",
    "inputs",
)


@dataclasses.dataclass(frozen=True)
class PatternSupport:
    """Which call arguments an attention pattern can honour.

    `MultiHeadAttention.call` checks each call against its class's
    `_support` before any work and rejects the rest with one shared error:
    an argument that a pattern cannot honour is never ignored.

    Attributes:
        causal_forms: the values of `use_causal_mask` the pattern has.
        cross_attention: a `value` / `key` other than `query`.
        attention_mask: an explicit (T, S) mask.
        attention_bias: an additive (T, S) bias.
        cache: a key/value cache for step-by-step decoding.
        attention_scores: `return_attention_scores`.
    """

    causal_forms: tuple = (False, True)
    cross_attention: bool = True
    attention_mask: bool = True
    attention_bias: bool = True
    cache: bool = True
    attention_scores: bool = True

    @classmethod
    def sparse_self_attention(cls, causal_forms):
        """A pattern over one sequence that forms no (T, S) matrix."""
        return cls(causal_forms, cross_attention=False, attention_mask=False,
                   attention_bias=False, cache=False, attention_scores=False)


def _is_self_attention(query, value, key):
    return (value is None or value is query) and (key is None or key is query)


def _static_dim(shape, axis):
    return None if shape is None else shape[axis]


def _check_input_shapes(query_shape, value_shape, key_shape, cache_shape=None):
    """Ranks, batch sizes and key/value lengths; returns (B, T, S)."""
    check_rank("query", query_shape, 3, "(batch_size, query_length, dim)")
    check_rank("value", value_shape, 3, "(batch_size, key_length, dim)")
    check_rank("key", key_shape, 3, "(batch_size, key_length, dim)")
    batches = {
        name: _static_dim(shape, 0)
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape))
    }
    if cache_shape is not None:
        check_rank("cache", cache_shape, 5, "(batch_size, 2, max_length, num_heads, key_dim)")
        batches["cache"] = cache_shape[0]
    known = {n: b for n, b in batches.items() if b is not None}
    if len(set(known.values())) > 1:
        raise ValueError(
            "`query`, `value`, `key` (and `cache`) must have the same batch "
            f"size; received batch sizes {known}"
        )
    s_value, s_key = value_shape[1], key_shape[1]
    if s_value is not None and s_key is not None and s_value != s_key:
        raise ValueError(
            "`key` and `value` must have the same length (one value per key); "
            f"received key length {s_key} and value length {s_value} (shapes "
            f"{tuple(key_shape)} and {tuple(value_shape)})"
        )
    s_len = cache_shape[2] if cache_shape is not None else s_key
    batch = next(iter(known.values()), None)
    return batch, query_shape[1], s_len


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
    float32 softmax with masking that is safe in float16; and
    `_compute_attention`, the one override point of the sparse and
    long-context layers.

    One deliberate difference from Keras: a query row that may attend to
    nothing (all its keys masked) outputs zeros before the output
    projection, where Keras averages all values (padding included). Keras'
    implicit masks (`Embedding(mask_zero=True)`) are honoured as Keras does:
    the query's mask masks query rows, the value's and key's masks mask keys;
    the output carries the query's mask.

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
        key: (B, S, D_k); defaults to `value`. Key and value must have the
            same length S and every input the same batch size B.
        padding_mask: (B, S) bool, True for real key tokens.
        attention_mask: bool, True where query t may see key s: (T, S),
            (1, T, S) or (B, T, S) (broadcast over heads, and over the batch
            when it has no batch axis or one of size 1), or per head
            (B, N, T, S).
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
        **kwargs: the pattern inputs of a variant (its `_compute_attention`
            parameters beyond the common ones, e.g. Longformer's
            `global_attention_mask`); any other name is an error.

    Returns:
        `(B, T, output_dim)`; with `return_attention_scores`, a tuple
        `(output, scores)`; with `cache`, a tuple `(output, new_cache)` (or
        `(output, scores, new_cache)`).

    Example:

    >>> import keras
    >>> from keras import ops
    >>> from kzoo.layers import MultiHeadAttention
    >>> layer = MultiHeadAttention(num_heads=2, key_dim=8)
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple(layer(x, padding_mask=ops.ones((2, 5), "bool")).shape)
    (2, 5, 16)
    """

    # -- what the pattern honours (class attributes, not config) ---------------
    _pattern_summary = "dense attention"
    _support = PatternSupport()
    _shares_query_key = False  # keys are the projected queries (Reformer)

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
        self.supports_masking = True

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

    def _head_projection(self, name, input_shape, head_dim=None):
        """A (B, L, D) -> (B, L, N, head_dim) projection, built."""
        head_dim = head_dim or self.key_dim
        dense = self._dense("abc,cde->abde", (None, self.num_heads, head_dim), "de", name)
        dense.build(input_shape)
        return dense

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        _check_input_shapes(query_shape, value_shape, key_shape)
        n, v = self.num_heads, self._value_dim
        out_dim = self.output_dim or query_shape[-1]
        # Same names and creation order as keras.layers.MultiHeadAttention.
        self._query_dense = self._head_projection("query", query_shape)
        if not self._shares_query_key:
            self._key_dense = self._head_projection("key", key_shape)
        self._value_dense = self._head_projection("value", value_shape, v)
        self._output_dense = self._dense(
            "abcd,cde->abe", (None, out_dim), "e", "attention_output"
        )
        self._output_dense.build((query_shape[0], query_shape[1], n, v))
        self._dropout_layer = Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy
        )
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self.key_dim))

    # -- the override point -------------------------------------------------

    def _compute_attention(
        self,
        query,
        key,
        value,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        query_offset=0,
        training=None,
        return_attention_scores=False,
        inputs=None,
    ):
        """Attention on projected heads; every variant overrides this.

        `call` has validated every argument against the layer's declared
        support, so a variant only computes its pattern.

        Args:
            query: (B, T, N, H), not yet scaled.
            key: (B, S, N, H).
            value: (B, S, N, V).
            padding_mask: (B, S) bool or None.
            attention_mask: (B|1, N|1, T, S) bool (standardized) or None.
            attention_bias: float, broadcastable to (B, N, T, S), or None.
            use_causal_mask: whether query t sees only keys s <= t + offset.
            query_offset: int or scalar tensor, absolute position of query 0
                (the cache index when decoding).
            training: whether dropout is active.
            return_attention_scores: whether to return the probabilities.
            inputs: `(query, key, value)` before projection, for a pattern
                with projections of its own (Longformer's global ones).

        Returns:
            `(output, scores)`: output (B, T, N, V) and the (B, N, T, S)
            probabilities, or None for scores when not asked for.
        """
        mask = merge_masks(
            ops.shape(query)[1],
            ops.shape(key)[1],
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            query_offset=query_offset,
        )  # (B|1, N|1, T, S) or None
        query = ops.multiply(
            query, ops.cast(self._inverse_sqrt_key_dim, query.dtype)
        )
        scores = ops.einsum("bsnh,btnh->bnts", key, query)  # (B, N, T, S)
        if attention_bias is not None:
            scores = ops.add(
                ops.cast(scores, "float32"), ops.cast(attention_bias, "float32")
            )
        probs = ops.cast(masked_softmax(scores, mask), query.dtype)
        dropped = self._dropout_layer(probs, training=training)
        output = ops.einsum("bnts,bsnv->btnv", dropped, value)  # (B, T, N, V)
        return output, (probs if return_attention_scores else None)

    def _project_query_key(self, query, key, query_offset):
        """Hook applied to projected (B, T, N, H) queries and keys.

        Identity here; `RotaryMultiHeadAttention` rotates them by position
        (`query_offset` is the absolute position of the first one).
        """
        return query, key

    def _scores_key_length(self, key_length):
        """Length of the key axis of the returned scores (Linformer: K)."""
        return key_length

    # -- the checks ---------------------------------------------------------

    @classmethod
    def _pattern_inputs(cls):
        """The names of the variant's own call inputs."""
        params = inspect.signature(cls._compute_attention).parameters
        return tuple(
            name
            for name, p in params.items()
            if name not in _CORE_ARGUMENTS and p.kind is not p.VAR_KEYWORD
        )

    def _unsupported(self, argument, why, received):
        inputs = self._pattern_inputs()
        own = f" and its pattern inputs ({', '.join(inputs)})" if inputs else ""
        raise ValueError(
            f"{type(self).__name__} ('{self.name}', {self._pattern_summary}) "
            f"does not support `{argument}`: {why}; received {received}. Use "
            f"`padding_mask`{own}."
        )

    def _check_call(
        self,
        self_attention,
        attention_mask,
        attention_bias,
        use_causal_mask,
        return_attention_scores,
        cache,
        pattern_inputs,
    ):
        """Rejects, with one shared error, what the pattern cannot honour."""
        allowed = self._pattern_inputs()
        for name in pattern_inputs:
            if name not in allowed:
                raise ValueError(
                    f"{type(self).__name__} got an unknown call argument "
                    f"`{name}`; besides MultiHeadAttention's it takes "
                    f"{list(allowed) or 'none'}"
                )

        def shape(x):
            return f"a tensor of shape {static_shape(x)}"

        support = self._support
        if not self_attention and not support.cross_attention:
            self._unsupported(
                "value", "it is self-attention only (call it with `query` "
                "alone)", "a `value` or `key` other than `query`"
            )
        if attention_mask is not None and not support.attention_mask:
            self._unsupported(
                "attention_mask", "a dense (T, S) mask has no form in this "
                "pattern", shape(attention_mask)
            )
        if attention_bias is not None and not support.attention_bias:
            self._unsupported(
                "attention_bias", "an additive (T, S) bias has no form in "
                "this pattern", shape(attention_bias)
            )
        if bool(use_causal_mask) not in support.causal_forms:
            why = (
                "the pattern has no causal form" if use_causal_mask
                else "the pattern is causal only: call it with use_causal_mask=True"
            )
            self._unsupported(
                "use_causal_mask", why, f"use_causal_mask={use_causal_mask}"
            )
        if cache is not None and not support.cache:
            self._unsupported(
                "cache", "it has no key/value cache for step-by-step decoding",
                shape(cache),
            )
        if return_attention_scores and not support.attention_scores:
            self._unsupported(
                "return_attention_scores", "it does not form a (T, S) "
                "probability matrix", "return_attention_scores=True"
            )

    # -- the call -----------------------------------------------------------

    def _project(self, query, key, value, cache, cache_update_index):
        """Projected heads q, k, v, the new cache and the query offset."""
        q = self._query_dense(query)  # (B, T, N, H)
        if cache is None:
            k = q if self._shares_query_key else self._key_dense(key)  # (B, S, N, H)
            v = self._value_dense(value)  # (B, S, N, V)
            q, k = self._project_query_key(q, k, 0)
            return q, k, v, None, 0
        k_cache, v_cache = cache[:, 0], cache[:, 1]  # (B, S_max, N, H)
        if cache_update_index is None:  # cross-attention on a fixed cache
            return q, k_cache, v_cache, cache, 0
        k_new = self._key_dense(key)
        v_new = self._value_dense(value)
        q, k_new = self._project_query_key(q, k_new, cache_update_index)
        start = [0, cache_update_index, 0, 0]
        k = ops.slice_update(k_cache, start, ops.cast(k_new, k_cache.dtype))
        v = ops.slice_update(v_cache, start, ops.cast(v_new, v_cache.dtype))
        return q, k, v, ops.stack((k, v), axis=1), cache_update_index

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
        **kwargs,
    ):
        self_attention = _is_self_attention(query, value, key)
        value = query if value is None else value
        key = value if key is None else key
        # Keras' implicit masks, read and cleared as keras MultiHeadAttention
        # does: the query's masks rows, the value's and key's mask keys.
        query_mask = get_keras_mask(query)
        key_masks = [get_keras_mask(value)]
        if key is not value:
            key_masks.append(get_keras_mask(key))
        for x in (query, value, key):
            set_keras_mask(x, None)
        self._check_call(
            self_attention, attention_mask, attention_bias, use_causal_mask,
            return_attention_scores, cache, kwargs,
        )
        batch, t_len, s_len = _check_input_shapes(
            static_shape(query), static_shape(value), static_shape(key),
            static_shape(cache),
        )
        attention_mask = standardize_attention_mask(
            attention_mask, batch, self.num_heads, t_len, s_len
        )
        check_padding_mask("padding_mask", padding_mask, batch, s_len)
        for mask in key_masks:
            if mask is not None:
                mask = as_bool_mask(mask)
                padding_mask = (
                    mask if padding_mask is None
                    else ops.logical_and(as_bool_mask(padding_mask), mask)
                )

        inputs = (query, key, value)
        q, k, v, cache, query_offset = self._project(
            query, key, value, cache, cache_update_index
        )
        output, scores = self._compute_attention(
            q,
            k,
            v,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            attention_bias=attention_bias,
            use_causal_mask=use_causal_mask,
            query_offset=query_offset,
            training=training,
            return_attention_scores=return_attention_scores,
            inputs=inputs,
            **kwargs,
        )  # (B, T, N, V)
        if query_mask is not None:
            rows = as_bool_mask(query_mask)  # (B, T)
            output = ops.where(rows[:, :, None, None], output, ops.zeros_like(output))
            if scores is not None:
                scores = ops.where(rows[:, None, :, None], scores, ops.zeros_like(scores))
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
        **kwargs,
    ):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        batch, t_len, s_len = _check_input_shapes(
            tuple(query_shape), tuple(value_shape), tuple(key_shape),
            None if cache_shape is None else tuple(cache_shape),
        )
        out_dim = self.output_dim or query_shape[-1]
        shapes = ((query_shape[0], t_len, out_dim),)
        if return_attention_scores:
            scores_length = None if s_len is None else self._scores_key_length(s_len)
            shapes += ((query_shape[0], self.num_heads, t_len, scores_length),)
        if cache_shape is not None:
            shapes += (tuple(cache_shape),)
        return shapes[0] if len(shapes) == 1 else shapes

    def compute_output_spec(self, query, value=None, key=None, **kwargs):
        # Symbolic calls run the same checks as eager ones.
        call_kwargs = dict(kwargs)
        pattern_inputs = {
            name: call_kwargs.pop(name) for name in list(call_kwargs)
            if name not in inspect.signature(self.call).parameters
        }
        get = call_kwargs.get
        self._check_call(
            _is_self_attention(query, value, key), get("attention_mask"),
            get("attention_bias"), get("use_causal_mask", False),
            get("return_attention_scores", False), get("cache"), pattern_inputs,
        )
        cache = get("cache")
        shapes = self.compute_output_shape(
            query.shape,
            None if value is None else value.shape,
            None if key is None else key.shape,
            return_attention_scores=get("return_attention_scores", False),
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
