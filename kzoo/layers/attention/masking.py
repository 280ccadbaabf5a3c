"""Masks and the masked softmax, the one place that defines them for every
kzoo attention layer.

Masks are booleans where True means "may attend":
- `padding_mask`   (B, S): which keys are real tokens.
- `attention_mask` (T, S), (1, T, S), (B, T, S) or per head (B, N, T, S): an
  explicit query-by-key pattern; `standardize_attention_mask` brings every
  accepted shape to rank 4, (B or 1, N or 1, T, S).
- causal: query t (at absolute position t + offset) sees keys s <= t + offset.

`MASK_VALUE` is kzoo's "minus infinity": a float32 score that stays finite
after adding any real score, so no softmax sees `inf - inf`.

The rule for a query row that may attend to nothing (every key masked): its
probabilities are all zero, so its attention output is zero, finite and
independent of whatever sits at the masked positions. This is a deliberate
difference from `keras.layers.MultiHeadAttention`, whose softmax then gives
every key the same weight and outputs the mean of all values (padding
included). Every pattern (dense, band, block-sparse, hashed, linear) follows
the kzoo rule.
"""

from keras import ops

from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape

# A float32 "minus infinity" that stays finite after adding any real score.
MASK_VALUE = -1e30
# A row whose largest (biased) score is below this saw no key at all.
EMPTY_ROW_THRESHOLD = -1e29


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
    scores = ops.where(mask, scores, MASK_VALUE)
    probs = ops.softmax(scores, axis=axis)
    return ops.where(mask, probs, 0.0)


def additive_mask(mask):
    """Boolean mask -> float32 additive bias: 0 where kept, MASK_VALUE elsewhere."""
    return ops.cast(ops.where(as_bool_mask(mask), 0.0, MASK_VALUE), "float32")


def causal_mask(query_length, key_length, query_offset=0):
    """(T, S) boolean mask: query t sees key s when s <= t + query_offset.

    `query_offset` may be a tensor (the cache index during decoding).
    """
    q_pos = ops.arange(query_length, dtype="int32") + ops.cast(
        query_offset, "int32"
    )
    k_pos = ops.arange(key_length, dtype="int32")
    return ops.expand_dims(q_pos, 1) >= ops.expand_dims(k_pos, 0)


def check_padding_mask(name, mask, batch, length, what="(batch_size, key_length)"):
    """Checks a (B, S) mask against the batch size and key length."""
    if mask is not None:
        check_same_dims(name, static_shape(mask), (batch, length), what)


def standardize_attention_mask(attention_mask, batch, num_heads, t_len, s_len):
    """An explicit mask of any accepted shape -> rank 4 (B|1, N|1, T, S).

    Accepts (T, S), (1, T, S), (B, T, S) and per head (B, N, T, S), as
    `keras.layers.MultiHeadAttention` broadcasts them; a batch of 1 (and a
    head axis of 1) broadcasts. `None` dims (unknown when tracing) are not
    checked. Raises a `ValueError` that names the shape received.
    """
    if attention_mask is None:
        return None
    shape = static_shape(attention_mask)
    rank = len(shape)
    accepted = (
        "(query_length, key_length), (1 or batch_size, query_length, "
        "key_length) or (batch_size, num_heads, query_length, key_length)"
    )
    if rank not in (2, 3, 4):
        raise ValueError(
            f"`attention_mask` must have shape {accepted} = ({t_len}, {s_len}), "
            f"(1 or {batch}, {t_len}, {s_len}) or ({batch}, {num_heads}, "
            f"{t_len}, {s_len}); received shape {shape}"
        )
    mask = as_bool_mask(attention_mask)
    if rank == 2:
        mask = ops.reshape(mask, (1, 1) + tuple(ops.shape(mask)))
    elif rank == 3:
        mask = ops.expand_dims(mask, 1)
    full = static_shape(mask)
    expected = (batch, num_heads, t_len, s_len)
    for axis, (got, want) in enumerate(zip(full, expected)):
        broadcastable = axis < 2 and got == 1
        if got is not None and want is not None and got != want and not broadcastable:
            raise ValueError(
                f"`attention_mask` must have shape {accepted} = ({t_len}, "
                f"{s_len}), (1 or {batch}, {t_len}, {s_len}) or ({batch}, "
                f"{num_heads}, {t_len}, {s_len}); received shape {shape}"
            )
    return mask


def merge_masks(
    query_length,
    key_length,
    padding_mask=None,
    attention_mask=None,
    use_causal_mask=False,
    query_offset=0,
):
    """Combines the kinds of mask into one boolean mask, or None for none.

    `attention_mask` is a standardized rank-4 mask (see
    `standardize_attention_mask`); the result is (B|1, N|1, T, S), or
    (B|1, 1, T, S) without a per-head mask.
    """
    mask = attention_mask
    if padding_mask is not None:
        pad = as_bool_mask(padding_mask)[:, None, None, :]  # (B, 1, 1, S)
        mask = pad if mask is None else ops.logical_and(mask, pad)
    if use_causal_mask:
        causal = causal_mask(query_length, key_length, query_offset)[None, None]
        mask = causal if mask is None else ops.logical_and(mask, causal)
    return mask
