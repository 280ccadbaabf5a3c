"""Runs ONE benchmark configuration in its own process (the harness's child).

    python -m benchmarks.worker SPEC.json RESULT.json

The spec names the suite, the configuration and the options (backend,
warm-up, repeats, profile directory). The result holds the measurements,
peak memory (this process's high-water RSS, and the framework's peak device
memory on a GPU), the device, library versions and the machine.

On the JAX backend TensorFlow is made unimportable before anything else is
imported, so the JAX path provably runs without TensorFlow (keras-hub then
behaves as on a machine where TensorFlow is not installed).
"""

import importlib
import json
import os
import sys
import time
import traceback


def probe(backend, names, result_path):
    """Which of `names` kzoo exports now (one process for a whole suite)."""
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        sys.modules["tensorflow"] = None
    found = {}
    try:
        import kzoo

        places = [kzoo, getattr(kzoo, "layers", None), getattr(kzoo, "models", None)]
        for name in names:
            found[name] = any(p is not None and hasattr(p, name) for p in places)
        error = ""
    except Exception as e:  # kzoo itself fails to import: report, run nothing
        error = f"{type(e).__name__}: {e}"
    with open(result_path, "w") as f:
        json.dump({"found": found, "error": error}, f)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[0] == "--probe":
        return probe(argv[1], argv[3:], argv[2])
    spec_path, result_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    config = spec["config"]
    runtime = config.get("runtime", "keras")
    backend = spec["backend"]
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "jax" and runtime == "keras" and not spec.get("allow_tensorflow"):
        # `import tensorflow` now raises ImportError: the JAX path runs as it
        # would on a machine without TensorFlow.
        sys.modules["tensorflow"] = None

    from benchmarks import timing

    started = time.perf_counter()
    result = {"status": "ok", "message": ""}
    try:
        suite = importlib.import_module(f"benchmarks.suites.{config['suite']}")
        from benchmarks import backend as bk

        bk.import_runtime(runtime)
        result["baseline_rss_mb"] = timing.rss_mb()
        ctx = bk.Context(spec, runtime)
        ctx.baseline_rss_mb = result["baseline_rss_mb"]
        result.update(suite.measure(config, ctx))
        result["device"] = bk.device_info(runtime)
        result["peak_device_memory_mb"] = bk.peak_device_memory_mb(runtime)
    except Exception as e:  # recorded, never raised: the harness goes on
        unavailable = type(e).__name__ == "Unavailable"
        result["status"] = "unavailable" if unavailable else "error"
        result["message"] = f"{type(e).__name__}: {e}"[:2000]
        if not unavailable:
            result["traceback"] = traceback.format_exc()[-4000:]
    try:
        from benchmarks import backend as bk

        result["versions"] = bk.versions()
        result.setdefault("device", bk.device_info(runtime, safe=True))
    except Exception as e:  # pragma: no cover - diagnostics only
        result["versions"] = {"error": str(e)}
    result["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    result["peak_rss_mb"] = timing.peak_rss_mb()
    if result.get("baseline_rss_mb") is not None:
        result["peak_rss_delta_mb"] = (
            result["peak_rss_mb"] - result["baseline_rss_mb"]
        )
    result["worker_wall_s"] = time.perf_counter() - started
    with open(result_path, "w") as f:
        json.dump(result, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
