"""`--distribute` plumbing: strategies from a flag, TF_CONFIG, chief-only
checkpoints, and one mirrored step == one single-device step."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs in a fresh process: logical devices must be set before TensorFlow
# initialises its devices, which other tests in this process may have done.
MIRRORED_STEP = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kzoo.training.distribute import get_strategy

    def make():
        keras.utils.set_random_seed(3)
        model = keras.Sequential([
            keras.Input((5,)),
            keras.layers.Dense(7, activation="tanh"),
            keras.layers.Dense(3),
        ])
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-2, weight_decay=0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    rng = np.random.RandomState(0)
    x = rng.randn(8, 5).astype("float32")
    y = (np.arange(8) % 3).astype("int32")
    out = {"x": x, "y": y}
    for name in ("none", "mirrored"):
        strategy = get_strategy(name)
        out[name + "_replicas"] = strategy.num_replicas_in_sync
        with strategy.scope():
            model = make()
        for i, w in enumerate(model.get_weights()):
            out[f"{name}_init_{i}"] = w
        history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        out[name + "_loss"] = history.history["loss"][0]
        for i, w in enumerate(model.get_weights()):
            out[f"{name}_w_{i}"] = w
    np.savez(sys.argv[1], **out)
    """
)


def _reference_loss(x, y, w):
    """Mean softmax cross-entropy of the Dense-tanh-Dense net, in NumPy."""
    h = np.tanh(x @ w[0] + w[1])
    logits = h @ w[2] + w[3]
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def test_one_mirrored_step_equals_one_single_device_step(tmp_path):
    pytest.importorskip("tensorflow")
    script = tmp_path / "step.py"
    script.write_text(MIRRORED_STEP)
    out = tmp_path / "out.npz"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=REPO,
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(script), str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = np.load(out)
    assert int(r["none_replicas"]) == 1 and int(r["mirrored_replicas"]) == 2
    init = [r[f"none_init_{i}"] for i in range(4)]
    for i in range(4):  # same starting point
        np.testing.assert_array_equal(init[i], r[f"mirrored_init_{i}"])
    # Both losses equal the NumPy loss of the initial weights on the global
    # batch (the mirrored loss is the mean of two half-batch means).
    ref = _reference_loss(r["x"], r["y"], init)
    np.testing.assert_allclose(float(r["none_loss"]), ref, rtol=1e-5)
    np.testing.assert_allclose(float(r["mirrored_loss"]), ref, rtol=1e-5)
    for i in range(4):
        single, mirrored = r[f"none_w_{i}"], r[f"mirrored_w_{i}"]
        assert np.abs(single - init[i]).max() > 1e-3  # the step moved weights
        np.testing.assert_allclose(mirrored, single, atol=1e-6, rtol=1e-5)


def test_get_strategy_errors(monkeypatch):
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend")
    from kzoo.training.distribute import get_strategy

    with pytest.raises(ValueError, match="distribute"):
        get_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        get_strategy("multi_worker")
    assert get_strategy("none").num_replicas_in_sync == 1


def test_chief_from_tf_config(monkeypatch):
    from kzoo.training import distribute

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    for index, chief in ((0, True), (1, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        assert distribute.is_chief() is chief
        assert distribute.task_type_and_index() == ("worker", index)
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": dict(cluster, chief=["127.0.0.1:3"]),
         "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief()  # an explicit chief task exists
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.tf_config()


def test_only_the_chief_writes_the_backup(tmp_path, monkeypatch):
    import keras

    from kzoo.training.distribute import ChiefBackupAndRestore

    x = np.ones((4, 2), "float32")
    y = np.zeros((4, 1), "float32")
    for index, writes in ((1, False), (0, True)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({
            "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
            "task": {"type": "worker", "index": index}}))
        backup = tmp_path / f"backup{index}"
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callback = ChiefBackupAndRestore(str(backup), delete_checkpoint=False)
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
        assert (backup / "latest.weights.h5").exists() is writes
        if writes:
            meta = json.loads((backup / "training_metadata.json").read_text())
            assert meta["epoch"] == 2


# The same comparison on the BERT masked-LM model itself: embeddings, post-LN
# blocks with a padding mask, the tied output projection and per-position
# sample weights. Dropout is 0 (each replica would draw its own masks).
MIRRORED_BERT_STEP = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import kzoo
    from kzoo.training.distribute import build_before_fit, get_strategy

    V, B, S, P = 50, 8, 10, 3
    rng = np.random.RandomState(0)
    ids = rng.randint(5, V, (B, S)).astype("int32")
    ids[:, 0] = 2
    mask = np.ones((B, S), "int32")
    mask[1, 6:] = 0  # padding, in one half of the batch only
    mask[6, 4:] = 0
    ids[mask == 0] = 0
    x = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
         "padding_mask": mask,
         "mask_positions": np.tile(np.array([[1, 2, 3]], "int32"), (B, 1))}
    y = rng.randint(5, V, (B, P)).astype("int32")
    w = np.ones((B, P), "float32")
    w[0, 2] = 0.0  # a padded selection
    out = {}
    for name in ("none", "mirrored"):
        strategy = get_strategy(name)
        out[name + "_replicas"] = strategy.num_replicas_in_sync
        with strategy.scope():
            keras.utils.set_random_seed(3)
            encoder = kzoo.BertEncoder(
                vocabulary_size=V, num_layers=2, num_heads=2, hidden_dim=8,
                intermediate_dim=16, dropout=0.0, max_sequence_length=S)
            model = kzoo.BertMaskedLM(encoder)
            model.compile(
                optimizer=keras.optimizers.AdamW(1e-2, weight_decay=0.01),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            build_before_fit(model, (x, y, w))
        for i, v in enumerate(model.get_weights()):
            out[f"{name}_init_{i}"] = v
        out[name + "_before"] = model.predict_on_batch(x)
        history = model.fit(
            tf.data.Dataset.from_tensors((x, y, w)), epochs=1, verbose=0)
        out[name + "_loss"] = history.history["loss"][0]
        out["num_weights"] = len(model.get_weights())
        out["names"] = np.array([v.path for v in model.weights])
        for i, v in enumerate(model.get_weights()):
            out[f"{name}_w_{i}"] = v
    np.savez(sys.argv[1], y=y, w=w, **out)
    """
)


def test_one_mirrored_bert_masked_lm_step_equals_one_single_device_step(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend; the BERT "
                    "model itself is covered on JAX by tests/models/test_bert.py")
    script = tmp_path / "bert_step.py"
    script.write_text(MIRRORED_BERT_STEP)
    out = tmp_path / "out.npz"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=REPO,
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(script), str(out)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = np.load(out)
    assert int(r["none_replicas"]) == 1 and int(r["mirrored_replicas"]) == 2
    n = int(r["num_weights"])
    for i in range(n):  # same starting point
        np.testing.assert_array_equal(r[f"none_init_{i}"], r[f"mirrored_init_{i}"])
    # Both losses equal the weighted cross-entropy of the initial logits on
    # the global batch, divided by the number of selections (B * P).
    logits = r["none_before"].astype("float64")
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, r["y"][..., None], -1)[..., 0]
    ref = (nll * r["w"]).sum() / r["w"].size
    np.testing.assert_allclose(float(r["none_loss"]), ref, rtol=1e-5)
    np.testing.assert_allclose(float(r["mirrored_loss"]), ref, rtol=1e-5)
    for i, name in enumerate(r["names"]):
        single, mirrored = r[f"none_w_{i}"], r[f"mirrored_w_{i}"]
        np.testing.assert_allclose(mirrored, single, atol=2e-6, rtol=1e-5,
                                   err_msg=str(name))
        moved = np.abs(single - r[f"none_init_{i}"]).max()
        if "pooled_dense" in name:  # no gradient from the masked-LM loss
            assert moved == 0.0, name
        elif not name.endswith("key/bias"):  # softmax ignores a key bias
            assert moved > 1e-5, (name, moved)
