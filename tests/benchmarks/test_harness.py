"""The benchmark harness on tiny configurations: well-formed results, never
timings (these machines are shared; no test asserts a speed)."""

import json

import keras
import pytest

from benchmarks import harness
from benchmarks import report
from benchmarks import timing
from benchmarks.cli import main as cli_main

BACKEND = keras.backend.backend()


def _options(**overrides):
    options = {
        "quick": True,
        "backend": BACKEND,
        "warmup": 1,
        "repeats": 3,
        "time_limit": 300.0,
        "memory_limit_gb": 4.0,
        "max_n": None,
        "sizes": None,
        "only": None,
        "reference_python": None,
        "allow_tensorflow": False,
        "command": "test",
    }
    options.update(overrides)
    return options


def _check_timings(t):
    assert set(t) >= {"first_call_s", "median_s", "min_s", "max_s", "times_s"}
    assert t["min_s"] <= t["median_s"] <= t["max_s"]
    assert t["min_s"] == min(t["times_s"]) and t["max_s"] == max(t["times_s"])
    assert len(t["times_s"]) == t["repeats"] >= 1
    assert t["first_call_s"] > 0


def _check_document(document, suite_name, tmp_path):
    for key in ("suite", "title", "command", "backend", "device", "machine", "versions"):
        assert key in document, key
    assert document["suite"] == suite_name
    assert document["backend"] == BACKEND
    machine = document["machine"]
    assert machine["cpu_cores"] >= 1 and machine["cpu_model"]
    assert "keras" in document["versions"]
    paths = harness.write_results(document, str(tmp_path))
    json_path, md_path = paths[0], paths[1]
    with open(json_path) as f:
        reloaded = json.load(f)
    assert reloaded["suite"] == suite_name
    assert len(reloaded["results"]) == len(document["results"])
    with open(md_path) as f:
        md = f.read()
    assert md.startswith(f"# {document['title']}")
    for r in document["results"]:
        # One table row per configuration, with its status.
        assert f"| `{r['name']}` | {r['status']} |" in md
    for png in paths[2:]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return reloaded


def _check_ratios(results, metric_paths):
    by_name = {r["name"]: r for r in results}
    checked = 0
    for r in results:
        for label, ratio in r.get("ratios", {}).items():
            ref = by_name[ratio["reference"]]
            assert ref["config"]["reference"]
            assert ref["config"]["x"] == r["config"]["x"]
            assert ref["config"]["group"] == r["config"]["group"]
            assert ratio["value"] == harness.get_path(r, metric_paths[label])
            assert ratio["reference_value"] == harness.get_path(
                ref, metric_paths[label]
            )
            assert ratio["ratio"] == pytest.approx(
                ratio["value"] / ratio["reference_value"]
            )
            if r is ref:
                assert ratio["ratio"] == pytest.approx(1.0)
            checked += 1
    return checked


def test_time_callable_with_a_stepped_clock(monkeypatch):
    # Call k of the callable takes durations[k] seconds on a fake clock.
    durations = [5.0, 0.5, 3.0, 1.0, 2.0]
    clock = {"now": 0.0, "calls": 0}

    def fn():
        clock["now"] += durations[clock["calls"]]
        clock["calls"] += 1

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["now"])
    t = timing.time_callable(fn, warmup=1, repeats=3)
    assert clock["calls"] == 5  # first + 1 warm-up + 3 timed
    assert t["first_call_s"] == 5.0
    assert t["times_s"] == [3.0, 1.0, 2.0]  # the warm-up (0.5) is not timed
    assert (t["median_s"], t["min_s"], t["max_s"]) == (2.0, 1.0, 3.0)


def test_peak_suite_results_and_ratios(tmp_path):
    options = _options(only=["matmul/float32", "matmul/bfloat16"], sizes=[64])
    document = harness.run_suite("peak", options, log=lambda *_: None)
    results = _check_document(document, "peak", tmp_path)["results"]
    assert [r["name"] for r in results] == [
        "matmul/float32/n=64",
        "matmul/bfloat16/n=64",
    ]
    for r in results:
        assert r["status"] == "ok", r.get("message")
        t = r["timings"]["matmul"]
        _check_timings(t)
        assert r["derived"]["flops"] == 2 * 64**3
        assert r["derived"]["gflops"] == pytest.approx(
            2 * 64**3 / t["median_s"] / 1e9
        )
        assert r["peak_rss_mb"] >= r["baseline_rss_mb"] > 0
        assert r["peak_rss_mb_os"] > 0
        assert r["device"]["platform"] in ("cpu", "gpu", "tpu")
    assert _check_ratios(results, dict(peak_ratio_paths())) == 2


def peak_ratio_paths():
    from benchmarks.suites import peak

    return peak.RATIOS


def test_attention_suite_dense_kzoo_against_keras(tmp_path, monkeypatch):
    from benchmarks.suites import attention

    # A component that has not landed: found absent by the one probe process
    # of the suite, recorded as unavailable, never run.
    monkeypatch.setitem(
        attention.COMPONENTS, "ghost", ("ghost", ("NoSuchLayer",), lambda c: {})
    )
    options = _options(
        only=["kzoo_mha/forward_backward", "keras_mha/forward_backward", "ghost/forward"],
        sizes=[32],
    )
    document = harness.run_suite("attention", options, log=lambda *_: None)
    results = _check_document(document, "attention", tmp_path)["results"]
    ghost = results.pop()
    assert ghost["name"] == "ghost/forward/n=32"
    assert ghost["status"] == "unavailable" and "NoSuchLayer" in ghost["message"]
    assert {r["status"] for r in results} == {"ok"}, [
        r.get("message") for r in results
    ]
    for r in results:
        _check_timings(r["timings"][r["config"]["phase"]])
        assert r["derived"]["median_s"] == r["timings"][r["config"]["phase"]]["median_s"]
    kzoo_fb = next(r for r in results if r["series"] == "kzoo_mha/forward_backward")
    assert kzoo_fb["ratios"]["time_vs_keras"]["reference"] == (
        "keras_mha/forward_backward/n=32"
    )
    assert _check_ratios(results, dict(attention.RATIOS)) == 4


def test_recurrent_suite_throughput_is_batch_over_median(tmp_path):
    options = _options(only=["lstm/jit=on"], sizes=[8])
    document = harness.run_suite("recurrent", options, log=lambda *_: None)
    (r,) = _check_document(document, "recurrent", tmp_path)["results"]
    assert r["status"] == "ok", r.get("message")
    t = r["timings"]["train_step"]
    _check_timings(t)
    batch, seq = r["config"]["batch_size"], r["config"]["seq_len"]
    assert r["derived"]["sequences_per_s"] == pytest.approx(batch / t["median_s"])
    assert r["derived"]["tokens_per_s"] == pytest.approx(batch * seq / t["median_s"])
    # LSTM is the reference: its ratio to itself is exactly 1.
    assert r["ratios"]["throughput_vs_lstm"]["ratio"] == pytest.approx(1.0)


def test_time_limit_kills_and_skips_larger_sizes(tmp_path):
    # 1 second is less than any framework import: the first size times out
    # and the next is skipped, not run.
    options = _options(only=["matmul/float32"], sizes=[64, 128], time_limit=1.0)
    document = harness.run_suite("peak", options, log=lambda *_: None)
    first, second = document["results"]
    assert first["status"] == "timeout" and "time limit" in first["message"]
    assert second["status"] == "skipped" and "n=64 ended with timeout" in second["message"]
    results = _check_document(document, "peak", tmp_path)["results"]
    assert not any("ratios" in r for r in results)


def test_jax_path_imports_no_tensorflow():
    pytest.importorskip("jax")
    options = _options(backend="jax", only=["matmul/float32"], sizes=[32])
    document = harness.run_suite("peak", options, log=lambda *_: None)
    (r,) = document["results"]
    assert r["status"] == "ok", r.get("message")
    assert r["tensorflow_imported"] is False
    assert "tensorflow" not in r["versions"]
    assert r["versions"]["jax"]


def test_cli_list_and_bad_suite(capsys):
    assert cli_main(["list", "--suite", "attention", "--quick"]) == 0
    names = capsys.readouterr().out.split()
    assert "keras_mha/forward/n=128" in names
    assert "hf_longformer/forward_backward/n=256" in names
    assert "hf_longformer_output/forward_backward/n=256" in names
    with pytest.raises(ValueError, match="suite"):
        cli_main(["list", "--suite", "nope"])


def test_reference_config_without_reference_python_is_skipped():
    options = _options(only=["hf_longformer/forward"], sizes=[128])
    document = harness.run_suite("attention", options, log=lambda *_: None)
    (r,) = document["results"]
    assert r["status"] == "skipped" and "--reference-python" in r["message"]


def test_hf_with_output_projection_counts_the_work_of_kzoo_layer():
    from benchmarks.suites import attention

    config = {"x": 4096, "width": 256, "attention_window": 256,
              "phase": "forward_backward"}
    flops = {name: attention.model_flops({**config, "component": name})
             for name in ("longformer", "hf_longformer", "hf_longformer_output")}
    assert flops["hf_longformer_output"] == flops["longformer"]
    # Without it HF skips one T x D x D projection, forward and backward.
    assert flops["longformer"] - flops["hf_longformer"] == 3 * 2 * 4096 * 256**2


def test_markdown_lists_failures_with_their_reason():
    document = {
        "suite": "peak",
        "title": "t",
        "description": "d",
        "command": "c",
        "created": "now",
        "backend": BACKEND,
        "device": {"platform": "cpu", "kind": "cpu"},
        "machine": timing.machine_info(),
        "versions": {"keras": keras.__version__},
        "options": _options(),
        "results": [
            {
                "name": "matmul/float32/n=64",
                "series": "matmul/float32",
                "config": {"x": 64, "x_label": "n"},
                "status": "out_of_memory",
                "message": "killed at 9000 MiB RSS",
            }
        ],
    }
    md = report.markdown(document)
    assert "| `matmul/float32/n=64` | out_of_memory |" in md
    assert "killed at 9000 MiB RSS" in md
