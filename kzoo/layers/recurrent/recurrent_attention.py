"""The shared base of the recurrent-decoder attention layers.

Einsum letters: B batch, T query length, S key length, D value width.
"""

import keras
from keras import ops

from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.masking import check_padding_mask
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import static_shape


class RecurrentAttention(keras.layers.Layer):
    """Base of `BahdanauAttention` and `LuongAttention`.

    Subclasses build their weights, implement `project_keys(key)` (the part
    of the score that depends on the keys alone, computed once per source
    sequence) and `_score(query, projected_key)` -> float32 (B, T, S).
    This base does the rest, identically for both: the masked float32
    softmax over keys (a fully masked row gets zero weights and a zero
    context), the weighted sum of the values, `call` and the output shapes.
    """

    def _resolve_shapes(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        check_rank("query", query_shape, 3, "(batch, query_length, dim)")
        check_rank("value", value_shape, 3, "(batch, key_length, dim)")
        check_rank("key", key_shape, 3, "(batch, key_length, dim)")
        return query_shape, value_shape, key_shape

    def project_keys(self, key):
        raise NotImplementedError

    def _score(self, query, projected_key):
        raise NotImplementedError

    def attend(self, query, value, projected_key, padding_mask=None):
        """Attention given keys already passed through `project_keys`."""
        scores = self._score(query, projected_key)  # (B, T, S) float32
        mask = None
        if padding_mask is not None:
            mask = ops.expand_dims(padding_mask, 1)  # (B, 1, S)
        weights = masked_softmax(scores, mask)  # (B, T, S) float32
        context = ops.einsum(
            "bts,bsd->btd", ops.cast(weights, value.dtype), value
        )  # (B, T, D)
        return context, weights

    def call(self, query, value=None, padding_mask=None, key=None):
        value = query if value is None else value
        key = value if key is None else key
        check_padding_mask(
            "padding_mask", padding_mask, static_shape(query)[0], static_shape(key)[1]
        )
        return self.attend(query, value, self.project_keys(key), padding_mask)

    def compute_output_shape(self, query_shape, value_shape=None, **kwargs):
        value_shape = query_shape if value_shape is None else value_shape
        return (
            (query_shape[0], query_shape[1], value_shape[-1]),
            (query_shape[0], query_shape[1], value_shape[1]),
        )

    def compute_output_spec(self, query, value=None, **kwargs):
        value = query if value is None else value
        context, weights = self.compute_output_shape(query.shape, value.shape)
        return (
            keras.KerasTensor(context, dtype=self.compute_dtype),
            keras.KerasTensor(weights, dtype="float32"),
        )
