"""Command line: `python -m benchmarks run|list ...` (see `benchmarks/__init__.py`)."""

import argparse
import os
import re
import shlex
import sys

from benchmarks import harness


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="kzoo benchmarks: speed, memory and scaling, one fresh "
        "process per configuration.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "list", "report"):
        p = sub.add_parser(name)
        p.add_argument(
            "--suite",
            default="all",
            help=f"one of {', '.join(harness.SUITE_NAMES)}, or 'all'",
        )
        p.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
        p.add_argument(
            "--backend",
            default=os.environ.get("KERAS_BACKEND", "tensorflow"),
            choices=("tensorflow", "jax"),
        )
        if name == "report":
            p.add_argument("--out", default=os.path.join("benchmarks", "results"))
        if name in ("list", "report"):
            continue
        p.add_argument("--out", default=os.path.join("benchmarks", "results"))
        p.add_argument(
            "--profile",
            metavar="CONFIG",
            help="write a TensorBoard profiler trace of this one configuration "
            "(a name from `list`) to <out>/<suite>/profile/",
        )
        p.add_argument(
            "--only",
            metavar="NAMES",
            help="comma-separated configurations or series to run (see `list`)",
        )
        p.add_argument("--warmup", type=int, default=None)
        p.add_argument("--repeats", type=int, default=None)
        p.add_argument(
            "--time-limit",
            type=float,
            default=None,
            help="seconds per configuration, process start included "
            "(default 300, --quick 120); larger sizes are skipped after one "
            "exceeds it",
        )
        p.add_argument(
            "--memory-limit-gb",
            type=float,
            default=None,
            help="kill a configuration whose RSS passes this (default: half "
            "the available memory, at most 8)",
        )
        p.add_argument(
            "--max-n",
            type=int,
            default=None,
            help="largest sequence length of the scaling suites",
        )
        p.add_argument(
            "--sizes",
            default=None,
            help="comma-separated sizes (n or sequence length) replacing a "
            "scaling suite's own, e.g. 64,256,1024",
        )
        p.add_argument(
            "--reference-python",
            default=None,
            help="Python of the optional reference environment "
            "(benchmarks/reference-requirements.txt), e.g. /tmp/hfvenv/bin/python",
        )
        p.add_argument(
            "--translator-dir",
            default=None,
            help="the folder that `recipes/translate_gru.py` wrote, with "
            "saved_model/, model.keras, source.spm, target.spm and config.json "
            "(end_to_end suite; default saved_models/gru_translator)",
        )
        p.add_argument(
            "--peak-gflops",
            type=float,
            default=None,
            help="float32 matmul GFLOP/s for the 'fraction of peak' columns "
            "instead of measuring suite peak's float32 n=1024 in the same run",
        )
        p.add_argument(
            "--allow-tensorflow",
            action="store_true",
            help="on JAX, let keras-hub import TensorFlow (it is blocked by default)",
        )
    return parser


def _options(args):
    quick = bool(args.quick)
    options = {
        "quick": quick,
        "backend": args.backend,
        "warmup": 1,
        "repeats": 3 if quick else 5,
        "time_limit": 120.0 if quick else 300.0,
        "memory_limit_gb": harness.default_memory_limit_gb(),
        "max_n": None,
        "reference_python": None,
        "allow_tensorflow": False,
    }
    for key in ("warmup", "repeats", "time_limit", "memory_limit_gb", "max_n"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    options["reference_python"] = getattr(args, "reference_python", None)
    options["allow_tensorflow"] = getattr(args, "allow_tensorflow", False)
    options["translator_dir"] = getattr(args, "translator_dir", None)
    options["peak_gflops"] = getattr(args, "peak_gflops", None)
    only = getattr(args, "only", None)
    options["only"] = only.split(",") if only else None
    sizes = getattr(args, "sizes", None)
    options["sizes"] = [int(s) for s in sizes.split(",")] if sizes else None
    return options


def _suites(name):
    if name == "all":
        return list(harness.SUITE_NAMES)
    harness.load_suite(name)  # validates the name
    return [name]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    options = _options(args)
    options["command"] = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in argv
    )
    suites = _suites(args.suite)
    if args.command == "list":
        for name in suites:
            for c in harness.load_suite(name).configs(options):
                print(c["name"])
        return 0
    if args.command == "report":
        return _report(args, suites)
    if args.profile:
        return _profile(args, options, suites)
    for name in suites:
        print(f"[{name}] backend={options['backend']} quick={options['quick']}")
        document = harness.run_suite(name, options)
        for path in harness.write_results(document, args.out):
            print(f"  wrote {path}")
    return 0


def _profile(args, options, suites):
    for name in suites:
        for config in harness.load_suite(name).configs(options):
            if config["name"] != args.profile:
                continue
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", config["name"])
            config["profile_dir"] = os.path.abspath(
                os.path.join(args.out, name, "profile", safe)
            )
            record = harness.run_config(config, options)
            print(f"{config['name']}: {record['status']} {record.get('message', '')}")
            print(f"trace: {config['profile_dir']}")
            print(f"view:  tensorboard --logdir {config['profile_dir']}  (Profile tab)")
            return 0 if record["status"] == "ok" else 1
    raise ValueError(
        f"`--profile` must name a configuration of suite {args.suite!r} (see "
        f"`python -m benchmarks list --suite {args.suite}`); received {args.profile!r}"
    )


def _report(args, suites):
    """Rewrites the Markdown reports and plots from the JSON results."""
    import glob
    import json

    for name in suites:
        for path in sorted(glob.glob(os.path.join(args.out, name, "results-*.json"))):
            with open(path) as f:
                document = json.load(f)
            for written in harness.write_results(document, args.out):
                print(f"  wrote {written}")
    return 0
