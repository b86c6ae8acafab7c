"""Where does the paper's phenomenon exist on the testbed? A documented sweep of GRPO alone.

    python -m asymrl.sweep --out runs/collapse-sweep [--settings lr3e-4,lr1e-4] [--seeds 0,1,2,3]

The paper is about entropy collapse: the policy grows overconfident in a narrow set of solutions,
its token entropy drops sharply and its accuracy saturates early. Each setting here trains GRPO (the
paths scale's GRPO row of Table 1, ``asymrl.reproduce``) with a few knobs changed (learning rate,
steps, optimizer steps per RL step, prompts per step, the base policy's SFT depth), never chosen by
how any other row does. Every run is judged by the same regime statistics (``regime_statistics``):

* token entropy over the first and the last 10 steps, and its drop (a collapse: >= 60%);
* the greedy validation curve: base, peak, final, and the gain over the run's last 40% of steps
  (a plateau: little or none);
* distinct correct answers per solved group and all-solved groups, first vs last 10 steps;
* test pass@k of the final and the best-validation policy against the base policy's, to k = 64
  (the narrowing of Yue et al. 2025: pass@64 below the base's).

Each finished run writes ``<out>/<setting>/seed<k>/regime.json``; ``--publish DIR`` copies those
(and nothing heavier) under ``DIR/runs/`` and writes ``DIR/sweep.md`` from every run there, so a
study that spans several sessions loses nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from asymrl import reproduce
from asymrl.config import build_config
from asymrl.provenance import provenance

# The knobs each setting changes, on top of the paths scale's GRPO row; COMMON applies to all.
COMMON = {
    "train.total_steps": 800,
    "train.save_every": 100,
    "train.save_final": True,
    "eval.every_steps": 50,
    "eval.max_problems": 500,           # greedy validation: the curve and best/
    "log.logprob_increment_every": 10,
}
SETTINGS: dict[str, dict] = {
    "lr1e-4": {"train.lr": 1e-4},
    "lr2e-4": {"train.lr": 2e-4},
    "lr3e-4": {"train.lr": 3e-4},
    "lr5e-4": {"train.lr": 5e-4},
    "lr3e-4_4opt": {"train.lr": 3e-4, "train.mini_batch_prompts": 2, "train.micro_batch_size": 16},  # 4 optimizer steps per RL step
    "lr3e-4_2epochs": {"train.lr": 3e-4, "train.ppo_epochs": 2},                                   # 4 optimizer steps, each rollout twice
    "lr3e-4_16prompts": {"train.lr": 3e-4, "train.prompts_per_step": 16, "train.mini_batch_prompts": 8},
    "lr3e-4_1600steps": {"train.lr": 3e-4, "train.total_steps": 1600},
    # Deeper SFT of the base policy (toy.build's paths_sft* presets: the same SFT run stopped later).
    "lr3e-4_sft1400": {"train.lr": 3e-4, "model.path": "toy:paths_sft1400"},
    "lr3e-4_sft2000": {"train.lr": 3e-4, "model.path": "toy:paths_sft2000"},
}
PASS_AT_K = {"n": 64, "problems": 200}  # test pass@k of best/ and final/: n samples on the first problems
FIRST_LAST = 10


def run_values(setting: str, seed: int, out: Path) -> dict:
    values = reproduce.row_values("grpo", reproduce.SCALES["paths"], seed, out)
    values.update(COMMON)
    values.update(SETTINGS[setting])
    values["train.output_dir"] = str(out / setting / f"seed{seed}")
    return values


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def regime_statistics(records: list[dict], group_size: int = 8) -> dict:
    """The regime statistics of one run's metrics.jsonl (module docstring)."""
    steps = [dict(r) for r in records if "entropy/all" in r]
    validation = [(r["step"], r["val/accuracy"]) for r in records if "val/accuracy" in r]

    def first_last(metric: str) -> tuple[float | None, float | None]:
        values = [r[metric] for r in steps if r.get(metric) is not None]
        return _mean(values[:FIRST_LAST]), _mean(values[-FIRST_LAST:])

    # Distinct correct answers out of the correct ones in a solved group (G x accuracy / (1 - none
    # solved) correct per solved group): 2 distinct of 6 correct is narrower than 2 of 2.
    for record in steps:
        solved = 1 - record.get("groups/none_solved_frac", 1.0)
        if solved > 0 and record.get("diversity/distinct_correct") is not None and record.get("reward/accuracy"):
            record["diversity/distinct_per_correct"] = record["diversity/distinct_correct"] / (group_size * record["reward/accuracy"] / solved)
    entropy_first, entropy_last = first_last("entropy/all")
    distinct_first, distinct_last = first_last("diversity/distinct_correct")
    per_correct_first, per_correct_last = first_last("diversity/distinct_per_correct")
    all_first, all_last = first_last("groups/all_solved_frac")
    accuracy_first, accuracy_last = first_last("reward/accuracy")
    out = {"steps": len(steps), "entropy_first": entropy_first, "entropy_last": entropy_last,
           "entropy_drop": None if not entropy_first else 1 - entropy_last / entropy_first,
           "distinct_correct_first": distinct_first, "distinct_correct_last": distinct_last,
           "distinct_per_correct_first": per_correct_first, "distinct_per_correct_last": per_correct_last,
           "all_solved_first": all_first, "all_solved_last": all_last,
           "train_accuracy_first": accuracy_first, "train_accuracy_last": accuracy_last, "validation": validation,
           # the entropy and training-accuracy curves, means over windows of FIRST_LAST steps (for the figure)
           "curves": {metric: [(steps[end - 1]["step"], _mean([r[metric] for r in steps[end - FIRST_LAST:end] if r.get(metric) is not None]))
                               for end in range(FIRST_LAST, len(steps) + 1, FIRST_LAST)]
                      for metric in ("entropy/all", "reward/accuracy")}}
    if validation:
        last_step = validation[-1][0]
        late = [accuracy for step, accuracy in validation if step >= 0.6 * last_step]
        out.update(val_base=validation[0][1] if validation[0][0] == 0 else None, val_peak=max(a for _, a in validation),
                   val_peak_step=max(validation, key=lambda item: item[1])[0], val_final=validation[-1][1],
                   val_late_gain=late[-1] - late[0] if len(late) > 1 else None)
    return out


def _pass_at_k(summary_path: Path) -> dict | None:
    return json.loads(summary_path.read_text())["pass_at_k"] if summary_path.is_file() else None


def execute(setting: str, seed: int, out: Path) -> str:
    """Train one run (resuming), evaluate best/ and final/ by pass@k on the test split, write regime.json."""
    values = run_values(setting, seed, out)
    config = build_config(values)
    run = reproduce.Run("grpo", seed, config, Path(config.train.output_dir))
    env = reproduce._child_env(reproduce.SCALES["paths"], None)
    if not run.trained:
        run.directory.mkdir(parents=True, exist_ok=True)
        config.save(run.directory / "row.yaml")
        reproduce._call([sys.executable, "train.py", "--config", str(run.directory / "row.yaml")], run.directory / "train.log", env)
    for folder in ("best", "final"):
        if not (run.directory / f"eval_{folder}" / "summary.json").is_file():
            command = [sys.executable, "-m", "asymrl.evaluate", "--checkpoint", str(run.directory / folder), "--data", "paths",
                       "--split", "test", "--n", str(PASS_AT_K["n"]), "--limit", str(PASS_AT_K["problems"]), "--device", "cpu",
                       "--seed", str(seed), "--out", str(run.directory / f"eval_{folder}")]
            reproduce._call(command, run.directory / "eval.log", env)
    records = [json.loads(line) for line in (run.directory / "metrics.jsonl").read_text().splitlines()]
    regime = {"setting": setting, "seed": seed, "provenance": provenance(shlex.join([sys.executable, "-m", "asymrl.sweep", *sys.argv[1:]])),
              "overrides": SETTINGS[setting], "common": COMMON,
              **regime_statistics(records, config.rollout.group_size), "summary": json.loads((run.directory / "summary.json").read_text()),
              "base": config.model.path, "pass_at_k_base": base_pass_at_k(out, config.model.path),
              "pass_at_k_best": _pass_at_k(run.directory / "eval_best" / "summary.json"),
              "pass_at_k_final": _pass_at_k(run.directory / "eval_final" / "summary.json")}
    regime["summary"].pop("run_dir", None)
    (run.directory / "regime.json").write_text(json.dumps(regime, indent=1) + "\n")
    return f"{setting}/seed{seed}"


def base_pass_at_k(out: Path, model: str = "toy:paths") -> dict:
    """A base policy's test pass@k on the same problems and samples (once per base policy)."""
    folder = out / "base_eval" if model == "toy:paths" else out / f"base_eval_{model.replace(':', '_')}"
    if not (folder / "summary.json").is_file():
        reproduce._call([sys.executable, "-m", "asymrl.evaluate", "--checkpoint", model, "--data", "paths", "--split", "test",
                         "--n", str(PASS_AT_K["n"]), "--limit", str(PASS_AT_K["problems"]), "--device", "cpu", "--seed", "0",
                         "--out", str(folder)], out / "base_eval.log", reproduce._child_env(reproduce.SCALES["paths"], None))
    return json.loads((folder / "summary.json").read_text())["pass_at_k"]


def _cell(values: list, digits: int = 3, scale: float = 1.0) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def report(published: Path) -> str:
    """``sweep.md``: one line per setting (seed means ± standard deviation), from every published run."""
    runs = [json.loads(p.read_text()) for p in sorted((published / "runs").glob("*/seed*/regime.json"))]
    by_setting: dict[str, list[dict]] = {}
    for run in runs:
        by_setting.setdefault(run["setting"], []).append(run)
    large = str(PASS_AT_K["n"])
    lines = ["| setting | changes | seeds | entropy first -> last (drop) | val base -> peak (step) -> final, late gain | "
             "distinct correct first -> last | all solved first -> last | "
             f"pass@1 / pass@{large}: base | best | final |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for setting, group in by_setting.items():
        def column(key: str) -> list:
            return [run.get(key) for run in group]

        def pass_at(which: str) -> str:
            return " / ".join(_cell([run[which].get(k) if run.get(which) else None for run in group], 1, 100) for k in ("1", large))

        changes = ", ".join(f"{k}={v}" for k, v in group[0]["overrides"].items())
        lines.append(
            f"| {setting} | {changes} | {','.join(str(r['seed']) for r in group)} | "
            f"{_cell(column('entropy_first'))} -> {_cell(column('entropy_last'))} ({_cell(column('entropy_drop'), 0, 100)}%) | "
            f"{_cell(column('val_base'), 1, 100)} -> {_cell(column('val_peak'), 1, 100)} ({_cell(column('val_peak_step'), 0)}) -> "
            f"{_cell(column('val_final'), 1, 100)}, {_cell(column('val_late_gain'), 1, 100)} | "
            f"{_cell(column('distinct_correct_first'), 2)} -> {_cell(column('distinct_correct_last'), 2)} "
            f"({_cell(column('distinct_per_correct_first'), 2)} -> {_cell(column('distinct_per_correct_last'), 2)} per correct) | "
            f"{_cell(column('all_solved_first'), 2)} -> {_cell(column('all_solved_last'), 2)} | "
            f"{pass_at('pass_at_k_base')} | "
            f"{pass_at('pass_at_k_best')} | {pass_at('pass_at_k_final')} |")
    note = (f"Test pass@k on the first {PASS_AT_K['problems']} test problems with {large} samples at T = 1; the base is the "
            "setting's base policy. Cells: one seed's value, or the mean ± standard deviation over seeds.")
    return "\n".join(lines) + "\n\n" + note + "\n" + power_markdown(by_setting)


def power(values: list[float], target_se: float = 0.8) -> dict:
    """From one setting's per-seed values (percentage points): their standard deviation, the standard
    error of a difference between two rows of as many seeds each (sd sqrt(2 / n)), and the seeds per
    row that bring it to ``target_se``: 2 (sd / target)^2."""
    sd = statistics.stdev(values)
    return {"seeds": len(values), "sd": sd, "se_difference": sd * math.sqrt(2 / len(values)),
            "seeds_for_target": math.ceil(2 * (sd / target_se) ** 2), "target_se": target_se}


def power_markdown(by_setting: dict[str, list[dict]]) -> str:
    """Seed spread of the settings run with several seeds: test pass@1 of best/ and final/ and final
    entropy, what a difference between two rows can resolve, and the seeds that make it 0.8 points."""
    lines = []
    for setting, group in by_setting.items():
        if len(group) < 2:
            continue
        rows = []
        for label, values in (("test pass@1, best/ (%)", [100 * run["pass_at_k_best"]["1"] for run in group]),
                              ("test pass@1, final/ (%)", [100 * run["pass_at_k_final"]["1"] for run in group]),
                              ("entropy, last 10 steps (x 100)", [100 * run["entropy_last"] for run in group])):
            p = power(values)
            rows.append(f"| {label} | {statistics.fmean(values):.2f} | {p['sd']:.2f} | {p['se_difference']:.2f} | "
                        f"{2 * p['se_difference']:.2f} | {p['seeds_for_target']} |")
        lines += [f"\n### Seed spread of {setting} ({len(group)} seeds)", "",
                  "| quantity | mean | seed sd | SE of a difference, as many seeds | detectable (2 SE) | seeds for SE <= 0.8 |",
                  "|---|---|---|---|---|---|", *rows]
    return "\n".join(lines) + ("\n" if lines else "")


def plot_curves(published: Path) -> Path:
    """``sweep_curves.png`` from every published run (``plots.plot_sweep_curves``)."""
    from asymrl.plots import plot_sweep_curves

    by_setting: dict[str, list[dict]] = {}
    for path in sorted((published / "runs").glob("*/seed*/regime.json")):
        run = json.loads(path.read_text())
        by_setting.setdefault(run["setting"], []).append(run)
    return plot_sweep_curves(by_setting, published / "sweep_curves.png")


def publish(out: Path, published: Path) -> Path:
    """Copy every finished run's regime.json (small) under ``published/runs`` and rebuild sweep.md."""
    for path in out.glob("*/seed*/regime.json"):
        target = published / "runs" / path.parent.parent.name / path.parent.name / "regime.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (published / "sweep_table.md").write_text(report(published))
    plot_curves(published)
    return published / "sweep_table.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/collapse-sweep"))
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--publish", type=Path, default=None, help="folder to copy finished runs' regime.json into (e.g. docs/collapse_regime)")
    args = parser.parse_args(argv)
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {unknown}; choose from {', '.join(SETTINGS)}")
    jobs = [(setting, int(seed)) for seed in args.seeds.split(",") for setting in settings]
    started = time.time()
    base_pass_at_k(args.out)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for done in pool.map(lambda job: execute(*job, args.out), jobs):
            print(f"{done} done after {time.time() - started:.0f} s", flush=True)
            if args.publish:
                publish(args.out, args.publish)
    if args.publish:
        print(f"wrote {publish(args.out, args.publish)}")


if __name__ == "__main__":
    main()
