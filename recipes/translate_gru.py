"""Train a GRU translator (English -> German) and serve it as strings -> strings.

kzoo's main job (`make train`). With no arguments it trains `GRUTranslator`
(bidirectional GRU encoder, GRU decoder with Bahdanau attention) on the
English-German corpus that kzoo ships (game text, man pages, help and
manuals of Debian packages; `kzoo/data/files/EN_DE_PROVENANCE.md`; `--corpus
ding` for the smaller Ding dictionary sentences), scores BLEU and chrF on the
held-out test split with sacrebleu (overall, per origin of the pairs and for
the copy-the-source baseline), prints sample
translations and writes to `saved_models/gru_translator/`:

    model.keras        the Keras model
    saved_model/       SavedModel: batch of strings in, batch of strings out
    source.spm, target.spm   the SentencePiece tokenizers
    config.json        this run's config
    test_translations.tsv    source, model output, reference (test split)
    metrics.json       BLEU, chrF, losses, times, throughput

and TensorBoard logs, a profiler trace and the resumable backup to
`runs/gru_translator/` (`tensorboard --logdir runs/gru_translator`).

    python recipes/translate_gru.py                      # the default corpus
    #   (~15 min on 2 CPU cores with --corpus ding; the default has ~8x its pairs)
    python recipes/translate_gru.py --smoke              # seconds; writes to *_smoke folders
    python recipes/translate_gru.py --size gpu --mixed_precision mixed_bfloat16
    python recipes/translate_gru.py --corpus spa-eng.txt --output_dir saved_models/es
    python recipes/translate_gru.py --corpus ding         # the Ding sentences
    python recipes/translate_gru.py --origins wesnoth,gettext   # part of the corpus
    python recipes/translate_gru.py --epochs 3 --hidden_dim 256 --attention luong_general

Killed? Run the same command again: it resumes from the last checkpoint
(every `--steps_per_period` steps) and ends as an uninterrupted run would.
Then:

    saved_model_cli run --dir saved_models/gru_translator/saved_model \\
        --tag_set serve --signature_def serving_default \\
        --input_exprs 'inputs=["Good morning."]'
"""

import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import translation_common as common  # noqa: E402

from kzoo import GRUTranslator  # noqa: E402


@dataclasses.dataclass(frozen=True)
class GRUConfig(common.TranslationConfig):
    embedding_dim: int = 128
    hidden_dim: int = 256
    num_encoder_layers: int = 1
    attention: str = "bahdanau"  # bahdanau | luong_dot | luong_general
    cell: str = "gru"  # gru | lstm
    dropout: float = 0.2
    use_cudnn: bool = False  # GPU + TF only; excludes --jit_compile
    output_dir: str = "saved_models/gru_translator"
    run_dir: str = "runs/gru_translator"


SIZES = {
    "default": {},  # ~15 minutes on 2 CPU cores with --corpus ding (17,884 pairs)
    "smoke": dict(
        max_pairs=300, vocabulary_size=200, max_length=32,
        bucket_boundaries="16,32", embedding_dim=16, hidden_dim=16,
        dropout=0.1, batch_size=32, epochs=1, warmup_steps=3,
        steps_per_period=4, patience=5, max_output_length=12,
        eval_max_sentences=16, num_samples=2, samples_every=2, log_every=2,
        profile_batch="2,3", verbose=0,
    ),
    "gpu": dict(
        embedding_dim=256, hidden_dim=512, num_encoder_layers=2,
        dropout=0.3, vocabulary_size=8000, batch_size=128, epochs=40,
        learning_rate=1e-3, steps_per_period=500, patience=5, beam_size=4,
        jit_compile=True,
    ),
}


def main(argv=None):
    config, size = common.parse_config(GRUConfig, SIZES, argv, __doc__.split("\n")[0])
    output_dir, run_dir = common.setup(config)
    print(f"config ({size}): {json.dumps(dataclasses.asdict(config))}")

    # 1. Data: load, split by hash, SentencePiece on the training split.
    data = common.load_data(config, run_dir)

    # 2. Model.
    model = GRUTranslator(
        source_vocabulary_size=data.source_tokenizer.vocabulary_size(),
        target_vocabulary_size=data.target_tokenizer.vocabulary_size(),
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        num_encoder_layers=config.num_encoder_layers,
        attention=config.attention,
        cell=config.cell,
        dropout=config.dropout,
        use_cudnn=config.use_cudnn,
    )
    inputs, _, _ = next(iter(common.make_dataset(config, data, data.split.validation)))
    model(inputs)  # build, so that a backup can be restored into it
    print(f"model: GRUTranslator, {model.count_params():,} parameters")

    # 3. Train (resumes from runs/.../backup if a previous run was killed).
    translator = common.make_translator(model, config, data)
    samples_callback = common.tensorboard_samples(
        config, data, translator,
        common.attention_maps(model, config, data, translator), run_dir,
    )
    training = common.train(model, config, data, run_dir, [samples_callback])
    print(common.describe_training(training))

    # 4. Score on the test split (never used before this point).
    scores, samples = common.score(model, config, data, translator)
    print(
        f"test: BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} on "
        f"{scores['test_sentences']} sentences ({scores['bleu_signature']})"
    )
    common.print_samples(samples, config.num_samples)

    # 5. Artefacts side by side.
    metrics = {
        **scores,
        **{k: v for k, v in training.items() if k != "history"},
        "parameters": int(model.count_params()),
        "data": {
            "corpus": data.load_summary.path,
            "pairs": data.load_summary.pairs,
            "skipped_lines": data.load_summary.skipped,
            "train": len(data.split.train),
            "validation": len(data.split.validation),
            "test": len(data.split.test),
            "source_vocabulary": data.source_tokenizer.vocabulary_size(),
            "target_vocabulary": data.target_tokenizer.vocabulary_size(),
        },
        "environment": common.environment(),
        "history": training["history"],
    }
    saved_model = common.save_artefacts(
        model, config, size, translator, metrics, output_dir, data, samples
    )
    print(f"saved: {output_dir}/ (model.keras, config.json, metrics.json, {saved_model})")
    return metrics


if __name__ == "__main__":
    main()
