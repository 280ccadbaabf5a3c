"""Suites 2, 4 and 5 and the "fraction of peak" column on tiny
configurations: well-formed results and FLOP counts checked against
hand-computed values, never timings (these machines are shared)."""

import keras
import pytest

from benchmarks import harness
from benchmarks import report
from benchmarks.suites import end_to_end
from benchmarks.suites import models
from benchmarks.suites.common import transformer_layer_flops
from tests.benchmarks.test_harness import _check_document
from tests.benchmarks.test_harness import _check_ratios
from tests.benchmarks.test_harness import _check_timings
from tests.benchmarks.test_harness import _options

BACKEND = keras.backend.backend()
GIVEN_PEAK = 100.0  # GFLOP/s, given instead of measured: one process less


def test_transformer_layer_flops_by_hand():
    # T=4, D=8, F=16: 8*4*64 + 4*16*8 + 4*4*8*16 = 2048 + 512 + 2048.
    assert transformer_layer_flops(4, 8, 16) == 4608


def test_training_flops_by_hand():
    config = {"seq_len": 4, "width": 8, "batch_size": 2}
    # LSTM: 4 gates of an (8 + 8) x 8 matmul per token, 2 FLOPs per MAC.
    lstm = 4 * (2 * 4 * 16 * 8) + 2 * 8 * 2
    assert models.training_flops({**config, "model": "lstm"}) == 3 * 2 * lstm
    gru = 4 * (2 * 3 * 16 * 8) + 2 * 8 * 2
    assert models.training_flops({**config, "model": "gru"}) == 3 * 2 * gru
    # Hybrid: two directions of 4 units on 8 inputs, then one block (F = 32).
    hybrid = 2 * 4 * (2 * 4 * 12 * 4) + transformer_layer_flops(4, 8, 32) + 32
    assert models.training_flops({**config, "model": "kzoo_hybrid"}) == 3 * 2 * hybrid
    with pytest.raises(ValueError, match="model"):
        models.training_flops({**config, "model": "nope"})


def test_bert_training_flops_by_hand():
    config = {
        "seq_len": 4, "mask_positions": 2, "hidden_dim": 8, "intermediate_dim": 16,
        "vocabulary_size": 10, "num_layers": 2, "batch_size": 3,
    }
    forward = 2 * 4608 + 2 * 2 * 8 * 8 + 2 * 2 * 8 * 10
    assert end_to_end.bert_training_flops(config) == 3 * 3 * forward


def _check_fraction(r, peak_gflops):
    d = r["derived"]
    median = r["timings"][next(iter(r["timings"]))]["median_s"]
    assert d["model_gflops_per_s"] == pytest.approx(d["flops_per_step"] / median / 1e9)
    assert d["fraction_of_peak"] == pytest.approx(d["model_gflops_per_s"] / peak_gflops)


def test_recurrent_suite_kzoo_models_and_fraction_of_peak(tmp_path):
    options = _options(
        only=["kzoo_hybrid/jit=on", "kzoo_recurrent_lstm/jit=off", "lstm/jit=off"],
        sizes=[8],
        peak_gflops=GIVEN_PEAK,
    )
    document = harness.run_suite("recurrent", options, log=lambda *_: None)
    assert document["peak_reference"] == {
        "source": "given with --peak-gflops", "status": "ok", "gflops": GIVEN_PEAK,
    }
    reloaded = _check_document(document, "recurrent", tmp_path)
    # Run size by size (jit on first), reported in the suite's model order.
    assert [r["series"] for r in reloaded["results"]] == [
        "lstm/jit=off", "kzoo_recurrent_lstm/jit=off", "kzoo_hybrid/jit=on",
    ]
    results = {r["series"]: r for r in reloaded["results"]}
    for r in results.values():
        assert r["status"] == "ok", r.get("message")
        _check_timings(r["timings"]["train_step"])
        assert r["derived"]["flops_per_step"] == models.training_flops(r["config"])
        _check_fraction(r, GIVEN_PEAK)
    # The unidirectional kzoo LSTM encoder has the weights of keras' LSTM:
    # embedding 50 x 16, LSTM 4 * (16 + 16 + 1) * 16, Dense 16 x 2 + 2.
    lstm_params = 50 * 16 + 4 * (16 + 16 + 1) * 16 + 16 * 2 + 2
    assert results["lstm/jit=off"]["derived"]["parameters"] == lstm_params
    assert results["kzoo_recurrent_lstm/jit=off"]["derived"]["parameters"] == lstm_params
    ratio = results["kzoo_recurrent_lstm/jit=off"]["ratios"]["throughput_vs_lstm"]
    assert ratio["reference"] == "lstm/jit=off/seq_len=8"
    # The jit=on hybrid has no jit=on LSTM to compare with in this run.
    assert "ratios" not in results["kzoo_hybrid/jit=on"]
    md = report.markdown(document)
    assert f"{GIVEN_PEAK:.1f} GFLOP/s, the float32 matmul peak (given with --peak-gflops)" in md


def test_precision_suite_ratio_against_float32_without_xla(tmp_path):
    options = _options(
        only=["lstm/float32/jit=off", "lstm/mixed_bfloat16/jit=on"], sizes=[8],
        peak_gflops=GIVEN_PEAK,
    )
    document = harness.run_suite("precision", options, log=lambda *_: None)
    results = _check_document(document, "precision", tmp_path)["results"]
    assert [r["status"] for r in results] == ["ok", "ok"], [r.get("message") for r in results]
    for r in results:
        _check_fraction(r, GIVEN_PEAK)
    from benchmarks.suites import precision

    assert _check_ratios(results, dict(precision.RATIOS)) == 2
    mixed = results[1]
    assert mixed["config"]["dtype_policy"] == "mixed_bfloat16"
    assert mixed["ratios"]["speedup_vs_float32_no_jit"]["reference"] == (
        "lstm/float32/jit=off/seq_len=8"
    )


def test_end_to_end_bert_kzoo_against_keras_hub(tmp_path):
    options = _options(
        only=["bert/keras_hub/jit=on", "bert/kzoo/jit=on", "bert/paired/jit=on"],
        sizes=[8],
        peak_gflops=GIVEN_PEAK,
    )
    document = harness.run_suite("end_to_end", options, log=lambda *_: None)
    results = _check_document(document, "end_to_end", tmp_path)["results"]
    by_impl = {r["config"]["impl"]: r for r in results}
    assert {r["status"] for r in results} == {"ok"}, [r.get("message") for r in results]
    hub, kzoo_, paired = by_impl["keras_hub"], by_impl["kzoo"], by_impl["paired"]
    tokens = hub["config"]["batch_size"] * 8
    for r in (hub, kzoo_):
        _check_timings(r["timings"]["step"])
        assert r["derived"]["items_per_s"] == pytest.approx(
            tokens / r["timings"]["step"]["median_s"]
        )
        _check_fraction(r, GIVEN_PEAK)
    # Same size and settings: the two masked-LM models have the same weights
    # count (kzoo's head is keras-hub's MaskedLMHead: Dense, LayerNorm, bias,
    # output tied to the embedding).
    assert kzoo_["derived"]["parameters"] == hub["derived"]["parameters"]
    assert _check_ratios(results, dict(end_to_end.RATIOS)) == 3
    d = paired["derived"]
    _check_timings(paired["timings"]["step"])
    _check_timings(paired["timings"]["keras_hub_step"])
    assert d["kzoo_vs_keras_hub"] == pytest.approx(
        paired["timings"]["keras_hub_step"]["median_s"] / paired["timings"]["step"]["median_s"]
    )
    assert d["keras_hub_items_per_s"] == pytest.approx(
        tokens / paired["timings"]["keras_hub_step"]["median_s"]
    )


def test_end_to_end_translator_without_a_trained_model(tmp_path):
    empty = tmp_path / "no_translator"
    empty.mkdir()
    options = _options(
        only=["translator/greedy"], translator_dir=str(empty), peak_gflops=GIVEN_PEAK
    )
    document = harness.run_suite("end_to_end", options, log=lambda *_: None)
    (r,) = document["results"]
    assert r["status"] == "unavailable"
    if BACKEND == "tensorflow":
        assert "recipes/translate_gru.py" in r["message"] and "model.keras" in r["message"]
    else:
        assert "--backend tensorflow" in r["message"]


def test_recurrent_run_order_is_size_by_size_reference_first():
    from benchmarks.suites import recurrent

    options = {"quick": True, "sizes": [8, 16], "max_n": None}
    configs = recurrent.configs(options)
    ordered = recurrent.run_order(configs)
    assert sorted(c["name"] for c in ordered) == sorted(c["name"] for c in configs)
    assert [c["name"] for c in ordered[:3]] == [
        "lstm/jit=on/seq_len=8", "simple_rnn/jit=on/seq_len=8", "gru/jit=on/seq_len=8",
    ]
    half = len(ordered) // 2
    assert {c["x"] for c in ordered[:half]} == {8} and {c["x"] for c in ordered[half:]} == {16}
    # Within each series sizes still grow, so a failure skips the larger ones.
    for series in {c["series"] for c in configs}:
        xs = [c["x"] for c in ordered if c["series"] == series]
        assert xs == sorted(xs)
