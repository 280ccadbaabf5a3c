"""Peak training memory of a Reformer reversible stack against its depth.

Issue 6 asks that forward+backward of a reversible stack of 12 layers need at
most 1.5x the memory of 2 layers (n=4096, batch 1, width 256, 4 heads). This
script measures it, for the memory-saving stack (`memory_saving=True`) and,
for contrast, the same blocks under plain autodiff (`memory_saving=False`).

The blocks are those of `ReformerLM`: F = LayerNorm + causal `LSHAttention`,
G = LayerNorm + `ChunkedFeedForward`. The measured function is the gradient
of `sum(stack(x) * w)` with respect to the input and every weight. (The LSH
rotations are a fixed draw from each layer's integer seed, the same in
training and inference, so there is no training-mode difference.)

Every configuration runs in a fresh subprocess:

- JAX: the XLA memory analysis of the compiled gradient function,
  `jax.jit(grad).lower(...).compile().memory_analysis()`: arguments (weights,
  input), outputs (gradients) and temporaries (activations and workspace),
  plus the child's peak RSS after one call.
- TensorFlow: the gradient step under `tf.function` (`--tf-jit` adds
  `jit_compile=True`) with the BFC allocator on the CPU
  (`TF_CPU_ALLOCATOR_USE_BFC=true`), which counts the bytes of live tensors:
  after one warm-up call, the allocator's peak during a second call minus
  its bytes in use just before it is the step's own memory. RSS sampled
  every millisecond is recorded too, but it is a poor measure here: memory
  freed by the warm-up call stays resident and is reused, so its growth
  varied from 91 to 235 MiB between runs of the same configuration.

The weights, their gradients and Adam's two slots (4 copies of the
parameters, `training_state_bytes`) are necessarily linear in depth. The
report therefore gives two figures per configuration: `activations`, what
the step allocates beyond its inputs and weights (constant in depth for a
reversible stack), and `total`, the measured peak of everything the step
holds (weights, inputs, gradients, activations) plus Adam's two slots
(2 x params, computed: this script runs no optimizer).

    python benchmarks/reversible_memory.py                    # both backends
    python benchmarks/reversible_memory.py --backends jax --layers 2 12

Results: benchmarks/results/reversible/results.json and report.md
(results-tf-jit.json and report-tf-jit.md with --tf-jit). On a shared
machine memory figures are not affected by load as times are, but RSS
samples (every millisecond) can miss a short peak.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024.0 * 1024.0


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RssSampler:
    """Samples the process's RSS in a thread; `peak` is the maximum seen."""

    def __init__(self, interval=0.001):
        self.interval = interval
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def build_stack(args, num_layers, memory_saving):
    """The reversible encoder of `ReformerLM`, without embeddings and head."""
    from kzoo.layers.transformer.chunked_feed_forward import ChunkedFeedForward
    from kzoo.layers.attention.lsh_attention import LSHAttention
    from kzoo.layers.reversible.reversible_block import ReversibleBlock
    from kzoo.layers.reversible.reversible_encoder import ReversibleEncoder
    from kzoo.models.reformer.pre_norm_branch import PreNormBranch

    blocks = []
    for i in range(num_layers):
        attention = LSHAttention(
            num_heads=args.heads,
            key_dim=args.width // args.heads,
            num_hashes=args.num_hashes,
            bucket_size=args.bucket_size,
            seed=i,
        )
        feed_forward = ChunkedFeedForward(
            args.intermediate, chunk_size=args.feed_forward_chunk_size
        )
        blocks.append(ReversibleBlock(PreNormBranch(attention), PreNormBranch(feed_forward)))
    stack = ReversibleEncoder(blocks, memory_saving=memory_saving)
    stack.build((1, args.length, args.width))
    return stack


def _param_bytes(stack):
    import numpy as np

    total = 0
    for v in stack.trainable_variables:
        total += int(np.prod(v.shape)) * 4
    return total


def worker_jax(args, num_layers, memory_saving):
    import jax
    import numpy as np

    stack = build_stack(args, num_layers, memory_saving)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, args.length, args.width)).astype("float32")
    w = rng.normal(size=(1, args.length, 2 * args.width)).astype("float32")

    def loss(trainable, non_trainable, x):
        out, _ = stack.stateless_call(trainable, non_trainable, x, use_causal_mask=True)
        return jax.numpy.sum(out * w)

    grad = jax.grad(loss, argnums=(0, 2))
    trainable = [v.value for v in stack.trainable_variables]
    non_trainable = [v.value for v in stack.non_trainable_variables]
    compiled = jax.jit(grad).lower(trainable, non_trainable, x).compile()
    analysis = compiled.memory_analysis()
    fields = [
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "alias_size_in_bytes",
        "temp_size_in_bytes",
        "generated_code_size_in_bytes",
        "peak_memory_in_bytes",
    ]
    result = {f: getattr(analysis, f, None) for f in fields}
    before = _rss_bytes()
    with _RssSampler() as sampler:
        jax.block_until_ready(compiled(trainable, non_trainable, x))
    result["rss_before_call_bytes"] = before
    result["rss_peak_during_call_bytes"] = sampler.peak
    result["rss_step_bytes"] = sampler.peak - before
    return stack, result


def worker_tensorflow(args, num_layers, memory_saving):
    import numpy as np
    import tensorflow as tf

    stack = build_stack(args, num_layers, memory_saving)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, args.length, args.width)).astype("float32"))
    w = tf.constant(rng.normal(size=(1, args.length, 2 * args.width)).astype("float32"))

    @tf.function(jit_compile=args.tf_jit)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(stack(x, use_causal_mask=True) * w)
        grads = tape.gradient(loss, [x] + list(stack.trainable_variables))
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    float(step(x))  # trace, compile and run once
    tf.config.experimental.reset_memory_stats("CPU:0")
    allocated_before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    before = _rss_bytes()
    with _RssSampler() as sampler:
        float(step(x))
    allocated_peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return stack, {
        "bfc_before_call_bytes": allocated_before,
        "bfc_peak_during_call_bytes": allocated_peak,
        "bfc_step_bytes": allocated_peak - allocated_before,
        "rss_before_call_bytes": before,
        "rss_peak_during_call_bytes": sampler.peak,
        "rss_step_bytes": sampler.peak - before,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def worker(args):
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's BFC allocator on the CPU keeps exact byte counts (current,
    # peak) of its tensors; the default CPU allocator keeps none.
    os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    sys.path.insert(0, ROOT)
    memory_saving = args.mode == "reversible"
    fn = worker_jax if args.backend == "jax" else worker_tensorflow
    stack, result = fn(args, args.num_layers, memory_saving)
    params = _param_bytes(stack)
    result.update(
        backend=args.backend,
        mode=args.mode,
        num_layers=args.num_layers,
        param_bytes=params,
        training_state_bytes=4 * params,  # weights, gradients, Adam m and v
    )
    print("RESULT " + json.dumps(result), flush=True)


def _child_args(args, backend, mode, num_layers):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"]
    cmd += ["--backend", backend, "--mode", mode, "--num-layers", str(num_layers)]
    for name in ("length", "width", "heads", "intermediate", "num_hashes",
                 "bucket_size", "feed_forward_chunk_size"):
        cmd += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.tf_jit:
        cmd.append("--tf-jit")
    return cmd


def _mib(x):
    return "" if x is None else f"{x / MIB:,.1f}"


def _derive(r):
    """Adds `activation_bytes` and `total_bytes` to one result.

    activations: what the step allocates beyond what is there before it.
    JAX: XLA's temporaries (arguments, i.e. weights and input, and outputs,
    i.e. gradients, are apart). TensorFlow: the growth of the BFC allocator's
    bytes in use from just before the step to its peak; it includes the
    gradients alive at the peak (at most one copy of the parameters).
    total: the measured peak of everything the step holds (JAX: arguments +
    outputs + temporaries; TensorFlow: the allocator's peak, weights, inputs
    and gradients included) plus Adam's two slots, 2 x params, which are not
    part of this step but of any training run.
    """
    if "error" in r:
        return r
    adam = 2 * r["param_bytes"]
    if r.get("temp_size_in_bytes") is not None:
        r["xla_total_bytes"] = (r["argument_size_in_bytes"] + r["output_size_in_bytes"]
                                + r["temp_size_in_bytes"] - r["alias_size_in_bytes"])
        r["activation_bytes"] = r["temp_size_in_bytes"]
        r["total_bytes"] = r["xla_total_bytes"] + adam
    else:
        r["activation_bytes"] = r["bfc_step_bytes"]
        r["total_bytes"] = r["bfc_peak_during_call_bytes"] + adam
    return r


def report(results, args):
    lines = [
        f"n={args.length}, batch 1, width {args.width}, {args.heads} heads, "
        f"intermediate {args.intermediate}, {args.num_hashes} hash rounds, "
        f"bucket {args.bucket_size}, feed-forward chunk "
        f"{args.feed_forward_chunk_size}; forward+backward"
        + ("; TensorFlow with jit_compile=True" if args.tf_jit else "") + "; MiB",
        "",
        f"Measured on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; the "
        "machine may be shared).",
        "",
        "activations: JAX = XLA temporaries of the compiled gradient; TensorFlow = "
        "growth of the BFC allocator's bytes in use from before the step to its "
        "peak (gradients alive at the peak included). total = measured peak of "
        "everything the step holds (JAX: XLA arguments + outputs + temporaries; "
        "TensorFlow: the allocator's peak) + Adam m and v (2 x params, analytic).",
        "",
        "| backend | mode | layers | activations | Adam m, v | total "
        "| XLA args+out+temp | TF allocator peak | step RSS growth |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['mode']} | {r['num_layers']} | "
                         f"error: {r['error'][-80:]!r} | | | | | |")
            continue
        _derive(r)
        lines.append(
            f"| {r['backend']} | {r['mode']} | {r['num_layers']} | "
            f"{_mib(r['activation_bytes'])} | {_mib(2 * r['param_bytes'])} | "
            f"{_mib(r['total_bytes'])} | {_mib(r.get('xla_total_bytes'))} | "
            f"{_mib(r.get('bfc_peak_during_call_bytes'))} | {_mib(r['rss_step_bytes'])} |"
        )
    lines += ["", "Ratios, deepest / shallowest (issue 6 target: at most 1.5x):", ""]
    keys = sorted({(r["backend"], r["mode"]) for r in results if "error" not in r})
    for backend, mode in keys:
        rs = sorted(
            (r for r in results if "error" not in r
             and (r["backend"], r["mode"]) == (backend, mode)),
            key=lambda r: r["num_layers"],
        )
        if len(rs) < 2:
            continue
        lo, hi = rs[0], rs[-1]
        parts = []
        for field in ("activation_bytes", "total_bytes", "rss_step_bytes"):
            if lo.get(field) and hi.get(field):
                parts.append(f"{field.replace('_bytes', '')} {hi[field] / lo[field]:.2f}x")
        lines.append(f"- {backend} {mode} {hi['num_layers']} vs {lo['num_layers']} "
                     f"layers: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow"])
    parser.add_argument("--modes", nargs="+", default=["reversible", "plain"])
    parser.add_argument("--layers", nargs="+", type=int, default=[2, 12])
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1024)
    parser.add_argument("--num-hashes", type=int, default=2)
    parser.add_argument("--bucket-size", type=int, default=64)
    parser.add_argument("--feed-forward-chunk-size", type=int, default=512)
    parser.add_argument("--tf-jit", action="store_true")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks/results/reversible"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--num-layers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    results = []
    for backend in args.backends:
        for mode in args.modes:
            for num_layers in args.layers:
                cmd = _child_args(args, backend, mode, num_layers)
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                found = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                if proc.returncode or not found:
                    result = {"backend": backend, "mode": mode, "num_layers": num_layers,
                              "error": (proc.stderr or proc.stdout)[-2000:]}
                else:
                    result = json.loads(found[-1][len("RESULT "):])
                print(json.dumps(result), flush=True)
                results.append(result)
    text = report(results, args)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    name = "results-tf-jit" if args.tf_jit else "results"
    with open(os.path.join(args.out, name + ".json"), "w") as f:
        json.dump(
            {
                "config": {k: v for k, v in vars(args).items()
                           if k not in ("worker", "backend", "mode", "num_layers")},
                "machine": {"platform": platform.platform(),
                            "cpus": os.cpu_count(),
                            "load_average": os.getloadavg()},
                "results": results,
            },
            f,
            indent=1,
        )
    with open(os.path.join(args.out, name.replace("results", "report") + ".md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
