"""Suite 2, recurrent versus Transformer: training throughput and memory
against sequence length.

The question of the seed material ("RNN 1200 / LSTM 850 / Transformer 650
samples per second, 2.1 / 3.8 / 6.4 GB"), answered on this machine: the same
classifier around each sequence layer at equal width (see
`benchmarks/suites/models.py`), one training step (forward, backward, Adam)
with and without XLA, sequences/s and tokens/s, and the growth of the
process's peak memory. Reference: `keras.layers.LSTM` at the same length
and jit setting.
"""

from benchmarks.suites.common import doubling
from benchmarks.suites.common import fmt_fraction
from benchmarks.suites.common import fmt_num
from benchmarks.suites.common import fmt_time
from benchmarks.suites.common import make_config
from benchmarks.suites.models import MODELS

TITLE = "Recurrent versus Transformer: training throughput and memory"
# Fraction of peak: training matmul FLOPs (`models.training_flops`) / step
# time / suite peak's float32 matmul GFLOP/s, measured in the same run.
USES_PEAK = True
RATIOS = [
    ("throughput_vs_lstm", "derived.sequences_per_s"),
    ("memory_vs_lstm", "derived.peak_memory_mb"),
]
TABLE = [
    ("step median", "timings.train_step.median_s", fmt_time),
    ("min", "timings.train_step.min_s", fmt_time),
    ("max", "timings.train_step.max_s", fmt_time),
    ("first call", "timings.train_step.first_call_s", fmt_time),
    ("sequences/s", "derived.sequences_per_s", fmt_num),
    ("tokens/s", "derived.tokens_per_s", fmt_num),
    ("params", "derived.parameters", fmt_num),
    ("model GFLOP/s", "derived.model_gflops_per_s", fmt_num),
    ("fraction of peak", "derived.fraction_of_peak", fmt_fraction),
    ("throughput vs LSTM", "ratios.throughput_vs_lstm.ratio", fmt_num),
    ("memory vs LSTM", "ratios.memory_vs_lstm.ratio", fmt_num),
]
PLOTS = [
    {
        "file": f"{what}-jit-{jit}",
        "title": f"training {what} vs sequence length, jit_compile={jit}",
        "y": key,
        "ylabel": label,
        "filter": f"/jit={jit}",
        "logx": True,
        "logy": True,
        "xlabel": "sequence length",
    }
    for jit in ("on", "off")
    for what, key, label in (
        ("throughput", "derived.sequences_per_s", "sequences / s"),
        ("memory", "derived.peak_memory_mb", "peak memory growth, MiB"),
    )
]


def sizes(options, quick=(16, 32), full_start=64, full_stop=1024):
    if options.get("sizes"):
        return list(options["sizes"])
    if options["quick"]:
        return [n for n in quick if not options.get("max_n") or n <= options["max_n"]]
    return doubling(full_start, options.get("max_n") or full_stop)


def shape(options):
    if options["quick"]:
        return {"batch_size": 4, "width": 16, "num_heads": 2, "vocabulary_size": 50}
    return {"batch_size": 32, "width": 128, "num_heads": 2, "vocabulary_size": 1000}


DESCRIPTION = (
    "Embedding -> layer -> mean -> Dense(2) classifier, Adam, one "
    "`train_on_batch` per step on synthetic tokens. Full size: batch 32, "
    "width 128 (Transformer: 2 heads of 64, feed-forward 512), vocabulary "
    "1000. kzoo RecurrentEncoder: one unidirectional LSTM layer of width "
    "128; kzoo LSTMTransformerHybrid: BiLSTM of 64 units per direction, then "
    "one post-LN Transformer block (2 heads, feed-forward 512), its own "
    "masked mean and Dense(2). Ratio: against `keras.layers.LSTM` at the "
    "same length and jit setting. Fraction of peak: matmul FLOPs of a "
    "training step (3 x forward; Transformer layer 8TD^2 + 4T^2D + 4TDF, "
    "LSTM 8(D+H)H per token, see benchmarks/suites/models.py) / step time "
    "/ float32 matmul GFLOP/s of suite peak measured in the same run."
)


def configs(options):
    out = []
    for model, (_, kzoo_names) in MODELS.items():
        for jit in (True, False):
            flag = "on" if jit else "off"
            for n in sizes(options):
                out.append(
                    make_config(
                        "recurrent",
                        f"{model}/jit={flag}",
                        n,
                        "seq_len",
                        group=f"jit={flag}",
                        reference=model == "lstm",
                        model=model,
                        kzoo_names=list(kzoo_names or ()),
                        jit=jit,
                        seq_len=n,
                        dtype_policy="float32",
                        **shape(options),
                    )
                )
    return out


def run_order(configs):
    """Size by size (jit on, then off), the LSTM reference first within
    each: on a shared machine a model is then timed minutes, not a quarter
    of an hour, from its reference. Sizes still grow within each series, so
    a failure skips the larger sizes of its series. (A run ordered model by
    model measured kzoo's RecurrentEncoder at 0.3-0.5x keras' LSTM, which
    it wraps; `benchmarks/recurrent_encoder_ab.py` times them alternately
    in one process and finds them equal: the gap was load drift.)"""
    models = list(MODELS)
    return sorted(
        configs,
        key=lambda c: (
            c["x"], not c["jit"], c["model"] != "lstm", models.index(c["model"])
        ),
    )


def measure(config, ctx):
    from benchmarks.suites.models import measure_training

    return measure_training(config, ctx)


def summarize(record):
    d = record["derived"]
    return f"{d['sequences_per_s']:.1f} seq/s, +{d['peak_memory_mb']:.0f} MiB"
