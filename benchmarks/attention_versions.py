"""Did a change make an attention layer slower? Two revisions, interleaved.

    python benchmarks/attention_versions.py --old a358c53 --new HEAD \
        --layers longformer bigbird sparse_transformer lsh performer linformer \
        --length 8192 --rounds 3

For each round, for each layer, the attention suite's forward+backward
configuration (`python -m benchmarks run --suite attention`, XLA, batch 1,
width 256, 4 heads) runs once in a checkout of `--old` and once in a
checkout of `--new`, each in its own fresh process, one after the other, so
both revisions see the same machine load; `keras.layers.MultiHeadAttention`
runs too, every round, as the suite's reference. The report gives each
layer's median over rounds for both revisions, the ratio new / old, and each
revision's speed-up over keras MHA measured in the same rounds, and the
median over rounds of the paired ratio new / old (each round's two runs
are seconds apart, so this ratio is the one that load drift moves least).
`--report FILE` prints that table again from a saved JSON. The
checkouts are temporary `git worktree`s under /tmp (removed at the end).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkout(rev, where):
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", where, rev],
                   check=True, capture_output=True)
    return where


def _run(checkout, layer, length, repeats, out):
    """Median seconds of one configuration, run in `checkout`'s code."""
    env = dict(os.environ, PYTHONPATH=checkout)
    name = f"{layer}/forward_backward/n={length}"
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--suite", "attention",
         "--only", name, "--sizes", str(length), "--repeats", str(repeats),
         "--peak-gflops", "100", "--time-limit", "400", "--memory-limit-gb", "8",
         "--out", out],
        cwd=checkout, env=env, check=True, capture_output=True,
    )
    with open(os.path.join(out, "attention", "results-tensorflow-cpu.json")) as f:
        (result,) = [r for r in json.load(f)["results"] if r["name"] == name]
    if result["status"] != "ok":
        raise RuntimeError(f"{name} at {checkout}: {result['status']} {result.get('message')}")
    return result["derived"]["median_s"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--layers", nargs="+", required=True)
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/attention-versions.json")
    parser.add_argument("--report", help="print the table of a saved JSON and exit")
    argv = sys.argv[1:] if argv is None else argv
    if "--report" in argv:
        with open(argv[argv.index("--report") + 1]) as f:
            _print_table(json.load(f))
        return
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="kzoo-versions-")
    checkouts = {}
    try:
        for label, rev in (("old", args.old), ("new", args.new)):
            checkouts[label] = _checkout(rev, os.path.join(tmp, label))
        times = {(label, layer): [] for label in checkouts for layer in ["keras_mha"] + args.layers}
        for round_ in range(args.rounds):
            for layer in ["keras_mha"] + args.layers:
                for label, checkout in checkouts.items():
                    out = os.path.join(tmp, f"out-{label}-{layer}-{round_}")
                    t = _run(checkout, layer, args.length, args.repeats, out)
                    times[(label, layer)].append(t)
                    print(f"round {round_ + 1} {label:<4} {layer:<20} {1000 * t:8.1f} ms", flush=True)
        rows = []
        for layer in args.layers:
            old = statistics.median(times[("old", layer)])
            new = statistics.median(times[("new", layer)])
            mha_old = statistics.median(times[("old", "keras_mha")])
            mha_new = statistics.median(times[("new", "keras_mha")])
            rows.append({"layer": layer, "old_s": old, "new_s": new, "new_over_old": new / old,
                         "old_speedup_vs_keras": mha_old / old,
                         "new_speedup_vs_keras": mha_new / new,
                         "old_times_s": times[("old", layer)], "new_times_s": times[("new", layer)]})
        result = {"old": args.old, "new": args.new, "length": args.length,
                  "rounds": args.rounds, "repeats": args.repeats,
                  "keras_mha_s": {k: times[(k, "keras_mha")] for k in checkouts},
                  "rows": rows}
        _print_table(result)
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    finally:
        for checkout in checkouts.values():
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", checkout],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _paired_ratio(row):
    """Median over rounds of new / old, each round's two runs side by side."""
    return statistics.median(n / o for n, o in zip(row["new_times_s"], row["old_times_s"]))


def _print_table(result):
    print(f"{result['old']} -> {result['new']}, n={result['length']}, "
          f"{result['rounds']} rounds")
    print(f"{'layer':<20} {'old ms':>9} {'new ms':>9} {'new/old':>8} {'paired':>7} "
          f"{'old vs MHA':>11} {'new vs MHA':>11}")
    for row in result["rows"]:
        print(f"{row['layer']:<20} {1000 * row['old_s']:9.1f} {1000 * row['new_s']:9.1f} "
              f"{row['new_over_old']:8.3f} {_paired_ratio(row):7.3f} "
              f"{row['old_speedup_vs_keras']:10.1f}x {row['new_speedup_vs_keras']:10.1f}x")


if __name__ == "__main__":
    main()
