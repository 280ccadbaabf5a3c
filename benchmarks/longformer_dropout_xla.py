"""Diagnostic: one training step of a small LongformerClassifier with and
without dropout, with and without `jit_compile`, on the current backend.

    python benchmarks/longformer_dropout_xla.py --max-global-tokens 1          # TensorFlow
    KERAS_BACKEND=jax python benchmarks/longformer_dropout_xla.py --max-global-tokens 1

BERT-tiny shapes made a Longformer (2 layers, width 128, 2 heads,
feed-forward 512, window 128, [CLS] global), batch 4 of 1,024 tokens, Adam,
`train_on_batch`. Each configuration runs in its own process; prints the
first call (tracing and compilation) and the median of `--repeats` steps.
It exists because the long-document fine-tune found TensorFlow's XLA step
with dropout an order of magnitude slower than without. The causes, now
fixed (README, attention section): Keras' dropout random numbers under XLA
on CPU (kzoo's `Dropout` names Philox, `benchmarks/dropout_rng.py`) and
global rows computed for every position when the encoder is traced with
`max_global_tokens=None` (`--max-global-tokens 1` gives the recipe's
setting; 0 shows the unbounded case). Nothing is written.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def single(batch, length, jit, dropout, repeats, max_global_tokens):
    import keras
    import numpy as np

    import kzoo

    encoder = kzoo.LongformerEncoder(
        4000, 2, 2, 128, 512, attention_window=128, max_sequence_length=length,
        dropout=dropout, max_global_tokens=max_global_tokens or None)
    model = kzoo.LongformerClassifier(encoder, 5, pooling="mean", dropout=dropout)
    model.compile(optimizer="adam", jit_compile=jit,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 4000, (batch, length)).astype("int32"),
         "padding_mask": np.ones((batch, length), bool),
         "global_attention_mask": np.arange(length)[None, :].repeat(batch, 0) == 0}
    y = np.zeros((batch,), "int32")
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    steps = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        steps.append(time.perf_counter() - start)
    print(json.dumps({"first_s": first, "step_s": float(np.median(steps))}))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-global-tokens", type=int, default=0,
        help="the encoder's max_global_tokens (0: None, exact and unbounded: "
        "under tracing the global rows are then computed for all T positions)")
    parser.add_argument("--single", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        single(args.batch, args.length, args.single[0] == "1", float(args.single[1]),
               args.repeats, args.max_global_tokens)
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print(f"backend {backend}, batch {args.batch} x {args.length} tokens, "
          f"max_global_tokens {args.max_global_tokens or None}, "
          f"median of {args.repeats} steps")
    for jit in ("0", "1"):
        for dropout in ("0.0", "0.1"):
            res = subprocess.run(
                [sys.executable, __file__, "--batch", str(args.batch), "--length",
                 str(args.length), "--repeats", str(args.repeats),
                 "--max-global-tokens", str(args.max_global_tokens), "--single", jit,
                 dropout], capture_output=True, text=True)
            lines = res.stdout.strip().splitlines()
            if res.returncode or not lines:
                print(f"jit_compile={jit == '1'} dropout={dropout}: failed "
                      f"(rc {res.returncode}) {res.stderr[-300:]}")
                continue
            r = json.loads(lines[-1])
            print(f"jit_compile={jit == '1'!s:5} dropout={dropout}: first call "
                  f"{r['first_s']:.1f} s, step {r['step_s'] * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
