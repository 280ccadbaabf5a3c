"""Quick side-by-side forward+backward timing of the attention layers.

A small standalone script for design decisions and A/B runs, not the
project benchmark (that is `python -m benchmarks run --suite attention`).
It times forward plus backward (gradients of the sum of the output w.r.t.
the input and every weight), batch 1, float32, under `tf.function` (with
`jit_compile` unless `--no-jit`), of:

    full        keras.layers.MultiHeadAttention (dense)
    longformer  kzoo LongformerAttention (window --window)
    bigbird     kzoo BigBirdAttention (block --block-size)
    hf          Hugging Face TFLongformerSelfAttention, window --window,
                `layer.call()` under jit (its best configuration), run with
                the reference venv's Python (--reference-python)
    hf_out      the same followed by the Dense HF applies in
                TFLongformerSelfOutput: the work kzoo's layer does

Each measurement runs in its own fresh process (so its peak RSS is its
own), and the layers take turns: `--rounds R` runs every layer R times in
the order l1, l2, ..., l1, l2, ... and reports the median over rounds of
each process's median, so that the ratios see the same machine load.

    python benchmarks/attention_quick.py --lengths 8192 \
        --layers longformer hf full --rounds 3 --repeats 5
    python benchmarks/attention_quick.py --lengths 65536 --layers longformer \
        --rounds 1 --repeats 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAYERS = ("full", "longformer", "bigbird", "hf", "hf_out")


def _peak_rss_gb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _time(fn, warmup, repeats):
    fn()  # trace and compile
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _hf_step(args, n, output_projection=False):
    """HF's step, built by `benchmarks/reference/hf_longformer.py`."""
    import numpy as np
    import tensorflow as tf

    from benchmarks.reference import hf_longformer

    layer, extra = hf_longformer.build(args.width, args.heads, args.window, n)
    dense = hf_longformer.output_dense(args.width, n) if output_projection else None
    x = tf.constant(
        np.random.default_rng(0).standard_normal((1, n, args.width)), tf.float32
    )

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer.call([x] + extra, training=False)[0]
            loss = tf.reduce_sum(dense(out) if dense is not None else out)
        weights = list(layer.trainable_variables)
        if dense is not None:
            weights += list(dense.trainable_variables)
        grads = tape.gradient(loss, [x] + weights)
        # The global projections get no gradient when no token is global.
        return tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])

    fn = tf.function(step, jit_compile=args.jit)
    return lambda: float(fn(x).numpy())


def _kzoo_step(name, args, n):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import numpy as np
    import tensorflow as tf

    heads, key_dim = args.heads, args.width // args.heads
    x = tf.constant(
        np.random.default_rng(0).standard_normal((1, n, args.width)), tf.float32
    )
    glob = None
    if name == "full":
        layer = keras.layers.MultiHeadAttention(heads, key_dim)
    elif name.startswith("longformer"):
        from kzoo.layers.attention import longformer_attention
        from kzoo.layers.attention.longformer_attention import LongformerAttention

        if "@" in name:
            longformer_attention._BLOCK_TARGET = int(name.split("@")[1])

        layer = LongformerAttention(
            heads,
            key_dim,
            attention_window=args.window,
            max_global_tokens=args.global_tokens or None,
        )
        if args.global_tokens:
            g = np.zeros((1, n), bool)
            g[0, : args.global_tokens] = True
            glob = tf.constant(g)
    else:
        from kzoo.layers.attention.bigbird_attention import BigBirdAttention

        layer = BigBirdAttention(
            heads, key_dim, block_size=args.block_size, num_random_blocks=3, seed=0
        )

    def call(x):
        if name == "full":
            return layer(x, x)
        if glob is not None:
            return layer(x, global_attention_mask=glob)
        return layer(x)

    small = x[:, :16]
    layer(small, small) if name == "full" else layer(small)  # build
    weights = layer.trainable_variables

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(call(x))
        grads = tape.gradient(loss, [x] + weights)
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    fn = tf.function(step, jit_compile=args.jit)
    return lambda: float(fn(x).numpy())


def single(args, name, n):
    sys.path.insert(0, ROOT)
    if name.startswith("hf"):
        step = _hf_step(args, n, output_projection=name == "hf_out")
    else:
        step = _kzoo_step(name, args, n)
    seconds = _time(step, args.warmup, args.repeats)
    print(json.dumps({"seconds": seconds, "peak_gb": _peak_rss_gb()}))


def run_one(args, name, n):
    python = args.reference_python if name.startswith("hf") else sys.executable
    passed = [a for a in sys.argv[1:]]
    cmd = [python, os.path.abspath(__file__)] + passed + ["--single", name, str(n)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if not name.startswith("hf"):
        env.setdefault("KERAS_BACKEND", "tensorflow")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"failed (rc {res.returncode}: {tail})"
    return json.loads(res.stdout.strip().splitlines()[-1]), None


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--layers", nargs="+", default=["longformer", "hf"],
                        choices=LAYERS)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--global-tokens", type=int, default=0)
    parser.add_argument(
        "--block-target", type=int, nargs="+", default=[0],
        help="longformer: target rows per query block (kzoo's "
        "_BLOCK_TARGET); several values time one 'longformer@B' per value; "
        "0: the layer's default",
    )
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per layer, taking turns")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per process")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-jit", dest="jit", action="store_false")
    parser.add_argument("--reference-python", default="/tmp/hfvenv/bin/python")
    parser.add_argument("--single", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        single(args, args.single[0], int(args.single[1]))
        return

    print(
        f"forward+backward, batch 1, width {args.width}, {args.heads} heads, "
        f"window {args.window}, global tokens {args.global_tokens}, float32, "
        f"jit_compile={args.jit}; median of {args.repeats} calls per process, "
        f"median over {args.rounds} interleaved processes per layer",
        flush=True,
    )
    layers = []
    for name in args.layers:
        if name == "longformer" and args.block_target != [0]:
            layers += [f"longformer@{b}" for b in args.block_target]
        else:
            layers.append(name)
    args.layers = layers
    for n in args.lengths:
        seconds = {name: [] for name in args.layers}
        peaks = {name: [] for name in args.layers}
        errors = {}
        for _ in range(args.rounds):
            for name in args.layers:
                if name in errors:
                    continue
                r, err = run_one(args, name, n)
                if err:
                    errors[name] = err
                    continue
                seconds[name].append(r["seconds"])
                peaks[name].append(r["peak_gb"])
        med = {k: statistics.median(v) for k, v in seconds.items() if v}
        for name in args.layers:
            if name in errors:
                print(f"n={n:6d}  {name:10s} {errors[name]}", flush=True)
                continue
            runs = " ".join(f"{s * 1e3:.0f}" for s in seconds[name])
            line = (
                f"n={n:6d}  {name:10s} {med[name] * 1e3:8.1f} ms "
                f"(per process: {runs})  peak RSS {max(peaks[name]):.2f} GB"
            )
            others = [o for o in args.layers if o != name and o in med]
            if name.startswith("longformer") and others:
                line += "  " + "  ".join(
                    f"{o}/{name} {med[o] / med[name]:.2f}x" for o in others
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
