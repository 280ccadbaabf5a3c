"""Knowledge distillation of a fine-tuned BERT classifier into a smaller one.

    python recipes/pretrain_bert.py                  # -> saved_models/bert_tiny
    python recipes/finetune_classifier.py            # -> saved_models/bbc_bert_tiny
    python recipes/pretrain_bert.py --size nano      # -> saved_models/bert_nano
    python recipes/distill.py       # teacher bbc_bert_tiny -> student bert_nano

The defaults fit a 2-core CPU; on more hardware, e.g. a mini teacher:
`--teacher saved_models/bbc_bert_mini --student saved_models/bert_tiny`.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network",
2015: the student matches the teacher's class distribution softened by a
temperature T, plus the true labels:

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
           + (1 - alpha) * CE(label, softmax(student))

(the T^2 keeps the soft-target gradients on the scale of the hard ones). The
teacher's logits are computed once on the training articles, with the
teacher's own vocabulary and length; the student, a pretrained encoder from
`pretrain_bert.py`, reads the articles with its own. For comparison the same
student is also fine-tuned on the labels alone with the same budget. Reports
test accuracy, macro-F1, parameters, size of the `.keras` file and
inference speed side by side and
writes them to `<output_dir>/distill_<teacher>_to_<student>/metrics.json`.
"""

import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bert_common as bert  # noqa: E402
import common  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import kzoo  # noqa: E402
from kzoo.data.classification import BBC_LABELS, load_bbc_news  # noqa: E402


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    teacher: str = "saved_models/bbc_bert_tiny"  # a finetune_classifier output
    student: str = "saved_models/bert_nano"  # a pretrain_bert export
    sequence_length: int = 256  # student's tokens per article
    temperature: float = 2.0  # T: softens both distributions in the KL term
    alpha: float = 0.7  # weight of the soft targets
    compare_plain: bool = True  # also fine-tune the student on labels only
    max_train: int = 0
    max_eval: int = 0
    batch_size: int = 32
    epochs: int = 4
    learning_rate: float = 1e-3
    dropout: float = 0.1
    pooling: str = "mean"  # mean | cls, as in finetune_classifier.py
    speed_batch_size: int = 32  # batch size of the inference-speed measurement
    seed: int = 1
    output_dir: str = "saved_models"
    verbose: int = 2


# A smoke run reads the smoke runs' exports and writes to saved_models_smoke/.
SMOKE = dict(sequence_length=32, max_train=40, max_eval=20, batch_size=8,
             epochs=1, speed_batch_size=8, teacher="saved_models_smoke/bbc_bert_tiny",
             student="saved_models_smoke/bert_nano")


@keras.saving.register_keras_serializable(package="kzoo_recipes")
class DistillationLoss(keras.losses.Loss):
    """`y_true` (B, 1 + C) packs [label, teacher logits]; `y_pred` (B, C) are
    the student's logits. Computed in float32."""

    def __init__(self, temperature, alpha, name="distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        t = self.temperature
        y_true = ops.cast(y_true, "float32")
        student = ops.cast(y_pred, "float32")  # (B, C)
        labels = ops.cast(y_true[:, 0], "int32")  # (B,)
        teacher = y_true[:, 1:]  # (B, C)
        p_teacher = ops.softmax(teacher / t, axis=-1)
        log_p_teacher = ops.log_softmax(teacher / t, axis=-1)
        log_p_student = ops.log_softmax(student / t, axis=-1)
        kl = ops.sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
        hard = keras.losses.sparse_categorical_crossentropy(
            labels, student, from_logits=True)
        return self.alpha * t * t * kl + (1.0 - self.alpha) * hard

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "alpha": self.alpha}


def load_teacher(path):
    """The classifier saved by finetune_classifier.py, with its vocabulary."""
    model_path = os.path.join(path, "classifier.keras")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(
            f"{model_path} not found: --teacher must be an output folder of "
            "recipes/finetune_classifier.py")
    config = common.read_json(os.path.join(path, "config.json"))
    vocabulary = bert.load_vocabulary(os.path.join(path, "vocab.txt"))
    if bert.vocabulary_sha256(vocabulary) != config["vocabulary_sha256"]:
        raise ValueError(
            f"vocabulary {os.path.join(path, 'vocab.txt')} does not match the "
            f"teacher in {path}")
    return keras.saving.load_model(model_path), vocabulary, config


def keras_file_megabytes(model):
    """Size of the model's `.keras` file (weights + config), in MB."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        return os.path.getsize(path) / 1e6


def split(name, limit):
    texts, labels = load_bbc_news(name)
    if limit:  # a fixed random subset, so that every label appears
        keep = np.sort(np.random.RandomState(0).permutation(len(texts))[:limit])
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, np.asarray(labels, "int32")


def train_student(encoder, x, y, val, config, loss):
    keras.utils.set_random_seed(config.seed)
    model = kzoo.BertClassifier(encoder, num_classes=len(BBC_LABELS),
                                dropout=config.dropout, pooling=config.pooling)
    steps = config.epochs * (len(x["token_ids"]) // config.batch_size or 1)
    schedule = bert.WarmupLinearDecay(config.learning_rate, steps // 10, steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0)
    model.compile(optimizer=optimizer, loss=loss, jit_compile=False)
    model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs,
              verbose=config.verbose, shuffle=True)
    return model


def main(argv=None):
    config, _ = common.parse_config(DistillConfig, argv, {"smoke": SMOKE},
                                    __doc__.splitlines()[0])
    common.check_positive(config, "temperature", "sequence_length", "batch_size",
                          "epochs", "learning_rate")
    common.check_choice("pooling", config.pooling, kzoo.models.bert.POOLING)
    if not 0.0 <= config.alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1]; received {config.alpha!r}")
    teacher, teacher_vocab, teacher_config = load_teacher(config.teacher)
    student_encoder, student_vocab, student_pre = bert.load_pretrained(config.student)
    bert.check_sequence_length(
        config.sequence_length, student_pre["encoder"]["max_sequence_length"],
        f"the student encoder in {config.student}")
    out_dir = os.path.join(
        config.output_dir,
        f"distill_{os.path.basename(os.path.normpath(config.teacher))}_to_"
        f"{os.path.basename(os.path.normpath(config.student))}")

    train_texts, train_y = split("train", config.max_train)
    test_texts, test_y = split("test", config.max_eval)
    t_len = teacher_config["recipe"]["sequence_length"]
    t_tok = bert.make_tokenizer(teacher_vocab)
    s_tok = bert.make_tokenizer(student_vocab)
    t_train = bert.encode_classification(t_tok, train_texts, t_len)
    t_test = bert.encode_classification(t_tok, test_texts, t_len)
    s_train = bert.encode_classification(s_tok, train_texts, config.sequence_length)
    s_test = bert.encode_classification(s_tok, test_texts, config.sequence_length)

    teacher_logits = teacher.predict(t_train, batch_size=64, verbose=0)
    packed_y = np.concatenate([train_y[:, None].astype("float32"),
                               teacher_logits.astype("float32")], axis=1)
    initial = student_encoder.get_weights()
    start = time.perf_counter()
    student = train_student(student_encoder, s_train, packed_y, None, config,
                            DistillationLoss(config.temperature, config.alpha))
    distill_seconds = time.perf_counter() - start

    rows = {}

    def report(name, model, x, seconds=None):
        pred = np.argmax(model.predict(x, batch_size=64, verbose=0), -1)
        rows[name] = dict(
            bert.classification_metrics(test_y, pred, len(BBC_LABELS)),
            parameters=bert.count_parameters(model),
            disk_megabytes=keras_file_megabytes(model),
            examples_per_second=bert.inference_speed(
                model, x, config.speed_batch_size),
            sequence_length=int(x["token_ids"].shape[1]),
            train_seconds=seconds)

    report("teacher", teacher, t_test)
    report("student_distilled", student, s_test, distill_seconds)
    if config.compare_plain:
        plain_encoder = kzoo.BertEncoder.from_config(student_encoder.get_config())
        plain_encoder.set_weights(initial)
        start = time.perf_counter()
        plain = train_student(
            plain_encoder, s_train, train_y, None, config,
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        report("student_labels_only", plain, s_test, time.perf_counter() - start)

    print(f"{'model':<22}{'accuracy':>9}{'macro-F1':>9}{'params':>11}"
          f"{'MB':>7}{'ex/s':>9}{'len':>5}")
    for name, r in rows.items():
        print(f"{name:<22}{r['accuracy']:>9.4f}{r['macro_f1']:>9.4f}"
              f"{r['parameters']:>11,}{r['disk_megabytes']:>7.2f}"
              f"{r['examples_per_second']:>9.1f}{r['sequence_length']:>5}")
    os.makedirs(out_dir, exist_ok=True)
    student.save(os.path.join(out_dir, "student.keras"))
    bert.save_vocabulary(os.path.join(out_dir, "vocab.txt"), student_vocab)
    common.write_json(os.path.join(out_dir, "config.json"), {
        "recipe": dataclasses.asdict(config),
        "vocabulary_sha256": bert.vocabulary_sha256(student_vocab)})
    common.write_json(os.path.join(out_dir, "metrics.json"), rows)
    print(f"saved to {out_dir}")
    return rows


if __name__ == "__main__":
    main()
