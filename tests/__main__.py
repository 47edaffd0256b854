"""Run the whole test suite once per Keras backend: `python -m tests [pytest args]`.

The backend is fixed when Keras is imported, so each backend gets its own
pytest process. Within a backend, pytest-xdist spreads the test files over one
worker per core, at most 4 (`ZOO_TEST_WORKERS`, a number; "0" runs in one
process): most tests are small compiles and steps that use one core, and each
worker holds a backend in memory (1-2 GB). Exits non-zero if
any backend fails.
"""

import importlib.util
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


def main():
    results = {}
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        print(f"\n===== pytest on the {backend} backend =====", flush=True)
        start = time.monotonic()
        rc = subprocess.call(
            [sys.executable, "-m", "pytest", "tests", *xdist_args(sys.argv[1:]), *sys.argv[1:]], env=env
        )
        results[backend] = (rc, time.monotonic() - start)
    print("\n===== summary =====")
    for backend, (rc, seconds) in results.items():
        print(f"{backend:>10}: {'passed' if rc == 0 else f'FAILED (exit {rc})'} in {seconds:.0f} s")
    sys.exit(max(rc for rc, _ in results.values()))


if __name__ == "__main__":
    main()
