"""Quick forward+backward timing of the sparse attention layers (TensorFlow).

A small standalone script for design decisions, not the project benchmark:
it times, in ONE process so that the ratios share the machine's state,
forward plus backward (gradients w.r.t. the input and every weight) of
`LongformerAttention` / `BigBirdAttention` against full attention
(`keras.layers.MultiHeadAttention`), batch 1, float32, under `tf.function`
with or without `jit_compile`, and reports the median of several runs. With
`--memory` each configuration runs in its own subprocess and its peak
resident memory is reported.

    python benchmarks/attention_quick.py --lengths 4096 8192 --repeats 5
    python benchmarks/attention_quick.py --memory --lengths 8192 65536 \
        --layers longformer
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_layer(name, args):
    import keras

    from kzoo.layers.sparse.longformer_attention import LongformerAttention

    heads, key_dim = args.heads, args.width // args.heads
    if name == "full":
        return keras.layers.MultiHeadAttention(heads, key_dim)
    if name == "longformer":
        return LongformerAttention(
            heads,
            key_dim,
            attention_window=args.window,
            max_global_tokens=args.global_tokens or None,
        )
    if name == "bigbird":
        from kzoo.layers.sparse.bigbird_attention import BigBirdAttention

        return BigBirdAttention(
            heads, key_dim, block_size=args.block_size, num_random_blocks=3, seed=0
        )
    raise ValueError(f"unknown layer {name!r}")


def step_fn(name, layer, x, glob, jit):
    import tensorflow as tf

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if name == "full":
                out = layer(x, x)
            elif name == "longformer" and glob is not None:
                out = layer(x, global_attention_mask=glob)
            else:
                out = layer(x)
            loss = tf.reduce_sum(out)
        return tape.gradient(loss, [x] + layer.trainable_variables)

    return tf.function(step, jit_compile=jit)


def time_layer(name, n, args):
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(1, n, args.width)), tf.float32)
    glob = None
    if args.global_tokens:
        g = np.zeros((1, n), bool)
        g[0, : args.global_tokens] = True
        glob = tf.constant(g)
    layer = make_layer(name, args)
    step = step_fn(name, layer, x, glob, args.jit)
    for _ in range(args.warmup):
        [g.numpy() for g in step(x)]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        [g.numpy() for g in step(x)]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument(
        "--layers", nargs="+", default=["full", "longformer"],
        help="full, longformer, bigbird",
    )
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--global-tokens", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-jit", dest="jit", action="store_false")
    parser.add_argument("--memory", action="store_true",
                        help="one subprocess per configuration; report peak RSS")
    parser.add_argument("--single", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        name, n = args.single[0], int(args.single[1])
        seconds = time_layer(name, n, args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps({"seconds": seconds, "peak_gb": peak}))
        return

    print(f"forward+backward, batch 1, width {args.width}, {args.heads} heads, "
          f"window {args.window}, float32, jit_compile={args.jit}, "
          f"median of {args.repeats}")
    for n in args.lengths:
        row = {}
        for name in args.layers:
            if args.memory:
                cmd = [sys.executable, __file__] + [
                    a for a in sys.argv[1:] if a != "--memory"
                ] + ["--single", name, str(n)]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode != 0:
                    row[name] = f"failed ({res.stderr.strip().splitlines()[-1:]})"
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                row[name] = f"{r['seconds'] * 1e3:8.1f} ms  peak {r['peak_gb']:.2f} GB"
            else:
                row[name] = time_layer(name, n, args)
        if args.memory:
            for name, text in row.items():
                print(f"n={n:6d} {name:10s} {text}")
            continue
        line = "  ".join(f"{k} {v * 1e3:8.1f} ms" for k, v in row.items())
        if "full" in row:
            line += "  " + "  ".join(
                f"full/{k} {row['full'] / v:5.2f}x" for k, v in row.items() if k != "full"
            )
        print(f"n={n:6d}  {line}", flush=True)


if __name__ == "__main__":
    main()
