"""What does the traced token-id check cost? One process, interleaved.

    python benchmarks/token_check_cost.py [--size tiny|small] [--rounds 7]

`guard_token_ids` (kzoo/utils/validation.py) turns the embeddings of an
out-of-range id into NaN under tracing: one comparison and one select per
embedding. This script builds the same model twice from one seed, one as
shipped and one with the guard replaced by the identity (patched in
`kzoo.layers.position.token_and_position_embedding` and
`kzoo.models.gru_translator.gru_translator` while that model's training
step is traced), and times a
`train_on_batch` step of each under `jit_compile=True`, alternating A, B,
A, B ... in one process so both see the same load. It prints the median
step time of each and the median of the paired ratios, for TransformerLM
(batch 32 x 128 tokens) and GRUTranslator (batch 32 x 32 source / target
tokens), and writes benchmarks/results/token-check-cost.json.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np


def _use_guard(guarded):
    """Sets the guard the two modules call; read when a step is traced."""
    from kzoo.layers.position import token_and_position_embedding as tpe
    from kzoo.models.gru_translator import gru_translator as gru
    from kzoo.utils import validation

    guard = validation.guard_token_ids if guarded else (lambda x, ids, v: x)
    tpe.guard_token_ids = gru.guard_token_ids = guard


def _models(size):
    import keras

    import kzoo

    keras.utils.set_random_seed(0)
    lm = kzoo.TransformerLM.from_size(size, vocabulary_size=8000)
    translator = kzoo.GRUTranslator.from_size(size, source_vocabulary_size=8000,
                                              target_vocabulary_size=8000)
    for model in (lm, translator):
        model.compile(optimizer="adam", jit_compile=True,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return {"TransformerLM": lm, "GRUTranslator": translator}


def _batches():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 8000, (32, 129)).astype("int32")
    src = rng.integers(1, 8000, (32, 32)).astype("int32")
    tgt = rng.integers(1, 8000, (32, 33)).astype("int32")
    return {
        "TransformerLM": ({"token_ids": ids[:, :-1], "padding_mask": ids[:, :-1] > 0},
                          ids[:, 1:]),
        "GRUTranslator": ({"encoder_token_ids": src, "encoder_padding_mask": src > 0,
                           "decoder_token_ids": tgt[:, :-1],
                           "decoder_padding_mask": tgt[:, :-1] > 0}, tgt[:, 1:]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="steps timed per turn")
    parser.add_argument("--out", default="benchmarks/results/token-check-cost.json")
    args = parser.parse_args(argv)
    import keras

    models = {"guarded": _models(args.size), "unguarded": _models(args.size)}
    batches = _batches()
    rows = []
    for name, (x, y) in batches.items():
        for variant in models:  # trace (with this variant's guard), compile, warm up
            _use_guard(variant == "guarded")
            models[variant][name].train_on_batch(x, y)
        _use_guard(True)
        times = {variant: [] for variant in models}
        for _ in range(args.rounds):
            for variant in models:
                model = models[variant][name]
                start = time.perf_counter()
                for _ in range(args.steps):
                    loss = model.train_on_batch(x, y)
                float(np.asarray(loss))
                times[variant].append((time.perf_counter() - start) / args.steps)
        ratios = [g / u for g, u in zip(times["guarded"], times["unguarded"])]
        row = {"model": name, "size": args.size,
               "guarded_ms": 1000 * statistics.median(times["guarded"]),
               "unguarded_ms": 1000 * statistics.median(times["unguarded"]),
               "paired_ratio_median": statistics.median(ratios),
               "paired_ratio_range": [min(ratios), max(ratios)], "times_s": times}
        rows.append(row)
        print(f"{name:<14} guarded {row['guarded_ms']:8.1f} ms  unguarded "
              f"{row['unguarded_ms']:8.1f} ms  paired ratio {row['paired_ratio_median']:.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f})", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"backend": keras.backend.backend(), "rounds": args.rounds,
                   "steps": args.steps, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
