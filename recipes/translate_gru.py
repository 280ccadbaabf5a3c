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

import common  # noqa: E402
from translation import data as translation_data  # noqa: E402
from translation import evaluation, export, models, training  # noqa: E402
from translation.config import TranslationConfig, setup  # noqa: E402



@dataclasses.dataclass(frozen=True)
class GRUConfig(TranslationConfig):
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
    config, size = common.parse_config(GRUConfig, argv, SIZES, __doc__.split("\n")[0])
    output_dir, run_dir = setup(config)
    print(f"config ({size}): {json.dumps(dataclasses.asdict(config))}")

    # 1. Data: load, split by hash, SentencePiece on the training split.
    data = translation_data.load_data(config, run_dir)

    # 2. Model: GRUTranslator (translation/models.py), built on one batch
    #    so that a backup can be restored into it.
    model = models.build_gru(config, data)
    print(f"model: GRUTranslator, {model.count_params():,} parameters")

    # 3. Train (resumes from runs/.../backup if a previous run was killed).
    translator = export.make_translator(model, config, data)
    samples_callback = evaluation.tensorboard_samples(
        config, data, translator,
        evaluation.attention_maps(model, config, data, translator), run_dir,
    )
    measured = training.train(model, config, data, run_dir, [samples_callback])
    print(training.describe_training(measured))

    # 4. Score on the test split (never used before this point).
    scores, samples = evaluation.score(model, config, data, translator)
    print(
        f"test: BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} on "
        f"{scores['test_sentences']} sentences ({scores['bleu_signature']})"
    )
    evaluation.print_samples(samples, config.num_samples)

    # 5. Artefacts side by side.
    metrics = {
        **scores,
        **{k: v for k, v in measured.items() if k != "history"},
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
        "history": measured["history"],
    }
    saved_model = export.save_artefacts(
        model, config, size, translator, metrics, output_dir, data, samples
    )
    print(f"saved: {output_dir}/ (model.keras, config.json, metrics.json, {saved_model})")
    return metrics


if __name__ == "__main__":
    main()
