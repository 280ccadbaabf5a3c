"""Performer attention: FAVOR+ positive orthogonal random features.

Einsum letters used in this file:
    B batch, T query length, S key length, N heads, H key_dim,
    V value_dim, M random features.
"""

import math

import keras
import numpy as np
from keras import ops

from kzoo.layers.attention.masking import MASK_VALUE
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import static_shape


def orthogonal_random_features(num_features, dim, seed=None):
    """(num_features, dim) Gaussian rows, orthogonal within blocks of `dim`.

    Each block of `dim` rows is the Q of a Gaussian matrix's QR
    decomposition; rows are rescaled by the norms of independent Gaussian
    vectors, so each row is marginally N(0, I) (FAVOR+, section 2.4).
    """
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(-(-num_features // dim)):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        # Sign-correct Q so that it is Haar-distributed (uniform rotations);
        # the raw LAPACK Q is not, and biases the estimator.
        q = q * np.sign(np.diag(r))[None, :]
        blocks.append(q.T)
    w = np.concatenate(blocks, axis=0)[:num_features]
    norms = np.linalg.norm(rng.standard_normal((num_features, dim)), axis=1)
    return (w * norms[:, None]).astype("float32")


@keras.saving.register_keras_serializable(package="kzoo")
class PerformerAttention(MultiHeadAttention):
    """Linear-time attention with FAVOR+ positive random features.

    Implements "Rethinking Attention with Performers" (Choromanski et al.,
    2021). The softmax kernel `exp(q.k / sqrt(H))` is estimated by
    `phi(q).phi(k)` with positive features
    `phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(M)`, `x' = x / H^(1/4)`, and W
    (M, H) orthogonal random features. Attention is then
    `phi(Q) (phi(K)^T V) / phi(Q) (phi(K)^T 1)`: O(T M) time and memory,
    no T x S matrix. With `use_causal_mask` the two sums run as prefix sums
    over positions (the paper's unidirectional form). Features are
    computed in float32; a per-row (queries) and per-sequence (keys) maximum
    is subtracted before `exp` for stability (it cancels exactly).

    Variables: those of `MultiHeadAttention` (`query`, `key`, `value`,
    `attention_output`, same shapes and order), so a dense layer's weights
    copy in with `set_weights(dense.get_weights() + [features])`, plus the
    non-trainable `random_features` (M, H), drawn once from `seed` at build
    time (the paper's periodic redrawing is not done).

    Args:
        num_heads: number of heads N.
        key_dim: size H of each head.
        num_random_features: M.
        seed: seed of the random features (NumPy, at build time).
        **kwargs: `value_dim`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer` of `MultiHeadAttention`
            and base layer arguments. `dropout` must be 0: there is no
            attention matrix to drop from (a ValueError otherwise).

    Call arguments:
        query: (B, T, D_q).
        value: (B, S, D_v); defaults to `query`.
        key: (B, S, D_k); defaults to `value`.
        padding_mask: (B, S) bool, True for real keys; padded keys get zero
            features.
        use_causal_mask: prefix-sum (unidirectional) attention, T == S.
        An explicit `attention_mask` or `attention_bias` (they would need
        the T x S matrix), a `cache` and `return_attention_scores` raise the
        dense core's shared `ValueError`.

    Returns:
        (B, T, output_dim); a query with no real key outputs zeros before
        the output projection.

    Example:

    >>> import keras
    >>> from kzoo.layers import PerformerAttention
    >>> layer = PerformerAttention(num_heads=2, key_dim=8, num_random_features=32)
    >>> tuple(layer(keras.random.normal((2, 10, 16)), use_causal_mask=True).shape)
    (2, 10, 16)
    """

    _pattern_summary = "linear attention with positive random features"
    _support = PatternSupport(
        attention_mask=False, attention_bias=False, cache=False, attention_scores=False
    )

    def __init__(self, num_heads, key_dim, num_random_features=256, seed=None, **kwargs):
        super().__init__(num_heads=num_heads, key_dim=key_dim, seed=seed, **kwargs)
        if self.dropout:
            raise ValueError(
                "PerformerAttention forms no attention probabilities to drop: "
                f"`dropout` must be 0; received {self.dropout}"
            )
        self.num_random_features = check_positive_int(
            "num_random_features", num_random_features
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        # A holder sublayer created after the dense ones, so that `weights`
        # lists MultiHeadAttention's variables first, in Keras' order.
        self._features_holder = keras.layers.Layer(name="random_features")
        features = self._features_holder.add_weight(
            shape=(self.num_random_features, self.key_dim),
            initializer="zeros",
            trainable=False,
            name="random_features",
        )
        features.assign(
            orthogonal_random_features(
                self.num_random_features, self.key_dim, self.seed
            )
        )
        self._features_holder.built = True

    @property
    def random_features(self):
        # Not an attribute: assigning a variable to the layer would track it
        # as the layer's own and list it before the dense variables.
        return self._features_holder.weights[0]

    def _features(self, x, is_query, mask=None):
        """phi(x): (B, L, N, H) -> (B, L, N, M) float32, zero where masked."""
        x = ops.cast(x, "float32") * (float(self.key_dim) ** -0.25)
        proj = ops.einsum(
            "blnh,mh->blnm", x, ops.cast(self.random_features, "float32")
        )  # (B, L, N, M)
        sq = 0.5 * ops.sum(ops.square(x), axis=-1, keepdims=True)  # (B,L,N,1)
        logits = proj - sq
        if is_query:
            stab = ops.max(logits, axis=-1, keepdims=True)
        else:
            masked = logits
            if mask is not None:
                masked = ops.where(mask[:, :, None, None], logits, MASK_VALUE)
            stab = ops.max(masked, axis=(1, 3), keepdims=True)  # (B,1,N,1)
        phi = ops.exp(logits - ops.stop_gradient(stab))
        phi = phi / math.sqrt(float(self.num_random_features))
        if mask is not None:
            phi = ops.where(mask[:, :, None, None], phi, 0.0)
        return phi

    def _compute_attention(self, query, key, value, padding_mask=None,
                           use_causal_mask=False, **kwargs):
        """(B,T,N,H), (B,S,N,H), (B,S,N,V) -> ((B, T, N, V), None)."""
        t_len, s_len = static_shape(query)[1], static_shape(key)[1]
        if use_causal_mask and None not in (t_len, s_len) and t_len != s_len:
            raise ValueError(
                "PerformerAttention's causal (prefix-sum) form needs query and "
                f"key of the same length; received query length {t_len}, key "
                f"length {s_len}"
            )
        mask = None if padding_mask is None else as_bool_mask(padding_mask)
        phi_q = self._features(query, True)  # (B, T, N, M)
        phi_k = self._features(key, False, mask)  # (B, S, N, M)
        v32 = ops.cast(value, "float32")
        if use_causal_mask:
            kv = ops.cumsum(
                ops.einsum("bsnm,bsnv->bsnmv", phi_k, v32), axis=1
            )  # (B, T, N, M, V) prefix sums
            z = ops.cumsum(phi_k, axis=1)  # (B, T, N, M)
            num = ops.einsum("btnm,btnmv->btnv", phi_q, kv)
            den = ops.einsum("btnm,btnm->btn", phi_q, z)
        else:
            kv = ops.einsum("bsnm,bsnv->bnmv", phi_k, v32)  # (B, N, M, V)
            z = ops.sum(phi_k, axis=1)  # (B, N, M)
            num = ops.einsum("btnm,bnmv->btnv", phi_q, kv)
            den = ops.einsum("btnm,bnm->btn", phi_q, z)
        den = ops.where(den > 0.0, den, 1.0)
        out = ops.cast(num / ops.expand_dims(den, -1), value.dtype)  # (B,T,N,V)
        return out, None

    def get_config(self):
        config = super().get_config()
        config["num_random_features"] = self.num_random_features
        return config
