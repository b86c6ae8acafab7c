"""`make train` as a new user runs it, measured: the main job (configs/toy_asymgrpo.yaml) from a fresh
run folder, its summary, validation curve and mean step time, with provenance.

    python benchmarks/make_train.py --name make_train_cpu_2026-12-06

Writes ``benchmarks/results/<name>.json`` (the run's own folder is a temporary one). Run it on a quiet
machine: the job stops after train.max_wall_s, so its step count is the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import provenance, results_dir  # benchmarks/common.py, beside this script

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="result file name, without .json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "toy_asymgrpo"
        command = [sys.executable, "train.py", "--config", "configs/toy_asymgrpo.yaml", f"train.output_dir={out}", "log.progress_bar=false"]
        subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
        summary = json.loads((out / "summary.json").read_text())
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary.pop("run_dir", None)
    curve = [{"step": r["step"], "val_greedy": round(r["val/accuracy"], 4),
              **({"val_sampled": round(r["val/sampled_accuracy"], 4)} if "val/sampled_accuracy" in r else {})}
             for r in records if "val/accuracy" in r]
    result = {"provenance": provenance("make train  (python train.py --config configs/toy_asymgrpo.yaml, OMP_NUM_THREADS=2)"),
              "summary": summary, "validation_curve": curve,
              "mean_step_seconds": round(statistics.fmean(r["time/step"] for r in records if "time/step" in r), 3)}
    path = results_dir() / f"{args.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{summary['steps']} steps; greedy {summary['initial_val_accuracy']:.3f} -> {summary['final_val_accuracy']:.3f}; -> {path}")
