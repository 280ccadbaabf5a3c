"""TensorFlow SavedModel export details that Keras 3 has no public switch for."""


class NoDefaultSaveSignature:
    """Mixin for a `keras.Model` that cannot be traced with unknown lengths.

    TensorFlow's SavedModel writer traces a default signature for every
    nested Keras model with its own `(None, None)` inputs. A model whose
    computation needs a static sequence length (BigBird's random block
    pattern is a function of the number of blocks) cannot serve that
    signature; this mixin turns it off (Keras' private
    `_default_save_signature`, Keras 3.15), so such a model exports inside a
    functional wrapper with fixed lengths (`model.export` of the wrapper).
    """

    @property
    def _default_save_signature(self):
        return None
