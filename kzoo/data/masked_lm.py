"""Masked-LM inputs with tf.data: packing token streams and BERT masking.

BERT (Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers
for Language Understanding", 2019) selects 15% of the tokens of each
sequence; of those, 80% become `[MASK]`, 10% a random token and 10% stay
unchanged, and the model predicts the original token at every selected
position. `keras_hub.layers.MaskedLMMaskGenerator` does the selection; this
module packs text into fixed-length sequences and wires the generator into a
`tf.data` pipeline whose elements feed `BertMaskedLM.fit` directly:

    x = {"token_ids": (B, S) masked ids, "segment_ids": (B, S) zeros,
         "padding_mask": (B, S) bool, "mask_positions": (B, P) int}
    y = (B, P) original ids at `mask_positions`
    sample_weight = (B, P) 1.0 for a real selection, 0.0 for padding

TensorFlow only (tf.data); the tensors it yields serve any model.
"""

import numpy as np


def pack_sequences(token_lists, sequence_length, cls_id, sep_id, pad_id):
    """Concatenates token lists and cuts them into `[CLS] ... [SEP]` rows.

    Documents are joined end to end (as in RoBERTa's "full sentences") so no
    row is mostly padding; the last row is padded with `pad_id`.

    Args:
        token_lists: an iterable of lists (or 1-D arrays) of token ids.
        sequence_length: the row length S, including `[CLS]` and `[SEP]`.

    Returns:
        int32 array (N, S).
    """
    if sequence_length < 3:
        raise ValueError(
            f"`sequence_length` must be >= 3 ([CLS], a token, [SEP]); received "
            f"{sequence_length!r}"
        )
    chunks = [np.asarray(t, dtype=np.int32).ravel() for t in token_lists]
    stream = np.concatenate(chunks) if chunks else np.zeros((0,), np.int32)
    body = sequence_length - 2
    n = -(-len(stream) // body)
    if n == 0:
        raise ValueError("`token_lists` holds no token to pack")
    padded = np.full((n * body,), pad_id, np.int32)
    padded[: len(stream)] = stream
    rows = padded.reshape(n, body)
    ends = np.full((n, 1), sep_id, np.int32)
    # The [SEP] goes right after the last real token of the (padded) last row.
    out = np.concatenate([np.full((n, 1), cls_id, np.int32), rows, ends], axis=1)
    tail = len(stream) - (n - 1) * body
    if tail < body:
        out[-1, 1 + tail] = sep_id
        out[-1, 2 + tail :] = pad_id
    return out


def mlm_dataset(
    token_ids,
    batch_size,
    vocabulary_size,
    mask_token_id,
    special_token_ids,
    mask_selection_length,
    mask_selection_rate=0.15,
    shuffle=True,
    repeat=False,
    seed=None,
    pad_id=0,
    padding_mask_dtype="bool",
):
    """A `tf.data.Dataset` of masked-LM batches from packed rows.

    Masks are drawn afresh each time the dataset is iterated (dynamic
    masking). Batches are full (`drop_remainder=True`) so that every step,
    and every replica under `tf.distribute`, sees the same shapes.

    Args:
        token_ids: int array (N, S) from `pack_sequences`.
        batch_size: global batch size.
        vocabulary_size: V, the range of random replacement tokens.
        mask_token_id: id of `[MASK]`.
        special_token_ids: ids never selected (`[PAD]`, `[CLS]`, `[SEP]`).
        mask_selection_length: P, the most selections per row (pad to P).
        padding_mask_dtype: "bool", or "int32" (1 = real token) for
            `tf.distribute` training: Keras 3.15's `fit` under a strategy
            MEAN-reduces one batch to build the model, which fails on bools.
        mask_selection_rate: fraction of tokens selected (0.15). The
            generator selects ceil(rate * maskable tokens) per row, so short
            rows see a little more than 15% (14 tokens -> 3 = 21%).
    """
    import keras_hub
    import tensorflow as tf

    token_ids = np.asarray(token_ids, np.int32)
    if len(token_ids) < batch_size:
        raise ValueError(
            f"`batch_size` ({batch_size}) is larger than the number of packed "
            f"sequences ({len(token_ids)}); use a smaller batch or more text"
        )
    masker = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=vocabulary_size,
        mask_selection_rate=mask_selection_rate,
        mask_token_id=mask_token_id,
        mask_selection_length=mask_selection_length,
        unselectable_token_ids=list(special_token_ids),
        mask_token_rate=0.8,
        random_token_rate=0.1,
    )

    def to_inputs(ids):
        masked = masker(ids)
        x = {
            "token_ids": masked["token_ids"],  # (B, S)
            "segment_ids": tf.zeros_like(ids),  # (B, S)
            "padding_mask": tf.cast(tf.not_equal(ids, pad_id), padding_mask_dtype),  # (B, S)
            "mask_positions": masked["mask_positions"],  # (B, P)
        }
        return x, masked["mask_ids"], masked["mask_weights"]

    ds = tf.data.Dataset.from_tensor_slices(token_ids)
    if shuffle:
        ds = ds.shuffle(len(token_ids), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
