"""Locality-sensitive-hashing attention (Reformer).

Einsum letters used in this file:
    B batch, T sequence length, N heads, H key_dim, V value_dim,
    R hash rounds, K half the number of buckets, C chunks, L chunk length
    (`bucket_size`), J keys seen by a chunk (L, or 2L with the look-back).
"""

import keras
from keras import ops

from kzoo.layers.attention.masking import MASK_VALUE
from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_divisible
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class LSHAttention(MultiHeadAttention):
    """Reformer's LSH self-attention with shared query-key projection.

    Implements the attention of "Reformer: The Efficient Transformer"
    (Kitaev, Kaiser and Levskaya, 2020). Queries and keys share one
    projection; keys are the unit-normalised queries (scaled by
    `1/sqrt(key_dim)`, as in the reference implementation). Each hash round
    assigns every position a bucket by a random rotation, `argmax([xR; -xR])`;
    positions are sorted by (round, bucket, position), cut into chunks of
    `bucket_size`, and each chunk attends to itself and to the previous chunk
    (the sorted rounds are laid end to end and chunked together, so the
    first chunk of a round looks back to the last chunk of the round before
    and the very first chunk to the very last, as in trax and Hugging Face's
    implementations). Queries are not masked by bucket. A position
    never attends to itself unless nothing else is available to it. The
    rounds are combined with weights `softmax_r(logsumexp of round r's
    scores)`, which is exact attention over the union of the rounds' keys
    when the rounds see disjoint keys (duplicates are not de-duplicated).

    Shared-QK attention inside the dense core's contract: the class declares
    `_shares_query_key`, so the core builds no `key` projection and hands
    `_compute_attention` the projected queries as keys. Variables: `query`,
    `value` and `attention_output` exactly as in `MultiHeadAttention` (same
    names, shapes and order); a dense layer's weights copy in by dropping
    its `key` kernel and bias.

    The rotations come from `seed`. By default they are a fixed, stateless
    draw (the same in training and inference and after reloading), so the
    layer is deterministic. With `redraw_rotations=True`, each training call
    draws new rotations from a `keras.random.SeedGenerator` (as trax and
    Hugging Face's implementations do, unless given a fixed hash seed), so
    no pair of positions is kept apart by one unlucky rotation for the whole
    of training; inference keeps the fixed draw. A memory-saving
    `ReversibleEncoder` replays the same rotations when it recomputes the
    layer.

    Args:
        num_heads: number of heads N.
        key_dim: size H of each query/key head.
        num_hashes: hash rounds R.
        bucket_size: chunk length L; must divide the sequence length (pad the
            input to a multiple of it).
        num_buckets: buckets per round: 1 (no hashing: order by position) or
            an even number; `None` chooses `2 * T // bucket_size` (at least 2)
            from the static sequence length, as in the paper.
        seed: integer seed of the random rotations (also used for dropout).
        redraw_rotations: draw new rotations at every training call (True)
            or keep the fixed draw from `seed` (False).
        **kwargs: `value_dim`, `dropout`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer` of `MultiHeadAttention`,
            and base layer arguments.

    Call arguments:
        query: (B, T, D) inputs (self-attention only).
        padding_mask: (B, T) bool, True for real tokens; padded keys are
            never attended.
        use_causal_mask: whether position t attends only to positions
            s <= t.
        training: whether dropout is active.
        A `value` / `key` other than `query`, `attention_mask`,
        `attention_bias`, `cache` and `return_attention_scores` raise the
        dense core's shared `ValueError`.

    Returns:
        (B, T, output_dim). A query that can see no real key outputs zeros
        before the output projection.

    Example:

    >>> import keras
    >>> from kzoo.layers import LSHAttention
    >>> layer = LSHAttention(num_heads=2, key_dim=8, num_hashes=2,
    ...                      bucket_size=4, seed=1)
    >>> x = keras.random.normal((2, 16, 16))
    >>> tuple(layer(x, use_causal_mask=True).shape)
    (2, 16, 16)
    """

    _pattern_summary = "hashed buckets with shared queries and keys"
    _support = PatternSupport.sparse_self_attention(causal_forms=(False, True))
    _shares_query_key = True

    def __init__(
        self,
        num_heads,
        key_dim,
        num_hashes=1,
        bucket_size=64,
        num_buckets=None,
        seed=None,
        redraw_rotations=False,
        **kwargs,
    ):
        super().__init__(num_heads=num_heads, key_dim=key_dim, seed=seed, **kwargs)
        self.redraw_rotations = bool(redraw_rotations)
        if self.redraw_rotations:
            self._rotation_seed_generator = keras.random.SeedGenerator(
                seed, name="rotation_seed_generator"
            )
        self.num_hashes = check_positive_int("num_hashes", num_hashes)
        self.bucket_size = check_positive_int("bucket_size", bucket_size)
        self.num_buckets = check_positive_int(
            "num_buckets", num_buckets, allow_none=True
        )
        if self.num_buckets is not None and (
            self.num_buckets != 1 and self.num_buckets % 2
        ):
            raise ValueError(
                "`num_buckets` must be 1 or an even positive integer (hashing "
                f"takes an argmax over [xR; -xR]); received {num_buckets!r}"
            )

    def _buckets_for(self, length):
        if self.num_buckets is not None:
            return self.num_buckets
        if length is None:
            raise ValueError(
                "`num_buckets` must be given when the sequence length is not "
                "static; received num_buckets=None and an unknown length"
            )
        return max(2, 2 * (length // self.bucket_size))

    def _hash(self, qk, num_buckets, training=None):
        """Bucket ids (B, N, R, T) by random rotations; 0 with one bucket."""
        shape = ops.shape(qk)
        if num_buckets == 1:
            return ops.zeros((shape[0], shape[1], self.num_hashes, shape[2]), "int32")
        if self.redraw_rotations and training:
            seed = self._rotation_seed_generator  # a new draw at each call
        else:
            seed = 0 if self.seed is None else self.seed
        rotations = keras.random.normal(
            (self.num_heads, self.key_dim, self.num_hashes, num_buckets // 2),
            seed=seed,
            dtype="float32",
        )  # (N, H, R, K)
        rotated = ops.einsum(
            "bnth,nhrk->bnrtk", ops.cast(qk, "float32"), rotations
        )  # (B, N, R, T, K)
        rotated = ops.concatenate([rotated, -rotated], axis=-1)  # (B,N,R,T,2K)
        return ops.cast(ops.argmax(rotated, axis=-1), "int32")  # (B, N, R, T)

    def _compute_attention(self, query, key, value, padding_mask=None,
                           use_causal_mask=False, training=None, **kwargs):
        """LSH attention on projected heads.

        Args:
            query: (B, T, N, H) shared query-key heads (`key` is the same).
            value: (B, T, N, V) value heads.
            padding_mask: (B, T) bool or None.

        Returns:
            `((B, T, N, V), None)`.
        """
        length = static_shape(query)[1]
        if length is not None:
            check_divisible("sequence_length", length, "bucket_size", self.bucket_size)
        q = ops.transpose(query, (0, 2, 1, 3))  # (B, N, T, H)
        v = ops.transpose(value, (0, 2, 1, 3))  # (B, N, T, V)
        num_buckets = self._buckets_for(length)
        buckets = self._hash(q, num_buckets, training)  # (B, N, R, T)
        undo, pos = self._sort(buckets, num_buckets)  # (B, N, RT) each
        out, lse = self._chunk_attention(
            q, v, pos, padding_mask, use_causal_mask, length, training
        )  # (B, N, RT, V), (B, N, RT), in sorted order
        return self._combine_rounds(out, lse, undo, v.dtype), None

    def _sort(self, buckets, num_buckets):
        """Sort by (round, bucket, position): the inverse of the order and
        the original position of each sorted slot, (B, N, R T) each."""
        t, r = ops.shape(buckets)[3], self.num_hashes
        rounds = ops.reshape(ops.arange(r, dtype="int32"), (1, 1, r, 1))
        positions = ops.arange(t, dtype="int32")  # (T,)
        # Unique keys, so any sort works.
        sort_key = (buckets + rounds * num_buckets) * t + positions  # (B,N,R,T)
        sort_key = ops.reshape(sort_key, (ops.shape(buckets)[0], self.num_heads, -1))
        order = ops.cast(ops.argsort(sort_key, axis=-1), "int32")  # (B, N, RT)
        undo = ops.cast(ops.argsort(order, axis=-1), "int32")  # (B, N, RT)
        return undo, order % t

    def _chunk_attention(self, q, v, pos, padding_mask, causal, length, training):
        """Each chunk of sorted slots attends to itself and the chunk before.

        Returns the (B, N, R T, V) outputs and (B, N, R T) float32
        log-sum-exps of the sorted slots.
        """
        size, r = self.bucket_size, self.num_hashes
        sq = ops.take_along_axis(q, ops.expand_dims(pos, -1), axis=2)  # (B,N,RT,H)
        sv = ops.take_along_axis(v, ops.expand_dims(pos, -1), axis=2)  # (B,N,RT,V)
        # Keys are the unit-normalised queries, scaled by 1/sqrt(H).
        sq32 = ops.cast(sq, "float32")
        sk = sq32 / ops.sqrt(
            ops.maximum(ops.sum(ops.square(sq32), axis=-1, keepdims=True), 1e-12)
        )
        sk = ops.cast(sk * self._inverse_sqrt_key_dim, sq.dtype)

        def chunk(x):  # (B, N, RT, ...) -> (B, N, C, L, ...)
            shape = ops.shape(x)
            return ops.reshape(x, (shape[0], shape[1], -1, size) + tuple(shape[3:]))

        num_chunks = None if length is None else r * length // size
        look_back = num_chunks is None or num_chunks > 1

        def with_previous(x):  # (B, N, C, L, ...) -> (B, N, C, J, ...)
            if not look_back:
                return x
            return ops.concatenate([x, ops.roll(x, 1, axis=2)], axis=3)

        cq, cpos = chunk(sq), chunk(pos)
        kk, kv, kpos = with_previous(chunk(sk)), with_previous(chunk(sv)), with_previous(cpos)
        scores = ops.einsum("bncqh,bnckh->bncqk", cq, kk)  # (B, N, C, L, J)
        mask = self._chunk_mask(cpos, kpos, padding_mask, causal)  # (B,N,C,L,J)
        scores = ops.cast(scores, "float32")
        probs = masked_softmax(scores, mask)  # float32
        lse = ops.logsumexp(ops.where(mask, scores, MASK_VALUE), axis=-1)
        probs = self._dropout_layer(ops.cast(probs, q.dtype), training=training)
        out = ops.einsum("bncqk,bnckv->bncqv", probs, kv)  # (B, N, C, L, V)
        b = ops.shape(out)[0]
        return (
            ops.reshape(out, (b, self.num_heads, -1, self._value_dim)),
            ops.reshape(lse, (b, self.num_heads, -1)),
        )

    @staticmethod
    def _chunk_mask(cpos, kpos, padding_mask, causal):
        """Which keys of a chunk a query may see: causal, real, and itself
        only when nothing else is available. (B, N, C, L, J) bool."""
        qp = ops.expand_dims(cpos, -1)  # (B, N, C, L, 1)
        kp = ops.expand_dims(kpos, -2)  # (B, N, C, 1, J)
        allowed = ops.ones_like(qp == kp)
        if causal:
            allowed = ops.logical_and(allowed, kp <= qp)
        if padding_mask is not None:
            pad = as_bool_mask(padding_mask)  # (B, T)
            flat = ops.reshape(kpos, (ops.shape(kpos)[0], -1))  # (B, N*C*J)
            key_real = ops.take_along_axis(pad, flat, axis=1)
            key_real = ops.reshape(key_real, ops.shape(kpos))  # (B, N, C, J)
            allowed = ops.logical_and(allowed, ops.expand_dims(key_real, -2))
        others = ops.logical_and(allowed, qp != kp)
        has_other = ops.any(others, axis=-1, keepdims=True)
        return ops.where(has_other, others, allowed)

    def _combine_rounds(self, out, lse, undo, dtype):
        """Unsort, then weight the rounds by softmax of their log-sum-exps."""
        b, r = ops.shape(out)[0], self.num_hashes
        out = ops.take_along_axis(out, ops.expand_dims(undo, -1), axis=2)
        lse = ops.take_along_axis(lse, undo, axis=2)
        out = ops.reshape(out, (b, self.num_heads, r, -1, self._value_dim))
        lse = ops.reshape(lse, (b, self.num_heads, r, -1))  # (B, N, R, T)
        if r == 1:
            out = ops.cast(out[:, :, 0], "float32")  # (B, N, T, V)
        else:
            weights = ops.softmax(lse, axis=2)  # combine rounds, float32
            out = ops.sum(
                ops.cast(out, "float32") * ops.expand_dims(weights, -1), axis=2
            )  # (B, N, T, V)
        return ops.transpose(ops.cast(out, dtype), (0, 2, 1, 3))  # (B, T, N, V)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_hashes": self.num_hashes,
                "bucket_size": self.bucket_size,
                "num_buckets": self.num_buckets,
                "redraw_rotations": self.redraw_rotations,
            }
        )
        return config
