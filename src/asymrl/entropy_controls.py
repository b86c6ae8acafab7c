"""``make entropy-controls``: the entropy interventions the paper compares or cites, side by side on
the exploration testbed with one budget, and the page that compares them.

    python -m asymrl.entropy_controls [--out runs/entropy-controls] [--seeds 0,1,2] [--reuse runs/table1-paths]

Rows (``ROWS``): the base policy, GRPO, AsymGRPO, adaptive AsymGRPO, GRPO with Clip-Cov, KL-Cov, the
entropy bonus, clip-higher, the 80/20 rule or dynamic sampling, and GSPO. Each is a YAML
(``configs/table1/`` for the rows that are Table 1's, ``configs/entropy_controls/`` for the others)
under ``asymrl.reproduce``'s ``paths`` scale: 150 steps of 8 prompts x 8 rollouts, the best greedy
validation checkpoint evaluated by pass@k on the 2,000 test problems (pass@32 on 100 for the first
seed), plus the sign-split gradient norms every 10 steps. Training, resuming and evaluation are
``asymrl.reproduce``'s: re-running the command only does what is missing.

With ``--reuse DIR`` a finished run of a Table 1 row in ``DIR`` (``make reproduce-table1
SCALE=paths``) is linked instead of trained again, when its config equals this study's apart from the
``log.*`` knobs (what is logged, not what is trained: the sign-split gradient norms are not in those runs).

Outputs in ``<out>/``: ``report.md`` (the table with seed spread, every method against GRPO, pass@k
before and after), ``results.json``, ``figures/*.png``, ``invocations.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from asymrl.config import build_config, load_yaml
from asymrl.metrics import Summary
from asymrl.provenance import provenance
from asymrl.reproduce import (REPO, SCALES, Run, collect, diagnostics_markdown, pass_at_k_markdown, plan,
                              record_invocation, run_all)
from asymrl.table1 import difference_and_noise, mean_and_std

CONFIGS = REPO / "configs"

# (row id, title, YAML under configs/): colour and table order.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("base", "Base policy (toy:paths)", "table1/base.yaml"),
    ("grpo", "GRPO", "table1/grpo.yaml"),
    ("asymgrpo", "AsymGRPO", "table1/asymgrpo.yaml"),
    ("asymgrpo_adaptive", "Adaptive AsymGRPO (entropy target)", "entropy_controls/asymgrpo_adaptive.yaml"),
    ("grpo_clip_cov", "GRPO w/ Clip-Cov", "entropy_controls/grpo_clip_cov.yaml"),
    ("grpo_kl_cov", "GRPO w/ KL-Cov", "entropy_controls/grpo_kl_cov.yaml"),
    ("grpo_entropy_reg", "GRPO w/ entropy bonus", "table1/grpo_entropy_reg.yaml"),
    ("grpo_clip_higher", "GRPO w/ clip-higher", "table1/grpo_clip_higher.yaml"),
    ("grpo_80_20", "GRPO w/ 80/20 (top-20% entropy tokens)", "entropy_controls/grpo_80_20.yaml"),
    ("grpo_dynamic_sampling", "GRPO w/ dynamic sampling", "entropy_controls/grpo_dynamic_sampling.yaml"),
    ("gspo", "GSPO", "entropy_controls/gspo.yaml"),
)
TITLES: tuple[tuple[str, str], ...] = tuple((row, title) for row, title, _ in ROWS)
REFERENCE = "grpo"  # every method is compared with it
GRADIENT_SHARE = Summary("grad_share_pos", "actor/sign/grad_share_pos", "grad. share of positives")

SCALE = dataclasses.replace(
    SCALES["paths"],
    overrides={**SCALES["paths"].overrides, "log.sign_grad_norm_every": 10},
    seeds=(0, 1, 2),
    budget_note="the exploration testbed (path-finding, base policy toy:paths), 2 CPU cores, every method 150 steps "
                "of 8 prompts x 8 rollouts (two optimizer steps per RL step), its best validation checkpoint "
                "evaluated on the 2,000 test problems with 2 samples at T = 1",
)

# A quantity where higher or lower is not better by itself is compared all the same: what separates.
COMPARED = (("score", "test pass@1"), ("entropy_mean", "entropy (mean)"), ("entropy_final", "entropy (last 10 steps)"),
            ("none_solved_mean", "none solved"))


def config_files() -> dict[str, Path]:
    return {row: CONFIGS / path for row, _, path in ROWS}


def _trained_config(config) -> dict:
    """What decides a run's training: its config less the ``log.*`` knobs and the output folder."""
    tree = config.to_dict()
    tree.pop("log")
    tree["train"].pop("output_dir")
    return tree


def link_reusable(runs: list[Run], reuse: Path) -> list[str]:
    """Link each run not present in its own folder to ``reuse/<row>/seed<seed>`` when that run is
    finished (trained, evaluated, pass@k-wide evaluated if this one must be) with the same training
    config; returns the names linked."""
    linked = []
    for run in runs:
        source = reuse / run.row / f"seed{run.seed}"
        if run.directory.exists() or not (source / "row.yaml").is_file():
            continue
        finished = Run(run.row, run.seed, run.config, source, run.wide)
        if finished.done and _trained_config(build_config(load_yaml(source / "row.yaml"))) == _trained_config(run.config):
            run.directory.parent.mkdir(parents=True, exist_ok=True)
            run.directory.symlink_to(source.resolve(), target_is_directory=True)
            linked.append(run.name)
    return linked


def against_reference(values: list[float], reference: list[float]) -> tuple[float, float | None, str]:
    """(difference of means, its standard error over seeds, verdict): "above" / "below" when the
    difference exceeds twice its standard error, "within noise" otherwise."""
    difference, noise = difference_and_noise(values, reference)
    if noise is None:
        return difference, None, "one seed: no verdict"
    if abs(difference) > 2 * noise:
        return difference, noise, "above" if difference > 0 else "below"
    return difference, noise, "within noise"


def _quantity(entry: dict, name: str) -> list[float]:
    if name == "score":
        return next(iter(entry["scores"].values()))
    return [d[name] for d in entry["diagnostics"] if d.get(name) is not None]


def _cell(values: list[float], digits: int = 1, scale: float = 1.0) -> str:
    if not values:
        return "—"
    mean, std = mean_and_std([scale * v for v in values])
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def table_markdown(results: dict) -> str:
    """One line per method: test pass@1, pass@32 (first seed), entropy, the share of the policy
    gradient from positive rollouts, best validation accuracy, minutes per run."""
    header = ("| Method | seeds | test pass@1 (%) | pass@32, seed 0 (%) | entropy (mean) | entropy (last 10) "
              "| grad. share of positives | best val. (%) | min per run |")
    lines = [header, "|" + "---|" * 9]
    for row, title in TITLES:
        entry = results.get(row)
        if entry is None:
            continue
        wide = entry.get("pass_at_k_wide") or {}
        top_k = max(map(int, wide), default=None)
        lines.append("| " + " | ".join([
            title, str(len(entry["seeds"])), _cell(_quantity(entry, "score")),
            f"{100 * wide[str(top_k)]:.1f}" if top_k else "—",
            _cell(_quantity(entry, "entropy_mean"), 3), _cell(_quantity(entry, "entropy_final"), 3),
            _cell(_quantity(entry, "grad_share_pos"), 2),
            _cell(_quantity(entry, "best_val_accuracy")),
            _cell([d["train_wall_s"] / 60 for d in entry["diagnostics"]] if row != "base" else [], 1),
        ]) + " |")
    return "\n".join(lines)


def comparisons(results: dict) -> list[dict]:
    """Every trained method against GRPO on each ``COMPARED`` quantity."""
    reference = results.get(REFERENCE)
    out = []
    if reference is None:
        return out
    for row, title in TITLES:
        if row in ("base", REFERENCE) or row not in results:
            continue
        for quantity, label in COMPARED:
            values, reference_values = _quantity(results[row], quantity), _quantity(reference, quantity)
            if values and reference_values:
                difference, noise, verdict = against_reference(values, reference_values)
                out.append({"row": row, "title": title, "quantity": label, "difference": difference, "noise": noise, "verdict": verdict})
    return out


def comparisons_markdown(found: list[dict]) -> str:
    labels = [label for _, label in COMPARED]
    lines = ["| Method | " + " | ".join(f"{label} vs GRPO" for label in labels) + " |", "|" + "---|" * (len(labels) + 1)]
    for row, title in TITLES:
        cells = {c["quantity"]: c for c in found if c["row"] == row}
        if not cells:
            continue
        formatted = []
        for label in labels:
            c = cells.get(label)
            digits = 1 if label == "test pass@1" or label == "none solved" else 3
            scale = 100 if label == "none solved" else 1
            formatted.append("—" if c is None else f"{scale * c['difference']:+.{digits}f}"
                             + (f" ± {scale * c['noise']:.{digits}f}" if c["noise"] is not None else "") + f" ({c['verdict']})")
        lines.append(f"| {title} | " + " | ".join(formatted) + " |")
    return "\n".join(lines)


def write_report(results: dict, runs: list[Run], out: Path, wall_s: float, linked: list[str]) -> Path:
    """``report.md``, ``results.json`` and the figures of the comparison."""
    from asymrl.plots import TABLE1_FIGURES, plot_pass_at_k_by_row, plot_table1_figures

    found = comparisons(results)
    (out / "results.json").write_text(json.dumps({"provenance": provenance(shlex.join(["python", "-m", "asymrl.entropy_controls", *sys.argv[1:]])),
                                                  "wall_s": round(wall_s, 1), "rows": results, "comparisons": found, "reused": linked}, indent=2))
    by_row: dict[str, list[Path]] = {}
    for run in runs:
        if (run.directory / "metrics.jsonl").is_file():
            by_row.setdefault(run.row, []).append(run.directory)
    figures_wanted = {**TABLE1_FIGURES, "gradient_share": (
        "share of the policy-gradient norm from positive rollouts (every 10 steps, EMA 0.6)", ["actor/sign/grad_share_pos"], 0.6)}
    figures = plot_table1_figures(by_row, out / "figures", covariance_steps=runs[0].config.log.covariance_steps,
                                  rows=TITLES, figures=figures_wanted)
    curves = {row: entry["pass_at_k"] for row, entry in results.items() if entry.get("pass_at_k")}
    wide = {row: entry["pass_at_k_wide"] for row, entry in results.items() if entry.get("pass_at_k_wide")}
    if curves:
        figures.append(plot_pass_at_k_by_row(curves, out / "figures" / "pass_at_k.png", wide=wide, rows=TITLES))
    seeds = sorted({run.seed for run in runs})
    lines = ["# Entropy controls side by side", "",
             f"{SCALE.budget_note}. Seeds {', '.join(map(str, seeds))}; cells are the mean over seeds ± their "
             f"standard deviation. Wall time (every invocation that trained or evaluated): {wall_s / 60:.1f} min"
             + (f"; {len(linked)} runs reused from Table 1 ({', '.join(linked)})" if linked else "") + ".", "",
             table_markdown(results), "",
             "## Every method against GRPO (difference of seed means ± its standard error; a verdict only beyond twice that)", "",
             comparisons_markdown(found), "",
             "## Diagnostics (mean over seeds)", "", diagnostics_markdown(results, rows=TITLES), ""]
    if curves:
        lines += ["## pass@k on paths:test (mean over seeds ± their standard deviation)", "",
                  pass_at_k_markdown(curves, rows=TITLES), ""]
    if wide:
        n, problems = SCALE.pass_at_k_wide
        lines += [f"## pass@k to k = {n}: seed {seeds[0]}, {n} samples on the first {problems} problems", "",
                  pass_at_k_markdown({row: [curve] for row, curve in wide.items()}, rows=TITLES), ""]
    lines += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def study_results(runs: list[Run]) -> dict:
    """``reproduce.collect``'s per-row results, with the mean share of the policy gradient from
    positive rollouts (where it was logged) among each seed's diagnostics."""
    return collect(runs, extra_summaries=(GRADIENT_SHARE,))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.entropy_controls", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "entropy-controls")
    parser.add_argument("--seeds", default=",".join(map(str, SCALE.seeds)), help="comma-separated seeds")
    parser.add_argument("--rows", default="", help="comma-separated row ids (default: all)")
    parser.add_argument("--reuse", type=Path, default=None, help="a `make reproduce-table1 SCALE=paths` output whose "
                        "finished runs of the same config are linked instead of trained again")
    parser.add_argument("--parallel", type=int, default=SCALE.parallel, help="runs at a time")
    args = parser.parse_args(argv)
    known = [row for row, _ in TITLES]
    rows = [r for r in args.rows.split(",") if r] or known
    unknown = sorted(set(rows) - set(known))
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)}; choose among {', '.join(known)}")
    seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    out = args.out.resolve()
    runs = plan(SCALE, out, rows, seeds, config_files())
    out.mkdir(parents=True, exist_ok=True)
    linked = link_reusable(runs, args.reuse.resolve()) if args.reuse else []
    todo = [run for run in runs if not run.done]
    print(f"Entropy controls: {len(rows)} rows x {len(seeds)} seeds = {len(runs)} runs, {len(linked)} reused, "
          f"{len(todo)} still to do, {args.parallel} at a time -> {out}", flush=True)
    started = time.time()
    failures = run_all(todo, SCALE, args.parallel, [], desc="entropy-control runs") if todo else []
    wall_s = record_invocation(out, time.time() - started, len(todo))
    report = write_report(study_results(runs), runs, out, wall_s, linked)
    print(f"report: {report}")
    if failures:
        raise SystemExit("failed runs:\n" + "\n".join(f"  {run.name}: {error}" for run, error in failures))


if __name__ == "__main__":
    main()
