import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite compiles thousands of small XLA programs (every `jit_compile`
# fit step and, on JAX, every eager op), each run a few times on tiny
# inputs: LLVM's optimisation passes cost far more than they save. Both
# backends read XLA_FLAGS when XLA starts; the HLO passes (fusion, buffer
# assignment) still run, so numbers and compiled memory figures are those of
# normal builds. test_bert.py: 138 s -> 81 s on JAX, 96 s -> 62 s on
# TensorFlow (2026-12-03, one run each on a loaded 2-core machine). Set
# XLA_FLAGS yourself to override; benchmarks never read this file.
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy_and_seed():
    """Every test starts from float32 and a fixed seed, whatever ran before."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
