"""`make train` as a new user runs it, measured: the main job (configs/collapse_asymgrpo.yaml) from a
fresh run folder, its summary, validation curve, token entropy over its first and last 10 steps and
mean step time, with provenance; ``--config`` measures another job the same way (the arithmetic one
that was the main job before).

    python benchmarks/make_train.py --name make_train_collapse_cpu_2026-12-06
    python benchmarks/make_train.py --config configs/toy_asymgrpo.yaml --name make_train_cpu_2026-12-06

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
    parser.add_argument("--config", default="configs/collapse_asymgrpo.yaml", help="the job's config (default: make train's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        command = [sys.executable, "train.py", "--config", args.config, f"train.output_dir={out}", "log.progress_bar=false"]
        subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
        summary = json.loads((out / "summary.json").read_text())
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary.pop("run_dir", None)
    curve = [{"step": r["step"], "val_greedy": round(r["val/accuracy"], 4),
              **({"val_sampled": round(r["val/sampled_accuracy"], 4)} if "val/sampled_accuracy" in r else {})}
             for r in records if "val/accuracy" in r]
    entropy = [r["entropy/all"] for r in records if "entropy/all" in r]
    result = {"provenance": provenance(f"python train.py --config {args.config}  (OMP_NUM_THREADS=2)"),
              "summary": summary, "validation_curve": curve,
              "entropy_first_10_steps": round(statistics.fmean(entropy[:10]), 4), "entropy_last_10_steps": round(statistics.fmean(entropy[-10:]), 4),
              "mean_step_seconds": round(statistics.fmean(r["time/step"] for r in records if "time/step" in r), 3)}
    path = results_dir() / f"{args.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{summary['steps']} steps; greedy {summary['initial_val_accuracy']:.3f} -> {summary['final_val_accuracy']:.3f}; -> {path}")
