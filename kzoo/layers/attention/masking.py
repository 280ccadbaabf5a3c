"""Mask helpers shared by every kzoo attention layer.

Masks are booleans where True means "may attend":
- `padding_mask`   (B, S): which keys are real tokens.
- `attention_mask` (B, T, S): an explicit query-by-key pattern.
- causal: query t (at absolute position t + offset) sees keys s <= t + offset.

`masked_softmax` is the single place where masks meet scores. It computes in
float32 whatever the compute dtype (so a float16 model never sees `-1e9`
overflow to `-inf` and `exp` underflow to NaN), and it defines a fully masked
query row as all-zero probabilities: its attention output is zero, finite and
independent of whatever sits at the masked positions.
"""

from keras import ops

from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape

# A float32 "minus infinity" that stays finite after adding any real score.
_MASK_VALUE = -1e30


def masked_softmax(scores, mask=None, axis=-1):
    """Softmax over `axis` with a boolean mask, computed in float32.

    Args:
        scores: float tensor, any dtype.
        mask: boolean tensor broadcastable to `scores`; True keeps a score.
        axis: the axis to normalize over.

    Returns:
        Probabilities in float32: rows sum to 1 over their kept entries, and
        rows with no kept entry are all zero.
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=axis)
    mask = as_bool_mask(mask)
    scores = ops.where(mask, scores, _MASK_VALUE)
    probs = ops.softmax(scores, axis=axis)
    return ops.where(mask, probs, 0.0)


def causal_mask(query_length, key_length, query_offset=0):
    """(T, S) boolean mask: query t sees key s when s <= t + query_offset.

    `query_offset` may be a tensor (the cache index during decoding).
    """
    q_pos = ops.arange(query_length, dtype="int32") + ops.cast(
        query_offset, "int32"
    )
    k_pos = ops.arange(key_length, dtype="int32")
    return ops.expand_dims(q_pos, 1) >= ops.expand_dims(k_pos, 0)


def validate_masks(query_shape, key_shape, padding_mask=None, attention_mask=None):
    """Checks mask shapes against (B, T, ...) queries and (B, S, ...) keys."""
    batch, t_len = query_shape[0], query_shape[1]
    s_len = key_shape[1]
    if padding_mask is not None:
        check_same_dims(
            "padding_mask",
            static_shape(padding_mask),
            (batch, s_len),
            "(batch_size, key_length)",
        )
    if attention_mask is not None:
        check_same_dims(
            "attention_mask",
            static_shape(attention_mask),
            (batch, t_len, s_len),
            "(batch_size, query_length, key_length)",
        )


def merge_masks(
    query_length,
    key_length,
    padding_mask=None,
    attention_mask=None,
    use_causal_mask=False,
    query_offset=0,
):
    """Combines the three kinds of mask into one (B or 1, T, S) boolean mask.

    Returns None when no mask is given, so dense attention skips masking.
    """
    mask = None
    if attention_mask is not None:
        mask = as_bool_mask(attention_mask)
    if padding_mask is not None:
        pad = ops.expand_dims(as_bool_mask(padding_mask), 1)  # (B, 1, S)
        mask = pad if mask is None else ops.logical_and(mask, pad)
    if use_causal_mask:
        causal = ops.expand_dims(
            causal_mask(query_length, key_length, query_offset), 0
        )  # (1, T, S)
        mask = causal if mask is None else ops.logical_and(mask, causal)
    return mask
