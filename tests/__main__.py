"""Run the whole test suite once per Keras backend: `python -m tests [pytest args]`.

The backend is fixed when Keras is imported, so each backend gets its own
pytest process. Within a backend, pytest-xdist spreads the test files over one
worker per core, at most 4 (`ZOO_TEST_WORKERS`, a number; "0" runs in one
process): most tests are small compiles and steps that use one core, and each
worker holds a backend in memory (1-2 GB). Exits non-zero if
any backend fails. With `ZOO_TEST_RECORD=FILE` it also writes the run (command,
commit, exit status and seconds per backend, cores, load average) as JSON to
FILE: `bench/suite_runs.py` keeps these records of fresh-clone runs.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time

BACKENDS = os.environ.get("ZOO_TEST_BACKENDS", "tensorflow,jax,torch").split(",")
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
WORKERS = os.environ.get("ZOO_TEST_WORKERS") or str(min(4, CORES))


def xdist_args(argv):
    """`-n WORKERS --dist loadfile` (a file's tests and module fixtures stay on one
    worker), unless the command line chooses its own or asks for one process."""
    if WORKERS == "0" or any(a.startswith(("-n", "--numprocesses")) for a in argv):
        return []
    if importlib.util.find_spec("xdist") is None:
        print("pytest-xdist is not installed (pip install -e '.[test]'): one process per backend")
        return []
    return ["-n", WORKERS, "--dist", "loadfile"]


def cpu():
    try:
        from recipes.provenance import cpu_description
    except ImportError:  # run from outside the checkout
        return "unknown"
    return cpu_description()


def record(path, results, loads):
    """The run as JSON (no path of this machine in it)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    run = {"command": " ".join(["python -m tests", *sys.argv[1:]]), "commit": commit,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu(), "cores": CORES,
           "workers": WORKERS,
           "backends": {b: {"exit": rc, "seconds": round(sec)} for b, (rc, sec) in results.items()},
           "total_seconds": round(sum(sec for _, sec in results.values())),
           "load_average_1min": loads}
    with open(path, "w") as f:
        json.dump(run, f, indent=1)


def main():
    results, loads = {}, {}
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        print(f"\n===== pytest on the {backend} backend =====", flush=True)
        start = time.monotonic()
        rc = subprocess.call(
            [sys.executable, "-m", "pytest", "tests", *xdist_args(sys.argv[1:]), *sys.argv[1:]], env=env
        )
        results[backend] = (rc, time.monotonic() - start)
        if hasattr(os, "getloadavg"):  # how busy the machine was, beside the suite's own workers
            loads[backend] = round(os.getloadavg()[0], 2)
    print("\n===== summary =====")
    for backend, (rc, seconds) in results.items():
        print(f"{backend:>10}: {'passed' if rc == 0 else f'FAILED (exit {rc})'} in {seconds:.0f} s")
    if os.environ.get("ZOO_TEST_RECORD"):
        record(os.environ["ZOO_TEST_RECORD"], results, loads)
    sys.exit(max(rc for rc, _ in results.values()))


if __name__ == "__main__":
    main()
