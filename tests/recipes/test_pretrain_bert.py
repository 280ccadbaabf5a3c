"""recipes/pretrain_bert.py: smoke run artefacts, TensorBoard scalars, resume
after a kill, bad input with nothing overwritten, two workers on 127.0.0.1."""

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(REPO, "recipes", "pretrain_bert.py")


@pytest.fixture(scope="module")
def recipe():
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the recipe uses tf.data and tf.distribute")
    sys.path.insert(0, os.path.join(REPO, "recipes"))
    spec = importlib.util.spec_from_file_location("pretrain_bert", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(**extra):
    return dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
                CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO, **extra)


def _snapshot(*dirs):
    out = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _scalars(log_dir):
    import tensorflow as tf

    values = {}
    for root, _, files in os.walk(log_dir):
        for f in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, f)):
                for v in event.summary.value:
                    values.setdefault(v.tag, []).append(
                        (event.step, float(tf.make_ndarray(v.tensor))))
    return values


def test_warmup_linear_decay_hand_values(recipe):
    import bert_common

    schedule = bert_common.WarmupLinearDecay(1e-3, 10, 110)
    got = [float(schedule(s)) for s in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(got, [0, 5e-4, 1e-3, 5e-4, 0, 0], atol=1e-9)


def test_smoke_run_writes_model_vocab_config_metrics_and_logs(recipe, tmp_path):
    out, run = tmp_path / "out", tmp_path / "run"
    metrics = recipe.main(["--smoke", "--output_dir", str(out), "--run_dir", str(run),
                           "--log_every", "1", "--verbose", "0"])
    export = out / "bert_tiny"
    assert sorted(os.listdir(export)) == [
        "config.json", "encoder.keras", "metrics.json", "vocab.txt"]
    import bert_common

    encoder, vocab, config = bert_common.load_pretrained(str(export))
    assert config["vocabulary_size"] == len(vocab) == encoder.vocabulary_size
    assert config["recipe"]["size"] == "tiny" and encoder.num_layers == 2
    saved = json.loads((export / "metrics.json").read_text())
    assert saved["optimizer_steps"] == 6 and saved["resumed_at_step"] == 0
    # An untrained masked LM predicts about uniformly (loss ln V = 5.7);
    # six steps learn the token frequencies, which puts it below ln V.
    assert 2.0 < saved["validation_loss"] < np.log(len(vocab))
    assert 0.0 <= saved["validation_masked_accuracy"] <= 1.0
    assert saved["tokens_per_second"] > 0
    assert not (run / "backup").exists()  # removed when fit completes
    # TensorBoard: loss, masked-token accuracy, learning rate, tokens/s; the
    # learning rate follows the schedule (warm-up 0 steps: 6 * 0.1 -> 0).
    scalars = _scalars(str(run / "logs"))
    for tag in ("epoch_loss", "epoch_masked_accuracy", "learning_rate",
                "tokens_per_second"):
        assert tag in scalars, sorted(scalars)
    schedule = bert_common.WarmupLinearDecay(1e-3, 0, 6)
    for step, lr in scalars["learning_rate"]:
        np.testing.assert_allclose(lr, float(schedule(step)), rtol=1e-5)
    assert metrics["validation_masked_accuracy"] == saved["validation_masked_accuracy"]


def test_resume_after_kill(recipe, tmp_path):
    out, run = tmp_path / "out", tmp_path / "run"
    args = ["--smoke", "--output_dir", str(out), "--run_dir", str(run), "--verbose", "0"]
    killed = subprocess.run([sys.executable, RECIPE, *args, "--stop_after_steps", "4"],
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert killed.returncode == 3, killed.stderr[-2000:]
    meta = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1  # the checkpoint after 3 steps; step 4 is lost
    assert not out.exists()  # nothing exported by the killed run
    metrics = recipe.main(args)
    assert metrics["resumed_at_step"] == 3
    assert metrics["optimizer_steps"] == 6  # optimizer state was restored
    assert (out / "bert_tiny" / "encoder.keras").exists()


def test_bad_input_is_a_clear_error_and_nothing_is_overwritten(recipe, tmp_path):
    import bert_common

    out, run = tmp_path / "out", tmp_path / "run"
    run.mkdir()
    vocab = list(bert_common.SPECIAL_TOKENS) + ["the", "a", "of"]
    bert_common.save_vocabulary(str(run / "vocab.txt"), vocab)
    previous = recipe.PretrainConfig(**{**recipe.SMOKE, "size": "mini"})
    import dataclasses

    bert_common.write_json(str(run / "run_config.json"), {
        "config": dataclasses.asdict(previous),
        "vocabulary_sha256": bert_common.vocabulary_sha256(vocab)})
    before = _snapshot(run)
    base = ["--smoke", "--output_dir", str(out), "--run_dir", str(run)]
    with pytest.raises(ValueError, match=r"sequence_length 1024 is above .*512"):
        recipe.main(base + ["--sequence_length", "1024"])
    with pytest.raises(ValueError, match=r"size: checkpoint 'mini', received 'tiny'"):
        recipe.main(base)
    other = tmp_path / "other_vocab.txt"
    bert_common.save_vocabulary(str(other), vocab + ["extra"])
    with pytest.raises(ValueError, match="vocabulary does not match the checkpoint"):
        recipe.main(base + ["--size", "mini", "--vocabulary_file", str(other)])
    with pytest.raises(ValueError, match="size"):
        recipe.main(base + ["--size", "huge"])
    assert _snapshot(run) == before and not out.exists()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_on_localhost_write_one_checkpoint(recipe, tmp_path):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    out, run = tmp_path / "out", tmp_path / "run"
    args = ["--smoke", "--distribute", "multi_worker", "--steps", "4",
            "--steps_per_epoch", "2", "--output_dir", str(out), "--run_dir", str(run),
            "--verbose", "0"]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers},
                  "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, RECIPE, *args], env=_env(TF_CONFIG=json.dumps(config)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=420)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    # One export, by the chief; both workers saw the same global loss.
    assert os.listdir(out) == ["bert_tiny"]
    assert sorted(os.listdir(out / "bert_tiny")) == [
        "config.json", "encoder.keras", "metrics.json", "vocab.txt"]
    metrics = json.loads((out / "bert_tiny" / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["optimizer_steps"] == 4
    losses = [[line.split()[:2] for line in log.splitlines()
               if line.startswith("validation_loss=")] for log in logs]
    assert losses[0] and losses[0] == losses[1]
    assert not (run / "backup").exists()


def test_two_worker_checkpoint_resumes_on_one_process(recipe, tmp_path):
    """A multi-worker run killed after its first checkpoint resumes on a
    different number of workers (here one process, no strategy)."""
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    out, run = tmp_path / "out", tmp_path / "run"
    args = ["--smoke", "--steps", "4", "--steps_per_epoch", "2", "--output_dir",
            str(out), "--run_dir", str(run), "--verbose", "0"]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers},
                  "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, RECIPE, *args, "--distribute", "multi_worker",
             "--stop_after_steps", "3"],
            env=_env(TF_CONFIG=json.dumps(config)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=420)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 3, log[-3000:]  # the test-only crash
    meta = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1  # the checkpoint after 2 steps, by the chief
    assert not out.exists()
    metrics = recipe.main(args)  # one process, default strategy
    assert metrics["replicas"] == 1
    assert metrics["resumed_at_step"] == 2
    assert metrics["optimizer_steps"] == 4  # two-worker optimizer state restored
    assert (out / "bert_tiny" / "encoder.keras").exists()
