"""Every results file names the run that wrote it (#19: every figure has its file,
with the command line and the git commit): a new results file without them fails
here; the older ones are listed, each with the commit that added it, in
bench/results/legacy_provenance.json (python -m bench.legacy_provenance)."""

import json
from pathlib import Path

from bench import legacy_provenance as lp

ROOT = Path(__file__).resolve().parents[1]


def tracked_results():
    return [ROOT / p for p in lp.results_files()]


def test_every_results_file_carries_its_commit_or_is_a_listed_legacy_file():
    legacy = json.loads((ROOT / lp.RESULTS / lp.INDEX).read_text())["files"]
    unnamed = [p.relative_to(ROOT).as_posix() for p in tracked_results()
               if not lp.carries_provenance(p.read_text(errors="replace"))]
    assert sorted(set(unnamed) - set(legacy)) == []
    # Each listed file names a real commit (40 hex digits) and exists.
    for path, entry in legacy.items():
        assert (ROOT / path).exists(), path
        assert len(entry["added_in"]) == 40 and int(entry["added_in"], 16) >= 0, path


def test_a_file_without_command_or_commit_is_caught():
    # Negative controls for the marker: a bare table has none; a provenance line has one.
    assert not lp.carries_provenance("method  map\nLSH  0.13\n")
    assert lp.carries_provenance('{"command": "python -m bench.x", "git_commit": "abc"}')
