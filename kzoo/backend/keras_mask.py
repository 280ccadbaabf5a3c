"""Keras' implicit masks (`Embedding(mask_zero=True)`, `Masking`).

Keras 3 keeps a tensor's implicit mask as an attribute, or, for tensors that
take no attributes (JAX arrays), in a table keyed by the tensor; it has no
public accessor for either (Keras 3.15). kzoo's attention reads the mask
the way `keras.layers.MultiHeadAttention` does, through Keras' own helpers,
and falls back to the attribute alone if they ever move.
"""

try:
    from keras.src.backend.common.masking import get_keras_mask
    from keras.src.backend.common.masking import set_keras_mask
except ImportError:  # pragma: no cover - a Keras without the private module

    def get_keras_mask(x):
        """The implicit mask of `x`, or None."""
        return getattr(x, "_keras_mask", None)

    def set_keras_mask(x, mask):
        """Sets (or with None, clears) the implicit mask of `x`."""
        try:
            x._keras_mask = mask
        except AttributeError:
            pass
