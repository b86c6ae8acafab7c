"""Methods side by side on the exploration testbed with one budget, and the page that compares them:
``make entropy-controls`` (the entropy interventions the paper compares or cites) and ``make
estimators`` (every published way to weight positive and negative rollouts).

    python -m asymrl.side_by_side --study entropy_controls [--scale paths] [--seeds 0,1,2] [--reuse runs/table1-paths]
    python -m asymrl.side_by_side --study estimators --scale collapse --publish docs/estimators

A study (``STUDIES``) is its rows, each a YAML (``configs/table1/`` for the rows that are Table 1's,
``configs/entropy_controls/`` and ``configs/estimators/`` for the others) that differs from GRPO or
AsymGRPO by its own switch only (a switch among the knobs every scale sets, such as the batch, is the
study's ``row_overrides``, applied after the scale), under one of ``asymrl.reproduce``'s scales (``paths``: 150 steps;
``collapse``: the regime where GRPO's entropy collapses), plus the sign-split gradient norms every 10
steps. Training, resuming and evaluation are ``asymrl.reproduce``'s: re-running the command only does
what is missing. Every method is compared with GRPO, and called above or below it only beyond twice
the standard error of the difference over seeds.

With ``--reuse DIR`` a finished run of a Table 1 row in ``DIR`` (``make reproduce-table1``'s output
folder, or the ``runs`` folder it published with ``--publish``, which holds each run's config and
travels with the repository) is linked instead of trained again, when its config equals this
study's apart from the ``log.*`` knobs (what is logged, not what is trained: the sign-split gradient
norms are not in those runs), but those the study needs (``Study.reuse_needs_logs``: the estimators
study compares the gradient norms, so it reuses nothing from Table 1). With
``--publish DIR`` each finished run's results (not its checkpoints) are copied under ``DIR/runs``
(``reproduce.publish_run``) and the page is built there from every published run, so that it grows
across sittings; without ``--seeds`` an invocation then adds the scale's next seeds, and
``--page-only`` rebuilds that page from the runs published so far without training.

Outputs in ``<out>/`` (or the published folder): ``report.md`` (the table with seed spread, every
method against GRPO, pass@k before and after), ``results.json``, ``figures/*.png``, ``invocations.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from asymrl.config import ConfigError, build_config, load_yaml
from asymrl.metrics import Summary
from asymrl.provenance import provenance
from asymrl.reproduce import (REPO, SCALES, Run, Scale, check_page_only, collect, diagnostics_markdown, pass_at_k_markdown, plan, published_runs,
                              publisher, record_invocation, rows_and_seeds, run_all)
from asymrl.table1 import difference_and_noise, mean_and_std

CONFIGS = REPO / "configs"
REFERENCE = "grpo"  # every method is compared with it
GRADIENT_SHARE = Summary("grad_share_pos", "actor/sign/grad_share_pos", "grad. share of positives")
# Rounds of rollouts a step drew (logged by dynamic sampling only; every other row draws one): a row
# that draws more spends more samples at the same step count, which its page must weigh.
GENERATION_ROUNDS = Summary("generation_rounds_mean", "time/generation_rounds", "rollout rounds per step")
STUDY_SUMMARIES = (GRADIENT_SHARE, GENERATION_ROUNDS)  # what every study's runs summarise beyond Table 1's


@dataclass(frozen=True)
class Study:
    """Methods compared side by side: rows (id, title, YAML under configs/) in colour and table order,
    the scale they run at by default, and what the study adds to every run's config."""

    name: str
    title: str
    rows: tuple[tuple[str, str, str], ...]
    scale: str
    seeds: tuple[int, ...]
    overrides: dict = field(default_factory=lambda: {"log.sign_grad_norm_every": 10})
    # log.* knobs a reused run must share: those whose series the page compares against the
    # reference rows (none: a reused run without them shows '—' there)
    reuse_needs_logs: tuple[str, ...] = ()
    # rows drawn together with seed bands (title, row ids), as the paper's Figs. 2-4 group Table 1's
    band_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # what a row changes among the knobs every scale sets (its YAML's would be overridden by the scale)
    row_overrides: dict[str, dict] = field(default_factory=dict)

    @property
    def titles(self) -> tuple[tuple[str, str], ...]:
        return tuple((row, title) for row, title, _ in self.rows)

    def config_files(self) -> dict[str, Path]:
        return {row: CONFIGS / path for row, _, path in self.rows}

    def plan(self, scale: Scale, out: Path, rows: list[str], seeds: tuple[int, ...]) -> list[Run]:
        """Every (row, seed) run of the study (``reproduce.plan`` with its YAMLs and row overrides)."""
        return plan(scale, out, rows, seeds, self.config_files(), self.row_overrides)

    def at_scale(self, scale_name: str | None = None) -> Scale:
        """The reproduction scale (``asymrl.reproduce.SCALES``) with the study's overrides on top."""
        scale = SCALES[scale_name or self.scale]
        return dataclasses.replace(scale, overrides={**scale.overrides, **self.overrides}, seeds=self.seeds,
                                   budget_note=f"{scale.budget_note}; the sign-split gradient norms every 10 steps")


BASE_AND_REFERENCES = (
    ("base", "Base policy (toy:paths)", "table1/base.yaml"),
    ("grpo", "GRPO", "table1/grpo.yaml"),
    ("asymgrpo", "AsymGRPO", "table1/asymgrpo.yaml"),
)
STUDIES = {
    "entropy_controls": Study("entropy_controls", "Entropy controls side by side", BASE_AND_REFERENCES + (
        ("asymgrpo_adaptive", "Adaptive AsymGRPO (entropy target)", "entropy_controls/asymgrpo_adaptive.yaml"),
        ("grpo_clip_cov", "GRPO w/ Clip-Cov", "entropy_controls/grpo_clip_cov.yaml"),
        ("grpo_kl_cov", "GRPO w/ KL-Cov", "entropy_controls/grpo_kl_cov.yaml"),
        ("grpo_entropy_reg", "GRPO w/ entropy bonus", "table1/grpo_entropy_reg.yaml"),
        ("grpo_clip_higher", "GRPO w/ clip-higher", "table1/grpo_clip_higher.yaml"),
        ("grpo_80_20", "GRPO w/ 80/20 (top-20% entropy tokens)", "entropy_controls/grpo_80_20.yaml"),
        ("grpo_dynamic_sampling", "GRPO w/ dynamic sampling", "entropy_controls/grpo_dynamic_sampling.yaml"),
        ("grpo_22_prompts", "GRPO w/ 22 prompts a step", "table1/grpo.yaml"),
        ("gspo", "GSPO", "entropy_controls/gspo.yaml"),
    ), scale="paths", seeds=(0, 1, 2),
        band_groups=(("the advantage's two signs", ("grpo", "asymgrpo", "asymgrpo_adaptive")),
                     ("the policy loss", ("grpo", "grpo_clip_cov", "grpo_kl_cov", "grpo_clip_higher", "gspo")),
                     ("entropy bonus, 80/20, dynamic sampling, 22 prompts",
                      ("grpo", "grpo_entropy_reg", "grpo_80_20", "grpo_dynamic_sampling", "grpo_22_prompts"))),
        # Dynamic sampling draws rounds of 8 prompts until its 8 groups have mixed rewards: 2.63 rounds
        # a step in the collapse regime (docs/entropy_controls_collapse.md), ~21 prompts' rollouts. GRPO
        # given as many rollouts a step: 22 prompts (two optimizer steps of 11, as every row takes two),
        # in micro-batches of 44 rollouts, which divide a mini-batch's 88 (the scale's 32 do not).
        row_overrides={"grpo_22_prompts": {"train.prompts_per_step": 22, "train.mini_batch_prompts": 11, "train.micro_batch_size": 44}}),
    # Each estimator with its paper's published defaults, never tuned here (configs/estimators/).
    "estimators": Study("estimators", "Advantage estimators side by side", BASE_AND_REFERENCES + (
        ("reinforce", "REINFORCE (+1 / -1)", "table1/reinforce.yaml"),
        ("rloo", "RLOO", "estimators/rloo.yaml"),
        ("reinforce_pp_baseline", "REINFORCE++-baseline", "estimators/reinforce_pp_baseline.yaml"),
        ("psr", "PSR (successes only)", "estimators/psr.yaml"),
        ("nsr", "NSR (failures only)", "estimators/nsr.yaml"),
        ("w_reinforce", "W-REINFORCE (lambda 0.1)", "estimators/w_reinforce.yaml"),
        ("qae", "QAE (K 0.4)", "estimators/qae.yaml"),
        ("a_grae", "A-GRAE", "estimators/a_grae.yaml"),
        ("asymre", "AsymRE (delta -0.1)", "estimators/asymre.yaml"),
        ("opo", "OPO (length-weighted baseline)", "estimators/opo.yaml"),
        ("gpg", "GPG", "estimators/gpg.yaml"),
        ("pos_only", "Pos-Only (the paper's)", "table1/pos_only.yaml"),
        ("neg_only", "Neg-Only (the paper's)", "table1/neg_only.yaml"),
    ), scale="collapse", seeds=(0, 1, 2, 3),
        # the page compares every estimator's share of the gradient norm with GRPO's: a Table 1 run
        # (which does not log it) cannot stand in for a reference row
        reuse_needs_logs=("sign_grad_norm_every",),
        band_groups=(("baseline at the group mean", ("grpo", "rloo", "reinforce_pp_baseline", "opo", "gpg")),
                     ("one channel, or channels weighted", ("reinforce", "psr", "nsr", "w_reinforce", "pos_only", "neg_only")),
                     ("weights that depend on the group's accuracy", ("grpo", "asymgrpo", "qae", "a_grae", "asymre")))),
}
# What the band figure of a study draws: the paper's curves and the positives' share of the gradient norm.
STUDY_BAND_METRICS = (
    ("token entropy", "entropy/all", 0.6),
    ("none solved (p = 0)", "groups/none_solved_frac", 0.8),
    ("all solved (p = 1)", "groups/all_solved_frac", 0.8),
    ("grad. share of positives (every 10 steps)", "actor/sign/grad_share_pos", 0.6),
)

# A quantity where higher or lower is not better by itself is compared all the same: what separates.
COMPARED = (("score", "test pass@1"), ("pass_at_k_top", "test pass@k, largest k"), ("entropy_mean", "entropy (mean)"),
            ("entropy_final", "entropy (last 10 steps)"), ("none_solved_mean", "none solved"),
            ("grad_share_pos", "grad. share of positives"))
PERCENT_POINTS = ("test pass@1", "test pass@k, largest k", "none solved")  # shown with one decimal


def _trained_config(config, logs: tuple[str, ...] = ()) -> dict:
    """What decides a run's training: its config less the output folder and the ``log.*`` knobs
    (but those named in ``logs``)."""
    tree = config.to_dict()
    tree["log"] = {key: tree["log"][key] for key in logs}
    tree["train"].pop("output_dir")
    return tree


def link_reusable(runs: list[Run], reuse: Path, logs: tuple[str, ...] = ()) -> list[str]:
    """Link each run not present in its own folder to ``reuse/<row>/seed<seed>`` when that run is
    finished (trained, evaluated, pass@k-wide evaluated if this one must be) with the same training
    config and the same ``log.<logs>`` knobs; returns the names linked."""
    linked = []
    for run in runs:
        source = reuse / run.row / f"seed{run.seed}"
        if run.directory.exists() or not (source / "row.yaml").is_file():
            continue
        finished = Run(run.row, run.seed, run.config, source, run.wide)
        if finished.done and _trained_config(build_config(load_yaml(source / "row.yaml")), logs) == _trained_config(run.config, logs):
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


def _wide_top(row: str, entry: dict) -> tuple[list[float], int]:
    """(pass@k % at the largest k of each seed's wide evaluation, how many seeds were left out): a
    trained seed whose best/ (what the wide evaluation reads) is the step-0 policy is left out, since
    its pass@k is the base policy's, not the method's."""
    curves = entry.get("pass_at_k_wide_seeds") or []
    steps = entry.get("pass_at_k_wide_best_steps") or [None] * len(curves)
    of_the_start = [row != "base" and step == 0 for step in steps]
    kept = [100 * curve[str(max(map(int, curve)))] for curve, start in zip(curves, of_the_start) if not start]
    return kept, sum(of_the_start)


def _quantity(row: str, entry: dict, name: str) -> list[float]:
    if name == "score":
        return next(iter(entry["scores"].values()))
    if name == "pass_at_k_top":
        return _wide_top(row, entry)[0]
    return [d[name] for d in entry["diagnostics"] if d.get(name) is not None]


def _cell(values: list[float], digits: int = 1, scale: float = 1.0) -> str:
    if not values:
        return "—"
    mean, std = mean_and_std([scale * v for v in values])
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def table_markdown(study: Study, scale: Scale, results: dict) -> str:
    """One line per method: test pass@1, pass@k at the wide evaluation's largest k, entropy, the
    share of the policy gradient from positive rollouts, best validation accuracy, minutes per run."""
    top_k = scale.pass_at_k_wide[0] if scale.pass_at_k_wide else None
    wide_seeds = "every seed" if scale.wide_every_seed else "first seed"
    header = (f"| Method | seeds | test pass@1 (%) | pass@{top_k}, {wide_seeds} (%) | entropy (first 10) | entropy (mean) | "
              "entropy (last 10) | grad. share of positives | best val. (%) | min per run |")
    lines = [header, "|" + "---|" * 10]
    for row, title in study.titles:
        entry = results.get(row)
        if entry is None:
            continue
        wide, left_out = _wide_top(row, entry)
        quantity = lambda name: _quantity(row, entry, name)  # noqa: E731
        lines.append("| " + " | ".join([
            title, str(len(entry["seeds"])), _cell(quantity("score")),
            _cell(wide) + (f" ({left_out} of best/ = step 0 left out)" if left_out else ""),
            _cell(quantity("entropy_first"), 3), _cell(quantity("entropy_mean"), 3),
            _cell(quantity("entropy_final"), 3), _cell(quantity("grad_share_pos"), 2),
            _cell(quantity("best_val_accuracy")),
            _cell([d["train_wall_s"] / 60 for d in entry["diagnostics"]] if row != "base" else [], 1),
        ]) + " |")
    return "\n".join(lines)


def comparisons(study: Study, results: dict) -> list[dict]:
    """Every trained method against GRPO on each ``COMPARED`` quantity."""
    reference = results.get(REFERENCE)
    out = []
    if reference is None:
        return out
    for row, title in study.titles:
        if row in ("base", REFERENCE) or row not in results:
            continue
        for quantity, label in COMPARED:
            values, reference_values = _quantity(row, results[row], quantity), _quantity(REFERENCE, reference, quantity)
            if values and reference_values:
                difference, noise, verdict = against_reference(values, reference_values)
                out.append({"row": row, "title": title, "quantity": label, "difference": difference, "noise": noise, "verdict": verdict})
    return out


def comparisons_markdown(study: Study, found: list[dict]) -> str:
    labels = [label for _, label in COMPARED]
    lines = ["| Method | " + " | ".join(f"{label} vs GRPO" for label in labels) + " |", "|" + "---|" * (len(labels) + 1)]
    for row, title in study.titles:
        cells = {c["quantity"]: c for c in found if c["row"] == row}
        if not cells:
            continue
        formatted = []
        for label in labels:
            c = cells.get(label)
            digits = 1 if label in PERCENT_POINTS else 3
            scale = 100 if label == "none solved" else 1
            formatted.append("—" if c is None else f"{scale * c['difference']:+.{digits}f}"
                             + (f" ± {scale * c['noise']:.{digits}f}" if c["noise"] is not None else "") + f" ({c['verdict']})")
        lines.append(f"| {title} | " + " | ".join(formatted) + " |")
    return "\n".join(lines)


def write_report(study: Study, scale: Scale, results: dict, runs: list[Run], out: Path, wall_s: float, linked: list[str]) -> Path:
    """``report.md``, ``results.json`` and the figures of the comparison."""
    from asymrl.plots import TABLE1_FIGURES, plot_paper_groups, plot_pass_at_k_by_row, plot_table1_figures

    found = comparisons(study, results)
    (out / "results.json").write_text(json.dumps({"study": study.name, "scale": scale.name,
                                                  "provenance": provenance(shlex.join(["python", "-m", "asymrl.side_by_side", *sys.argv[1:]])),
                                                  "wall_s": round(wall_s, 1), "rows": results, "comparisons": found, "reused": linked}, indent=2))
    by_row: dict[str, list[Path]] = {}
    for run in runs:
        if (run.directory / "metrics.jsonl").is_file():
            by_row.setdefault(run.row, []).append(run.directory)
    figures_wanted = {**TABLE1_FIGURES, "gradient_share": (
        "share of the policy-gradient norm from positive rollouts (every 10 steps, EMA 0.6)", ["actor/sign/grad_share_pos"], 0.6)}
    figures = plot_table1_figures(by_row, out / "figures", covariance_steps=runs[0].config.log.covariance_steps,
                                  rows=study.titles, figures=figures_wanted)
    if study.band_groups:
        figures.append(plot_paper_groups(by_row, out / "figures" / "groups_with_seed_bands.png", dict(study.titles),
                                         study.band_groups, STUDY_BAND_METRICS))
    curves = {row: entry["pass_at_k"] for row, entry in results.items() if entry.get("pass_at_k")}
    wide = {row: entry["pass_at_k_wide"] for row, entry in results.items() if entry.get("pass_at_k_wide")}
    if curves:
        figures.append(plot_pass_at_k_by_row(curves, out / "figures" / "pass_at_k.png", wide=wide, rows=study.titles))
    seeds = sorted({run.seed for run in runs})
    lines = [f"# {study.title}", "",
             f"{scale.budget_note}. Seeds {', '.join(map(str, seeds))}; cells are the mean over seeds ± their "
             f"standard deviation. Wall time (every invocation that trained or evaluated): {wall_s / 60:.1f} min"
             + (f"; {len(linked)} runs reused from Table 1 ({', '.join(linked)})" if linked else "") + ".", "",
             table_markdown(study, scale, results), "",
             "## Every method against GRPO (difference of seed means ± its standard error; a verdict only beyond twice that)", "",
             comparisons_markdown(study, found), "",
             "## Diagnostics (mean over seeds)", "", diagnostics_markdown(results, rows=study.titles, extra=STUDY_SUMMARIES), ""]
    if curves:
        lines += [f"## pass@k on {scale.benchmarks[0]} (mean over seeds ± their standard deviation)", "",
                  pass_at_k_markdown(curves, rows=study.titles), ""]
    if wide:
        n, problems = scale.pass_at_k_wide
        which = "every seed (mean ± standard deviation)" if scale.wide_every_seed else f"seed {seeds[0]}"
        wide_curves = {row: entry["pass_at_k_wide_seeds"] for row, entry in results.items() if entry.get("pass_at_k_wide_seeds")}
        lines += [f"## pass@k to k = {n}: {which}, {n} samples on the first {problems} problems", "",
                  pass_at_k_markdown(wide_curves if scale.wide_every_seed else {row: [curve] for row, curve in wide.items()},
                                     rows=study.titles), ""]
        left_out = {row: _wide_top(row, results[row])[1] for row in wide}
        from_start = [f"{title} ({left_out[row]} of {len(results[row]['pass_at_k_wide_seeds'])})"
                      for row, title in study.titles if left_out.get(row)]
        if from_start:
            lines += ["Evaluated on best/, which is the step-0 policy, the base, where a run's validation accuracy never rose "
                      f"above the base's: {', '.join(from_start)}. Their lines above include those seeds' (the base policy's "
                      "pass@k); the table and the comparisons with GRPO leave them out.", ""]
    lines += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def study_results(runs: list[Run], headline: str = "best") -> dict:
    """``reproduce.collect``'s per-row results, with ``STUDY_SUMMARIES`` (where logged: the mean share
    of the policy gradient from positive rollouts, the rollout rounds per step) among each seed's
    diagnostics."""
    return collect(runs, extra_summaries=STUDY_SUMMARIES, headline=headline)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.side_by_side", description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=sorted(STUDIES), default="entropy_controls")
    parser.add_argument("--scale", choices=sorted(name for name, scale in SCALES.items() if not scale.needs_gpu), default=None,
                        help="the reproduction scale (default: the study's)")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/<study>-<scale>")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (default: the study's, or with --publish the next ones)")
    parser.add_argument("--rows", default="", help="comma-separated row ids (default: all)")
    parser.add_argument("--reuse", type=Path, default=None, help="a `make reproduce-table1` output (or its published "
                        "runs folder) at the same scale whose finished runs of the same config are linked instead of trained again")
    parser.add_argument("--publish", type=Path, default=None, help="copy finished runs' results under DIR/runs and build the "
                        "page in DIR from every run published there")
    parser.add_argument("--parallel", type=int, default=None, help="runs at a time (default: the scale's)")
    parser.add_argument("--page-only", action="store_true", help="with --publish: rebuild the page in DIR from the runs "
                        "published there and train nothing (after a sitting cut short)")
    args = parser.parse_args(argv)
    study = STUDIES[args.study]
    scale = study.at_scale(args.scale)
    every_row = [row for row, _ in study.titles]
    rows, seeds = rows_and_seeds(parser, args, every_row, scale, study.seeds)

    def write_published_page(wall_s: float, runs_done: int, linked: list[str]) -> None:
        # every row published there, not only this invocation's --rows: the page is the whole study's
        published, total_s = published_runs(args.publish, scale, every_row, wall_s, runs_done, study.config_files(), study.row_overrides)
        page = write_report(study, scale, study_results(published, scale.headline), published, args.publish, total_s, linked)
        print(f"published page: {page} (seeds {', '.join(map(str, sorted({run.seed for run in published})))})")

    if args.page_only:
        check_page_only(parser, args.publish, every_row)
        write_published_page(0.0, 0, [])
        return
    out = (args.out or REPO / "runs" / f"{study.name}-{scale.name}").resolve()
    parallel = args.parallel or scale.parallel
    try:
        runs = study.plan(scale, out, rows, seeds)
    except ConfigError as error:
        parser.error(f"{study.name} at scale {scale.name}: {error}")
    out.mkdir(parents=True, exist_ok=True)
    linked = link_reusable(runs, args.reuse.resolve(), study.reuse_needs_logs) if args.reuse else []
    todo = [run for run in runs if not run.done]
    print(f"{study.title} at scale {scale.name}: {len(rows)} rows x {len(seeds)} seeds = {len(runs)} runs, {len(linked)} reused, "
          f"{len(todo)} still to do, {parallel} at a time -> {out}", flush=True)
    started = time.time()
    on_done = publisher(runs, args.publish, extra_summaries=STUDY_SUMMARIES) if args.publish else None
    failures = run_all(todo, scale, parallel, [], desc=f"{study.name} runs", on_done=on_done) if todo else []
    runs_done = len(todo) - len(failures)  # a failed run trained nothing to count
    wall_s = record_invocation(out, time.time() - started, runs_done)
    print(f"report: {write_report(study, scale, study_results(runs, scale.headline), runs, out, wall_s, linked)}")
    if args.publish:
        write_published_page(time.time() - started, runs_done, linked)
    if failures:
        raise SystemExit("failed runs:\n" + "\n".join(f"  {run.name}: {error}" for run, error in failures))


if __name__ == "__main__":
    main()
