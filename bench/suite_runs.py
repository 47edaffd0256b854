"""Fresh-clone runs of the README's test command, kept as records (#19 point 5).

    python -m bench.suite_runs [--load N] [--note TEXT]

Clones this checkout's HEAD into a temporary folder (as CI does: nothing
uncommitted, no build outputs), runs `python -m tests` there and appends the
run's record (command, commit, exit status and seconds per backend, cores,
workers, load average, what ran beside it) to `results/suite_runs.json`.
`--load N` starts N CPU-bound busy loops beside the suite for its whole run, so
that "passes under load" is a measured claim; `--note` says what else ran.
The package must be installed (`pip install -e ".[all]"`): the clone's tests
import the clone's own `zoo` (the working directory comes first on the path).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "suite_runs.json"
BUSY = "while True: pass"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", type=int, default=0, help="CPU-bound busy loops beside the suite")
    p.add_argument("--note", default="", help="what else ran on the machine (recorded)")
    p.add_argument("--out", default=str(RESULTS), help="the records file (a JSON list; appended to)")
    args = p.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
        start = time.monotonic()
        try:
            rc = subprocess.call([sys.executable, "-m", "tests"], cwd=clone,
                                 env=dict(os.environ, ZOO_TEST_RECORD=str(Path(tmp) / "run.json")))
        finally:
            for b in busy:
                b.kill()
        wall = time.monotonic() - start
        run_file = Path(tmp) / "run.json"
        run = json.loads(run_file.read_text()) if run_file.exists() else {"exit": rc}
    run.update({"fresh_clone": True, "busy_loops_beside": args.load, "note": args.note, "wall_seconds": round(wall),
                "recorded_by": "python -m bench.suite_runs " + " ".join(sys.argv[1:] if argv is None else argv)})
    records = json.loads(out.read_text()) if out.exists() else []
    records.append(run)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(records, indent=1) + "\n")
    tmp_out.replace(out)  # atomic: a cut-off run never leaves half a records file
    print(f"{'passed' if rc == 0 else f'FAILED (exit {rc})'} in {wall:.0f} s; recorded in {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
