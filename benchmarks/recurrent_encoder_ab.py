"""Why kzoo's RecurrentEncoder trains slower than the keras LSTM it wraps.

    python benchmarks/recurrent_encoder_ab.py [--seq-len 256] [--jit] [--repeats 5]

Builds, in ONE process, the recurrent suite's classifier (Embedding ->
layer -> mean -> Dense(2), batch 32, width 128) around four layers that
compute the same function:

- `keras_lstm`: `keras.layers.LSTM(128, return_sequences=True)`, the
  suite's reference;
- `keras_lstm_states`: the same with `return_state=True`, outputs only;
- `wrapped_lstm`: a plain custom layer that builds a keras LSTM in its
  `build` and calls it (no kzoo code), to separate "a layer inside a
  layer" from anything kzoo-specific;
- `kzoo_recurrent_encoder`: `kzoo.layers.RecurrentEncoder(128,
  cell="lstm", bidirectional=False)`, as in the suite.

Training steps are alternated (one of each, repeated), so all four see the
same load on a shared machine; prints the median step time of each and its
ratio to `keras_lstm`. Run it with and without `--no-kzoo` to see what
`import kzoo` alone does to the keras layers. A diagnostic, not a suite: nothing is written.
"""

import argparse
import statistics
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-kzoo",
        action="store_true",
        help="never import kzoo (drops kzoo_recurrent_encoder): shows what "
        "importing kzoo costs the keras layers",
    )
    args = parser.parse_args()

    import keras

    if not args.no_kzoo:
        import kzoo

    width = args.width

    class StatesDropped(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.rnn = keras.layers.LSTM(width, return_sequences=True, return_state=True)

        def call(self, x):
            return self.rnn(x)[0]

    class Wrapped(keras.layers.Layer):
        def build(self, shape):
            self.rnn = keras.layers.LSTM(width, return_sequences=True)
            self.rnn.build(shape)

        def call(self, x, training=None):
            return self.rnn(x, mask=None, training=training)

    makers = {
        "keras_lstm": lambda: keras.layers.LSTM(width, return_sequences=True),
        "keras_lstm_states": StatesDropped,
        "wrapped_lstm": Wrapped,
    }
    if not args.no_kzoo:
        makers["kzoo_recurrent_encoder"] = lambda: kzoo.layers.RecurrentEncoder(
            width, num_layers=1, cell="lstm", bidirectional=False
        )
    rng = np.random.default_rng(0)
    b, t = args.batch_size, args.seq_len
    x = rng.integers(1, 1000, (b, t)).astype("int32")
    y = rng.integers(0, 2, (b,)).astype("int32")
    steps = {}
    for name, make in makers.items():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((t,), batch_size=b, dtype="int32")
        h = keras.layers.Embedding(1000, width)(inputs)  # (B, T, D)
        h = make()(h)  # (B, T, D)
        h = keras.layers.GlobalAveragePooling1D()(h)  # (B, D)
        model = keras.Model(inputs, keras.layers.Dense(2)(h))
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=args.jit,
        )
        model.train_on_batch(x, y)  # compile
        model.train_on_batch(x, y)  # warm up
        steps[name] = (model, model.count_params())
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, (model, _) in steps.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["keras_lstm"])
    print(
        f"backend {keras.backend.backend()}, seq_len {t}, batch {b}, width {width}, "
        f"jit_compile {args.jit}, kzoo imported {not args.no_kzoo}, "
        f"{args.repeats} alternated steps each"
    )
    for name, (_, params) in steps.items():
        med = statistics.median(times[name])
        print(f"{name:24s} params {params:8,d}  median {1e3 * med:8.1f} ms  "
              f"x{med / ref:.2f} of keras_lstm")


if __name__ == "__main__":
    main()
