"""`Dropout`: `keras.layers.Dropout` whose mask XLA compiles well on CPU."""

import keras

from kzoo.backend import random as backend_random


@keras.saving.register_keras_serializable(package="kzoo")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout`, drawing its mask with `kzoo.backend.random`.

    Same arguments, state (a `keras.random.SeedGenerator`) and behaviour
    as `keras.layers.Dropout` ("Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting", Srivastava et al., 2014); every kzoo layer
    and model uses it. The only difference: on the TensorFlow backend the
    random numbers use the Philox algorithm by name, which XLA compiles
    about 30x faster on CPU than the "auto_select" algorithm Keras asks
    for (same masks without XLA). See `kzoo/backend/random.py`.

    Args:
        rate: float in [0, 1], the fraction of inputs to drop.
        noise_shape: shape of the binary mask (None entries: the input's).
        seed: int seed of the layer's `SeedGenerator`.
        **kwargs: base layer arguments (`dtype`, `name`).

    Call arguments:
        inputs: any tensor.
        training: dropout is applied only when True.

    Returns:
        Same shape and dtype as `inputs`.

    Example:

    >>> import keras
    >>> from kzoo.layers import Dropout
    >>> layer = Dropout(0.5, seed=0)
    >>> tuple(layer(keras.ops.ones((2, 4)), training=True).shape)
    (2, 4)
    """

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return backend_random.dropout(
                inputs,
                self.rate,
                noise_shape=self.noise_shape,
                seed=self.seed_generator,
            )
        return inputs
