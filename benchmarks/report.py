"""Markdown report and PNG plots of one suite's results document."""

import os

from benchmarks.harness import get_path
from benchmarks.harness import load_suite


def _cell(record, path, fmt):
    value = get_path(record, path)
    if value is None:
        return "-"
    try:
        return fmt(value)
    except (TypeError, ValueError):
        return str(value)


def _memory(record):
    rss = record.get("peak_rss_mb")
    delta = record.get("peak_rss_delta_mb")
    device = record.get("peak_device_memory_mb")
    if device is not None:
        return f"{device:,.0f} MiB (device)"
    if rss is None:
        return "-"
    if delta is None:
        return f"{rss:,.0f} MiB"
    return f"{rss:,.0f} MiB (+{delta:,.0f})"


def markdown(document, plots=()):
    suite = load_suite(document["suite"])
    machine, device = document["machine"], document["device"]
    versions = ", ".join(f"{k} {v}" for k, v in document["versions"].items())
    opts = document["options"]
    lines = [
        f"# {document['title']}",
        "",
        document["description"],
        "",
        f"- command: `{document['command']}`",
        f"- date: {document['created']}",
        f"- backend: {document['backend']}; device: {device.get('platform')} "
        f"({device.get('kind')})",
        f"- machine: {machine['cpu_model']}, {machine['cpu_cores']} cores "
        f"({machine['cpu_cores_usable']} usable), {machine['memory_gb']} GB, "
        f"load average {machine['load_average_1m']} at the end (shared machine: "
        "compare ratios, not absolute times)",
        f"- versions: {versions}",
        f"- method: one fresh process per configuration; first call (tracing and "
        f"compilation) timed apart; {opts['warmup']} warm-up call(s), then the "
        f"median (min, max) of up to {opts['repeats']} calls; limits "
        f"{opts['time_limit']:.0f} s and {opts['memory_limit_gb']:.1f} GiB per "
        "configuration, larger sizes skipped after a failure",
        "- memory: peak RSS of the configuration's process (+ growth over its "
        "RSS after importing the framework); on a GPU, the framework's peak "
        "device memory",
    ]
    peak = document.get("peak_reference")
    if peak:
        if peak.get("gflops"):
            lines.append(
                f"- fraction of peak: model FLOPs per step / median step time / "
                f"{peak['gflops']:.1f} GFLOP/s, the float32 matmul peak "
                f"({peak.get('source', '')})"
            )
        else:
            lines.append(
                f"- fraction of peak: not computed, the peak measurement ended "
                f"with {peak.get('status')}: {peak.get('message', '')[:200]}"
            )
    lines.append("")
    headers = ["configuration", "status"] + [h for h, _, _ in suite.TABLE] + [
        "peak memory"
    ]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "---|" * len(headers))
    notes = []
    for r in document["results"]:
        status = r.get("status", "?")
        if status == "ok":
            cells = [_cell(r, path, fmt) for _, path, fmt in suite.TABLE]
            cells.append(_memory(r))
        else:
            cells = ["-"] * (len(suite.TABLE) + 1)
            if r.get("message"):
                notes.append(f"- `{r['name']}`: {status}: {r['message'][:300]}")
        lines.append("| " + " | ".join([f"`{r['name']}`", status] + cells) + " |")
    lines.append("")
    if notes:
        lines += ["Not measured:", ""] + notes + [""]
    for path in plots:
        name = os.path.basename(path)
        lines.append(f"![{name}]({name})")
        lines.append("")
    return "\n".join(lines)


def write_plots(document, out_dir, tag):
    """One PNG per entry of the suite's PLOTS; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite = load_suite(document["suite"])
    paths = []
    for spec in suite.PLOTS:
        series = {}
        stops = {}
        for r in document["results"]:
            if spec.get("filter") and not r["series"].endswith(spec["filter"]):
                continue
            if r.get("status") == "ok":
                y = get_path(r, spec["y"])
                if y is not None:
                    series.setdefault(r["series"], []).append((r["config"]["x"], y))
            elif r.get("status") != "skipped":
                stops.setdefault(r["series"], (r["config"]["x"], r["status"]))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, points in sorted(series.items()):
            points.sort()
            xs, ys = zip(*points)
            label = name
            if name in stops:
                label += f" (stops at {stops[name][0]}: {stops[name][1]})"
            ax.plot(xs, ys, marker="o", label=label)
        if spec.get("logx"):
            ax.set_xscale("log", base=2)
        if spec.get("logy"):
            ax.set_yscale("log")
        x_label = document["results"][0]["config"]["x_label"]
        ax.set_xlabel(spec.get("xlabel", x_label))
        ax.set_ylabel(spec["ylabel"])
        device = document["device"]
        ax.set_title(
            f"{spec['title']} ({document['backend']}, {device.get('kind')})",
            fontsize=10,
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{spec['file']}-{tag}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
