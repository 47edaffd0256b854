"""What a results file or a preset records about where its figures came from."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit(script):
    """HEAD of this checkout, marked when zoo/ or `script` (the file of the bench or
    recipe that writes the figures) has uncommitted changes; "unknown" outside a git
    checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        mine = Path(script).resolve().relative_to(ROOT).as_posix()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "zoo", mine], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (f" (with uncommitted changes to zoo/ or {mine})" if dirty else "")
    except (OSError, ValueError, subprocess.CalledProcessError):
        return "unknown"
