"""Suite 5, end to end: the exported translator and BERT pretraining.

- translator: sentences per second of the SavedModel that
  `recipes/translate_gru.py` exports (`saved_models/gru_translator/
  saved_model`, strings in, strings out), for every signature it has
  (`serving_default`, and greedy / beam variants where exported). Needs
  TensorFlow and the artefact; otherwise recorded as unavailable, with
  the command that makes it.
- bert: masked-LM pretraining step (an MLM head on every token, synthetic
  tokens, XLA) tokens per second of kzoo's `BertEncoder` against keras-hub's
  `BertBackbone` of the same size (the reference).
"""

import os

import numpy as np

from benchmarks.suites.common import Unavailable
from benchmarks.suites.common import fmt_num
from benchmarks.suites.common import fmt_time
from benchmarks.suites.common import kzoo_component
from benchmarks.suites.common import make_config

TITLE = "End to end: translator inference and BERT pretraining"
DESCRIPTION = __doc__.split("\n\n", 1)[1].strip().replace("\n", " ")
TRANSLATOR_DIR = os.path.join("saved_models", "gru_translator", "saved_model")
SENTENCES = [
    "Good morning.",
    "Where is the train station?",
    "I would like a cup of coffee, please.",
    "The weather is nice today.",
    "We are going to the museum tomorrow.",
    "Can you help me?",
    "This book is very interesting.",
    "How much does it cost?",
]
RATIOS = [("throughput_vs_keras_hub", "derived.items_per_s")]
TABLE = [
    ("median", "timings.step.median_s", fmt_time),
    ("min", "timings.step.min_s", fmt_time),
    ("max", "timings.step.max_s", fmt_time),
    ("first call", "timings.step.first_call_s", fmt_time),
    ("unit", "derived.unit", str),
    ("per second", "derived.items_per_s", fmt_num),
    ("vs keras-hub", "ratios.throughput_vs_keras_hub.ratio", fmt_num),
]
PLOTS = []


def configs(options):
    quick = options["quick"]
    out = []
    translator = make_config(
        "end_to_end",
        "translator/saved_model",
        32,
        "batch",
        group="translator",
        path=os.path.abspath(options.get("translator_dir") or TRANSLATOR_DIR),
    )
    if options["backend"] != "tensorflow":
        translator["unavailable"] = (
            "the exported SavedModel runs on TensorFlow: run this suite with "
            "--backend tensorflow"
        )
    out.append(translator)
    size = (
        {"num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
         "vocabulary_size": 50, "batch_size": 2}
        if quick
        else {"num_layers": 2, "hidden_dim": 128, "num_heads": 2,
              "intermediate_dim": 512, "vocabulary_size": 1000, "batch_size": 16}
    )
    seq = (options.get("sizes") or [16 if quick else 128])[0]
    for impl in ("keras_hub", "kzoo"):
        out.append(
            make_config(
                "end_to_end",
                f"bert/{impl}",
                seq,
                "seq_len",
                group="bert",
                reference=impl == "keras_hub",
                impl=impl,
                kzoo_names=["BertEncoder"] if impl == "kzoo" else [],
                seq_len=seq,
                **size,
            )
        )
    return out


def _translator(config, ctx):
    import tensorflow as tf

    path = config["path"]
    if not os.path.isdir(path):
        raise Unavailable(
            f"no exported translator at {path}: run `python recipes/translate_gru.py` "
            "(or `--smoke` for a tiny one) first"
        )
    loaded = tf.saved_model.load(path)
    batch = tf.constant((SENTENCES * (config["x"] // len(SENTENCES) + 1))[: config["x"]])
    timings, outputs = {}, {}
    for name, fn in loaded.signatures.items():
        arg = list(fn.structured_input_signature[1])[0]

        def run(fn=fn, arg=arg):
            out = fn(**{arg: batch})
            return [v.numpy() for v in out.values()]

        timings[name] = ctx.time(run)
        outputs[name] = [x.decode() if isinstance(x, bytes) else str(x) for x in run()[0][:2]]
    main = "serving_default" if "serving_default" in timings else sorted(timings)[0]
    return {
        "timings": {"step": timings[main], **{f"signature_{k}": v for k, v in timings.items()}},
        "derived": {
            "unit": "sentences",
            "items_per_s": config["x"] / timings[main]["median_s"],
            "signatures": sorted(timings),
            "sample_outputs": outputs,
        },
    }


def _bert(config, ctx):
    import keras

    keras.utils.set_random_seed(0)
    kwargs = {k: config[k] for k in ("vocabulary_size", "num_layers", "num_heads",
                                     "hidden_dim", "intermediate_dim")}
    seq, batch = config["seq_len"], config["batch_size"]
    kwargs.update(dropout=0.1, max_sequence_length=max(seq, 16))
    if config["impl"] == "keras_hub":
        import keras_hub

        backbone = keras_hub.models.BertBackbone(**kwargs)
    else:
        backbone = kzoo_component("BertEncoder")(**kwargs)
    inputs = {
        "token_ids": keras.Input((seq,), batch_size=batch, dtype="int32", name="token_ids"),
        "segment_ids": keras.Input((seq,), batch_size=batch, dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input((seq,), batch_size=batch, dtype="bool", name="padding_mask"),
    }
    x = backbone(inputs)["sequence_output"]  # (B, T, D)
    logits = keras.layers.Dense(config["vocabulary_size"], dtype="float32")(x)  # (B, T, V)
    model = keras.Model(inputs, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    rng = np.random.default_rng(0)
    data = {
        "token_ids": rng.integers(0, config["vocabulary_size"], (batch, seq)).astype("int32"),
        "segment_ids": np.zeros((batch, seq), "int32"),
        "padding_mask": np.ones((batch, seq), bool),
    }
    labels = rng.integers(0, config["vocabulary_size"], (batch, seq)).astype("int32")

    def step():
        loss = model.train_on_batch(data, labels)
        return float(loss[0] if isinstance(loss, (list, tuple)) else loss)

    timings = ctx.time(step)
    return {
        "timings": {"step": timings},
        "derived": {
            "unit": "tokens",
            "items_per_s": batch * seq / timings["median_s"],
            "parameters": int(backbone.count_params()),
        },
    }


def measure(config, ctx):
    if config["series"].startswith("translator"):
        return _translator(config, ctx)
    return _bert(config, ctx)


def summarize(record):
    d = record["derived"]
    return f"{d['items_per_s']:.1f} {d['unit']}/s"
