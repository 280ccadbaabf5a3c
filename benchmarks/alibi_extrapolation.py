"""Train short, test long: does a TransformerLM's loss hold at 2L and 4L?

    python benchmarks/alibi_extrapolation.py                  # ~10 min, 2 CPU cores
    python benchmarks/alibi_extrapolation.py --steps 300 --length 16 --positions alibi

The same character-level `TransformerLM` (same seed, same batches) is trained
on Austen (shipped with kzoo) at length L with each position choice, then
evaluated on held-out text cut into windows of L, 2L and 4L: the mean
next-character cross-entropy over every position of every window. "Train
Short, Test Long" (Press et al., 2022) reports that ALiBi's loss at longer
lengths stays at or below its loss at L, while sinusoidal positions degrade;
learned positions cannot run past L at all. The script prints one row per
position choice with the three losses and the ratios loss(2L) / loss(L) and
loss(4L) / loss(L), and writes them to `--out` as JSON.

`tests/models/test_transformer_lm.py` runs `train_and_evaluate` at a tiny
size and asserts the bound measured here for that size.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    length: int = 64
    steps: int = 1000
    batch_size: int = 32
    hidden_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_dim: int = 256
    learning_rate: float = 2e-3
    validation_chars: int = 40_000
    seed: int = 0


def characters(config):
    """(train ids, validation ids, vocabulary size) from the Austen novels."""
    from kzoo.data.text_corpus import load_austen

    novels = load_austen()
    train, validation = [], []
    for text in novels.values():
        cut = len(text) - config.validation_chars // len(novels)
        train.append(text[:cut])
        validation.append(text[cut:])
    train, validation = "\n".join(train), "\n".join(validation)
    alphabet = sorted(set(train) | set(validation))
    index = {c: i + 1 for i, c in enumerate(alphabet)}  # 0 = padding
    encode = lambda s: np.array([index[c] for c in s], "int32")  # noqa: E731
    return encode(train), encode(validation), len(alphabet) + 1


def _windows(ids, length):
    n = (len(ids) - 1) // length
    x = ids[: n * length].reshape(n, length)
    y = ids[1 : n * length + 1].reshape(n, length)
    return x, y


def evaluate(model, ids, length, batch_size=16):
    """Mean next-token cross-entropy (nats) over windows of `length`."""
    from keras import ops

    x, y = _windows(ids, length)
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        logits = model.predict_on_batch({"token_ids": xb, "padding_mask": xb >= 0})
        logits = np.asarray(ops.convert_to_numpy(logits), "float64")
        if not np.all(np.isfinite(logits)):
            raise FloatingPointError(f"non-finite logits at length {length}")
        top = logits.max(-1, keepdims=True)
        lse = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
        picked = np.take_along_axis(logits, yb[..., None], -1)[..., 0]
        total += float((lse - picked).sum())
        count += yb.size
    return total / count


def train_and_evaluate(config, position_encoding, lengths=(1, 2, 4), data=None):
    """Trains at `config.length`; returns {multiple: loss at multiple * L}."""
    import keras

    from kzoo import TransformerLM

    train, validation, vocabulary = data or characters(config)
    keras.utils.set_random_seed(config.seed)
    longest = max(lengths) * config.length
    model = TransformerLM(
        vocabulary_size=vocabulary,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        # Learned positions exist only up to L: they cannot run longer.
        max_sequence_length=config.length if position_encoding == "learned" else longest,
        dropout=0.0,
        position_encoding=position_encoding,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    rng = np.random.default_rng(config.seed)
    starts = rng.integers(0, len(train) - config.length - 1, (config.steps, config.batch_size))
    offsets = np.arange(config.length)
    for row in starts:
        x = train[row[:, None] + offsets]
        y = train[row[:, None] + offsets + 1]
        model.train_on_batch({"token_ids": x, "padding_mask": x >= 0}, y)
    losses = {}
    for multiple in lengths:
        if position_encoding == "learned" and multiple > 1:
            losses[multiple] = None
            continue
        losses[multiple] = evaluate(model, validation, multiple * config.length)
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Config):
        parser.add_argument(f"--{field.name}", type=field.type, default=field.default)
    parser.add_argument(
        "--positions", nargs="+",
        default=["alibi", "sinusoidal", "rotary", "t5", "learned"],
    )
    parser.add_argument("--out", default="benchmarks/results/alibi_extrapolation.json")
    args = parser.parse_args(argv)
    config = Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Config)})
    data = characters(config)
    rows = []
    print(f"{'positions':<12} {'loss@L':>8} {'loss@2L':>8} {'loss@4L':>8} "
          f"{'2L/L':>6} {'4L/L':>6} {'time':>6}")
    for positions in args.positions:
        start = time.time()
        losses = train_and_evaluate(config, positions, data=data)
        base = losses[1]
        ratios = {m: (None if v is None else v / base) for m, v in losses.items()}
        rows.append({"position_encoding": positions, "loss": losses, "ratio": ratios,
                     "seconds": time.time() - start})
        fmt = lambda v, w=8: f"{'n/a':>{w}}" if v is None else f"{v:>{w}.3f}"  # noqa: E731
        print(f"{positions:<12} {fmt(losses[1])} {fmt(losses[2])} {fmt(losses[4])} "
              f"{fmt(ratios[2], 6)} {fmt(ratios[4], 6)} {time.time() - start:>5.0f}s")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"config": dataclasses.asdict(config), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
