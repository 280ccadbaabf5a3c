"""The measurement protocol, shared by every suite; standard library only.

A configuration's callable is called once (the first call: tracing and
compilation, timed on its own), then `warmup` more times untimed, then
`repeats` times timed. Every call must block until its result is ready (the
callables return a host scalar, which forces the device to finish).
"""

import os
import platform
import statistics
import time


def time_callable(fn, warmup=1, repeats=5, max_seconds=None):
    """Times `fn()`: first call, warm-up, then `repeats` timed calls.

    Args:
        fn: a callable that blocks until its work is done.
        warmup: untimed calls after the first one.
        repeats: timed calls (at least 1).
        max_seconds: stop repeating early once this much time has been spent
            in timed calls (at least one timed call is always made).

    Returns:
        A dict with `first_call_s`, `median_s`, `min_s`, `max_s`, `times_s`
        (the timed calls) and `repeats` (how many were made).
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    for _ in range(warmup):
        fn()
    times = []
    spent = 0.0
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if max_seconds is not None and spent > max_seconds:
            break
    return {
        "first_call_s": first,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
        "repeats": len(times),
    }


def _proc_status_kb(field, pid="self"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb(pid="self"):
    """Current resident set size in MiB (Linux), or None."""
    kb = _proc_status_kb("VmRSS", pid)
    return None if kb is None else kb / 1024.0


def peak_rss_mb(pid="self"):
    """Peak resident set size (high-water mark) in MiB, or None."""
    kb = _proc_status_kb("VmHWM", pid)
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info():
    """The host: CPU model, core count, memory, OS, Python."""
    mem_gb = None
    kb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    kb = int(line.split()[1])
    except OSError:
        pass
    if kb is not None:
        mem_gb = round(kb / 1024.0 / 1024.0, 1)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "memory_gb": mem_gb,
        "load_average_1m": None if load is None else round(load[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }
