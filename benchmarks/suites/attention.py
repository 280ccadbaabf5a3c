"""Suite 3, the attention family: time and memory against sequence length.

Self-attention on one sequence (batch 1) of width 256, 4 heads of 64, under
XLA, forward and forward+backward (gradients of the sum of the output with
respect to the input and every weight), n = 512, 1024, ... until a
configuration fails, passes the time limit or the memory limit. Each phase
of each n is its own process, so its peak memory is its own. Reference:
`keras.layers.MultiHeadAttention` at the same n and phase.
"""

import numpy as np

from benchmarks.suites.common import Unavailable
from benchmarks.suites.common import fmt_num
from benchmarks.suites.common import fmt_time
from benchmarks.suites.common import kzoo_component
from benchmarks.suites.common import make_config

TITLE = "Attention family: time and memory against sequence length"
DESCRIPTION = (
    "Self-attention, batch 1, width 256 (4 heads of 64), XLA, forward and "
    "forward+backward. Sparse layers: window / block / bucket 256 or 64 as "
    "listed in `benchmarks/suites/attention.py` (`COMPONENTS`), no global "
    "tokens. Memory: growth of the process's peak RSS over its RSS after "
    "importing the framework (peak device memory on a GPU). Ratio: "
    "time against `keras.layers.MultiHeadAttention` at the same n and phase "
    "(< 1 is faster)."
)
WIDTH, NUM_HEADS, KEY_DIM = 256, 4, 64
PHASES = ("forward", "forward_backward")
# Fraction of peak: `model_flops` / median time / the float32 matmul peak
# that the harness measures in the same run (suite peak).
USES_PEAK = True


def model_flops(config):
    """Matmul FLOPs of one step (2 per multiply-add), T = n, D = width:

        projections, dense layers         8 T D^2 (query, key, value, output)
        projections, HF's self-attention  6 T D^2 (its layer has no output
                                          projection: TFLongformerSelfOutput;
                                          8 T D^2 with hf_longformer_output)
        dense attention (full)            4 T^2 D (Q K^T and P V)
        sliding window w                  4 T (w + 1) D (the keys each query
                                          may see; padding and the scores a
                                          blocked layer computes and masks
                                          are not counted)

    Forward+backward counts three times the forward (two matmuls per
    forward one). Only the dense layers, Longformer and HF's Longformer
    (with and without the output projection) have a count; the other sparse layers report no fraction.
    """
    t, d, w = config["x"], config["width"], config["attention_window"]
    name = config["component"]
    if name in ("keras_mha", "kzoo_mha"):
        forward = 8 * t * d * d + 4 * t * t * d
    elif name == "longformer":
        forward = 8 * t * d * d + 4 * t * (min(w, 2 * (t - 1)) + 1) * d
    elif name == "hf_longformer":
        forward = 6 * t * d * d + 4 * t * (min(w, 2 * (t - 1)) + 1) * d
    elif name == "hf_longformer_output":
        forward = 8 * t * d * d + 4 * t * (min(w, 2 * (t - 1)) + 1) * d
    else:
        return None
    return forward * (3 if config["phase"] == "forward_backward" else 1)


def _fmt_fraction(x):
    return "-" if x is None else f"{100 * x:.1f}%"


# name -> (description, kzoo names to look up, constructor kwargs(config)).
# Sizes shrink with n in --quick runs so that blocks still tile the sequence.
def _block(config, size):
    return min(size, config["x"] // 4)


COMPONENTS = {
    "keras_mha": ("keras.layers.MultiHeadAttention (reference)", None, None),
    "kzoo_mha": (
        "kzoo MultiHeadAttention (dense)",
        ("MultiHeadAttention",),
        lambda c: {},
    ),
    "longformer": (
        "kzoo LongformerAttention, window 256 (128 each side), no global token",
        ("LongformerAttention",),
        lambda c: {"attention_window": c["attention_window"]},
    ),
    "bigbird": (
        "kzoo BigBirdAttention, block 64, 3 random and 1 global block",
        ("BigBirdAttention",),
        lambda c: {"block_size": _block(c, 64), "seed": 0},
    ),
    "sparse_transformer": (
        "kzoo SparseTransformerAttention (strided), stride 64",
        ("SparseTransformerAttention",),
        lambda c: {"stride": _block(c, 64)},
    ),
    "lsh": (
        "kzoo LSHAttention, bucket 64, 1 hash round",
        ("LSHAttention",),
        lambda c: {"bucket_size": _block(c, 64), "num_hashes": 1, "seed": 0},
    ),
    "performer": (
        "kzoo PerformerAttention, 256 random features",
        ("PerformerAttention",),
        lambda c: {"num_random_features": 256, "seed": 0},
    ),
    "linformer": (
        "kzoo LinformerAttention, projected length 256",
        ("LinformerAttention",),
        lambda c: {
            "projected_length": min(256, c["x"]),
            "max_sequence_length": c["x"],
        },
    ),
    "hf_longformer": (
        "Hugging Face TFLongformerSelfAttention, window 256, no global token "
        "(reference environment)",
        None,
        None,
    ),
    "hf_longformer_output": (
        "the same followed by a Dense of the model width, the output "
        "projection HF keeps in TFLongformerSelfOutput: the work kzoo's layer "
        "does (reference environment)",
        None,
        None,
    ),
}

# Call arguments of a component beyond its inputs: the Sparse Transformer's
# pattern is causal only (and says so if called without the flag).
CALL_KWARGS = {"sparse_transformer": {"use_causal_mask": True}}

RATIOS = [
    ("time_vs_keras", "derived.median_s"),
    ("memory_vs_keras", "derived.peak_memory_mb"),
]
TABLE = [
    ("median", "derived.median_s", fmt_time),
    ("min", "derived.min_s", fmt_time),
    ("max", "derived.max_s", fmt_time),
    ("first call", "derived.first_call_s", fmt_time),
    ("time vs keras", "ratios.time_vs_keras.ratio", fmt_num),
    ("memory vs keras", "ratios.memory_vs_keras.ratio", fmt_num),
    ("model GFLOP/s", "derived.model_gflops_per_s", fmt_num),
    ("fraction of peak", "derived.fraction_of_peak", _fmt_fraction),
]
PLOTS = [
    {
        "file": f"{what}-{phase}",
        "title": f"{phase.replace('_', '+')} {what} vs n (log-log)",
        "y": f"derived.{key}",
        "ylabel": label,
        "filter": f"/{phase}",
        "logx": True,
        "logy": True,
        "xlabel": "sequence length n",
    }
    for phase in PHASES
    for what, key, label in (
        ("time", "median_s", "median seconds"),
        ("memory", "peak_memory_mb", "peak memory growth, MiB"),
    )
]


def configs(options):
    from benchmarks.suites.recurrent import sizes as pick_sizes

    sizes = pick_sizes(options, quick=(128, 256), full_start=512, full_stop=16384)
    out = []
    for name in COMPONENTS:
        extra = {}
        if name.startswith("hf_longformer"):
            extra = {"python": "reference", "backend": "tensorflow", "runtime": "tf_keras"}
        for phase in PHASES:
            for n in sizes:
                out.append(
                    make_config(
                        "attention",
                        f"{name}/{phase}",
                        n,
                        "n",
                        group=phase,
                        reference=name == "keras_mha",
                        component=name,
                        kzoo_names=list(COMPONENTS[name][1] or ()),
                        phase=phase,
                        width=WIDTH,
                        num_heads=NUM_HEADS,
                        attention_window=256 if not options["quick"] else 64,
                        **extra,
                    )
                )
    return out


def build_layer(config):
    import keras

    name = config["component"]
    _, kzoo_names, make_kwargs = COMPONENTS[name]
    if name == "keras_mha":
        return keras.layers.MultiHeadAttention(NUM_HEADS, KEY_DIM), True
    if kzoo_names is None:
        raise Unavailable(f"no builder for {name}")
    cls = kzoo_component(*kzoo_names)
    kwargs = make_kwargs(config)
    try:
        return cls(num_heads=NUM_HEADS, key_dim=KEY_DIM, **kwargs), False
    except TypeError as e:
        raise Unavailable(
            f"{cls.__name__} landed with other constructor arguments; update "
            f"benchmarks/suites/attention.py ({e})"
        ) from e


def _derive(result, config):
    timings = result["timings"][config["phase"]]
    derived = {
        "median_s": timings["median_s"],
        "min_s": timings["min_s"],
        "max_s": timings["max_s"],
        "first_call_s": timings["first_call_s"],
    }
    flops = model_flops(config)
    if flops is not None:
        derived["flops_per_step"] = flops
        derived["model_gflops_per_s"] = flops / timings["median_s"] / 1e9
    return derived


def measure(config, ctx):
    from benchmarks import timing

    if config["component"].startswith("hf_longformer"):
        from benchmarks.reference import hf_longformer

        result = hf_longformer.measure(config, ctx)
    else:
        from keras import ops

        from benchmarks import backend as bk

        layer, needs_value = build_layer(config)
        x = np.random.default_rng(0).standard_normal((1, config["x"], WIDTH))
        x = ops.convert_to_tensor(x.astype("float32"))
        inputs = {"query": x, "value": x} if needs_value else {"query": x}
        call_kwargs = CALL_KWARGS.get(config["component"], {})
        forward, forward_backward = bk.layer_steps(layer, inputs, call_kwargs, jit=True)
        fn = forward if config["phase"] == "forward" else forward_backward
        result = {"timings": {config["phase"]: ctx.time(fn)}}
    derived = _derive(result, config)
    # Memory of the step itself: growth of the process over its RSS after
    # importing the framework (on a GPU, the peak device memory).
    device_peak = None
    try:
        from benchmarks import backend as bk

        device_peak = bk.peak_device_memory_mb(config.get("runtime", "keras"))
    except Exception:
        pass
    derived["peak_memory_mb"] = device_peak or (timing.peak_rss_mb() - ctx.baseline_rss_mb)
    result["derived"] = derived
    return result


def summarize(record):
    d = record["derived"]
    return f"{fmt_time(d['median_s'])}, +{d['peak_memory_mb']:.0f} MiB"
