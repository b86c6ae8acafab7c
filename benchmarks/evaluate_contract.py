"""The evaluation command of the path-finding testbed with no flag but its data, as a user types it:

    python -m asymrl.evaluate --checkpoint toy:paths --data paths --split validation --n 64 --limit 200 --out DIR

The task table (``asymrl.tasks``) supplies the paths reward, the ``{problem}`` template and 32-token
answers; with the math verifier and prompt it once scored 0.0%. Writes its summary.json, with
provenance, to ``benchmarks/results/evaluate_paths_contract.json``.

    python benchmarks/evaluate_contract.py
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from common import provenance, results_dir  # benchmarks/common.py, beside this script

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        arguments = ["--checkpoint", "toy:paths", "--data", "paths", "--split", "validation", "--n", "64", "--limit", "200", "--out"]
        subprocess.run([sys.executable, "-m", "asymrl.evaluate", *arguments, scratch], cwd=ROOT, check=True)
        summary = json.loads((Path(scratch) / "summary.json").read_text())
    command = shlex.join(["python", "-m", "asymrl.evaluate", *arguments, "DIR"])
    path = results_dir() / "evaluate_paths_contract.json"
    path.write_text(json.dumps({"provenance": provenance(command), **summary}, indent=2) + "\n")
    print(f"pass@1 {summary['pass_at_k']['1']:.3f}, pass@8 {summary['pass_at_k']['8']:.3f}, pass@64 {summary['pass_at_k']['64']:.3f} -> {path}")
