"""The dtype policy from `--mixed_precision`, and loss scaling for float16."""

import keras

MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")


def set_precision(policy):
    """Sets Keras' global dtype policy ("none" is float32)."""
    from common.config import check_choice

    check_choice("mixed_precision", policy, MIXED_PRECISION)
    keras.config.set_dtype_policy("float32" if policy == "none" else policy)


def wrap_optimizer(optimizer, policy):
    """float16 needs loss scaling (gradients underflow); bfloat16 does not."""
    if policy == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
