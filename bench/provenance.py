"""The benches' provenance: `git_commit` lives with the recipes (recipes/provenance.py),
which record it in presets' metadata too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for recipes/

from recipes.provenance import cpu_description, git_commit  # noqa: E402,F401


def write_results(path, text):
    """Write a results file atomically (a temporary twin, then a rename): a run cut
    off while writing never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
