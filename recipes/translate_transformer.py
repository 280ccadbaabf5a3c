"""Train a Transformer translator (English -> German), side by side with the GRU.

The same data, split, SentencePiece tokenizers, training loop (schedule,
early stopping, exact-resume checkpoints, TensorBoard), metrics (BLEU and
chrF with sacrebleu on detokenized test text) and artefacts as
`translate_gru.py` (see `translation/`), with `TransformerSeq2Seq`
("Attention Is All You Need", Vaswani et al., 2017). Writes to
`saved_models/transformer_translator/`: model.keras, saved_model/ (strings
in, strings out, from `kzoo.export`, as the GRU recipe's), source.spm,
target.spm, config.json, metrics.json, test_translations.tsv. `--beam_size K`
decodes with K beams and `--length_penalty`, as for the GRU (the same
`BeamSampler`; metrics.json records the decoding used).

    python recipes/translate_transformer.py            # 2 CPU cores
    python recipes/translate_transformer.py --smoke    # seconds; writes to *_smoke folders
    python recipes/translate_transformer.py --corpus ding   # the Ding sentences
    python recipes/translate_transformer.py --size gpu --mixed_precision mixed_bfloat16
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
class TransformerConfig(TranslationConfig):
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = 0.1
    normalize_first: bool = True
    learning_rate: float = 1e-3
    warmup_steps: int = 400
    output_dir: str = "saved_models/transformer_translator"
    run_dir: str = "runs/transformer_translator"


SIZES = {
    "default": {},
    "smoke": dict(
        max_pairs=300, vocabulary_size=200, max_length=32,
        bucket_boundaries="16,32", num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, batch_size=32, epochs=1, warmup_steps=3,
        steps_per_period=4, patience=5, max_output_length=12,
        eval_max_sentences=16, num_samples=2, samples_every=2, log_every=2,
        profile_batch="", verbose=0,
    ),
    "gpu": dict(
        num_layers=6, num_heads=8, hidden_dim=512, intermediate_dim=2048,
        dropout=0.1, vocabulary_size=8000, batch_size=128, epochs=40,
        learning_rate=7e-4, warmup_steps=2000, steps_per_period=500,
        patience=5, jit_compile=True,
    ),
}


def main(argv=None):
    config, size = common.parse_config(TransformerConfig, argv, SIZES, __doc__.split("\n")[0])
    output_dir, run_dir = setup(config)
    print(f"config ({size}): {json.dumps(dataclasses.asdict(config))}")

    # 1. Data: identical to the GRU recipe's.
    data = translation_data.load_data(config, run_dir)

    # 2. Model: TransformerSeq2Seq (translation/models.py).
    model = models.build_transformer(config, data)
    print(f"model: TransformerSeq2Seq, {model.count_params():,} parameters")

    # 3. Train.
    translator = export.make_translator(model, config, data)
    samples_callback = evaluation.tensorboard_samples(config, data, translator, None, run_dir)
    measured = training.train(model, config, data, run_dir, [samples_callback])
    print(training.describe_training(measured))

    # 4. Score on the test split.
    scores, samples = evaluation.score(model, config, data, translator)
    print(
        f"test: BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} on "
        f"{scores['test_sentences']} sentences ({scores['bleu_signature']})"
    )
    evaluation.print_samples(samples, config.num_samples)

    # 5. Artefacts.
    metrics = {
        **scores,
        **{k: v for k, v in measured.items() if k != "history"},
        "parameters": int(model.count_params()),
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
