"""recipes/distill.py: the distillation loss against NumPy, and a smoke run
from a fine-tuned teacher to a student with the side-by-side table."""

import json

import numpy as np
import pytest

from tests.recipes.test_finetune_classifier import load_recipe, make_pretrained

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def distill():
    return load_recipe("distill")


def test_distillation_loss_matches_numpy(distill):
    rng = np.random.RandomState(0)
    student = rng.randn(4, 5).astype("float32") * 2
    teacher = rng.randn(4, 5).astype("float32") * 3
    labels = np.array([0, 3, 4, 1])
    t, alpha = 2.5, 0.7
    y_true = np.concatenate([labels[:, None].astype("float32"), teacher], 1)
    got = np.asarray(distill.DistillationLoss(t, alpha)(y_true, student))

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    p_t = np.exp(log_softmax(teacher / t))
    kl = (p_t * (log_softmax(teacher / t) - log_softmax(student / t))).sum(-1)
    ce = -log_softmax(student)[np.arange(4), labels]
    np.testing.assert_allclose(got, np.mean(alpha * t * t * kl + (1 - alpha) * ce),
                               rtol=1e-5)
    # alpha = 0 is plain cross-entropy; a student equal to the teacher has no KL.
    got = distill.DistillationLoss(t, 0.0)(y_true, student)
    np.testing.assert_allclose(np.asarray(got), ce.mean(), rtol=1e-5)
    got = distill.DistillationLoss(t, 1.0)(y_true, teacher)
    np.testing.assert_allclose(np.asarray(got), 0.0, atol=1e-6)


def test_smoke_run_reports_teacher_and_students(distill, tmp_path):
    import keras

    finetune = load_recipe("finetune_classifier")
    make_pretrained(tmp_path / "bert_big")
    finetune.main(["--smoke", "--pretrained", str(tmp_path / "bert_big"),
                   "--output_dir", str(tmp_path), "--verbose", "0"])
    make_pretrained(tmp_path / "bert_small")
    rows = distill.main(["--smoke", "--teacher", str(tmp_path / "bbc_bert_big"),
                         "--student", str(tmp_path / "bert_small"),
                         "--output_dir", str(tmp_path), "--verbose", "0"])
    out = tmp_path / "distill_bbc_bert_big_to_bert_small"
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) == {"teacher", "student_distilled", "student_labels_only"}
    teacher = keras.saving.load_model(str(tmp_path / "bbc_bert_big" / "classifier.keras"))
    student = keras.saving.load_model(str(out / "student.keras"))
    assert saved["teacher"]["parameters"] == sum(int(np.prod(w.shape)) for w in teacher.weights)
    assert saved["student_distilled"]["parameters"] == sum(
        int(np.prod(w.shape)) for w in student.weights)
    for row in saved.values():
        assert 0 <= row["accuracy"] <= 1 and row["examples_per_second"] > 0
    # The teacher row is the fine-tuned model's own test accuracy.
    ft = json.loads((tmp_path / "bbc_bert_big" / "metrics.json").read_text())
    np.testing.assert_allclose(saved["teacher"]["accuracy"], ft["bert"]["accuracy"])
    assert rows["teacher"]["accuracy"] == saved["teacher"]["accuracy"]


def test_missing_teacher_is_a_clear_error(distill, tmp_path):
    with pytest.raises(FileNotFoundError, match="--teacher must be an output folder"):
        distill.main(["--smoke", "--teacher", str(tmp_path / "nope"),
                      "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
