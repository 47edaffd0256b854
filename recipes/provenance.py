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


# The vector and matrix units that decide a CPU's float32 and bfloat16 speed (#22):
# figures from machines with and without them are not comparable.
CPU_UNITS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_description():
    """The CPU as one line for results files: model, logical CPUs, which of
    CPU_UNITS it exposes (Linux; elsewhere the platform's processor string)."""
    import os
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"
    fields = dict(line.split(":", 1) for line in info.splitlines()[:60] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    units = [u for u in CPU_UNITS if u in flags]
    return (f"{fields.get('model name', platform.machine())}, {os.cpu_count()} logical CPUs, "
            f"units: {' '.join(units) or 'none of ' + ' '.join(CPU_UNITS)}")
