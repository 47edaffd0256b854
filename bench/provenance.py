"""The benches' provenance: `git_commit` lives with the recipes (recipes/provenance.py),
which record it in presets' metadata too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for recipes/

from recipes.provenance import cpu_description, git_commit  # noqa: E402,F401
