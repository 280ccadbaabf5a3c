"""Suite 5, end to end: the exported translator and BERT pretraining.

- translator: sentences per second of the strings -> strings SavedModel of
  `recipes/translate_gru.py` on a batch of 32 English sentences: the
  SavedModel the recipe exported
  (`saved_models/gru_translator/saved_model`, decoding as the recipe was
  configured, greedy by default),
  and the same trained model (`model.keras`, `source.spm`, `target.spm`,
  `config.json` of that folder) exported again by
  `kzoo.export.translator.Translator` with greedy decoding and with beam
  search (beam 4), each loaded back with `tf.saved_model.load` and timed
  through its `serving_default` signature. Needs TensorFlow and the
  recipe's output: on a fresh clone run `python recipes/translate_gru.py`
  first (about 25 min on 2 CPU cores); otherwise recorded as unavailable
  with that command. Reference: greedy decoding; the greedy re-export is
  checked to translate as the recipe's SavedModel does.
- bert: masked-LM pretraining step of kzoo's `BertMaskedLM(BertEncoder)`
  against keras-hub's `BertMaskedLM(BertBackbone)` (keras-hub's
  `MaskedLMHead`: Dense gelu, LayerNorm, output tied to the token
  embedding), same size and settings: BERT tiny (2 layers, width 128, 2
  heads, feed-forward 512, dropout 0.1), vocabulary 4,000, 512 positions,
  batch 32 of 128 tokens with 24 masked positions (the pretraining
  recipe's default shape), Adam, sparse cross-entropy on the masked
  positions, jit_compile on and off. Reference: keras-hub at the same jit.
"""

import os

import numpy as np

from benchmarks.suites.common import Unavailable
from benchmarks.suites.common import fmt_fraction
from benchmarks.suites.common import fmt_num
from benchmarks.suites.common import fmt_time
from benchmarks.suites.common import kzoo_component
from benchmarks.suites.common import make_config
from benchmarks.suites.common import transformer_layer_flops

TITLE = "End to end: translator inference and BERT pretraining"
# The two bullets of the docstring, each on one line of the report.
DESCRIPTION = "\n".join(
    "- " + " ".join(item.split())
    for item in __doc__.split("\n\n", 1)[1].split("\n- ")
    if item.strip()
).replace("- - ", "- ")
# Fraction of peak (BERT): `bert_training_flops` / step time / suite peak's
# float32 matmul GFLOP/s, measured in the same run.
USES_PEAK = True
TRANSLATOR_DIR = os.path.join("saved_models", "gru_translator")
TRANSLATOR_BATCH = 32
BEAM_SIZE = 4
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
RATIOS = [("throughput_vs_reference", "derived.items_per_s")]
TABLE = [
    ("median", "timings.step.median_s", fmt_time),
    ("min", "timings.step.min_s", fmt_time),
    ("max", "timings.step.max_s", fmt_time),
    ("first call", "timings.step.first_call_s", fmt_time),
    ("unit", "derived.unit", str),
    ("per second", "derived.items_per_s", fmt_num),
    ("model GFLOP/s", "derived.model_gflops_per_s", fmt_num),
    ("fraction of peak", "derived.fraction_of_peak", fmt_fraction),
    ("vs reference", "ratios.throughput_vs_reference.ratio", fmt_num),
    ("paired: keras-hub per second", "derived.keras_hub_items_per_s", fmt_num),
    ("paired: kzoo / keras-hub", "derived.kzoo_vs_keras_hub", fmt_num),
    ("same translations as the recipe's export", "derived.same_outputs_as_exported",
     lambda x: "yes" if x else "NO"),
]
PLOTS = []
BERT_SIZE = {
    "num_layers": 2, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512,
    "vocabulary_size": 4000, "max_sequence_length": 512, "batch_size": 32,
    "mask_positions": 24,
}
BERT_QUICK = {
    "num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
    "vocabulary_size": 50, "max_sequence_length": 32, "batch_size": 2,
    "mask_positions": 3,
}


def configs(options):
    quick = options["quick"]
    out = []
    folder = os.path.abspath(options.get("translator_dir") or TRANSLATOR_DIR)
    for variant, beam in (("greedy", 1), ("exported", None), (f"beam={BEAM_SIZE}", BEAM_SIZE)):
        c = make_config(
            "end_to_end",
            f"translator/{variant}",
            TRANSLATOR_BATCH,
            "batch",
            group="translator",
            reference=variant == "greedy",
            folder=folder,
            beam_size=beam,
        )
        if options["backend"] != "tensorflow":
            c["unavailable"] = (
                "the exported SavedModel runs on TensorFlow: run this suite with "
                "--backend tensorflow"
            )
        out.append(c)
    size = BERT_QUICK if quick else BERT_SIZE
    seq = (options.get("sizes") or [16 if quick else 128])[0]
    for jit in (True, False):
        flag = "on" if jit else "off"
        for impl in ("keras_hub", "kzoo", "paired"):
            out.append(
                make_config(
                    "end_to_end",
                    f"bert/{impl}/jit={flag}",
                    seq,
                    "seq_len",
                    group=f"bert/jit={flag}",
                    reference=impl == "keras_hub",
                    impl=impl,
                    jit=jit,
                    kzoo_names=["BertEncoder", "BertMaskedLM"] if impl != "keras_hub" else [],
                    seq_len=seq,
                    **size,
                )
            )
    return out


def _missing_translator(folder):
    needed = ["saved_model", "model.keras", "source.spm", "target.spm", "config.json"]
    missing = [n for n in needed if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise Unavailable(
            f"no trained translator in {folder} (missing {', '.join(missing)}): "
            "run `python recipes/translate_gru.py` first (about 25 min on 2 CPU "
            "cores; `--smoke --output_dir DIR` makes an untrained one in "
            "seconds, then pass `--translator-dir DIR`)"
        )


def _export_again(folder, beam_size, out_dir):
    """The recipe's model re-exported by `kzoo.export.translator.Translator`
    with `beam_size`; returns the SavedModel path.

    The source `FrozenSentencePiece` stores the segmentation of every
    source word of the recipe's corpus, as the recipe's export does (words
    outside it fall back to characters), so both tokenize alike; the greedy
    configuration checks that both SavedModels translate alike."""
    import json

    import keras
    import keras_hub

    import kzoo  # noqa: F401  (registers the model classes)
    from kzoo.data.tokenizers import FrozenSentencePiece
    from kzoo.data import translation
    from kzoo.data.tokenizers import corpus_words
    from kzoo.export.translator import Translator

    with open(os.path.join(folder, "config.json")) as f:
        recipe = json.load(f)
    if recipe.get("corpus"):
        pairs, _ = translation.load_sentence_pairs(
            recipe["corpus"], strict=recipe.get("strict", False)
        )
    else:
        pairs, _ = translation.load_de_en_pairs()
    side = 1 if recipe.get("reverse") else 0
    words = corpus_words(pair[side] for pair in pairs)
    tokenizers = {}
    for side in ("source", "target"):
        with open(os.path.join(folder, f"{side}.spm"), "rb") as f:
            tokenizers[side] = keras_hub.tokenizers.SentencePieceTokenizer(proto=f.read())
    model = keras.saving.load_model(os.path.join(folder, "model.keras"), compile=False)
    translator = Translator(
        model,
        FrozenSentencePiece(tokenizers["source"], words),
        FrozenSentencePiece(tokenizers["target"]),
        max_input_length=recipe["max_length"],
        max_output_length=recipe["max_output_length"],
        beam_size=beam_size,
        length_penalty=recipe["length_penalty"],
    )
    return translator.export(os.path.join(out_dir, "saved_model"))


def _translator(config, ctx):
    import tempfile

    import tensorflow as tf

    folder = config["folder"]
    _missing_translator(folder)
    exported = os.path.join(folder, "saved_model")
    batch = tf.constant((SENTENCES * (config["x"] // len(SENTENCES) + 1))[: config["x"]])

    def serve(path):
        fn = tf.saved_model.load(path).signatures["serving_default"]
        return lambda: [t.decode("utf-8") for t in fn(inputs=batch)["outputs"].numpy()]

    derived = {"unit": "sentences"}
    with tempfile.TemporaryDirectory(prefix="kzoo-translator-") as tmp:
        if config["beam_size"] is None:
            run = serve(exported)
            derived["decoding"] = "as exported by the recipe (config.json beam_size)"
        else:
            run = serve(_export_again(folder, config["beam_size"], tmp))
            derived["decoding"] = (
                "greedy" if config["beam_size"] == 1 else f"beam {config['beam_size']}"
            )
            if config["beam_size"] == 1:
                # The re-export decodes as the recipe's own SavedModel does.
                derived["same_outputs_as_exported"] = run() == serve(exported)()
        timings = ctx.time(lambda: len(run()))
        outputs = run()
    derived["items_per_s"] = config["x"] / timings["median_s"]
    derived["sample_outputs"] = dict(zip(SENTENCES[:4], outputs[:4]))
    return {"timings": {"step": timings}, "derived": derived}


def bert_training_flops(config):
    """Matmul FLOPs of one masked-LM training step (forward + backward).

    Forward, per sequence (T tokens, P masked positions, D width, F
    intermediate, V vocabulary, L layers):
        encoder: L * transformer_layer_flops(T, D, F)
                 (8 T D^2 + 4 T^2 D + 4 T D F per layer)
        MLM head on the P gathered positions: 2 P D D (Dense gelu)
                 + 2 P D V (output projection tied to the embedding)
    Embeddings are gathers; the pooler's 2 D^2 is not on the loss's path and
    is left out. Training = 3 x forward (the backward pass computes the
    gradients for both operands of every matmul).
    """
    t, p = config["seq_len"], config["mask_positions"]
    d, f, v = config["hidden_dim"], config["intermediate_dim"], config["vocabulary_size"]
    forward = config["num_layers"] * transformer_layer_flops(t, d, f)
    forward += 2 * p * d * d + 2 * p * d * v
    return 3 * config["batch_size"] * forward


def bert_masked_lm(config):
    """The compiled masked-LM model of `config["impl"]`, kzoo or keras-hub."""
    import keras

    keras.utils.set_random_seed(0)
    kwargs = {k: config[k] for k in ("vocabulary_size", "num_layers", "num_heads",
                                     "hidden_dim", "intermediate_dim",
                                     "max_sequence_length")}
    kwargs["dropout"] = 0.1
    if config["impl"] == "keras_hub":
        import keras_hub

        backbone = keras_hub.models.BertBackbone(**kwargs)
        model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    else:
        encoder = kzoo_component("BertEncoder")(**kwargs)
        model = kzoo_component("BertMaskedLM")(encoder)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=bool(config["jit"]),
    )
    return model


def bert_batch(config):
    rng = np.random.default_rng(0)
    batch, seq, p = config["batch_size"], config["seq_len"], config["mask_positions"]
    vocab = config["vocabulary_size"]
    positions = np.stack([np.sort(rng.choice(seq, p, replace=False)) for _ in range(batch)])
    data = {
        "token_ids": rng.integers(1, vocab, (batch, seq)).astype("int32"),
        "segment_ids": np.zeros((batch, seq), "int32"),
        "padding_mask": np.ones((batch, seq), bool),
        "mask_positions": positions.astype("int32"),
    }
    labels = rng.integers(1, vocab, (batch, p)).astype("int32")
    return data, labels


def _bert(config, ctx):
    model = bert_masked_lm(config)
    data, labels = bert_batch(config)

    def step():
        loss = model.train_on_batch(data, labels)
        return float(loss[0] if isinstance(loss, (list, tuple)) else loss)

    timings = ctx.time(step)
    flops = bert_training_flops(config)
    median = timings["median_s"]
    return {
        "timings": {"step": timings},
        "derived": {
            "unit": "tokens",
            "items_per_s": config["batch_size"] * config["seq_len"] / median,
            "parameters": int(model.count_params()),
            "flops_per_step": flops,
            "model_gflops_per_s": flops / median / 1e9,
        },
    }


def _bert_paired(config, ctx):
    """Both models in one process, steps alternated (keras-hub, kzoo,
    keras-hub, ...): on a shared machine both see the same load, so the
    ratio of their medians is the fairest comparison this harness makes.
    Memory is the two models' together."""
    import statistics
    import time

    steps = {}
    for impl in ("keras_hub", "kzoo"):
        model = bert_masked_lm({**config, "impl": impl})
        data, labels = bert_batch(config)
        steps[impl] = lambda m=model, d=data, y=labels: m.train_on_batch(d, y)
    first = {}
    for impl, step in steps.items():
        start = time.perf_counter()
        step()
        first[impl] = time.perf_counter() - start
        for _ in range(ctx.warmup):
            step()
    times = {impl: [] for impl in steps}
    for _ in range(max(1, 2 * ctx.repeats)):
        for impl, step in steps.items():
            start = time.perf_counter()
            step()
            times[impl].append(time.perf_counter() - start)
    timings = {
        impl: {
            "first_call_s": first[impl],
            "median_s": statistics.median(t),
            "min_s": min(t),
            "max_s": max(t),
            "times_s": t,
            "repeats": len(t),
        }
        for impl, t in times.items()
    }
    tokens = config["batch_size"] * config["seq_len"]
    flops = bert_training_flops(config)
    kzoo_s, hub_s = timings["kzoo"]["median_s"], timings["keras_hub"]["median_s"]
    pair_ratios = [h / k for h, k in zip(times["keras_hub"], times["kzoo"])]
    return {
        "timings": {"step": timings["kzoo"], "keras_hub_step": timings["keras_hub"]},
        "derived": {
            "unit": "tokens",
            "items_per_s": tokens / kzoo_s,
            "keras_hub_items_per_s": tokens / hub_s,
            "kzoo_vs_keras_hub": hub_s / kzoo_s,
            "kzoo_vs_keras_hub_pairs_median": statistics.median(pair_ratios),
            "flops_per_step": flops,
            "model_gflops_per_s": flops / kzoo_s / 1e9,
            "keras_hub_model_gflops_per_s": flops / hub_s / 1e9,
        },
    }


def measure(config, ctx):
    if config["series"].startswith("translator"):
        return _translator(config, ctx)
    if config["impl"] == "paired":
        return _bert_paired(config, ctx)
    return _bert(config, ctx)


def summarize(record):
    d = record["derived"]
    if "kzoo_vs_keras_hub" in d:
        return (
            f"kzoo {d['items_per_s']:.1f} vs keras-hub "
            f"{d['keras_hub_items_per_s']:.1f} {d['unit']}/s "
            f"(x{d['kzoo_vs_keras_hub']:.2f})"
        )
    return f"{d['items_per_s']:.1f} {d['unit']}/s"
