"""Suite 1, machine peak: matmul throughput, the "fraction of peak" reference.

An (n, n) @ (n, n) product compiled with XLA: 2 n^3 floating point
operations. float32 and bfloat16 everywhere, float16 too (often emulated,
hence slow, on CPUs); the ratio column is each dtype against float32 at the
same n.
"""

from benchmarks.suites.common import fmt_num
from benchmarks.suites.common import fmt_time
from benchmarks.suites.common import make_config

TITLE = "Machine peak: matmul throughput"
DESCRIPTION = (
    "(n, n) @ (n, n) matmul under XLA (jax.jit / tf.function(jit_compile=True)), "
    "2 n^3 FLOPs per call; GFLOP/s from the median time. Ratio: GFLOP/s "
    "against float32 at the same n."
)
DTYPES = ("float32", "bfloat16", "float16")
RATIOS = [("gflops_vs_float32", "derived.gflops")]
TABLE = [
    ("median", "timings.matmul.median_s", fmt_time),
    ("min", "timings.matmul.min_s", fmt_time),
    ("max", "timings.matmul.max_s", fmt_time),
    ("first call", "timings.matmul.first_call_s", fmt_time),
    ("GFLOP/s", "derived.gflops", fmt_num),
    ("vs float32", "ratios.gflops_vs_float32.ratio", fmt_num),
]
PLOTS = [
    {
        "file": "gflops",
        "title": "matmul throughput",
        "y": "derived.gflops",
        "ylabel": "GFLOP/s",
        "logx": True,
        "logy": False,
    }
]


def configs(options):
    from benchmarks.suites.recurrent import sizes as pick_sizes

    sizes = pick_sizes(options, quick=(128, 256), full_start=256, full_stop=4096)
    return [
        make_config(
            "peak",
            f"matmul/{dtype}",
            n,
            "n",
            group="matmul",
            reference=dtype == "float32",
            dtype=dtype,
        )
        for dtype in DTYPES
        for n in sizes
    ]


def measure(config, ctx):
    import keras
    from keras import ops

    from benchmarks import backend as bk

    n, dtype = config["x"], config["dtype"]
    a = ops.cast(keras.random.normal((n, n), seed=0), dtype)
    b = ops.cast(keras.random.normal((n, n), seed=1), dtype)

    def matmul(a, b):
        # The sum makes the result a scalar (n^2 adds beside 2 n^3).
        return ops.sum(ops.cast(ops.matmul(a, b), "float32"))

    step = bk.compile_function(matmul, jit=True)
    timings = ctx.time(lambda: bk.to_float(step(a, b)))
    flops = 2.0 * n**3
    return {
        "timings": {"matmul": timings},
        "derived": {"flops": flops, "gflops": flops / timings["median_s"] / 1e9},
    }


def summarize(record):
    return f"{record['derived']['gflops']:.1f} GFLOP/s"
