"""Where a number came from: what every result file records (benchmarks, Table 1 pages, sweeps).

A figure is only as good as what can be traced: the command that wrote it, the commit it ran at
(and whether the tree had uncommitted changes), the date, and the machine. CPUs differ in speed and
in bf16 rounding (AVX512-BF16 / AMX instructions), so the CPU model and those flags are part of it.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def machine() -> dict:
    """The CPU a figure was measured on: model name, cores, and whether it has bf16 / AMX instructions
    (they change both speed and bf16 rounding), plus the GPU when there is one."""
    import torch

    flags, model = set(), platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "cpu_count": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "torch_threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def provenance(command: str) -> dict:
    """What every result file records: the command that wrote it, the commit it ran at (with whether
    the tree had uncommitted changes), the date, and the machine."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    return {"command": command, "commit": git("rev-parse", "--short", "HEAD") or None, "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine()}
