"""Dropout masks under XLA: `keras.layers.Dropout` against kzoo's `Dropout`.

    python benchmarks/dropout_rng.py                   # TensorFlow
    KERAS_BACKEND=jax python benchmarks/dropout_rng.py

Times `layer(x, training=True)` on a (4, 2, 1024, 1024) float32 tensor (a
batch of 4, 2 heads, 1,024 x 1,024 attention probabilities: 8.4 M draws),
with and without XLA, both layers in one process, taking turns, median of
`--repeats` calls each. It exists because on TensorFlow, XLA on a CPU
compiles the random numbers of Keras' dropout ("auto_select" algorithm)
into a loop about 30x slower than the same numbers with the Philox
algorithm named (kzoo/backend/random.py); on JAX both layers are the same
code. Nothing is written.
"""

import argparse
import os
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", type=int, nargs="+", default=[4, 2, 1024, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import keras
    import numpy as np

    from kzoo.layers import Dropout

    backend = keras.backend.backend()
    x = keras.ops.convert_to_tensor(np.ones(args.shape, "float32"))

    def compiled(layer, jit):
        if backend == "tensorflow":
            import tensorflow as tf

            fn = tf.function(lambda x: layer(x, training=True), jit_compile=jit)
            return lambda: fn(x).numpy()
        import jax

        def step(state, x):
            return layer.stateless_call([], state, x, training=True)

        fn = jax.jit(step) if jit else step
        state = [v.value for v in layer.non_trainable_variables]
        return lambda: fn(state, x)[0].block_until_ready()

    print(f"backend {backend}, dropout 0.1 on {tuple(args.shape)} float32, "
          f"median of {args.rounds} x {args.repeats} calls, layers taking turns")
    for jit in (False, True):
        calls = {
            "keras.layers.Dropout": compiled(keras.layers.Dropout(0.1, seed=0), jit),
            "kzoo.layers.Dropout": compiled(Dropout(0.1, seed=0), jit),
        }
        times = {name: [] for name in calls}
        for call in calls.values():
            call()  # trace and compile
        for _ in range(args.rounds):
            for name, call in calls.items():
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
        med = {name: statistics.median(t) for name, t in times.items()}
        ratio = med["keras.layers.Dropout"] / med["kzoo.layers.Dropout"]
        for name in calls:
            print(f"jit_compile={jit!s:5} {name:21s} {med[name] * 1e3:8.1f} ms")
        print(f"jit_compile={jit!s:5} keras / kzoo {ratio:.1f}x", flush=True)


if __name__ == "__main__":
    main()
