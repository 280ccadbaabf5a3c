"""Does Transformer-XL's segment memory help? Train the same model twice.

    python recipes/transformer_xl_memory.py            # ~minutes on 2 CPU cores
    python recipes/transformer_xl_memory.py --smoke    # seconds; writes to runs/transformer_xl_memory_smoke
    python recipes/transformer_xl_memory.py --steps 2000 --memory_length 64

Reads top to bottom: config -> Austen text (shipped with kzoo) as
characters -> one contiguous stream per batch row -> the same
`TransformerXLLM` (same seed, same batches, same steps) trained twice:
once carrying memories from segment to segment, once with empty memories
-> validation perplexity per character on held-out text, each model
evaluated the way it was trained -> `<output_dir>/config.json`,
`metrics.json`.

Transformer-XL: Dai et al., "Transformer-XL: Attentive Language Models Beyond
a Fixed-Length Context", 2019. The training step uses tf.GradientTape, so
this recipe runs on the TensorFlow backend.
"""

import dataclasses
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets KERAS_BACKEND=tensorflow unless given)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kzoo import TransformerXLLM  # noqa: E402
from kzoo.data.text_corpus import load_austen  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    hidden_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_dim: int = 128
    segment_length: int = 32  # characters per training segment
    memory_length: int = 32  # cached hidden states carried to the next segment
    batch_size: int = 16
    steps: int = 600
    learning_rate: float = 2e-3
    dropout: float = 0.0
    validation_chars: int = 40_000  # characters of the held-out tail used for validation
    seed: int = 0
    output_dir: str = "runs/transformer_xl_memory"  # config.json and metrics.json


SMOKE = dict(hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
             segment_length=8, memory_length=8, batch_size=4, steps=3,
             validation_chars=2_000)


# === Text: characters, train on five novels' bodies, validate on the tail ===

def load_text(config):
    novels = load_austen()
    train, validation = [], []
    for text in novels.values():
        cut = len(text) - config.validation_chars // len(novels)
        train.append(text[:cut])
        validation.append(text[cut:])
    train, validation = "\n".join(train), "\n".join(validation)
    chars = sorted(set(train))
    index = {c: i + 1 for i, c in enumerate(chars)}  # 0 = unknown
    encode = lambda s: np.array([index.get(c, 0) for c in s], "int32")  # noqa: E731
    return encode(train), encode(validation), len(chars) + 1


def streams(ids, batch_size, segment_length):
    """(num_segments, B, T): B contiguous streams cut into segments."""
    per_row = len(ids) // batch_size // segment_length * segment_length
    rows = ids[: per_row * batch_size].reshape(batch_size, per_row)
    return rows.reshape(batch_size, -1, segment_length).transpose(1, 0, 2)


# === Training and evaluation ===

def make_model(config, vocabulary_size):
    keras.utils.set_random_seed(config.seed)
    return TransformerXLLM(
        vocabulary_size, config.num_layers, config.num_heads, config.hidden_dim,
        config.intermediate_dim, memory_length=config.memory_length,
        dropout=config.dropout,
    )


def run(config, train_ids, val_ids, vocabulary_size, use_memory):
    import tensorflow as tf

    model = make_model(config, vocabulary_size)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Inputs are the segment, targets the same stream shifted by one.
    batches = streams(train_ids[:-1], config.batch_size, config.segment_length)
    targets = streams(train_ids[1:], config.batch_size, config.segment_length)

    @tf.function(reduce_retracing=True)
    def train_step(ids, labels, memories):
        with tf.GradientTape() as tape:
            out = model(
                {"token_ids": ids, "padding_mask": tf.ones_like(ids, tf.bool),
                 "memories": memories},
                training=True,
            )
            logits, new_memories = out["logits"], out["memories"]
            loss = loss_fn(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, new_memories

    empty = model.initial_memories(config.batch_size)
    memories, losses, start = empty, [], time.time()
    for step in range(config.steps):
        i = step % len(batches)
        if i == 0:
            memories = empty  # streams restart: forget
        loss, new_memories = train_step(batches[i], targets[i], memories)
        memories = new_memories.numpy() if use_memory else empty
        losses.append(float(loss))
    train_seconds = time.time() - start

    val_in = streams(val_ids[:-1], config.batch_size, config.segment_length)
    val_out = streams(val_ids[1:], config.batch_size, config.segment_length)
    memories, total, count = empty, 0.0, 0
    for ids, labels in zip(val_in, val_out):
        out = model(
            {"token_ids": ids, "padding_mask": np.ones(ids.shape, bool),
             "memories": memories}, training=False,
        )
        logits, new_memories = out["logits"], out["memories"]
        memories = keras.ops.convert_to_numpy(new_memories) if use_memory else empty
        nll = keras.ops.convert_to_numpy(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
        total += float(nll.sum())
        count += nll.size
    return {
        "validation_perplexity": math.exp(total / count),
        "validation_characters": count,
        "final_train_loss_mean_last_50": float(np.mean(losses[-50:])),
        "train_seconds": train_seconds,
    }


def main(argv=None):
    config, size = common.parse_config(Config, argv, {"smoke": SMOKE},
                                       __doc__.splitlines()[0])
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("this recipe's training step needs KERAS_BACKEND=tensorflow")
    train_ids, val_ids, vocabulary_size = load_text(config)
    metrics = {"vocabulary_size": vocabulary_size, "train_characters": int(len(train_ids))}
    for name, use_memory in (("with_memory", True), ("without_memory", False)):
        metrics[name] = run(config, train_ids, val_ids, vocabulary_size, use_memory)
        print(name, json.dumps(metrics[name]), flush=True)
    metrics["environment"] = common.environment()
    common.write_run(config.output_dir, config, metrics, size=size)
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
