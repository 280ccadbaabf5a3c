"""Suite 4, XLA and mixed precision: each model's training step with
`jit_compile` off and on, in float32, mixed_bfloat16 and mixed_float16.

The models are the classifiers of `benchmarks/suites/models.py` (Keras'
recurrent layers, keras-hub's and kzoo's Transformer encoder layers, kzoo's
recurrent encoder and hybrid when they exist) at one sequence length.
Reference: the same model in float32 without XLA. On CPUs bfloat16 and
float16 are mostly emulated, so expect ratios below 1 there; the suite is
meant for GPUs (`--backend jax` needs no TensorFlow).
"""

from benchmarks.suites.common import fmt_fraction
from benchmarks.suites.common import fmt_num
from benchmarks.suites.common import fmt_time
from benchmarks.suites.common import make_config
from benchmarks.suites.models import MODELS
from benchmarks.suites.recurrent import shape

TITLE = "XLA and mixed precision: training step"
DESCRIPTION = (
    "Training step of each classifier (see the recurrent suite) at one "
    "sequence length (64; --quick 16), batch 32, width 128, jit_compile off/on x float32 / "
    "mixed_bfloat16 / mixed_float16 (loss scaling as Keras adds it). Ratio: "
    "sequences/s against the same model in float32 without XLA."
)
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
RATIOS = [("speedup_vs_float32_no_jit", "derived.sequences_per_s")]
TABLE = [
    ("step median", "timings.train_step.median_s", fmt_time),
    ("min", "timings.train_step.min_s", fmt_time),
    ("max", "timings.train_step.max_s", fmt_time),
    ("first call", "timings.train_step.first_call_s", fmt_time),
    ("sequences/s", "derived.sequences_per_s", fmt_num),
    ("model GFLOP/s", "derived.model_gflops_per_s", fmt_num),
    ("fraction of float32 peak", "derived.fraction_of_peak", fmt_fraction),
    ("speed-up vs float32, no XLA", "ratios.speedup_vs_float32_no_jit.ratio", fmt_num),
]
PLOTS = []
# Fraction of peak: training matmul FLOPs (`models.training_flops`) / step
# time / suite peak's float32 matmul GFLOP/s, measured in the same run.
USES_PEAK = True


def configs(options):
    # 64 tokens: the 36 configurations (6 models x 3 policies x jit off/on),
    # one process each, finish in about 10 minutes on 2 CPU cores.
    seq = (options.get("sizes") or [16 if options["quick"] else 64])[0]
    out = []
    for model, (_, kzoo_names) in MODELS.items():
        if model == "simple_rnn":
            continue
        for policy in POLICIES:
            for jit in (False, True):
                flag = "on" if jit else "off"
                out.append(
                    make_config(
                        "precision",
                        f"{model}/{policy}/jit={flag}",
                        seq,
                        "seq_len",
                        group=model,
                        reference=policy == "float32" and not jit,
                        model=model,
                        kzoo_names=list(kzoo_names or ()),
                        jit=jit,
                        seq_len=seq,
                        dtype_policy=policy,
                        **shape(options),
                    )
                )
    return out


def measure(config, ctx):
    from benchmarks.suites.models import measure_training

    return measure_training(config, ctx)


def summarize(record):
    return f"{record['derived']['sequences_per_s']:.1f} seq/s"
