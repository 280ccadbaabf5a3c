"""The parent side of the benchmarks: schedules configurations, one fresh
subprocess each, enforces the limits and computes ratios.

Imports no deep learning framework, so its own memory and start-up never
mix with a configuration's.
"""

import datetime
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks import timing
from benchmarks.suites.common import fraction_of_peak
from benchmarks.suites.common import make_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE_NAMES = ("peak", "recurrent", "attention", "precision", "end_to_end")

# Statuses that stop a series: larger sizes are skipped after one of them.
STOPPING = ("error", "timeout", "out_of_memory", "unavailable", "over_limit")


def load_suite(name):
    if name not in SUITE_NAMES:
        raise ValueError(
            f"`suite` must be one of {list(SUITE_NAMES)} or 'all'; received {name!r}"
        )
    return importlib.import_module(f"benchmarks.suites.{name}")


def default_memory_limit_gb():
    """Half the memory available now, at most 8 GiB: this machine is shared."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return min(8.0, int(line.split()[1]) / 2**20 / 2)
    except OSError:
        pass
    return 8.0


def get_path(record, path):
    """`get_path(r, "timings.forward.median_s")`, or None if absent."""
    node = record
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def run_config(config, options):
    """Runs one configuration in a fresh subprocess and returns its record."""
    record = {"config": config, "name": config["name"], "series": config["series"]}
    python = sys.executable
    if config.get("python") == "reference":
        python = options.get("reference_python")
        if not python:
            record.update(
                status="skipped",
                message="reference implementation: no --reference-python given "
                "(see benchmarks/reference-requirements.txt)",
            )
            return record
    backend = config.get("backend") or options["backend"]
    spec = {
        "config": config,
        "backend": backend,
        "warmup": options["warmup"],
        "repeats": options["repeats"],
        "max_timed_seconds": options["time_limit"] / 3.0,
        "profile_dir": config.get("profile_dir"),
        "allow_tensorflow": options.get("allow_tensorflow", False),
    }
    time_limit = options["time_limit"]
    memory_limit_mb = options["memory_limit_gb"] * 1024.0
    with tempfile.TemporaryDirectory(prefix="kzoo-bench-") as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        result_path = os.path.join(tmp, "result.json")
        log_path = os.path.join(tmp, "log.txt")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        env = dict(os.environ)
        env["KERAS_BACKEND"] = backend
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        start = time.perf_counter()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [python, "-m", "benchmarks.worker", spec_path, result_path],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            killed = None
            peak_seen_mb = 0.0
            while True:
                pid, wait_status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                elapsed = time.perf_counter() - start
                rss = timing.rss_mb(proc.pid) or 0.0
                peak_seen_mb = max(peak_seen_mb, rss)
                if killed is None and elapsed > time_limit:
                    killed = "timeout"
                elif killed is None and rss > memory_limit_mb:
                    killed = "out_of_memory"
                if killed is not None:
                    os.kill(proc.pid, signal.SIGKILL)
                    pid, wait_status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)
            proc.returncode = os.waitstatus_to_exitcode(wait_status)
        wall = time.perf_counter() - start
        record["wall_s"] = wall
        # The OS's own account of this child's peak RSS (KiB on Linux).
        record["peak_rss_mb_os"] = rusage.ru_maxrss / 1024.0
        with open(log_path, errors="replace") as f:
            log_tail = f.read()[-3000:]
        if killed == "timeout":
            record.update(
                status="timeout",
                message=f"killed after the time limit of {time_limit:.0f} s",
            )
        elif killed == "out_of_memory":
            record.update(
                status="out_of_memory",
                message=f"killed at {peak_seen_mb:.0f} MiB RSS, over the memory "
                f"limit of {memory_limit_mb:.0f} MiB",
            )
        elif os.path.exists(result_path):
            with open(result_path) as f:
                record.update(json.load(f))
        else:
            record.update(
                status="error",
                message=f"worker exited with code {proc.returncode} and no result",
                log_tail=log_tail,
            )
        if record.get("status") == "error" and "log_tail" not in record:
            record["log_tail"] = log_tail
    return record


def add_ratios(records, suite):
    """For each measured record, ratio of each of the suite's metrics to the
    reference configuration of the same group and size, in this same run."""
    refs = {}
    for r in records:
        c = r["config"]
        if c.get("reference") and r.get("status") == "ok":
            refs[(c["group"], c["x"])] = r
    for r in records:
        if r.get("status") != "ok":
            continue
        ref = refs.get((r["config"]["group"], r["config"]["x"]))
        if ref is None:
            continue
        ratios = {}
        for label, path in suite.RATIOS:
            value, ref_value = get_path(r, path), get_path(ref, path)
            if value is None or not ref_value:
                continue
            ratios[label] = {
                "path": path,
                "value": value,
                "reference_value": ref_value,
                "ratio": value / ref_value,
                "reference": ref["name"],
            }
        r["ratios"] = ratios


def probe_kzoo(names, options):
    """Which of the kzoo component `names` exist, in one child process (the
    parent imports no framework); None if the probe itself failed."""
    if not names:
        return {}
    with tempfile.TemporaryDirectory(prefix="kzoo-probe-") as tmp:
        path = os.path.join(tmp, "probe.json")
        env = dict(os.environ, KERAS_BACKEND=options["backend"])
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", "--probe", options["backend"], path]
            + sorted(names),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)["found"]


def measure_peak(options, log=print):
    """The float32 matmul throughput of suite 1 (`peak`), measured now in a
    fresh process: the denominator of every "fraction of peak" of this run.

    `--peak-gflops` replaces the measurement by a given figure (for example
    one read from `benchmarks/results/peak/`)."""
    if options.get("peak_gflops"):
        return {
            "source": "given with --peak-gflops",
            "status": "ok",
            "gflops": float(options["peak_gflops"]),
        }
    n = 128 if options["quick"] else 2048
    config = make_config(
        "peak", "matmul/float32", n, "n", group="matmul", reference=True,
        dtype="float32",
    )
    record = run_config(config, options)
    peak = {
        "source": f"suite peak, {config['name']}, measured in this run",
        "name": config["name"],
        "status": record.get("status"),
        "gflops": get_path(record, "derived.gflops"),
        "median_s": get_path(record, "timings.matmul.median_s"),
    }
    if record.get("status") != "ok":
        peak["message"] = record.get("message", "")
    gflops = peak["gflops"]
    log(f"  {'peak: ' + config['name']:<55} {peak['status']:<10} "
        + (f"{gflops:.1f} GFLOP/s" if gflops else peak.get("message", "")[:60]))
    return peak


def add_fractions_of_peak(records, peak):
    """`derived.fraction_of_peak` = model FLOPs per step / step time / the
    float32 matmul peak, for every record that knows its FLOPs."""
    if not peak or not peak.get("gflops"):
        return
    for r in records:
        if r.get("status") != "ok":
            continue
        fraction = fraction_of_peak(r, peak["gflops"])
        if fraction is not None:
            r["derived"]["fraction_of_peak"] = fraction


def run_suite(name, options, log=print):
    """Runs every configuration of a suite; returns the results document."""
    suite = load_suite(name)
    configs = suite.configs(options)
    only = options.get("only")
    if only:
        configs = [c for c in configs if c["name"] in only or c["series"] in only]
    records = []
    stopped = {}
    peak = None
    if getattr(suite, "USES_PEAK", False) and configs:
        peak = measure_peak(options, log)
    # Components that have not landed in kzoo yet: one probe process for the
    # whole suite instead of one failing process per series.
    wanted = {n for c in configs for n in c.get("kzoo_names", ())}
    found = probe_kzoo(wanted, options) if wanted else {}
    for c in configs:
        if c.get("unavailable"):
            stopped.setdefault(c["series"], "unavailable: " + c["unavailable"])
        names = c.get("kzoo_names")
        if names and found is not None and not any(found.get(n) for n in names):
            stopped.setdefault(
                c["series"],
                f"unavailable: kzoo has no {' / '.join(names)} yet",
            )
    # A suite may run its configurations in another order than it reports
    # them (`run_order`): the recurrent suite runs all models at one size
    # before the next size, so a model and its reference run minutes apart
    # at most, not a quarter of an hour, on a machine whose load drifts.
    position = {c["name"]: i for i, c in enumerate(configs)}
    run_order = getattr(suite, "run_order", None)
    for config in run_order(configs) if run_order else configs:
        series = config["series"]
        if series in stopped:
            reason = stopped[series]
            record = {
                "config": config,
                "name": config["name"],
                "series": series,
                "status": "unavailable" if reason.startswith("unavailable") else "skipped",
                "message": reason,
            }
            records.append(record)
            log(f"  {config['name']:<55} {record['status']} ({reason[:60]})")
            continue
        record = run_config(config, options)
        records.append(record)
        status = record["status"]
        summary = record.get("message", "")[:100]
        if status == "ok":
            summary = suite.summarize(record)
        log(f"  {config['name']:<55} {status:<10} {summary}")
        if status in STOPPING:
            stopped[series] = (
                f"not run: {config['x_label']}={config['x']} ended with {status}"
            )
        elif status == "ok" and record.get("wall_s", 0) > options["time_limit"] / 2:
            stopped[series] = (
                f"not run: {config['x_label']}={config['x']} took "
                f"{record['wall_s']:.0f} s, over half the time limit of "
                f"{options['time_limit']:.0f} s; the next size would exceed it"
            )
    records.sort(key=lambda r: position[r["name"]])
    add_ratios(records, suite)
    add_fractions_of_peak(records, peak)
    ok = [r for r in records if r.get("status") == "ok"]
    first = ok[0] if ok else (records[0] if records else {})
    device = first.get("device") or {"platform": "unknown", "kind": "unknown"}
    return {
        "suite": name,
        "title": suite.TITLE,
        "description": suite.DESCRIPTION,
        "command": options.get("command", ""),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "backend": options["backend"],
        "device": device,
        "machine": timing.machine_info(),
        "versions": first.get("versions") or installed_versions(),
        "options": {
            k: options.get(k)
            for k in (
                "quick",
                "warmup",
                "repeats",
                "time_limit",
                "memory_limit_gb",
                "sizes",
                "max_n",
                "only",
                "peak_gflops",
            )
        },
        "peak_reference": peak,
        "results": records,
    }


def installed_versions():
    """Installed library versions, read from package metadata (no import)."""
    from importlib import metadata

    out = {}
    for name in ("keras", "keras-hub", "tensorflow", "jax", "jaxlib", "numpy"):
        try:
            out[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def output_tag(document):
    platform = document["device"].get("platform", "unknown")
    return f"{document['backend']}-{platform}"


def write_results(document, out_dir):
    """Writes results-<tag>.json, report-<tag>.md and the plots; returns paths."""
    from benchmarks import report

    suite_dir = os.path.join(out_dir, document["suite"])
    os.makedirs(suite_dir, exist_ok=True)
    tag = output_tag(document)
    json_path = os.path.join(suite_dir, f"results-{tag}.json")
    with open(json_path, "w") as f:
        json.dump(document, f, indent=1, default=str)
    plots = report.write_plots(document, suite_dir, tag)
    md_path = os.path.join(suite_dir, f"report-{tag}.md")
    with open(md_path, "w") as f:
        f.write(report.markdown(document, plots))
    return [json_path, md_path] + plots
