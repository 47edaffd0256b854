"""Provenance of the results files written before the benches recorded their own.

Since #19, every file under bench/results/ carries the command line and the git
commit of the run that wrote it. Older files do not; for each of them this script
records the commit that added it to the repository (the run was made at or before
that commit, from the code it describes) and the folder's README, where one says how
the files were made. tests/test_results_provenance.py fails on a results file with
neither, so a new bench cannot skip its provenance.

    python -m bench.legacy_provenance        # rewrites bench/results/legacy_provenance.json
"""

import json
import subprocess
import sys
from pathlib import Path

from bench.provenance import git_commit, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "bench/results"
INDEX = "legacy_provenance.json"
BINARY = (".png", ".jpg", ".npz")


def carries_provenance(text):
    """A results file that names its commit (every bench since #19 writes "git_commit"
    or a "commit" line beside its command)."""
    return "commit" in text.lower()


def results_files():
    out = subprocess.run(["git", "ls-files", RESULTS], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in out.stdout.split() if not p.endswith(BINARY) and not p.endswith(INDEX)]


def added_in(path):
    out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H %cs %s", "--", path], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    commit, date, subject = out[-1].split(" ", 2)  # the oldest addition
    return {"added_in": commit, "date": date, "subject": subject}


def main():
    legacy = {}
    for path in results_files():
        if carries_provenance((ROOT / path).read_text(errors="replace")):
            continue
        entry = added_in(path)
        readme = next((p for p in [Path(path).parent, *Path(path).parents] if (ROOT / p / "README.txt").exists()
                       and p.as_posix().startswith(RESULTS + "/")), None)
        if readme is not None:
            entry["how_made"] = (readme / "README.txt").as_posix()
        legacy[path] = entry
    write_results(ROOT / RESULTS / INDEX, json.dumps({
        "command": "python -m bench.legacy_provenance", "git_commit": git_commit(__file__),
        "what": "results files without their own command and commit: the commit that added each (the run was "
                "made at or before it) and the README that says how, where there is one",
        "files": legacy}, indent=1) + "\n")
    print(f"{len(legacy)} legacy results files -> {RESULTS}/{INDEX}")


if __name__ == "__main__":
    sys.exit(main())
