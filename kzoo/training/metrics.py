"""Metrics for the training loop that Keras does not have. Backend-agnostic."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class TokenCount(keras.metrics.Metric):
    """Counts the tokens trained on: the sum of the sample weights.

    With per-token sample weights that are 1 at real tokens and 0 at padding
    (as `kzoo.data.translation` yields), its value is the number of real
    target tokens seen since the last reset (each epoch). Compile it as a
    weighted metric: `compile(..., weighted_metrics=[TokenCount()])`;
    `kzoo.training.tensorboard.TrainingScalars` turns it into tokens/second.

    Args:
        name: metric name (default `"tokens"`).
    """

    def __init__(self, name="tokens", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            count = ops.cast(ops.size(y_true), self.dtype)
        else:
            weights = ops.cast(sample_weight, self.dtype)
            weights = ops.broadcast_to(weights, ops.shape(y_true))
            count = ops.sum(weights)
        self.total.assign_add(count)

    def result(self):
        # A copy, not the variable: on TensorFlow `convert_to_tensor` returns
        # the variable itself, so the epoch logs would show whatever the
        # next evaluation counted (the validation total).
        return ops.copy(self.total)

    def reset_state(self):
        self.total.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
