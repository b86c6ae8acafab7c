"""Methods side by side (the entropy controls, the estimators): their rows, reuse of Table 1 runs, the
verdicts, the published page."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
from helpers import fake_finished_run, plotted, record_figures

from asymrl import reproduce, side_by_side
from asymrl.config import _flatten, all_keys, build_config, mapping_keys
from asymrl.reproduce import row_values

study = side_by_side.STUDIES["entropy_controls"]
SCALE = study.at_scale()
ALL_ROWS = [row for row, _ in study.titles]


def test_each_method_is_its_reference_with_only_its_switch_changed(tmp_path):
    runs = {run.row: run for run in study.plan(SCALE, tmp_path, ALL_ROWS, (0,))}
    assert list(runs) == ALL_ROWS
    trained = {row: _flatten(side_by_side._trained_config(run.config), all_keys(), mapping_keys()) for row, run in runs.items()}

    def changes(row: str, reference: str) -> dict:
        return {k: v for k, v in trained[row].items() if trained[reference][k] != v}

    assert changes("asymgrpo_adaptive", "asymgrpo") == {"algorithm.alpha_schedule": "entropy_target", "algorithm.target_entropy": 0.3}
    assert changes("grpo_clip_cov", "grpo") == {"algorithm.policy_loss": "clip_cov"}
    assert changes("grpo_kl_cov", "grpo") == {"algorithm.policy_loss": "kl_cov"}
    assert changes("grpo_80_20", "grpo") == {"algorithm.top_entropy_quantile": 0.2}
    assert changes("grpo_dynamic_sampling", "grpo") == {"algorithm.dynamic_sampling": True}
    # the batch is a knob every scale sets: the row's own value comes after the scale's
    assert changes("grpo_22_prompts", "grpo") == {"train.prompts_per_step": 22, "train.mini_batch_prompts": 11, "train.micro_batch_size": 44}
    assert changes("gspo", "grpo") == {"algorithm.policy_loss": "gspo", "algorithm.loss_agg": "seq-mean-token-mean"}
    assert changes("grpo_entropy_reg", "grpo") == {"algorithm.entropy_coef": 3e-3}
    assert changes("grpo_clip_higher", "grpo") == {"algorithm.eps_high": 0.28}
    # one budget: the paths scale's, and the sign-split gradient norms every 10 steps
    for row, run in runs.items():
        assert run.config.train.total_steps == (0 if row == "base" else 150)
        assert run.config.log.sign_grad_norm_every == 10 and run.config.model.path == "toy:paths"
        assert run.wide  # the first seed: pass@k to k = 32


def finish(run_dir: Path, config, *, wide: bool) -> None:
    """A finished run as reproduce leaves it (its own config in row.yaml)."""
    run_dir.mkdir(parents=True)
    config.save(run_dir / "row.yaml")
    (run_dir / "summary.json").write_text(json.dumps({"steps": 150, "best_val_accuracy": 0.5, "best_step": 120, "wall_s": 240.0}))
    for folder in ["eval"] + (["eval_wide"] if wide else []):
        (run_dir / folder).mkdir()
        (run_dir / folder / "summary.json").write_text(json.dumps({"data": "paths:test", "pass_at_k": {"1": 0.3, "2": 0.4}}))


def test_a_finished_table1_run_of_the_same_training_config_is_linked_not_another(tmp_path):
    reuse, out = tmp_path / "table1", tmp_path / "study"
    runs = {run.name: run for run in study.plan(SCALE, out, ["grpo", "asymgrpo", "grpo_entropy_reg"], (0, 1))}
    for name in ("grpo/seed0", "asymgrpo/seed0", "grpo_entropy_reg/seed1"):
        source = build_config({**row_values(runs[name].row, SCALE, runs[name].seed, reuse, study.config_files()[runs[name].row]),
                               "log.sign_grad_norm_every": 0})  # what is logged differs: still the same run
        finish(reuse / runs[name].row / f"seed{runs[name].seed}", source, wide=runs[name].wide)
    # the same row trained with another learning rate is another run
    other = build_config({**row_values("grpo", SCALE, 1, reuse), "train.lr": 3e-4})
    finish(reuse / "grpo" / "seed1", other, wide=False)
    # unfinished: no evaluation
    unfinished = build_config(row_values("asymgrpo", SCALE, 1, reuse))
    finish(reuse / "asymgrpo" / "seed1", unfinished, wide=False)
    (reuse / "asymgrpo" / "seed1" / "eval" / "summary.json").unlink()

    linked = side_by_side.link_reusable(list(runs.values()), reuse)
    assert sorted(linked) == ["asymgrpo/seed0", "grpo/seed0", "grpo_entropy_reg/seed1"]
    assert (out / "grpo" / "seed0").resolve() == (reuse / "grpo" / "seed0").resolve()
    assert runs["grpo/seed0"].done and not runs["grpo/seed1"].done and not (out / "asymgrpo" / "seed1").exists()
    assert side_by_side.link_reusable(list(runs.values()), reuse) == []  # already there: nothing to do
    # a study that compares a logged series needs it in the reused run too
    needs = tmp_path / "needs"
    runs_needing = study.plan(SCALE, needs, ["grpo", "asymgrpo", "grpo_entropy_reg"], (0, 1))
    assert side_by_side.link_reusable(runs_needing, reuse, ("sign_grad_norm_every",)) == []
    assert side_by_side.STUDIES["estimators"].reuse_needs_logs == ("sign_grad_norm_every",)
    assert side_by_side.STUDIES["entropy_controls"].reuse_needs_logs == ()


def test_a_run_published_by_table1_is_reused_on_any_machine(tmp_path):
    """Table 1's published runs (``make reproduce-table1 SCALE=collapse``, committed under docs/) carry
    their config, so a study reuses them on a fresh clone, where Table 1's run folders are not; the
    study publishes the reused run as Table 1 published it."""
    collapse = study.at_scale("collapse")
    (table1_run,) = reproduce.plan(collapse, tmp_path / "table1", ["grpo"], (3,))
    fake_finished_run(table1_run.directory, steps=collapse.steps)
    published = tmp_path / "docs" / "table1"
    reproduce.publish_run(table1_run, published, covariance_steps=40)
    shutil.rmtree(tmp_path / "table1")  # a fresh clone: only the published folder

    runs = study.plan(collapse, tmp_path / "study", ["grpo", "asymgrpo"], (3,))
    assert side_by_side.link_reusable(runs, published) == ["grpo/seed3"]
    grpo, asymgrpo = runs
    assert grpo.done and not asymgrpo.done
    reproduce.publisher(runs, tmp_path / "page")  # publishes what is finished at once
    copied = tmp_path / "page" / "runs" / "grpo" / "seed3"
    assert sorted(p.relative_to(copied) for p in copied.rglob("*")) == sorted(p.relative_to(published / "grpo" / "seed3")
                                                                           for p in (published / "grpo" / "seed3").rglob("*"))
    assert (copied / "statistics.json").read_bytes() == (published / "grpo" / "seed3" / "statistics.json").read_bytes()


def test_against_reference_by_hand():
    difference, noise, verdict = side_by_side.against_reference([3.0, 4.0, 5.0], [1.0, 1.5, 2.0])
    assert difference == pytest.approx(2.5)
    assert noise == pytest.approx(math.sqrt(1.0 / 3 + 0.25 / 3))
    assert verdict == "above"
    assert side_by_side.against_reference([1.0, 2.0], [1.5, 1.6])[2] == "within noise"
    assert side_by_side.against_reference([0.0, 0.1, 0.2], [1.0, 1.1, 1.2])[2] == "below"
    assert side_by_side.against_reference([1.0], [0.0, 0.5])[2] == "one seed: no verdict"


def test_the_page_from_finished_runs(tmp_path, monkeypatch):
    """Two methods x two seeds with hand-made metrics: the table, the verdict against GRPO, the
    gradient-share column (mean over the steps that logged it) and the figures."""
    runs = study.plan(SCALE, tmp_path, ["base", "grpo", "grpo_clip_cov"], (0, 1))
    for run in runs:
        finish(run.directory, run.config, wide=run.wide)
        offset = {"base": 0.0, "grpo": 0.0, "grpo_clip_cov": 0.1}[run.row] + 0.02 * run.seed
        records = [{"step": step, "entropy/all": 0.3 + offset, "val/accuracy": 0.4,
                    "groups/none_solved_frac": 0.2, "reward/accuracy": 0.5}
                   | ({"actor/sign/grad_share_pos": 0.4 + offset} if step % 10 == 0 else {}) for step in range(1, 31)]
        if run.row == "base":
            records = [{"step": 0, "val/accuracy": 0.3}]
        (run.directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        score = {"base": 0.2, "grpo": 0.30, "grpo_clip_cov": 0.31}[run.row] + 0.01 * run.seed
        (run.directory / "eval" / "summary.json").write_text(json.dumps({"data": "paths:test", "pass_at_k": {"1": score, "2": score + 0.1}}))
    results = side_by_side.study_results(runs)
    assert results["grpo_clip_cov"]["diagnostics"][1]["grad_share_pos"] == pytest.approx(0.52)
    built = record_figures(monkeypatch)
    report = side_by_side.write_report(study, SCALE, results, runs, tmp_path, wall_s=600.0, linked=[]).read_text()
    assert ("| GRPO w/ Clip-Cov | 2 | 31.5 ± 0.7 | 40.0 | 0.410 ± 0.014 | 0.410 ± 0.014 | 0.410 ± 0.014 | 0.51 ± 0.01 | 50.0 ± 0.0 "
            "| 4.0 ± 0.0 |") in report
    found = {c["quantity"]: c for c in json.loads((tmp_path / "results.json").read_text())["comparisons"] if c["row"] == "grpo_clip_cov"}
    assert found["entropy (mean)"]["verdict"] == "above" and found["entropy (mean)"]["difference"] == pytest.approx(0.1)
    assert found["test pass@1"]["verdict"] == "within noise"
    assert found["grad. share of positives"]["verdict"] == "above" and found["grad. share of positives"]["difference"] == pytest.approx(0.1)
    for name in ("entropy", "validation_accuracy", "gradient_share", "pass_at_k"):
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # What the figures plot: each row's mean over its two seeds (the EMA of a constant is that constant).
    steps = list(range(1, 31))
    assert plotted(built["entropy"].axes[0]) == {"GRPO": (steps, pytest.approx([0.31] * 30)),
                                                 "GRPO w/ Clip-Cov": (steps, pytest.approx([0.41] * 30))}
    assert plotted(built["validation_accuracy"].axes[0]) == {"Base policy (toy:paths)": ([0], pytest.approx([0.3])),
                                                             "GRPO": (steps, pytest.approx([0.4] * 30)),
                                                             "GRPO w/ Clip-Cov": (steps, pytest.approx([0.4] * 30))}
    assert plotted(built["gradient_share"].axes[0]) == {"GRPO": ([10, 20, 30], pytest.approx([0.41] * 3)),
                                                        "GRPO w/ Clip-Cov": ([10, 20, 30], pytest.approx([0.51] * 3))}
    # pass@k: a panel per trained row, its seeds' mean after RL over the base's (scores 0.30 / 0.31 + 0.01 x seed).
    panels = {axis.get_title(): plotted(axis) for axis in built["pass_at_k"].axes if axis.get_visible()}
    assert panels["GRPO"]["after RL"] == ([1, 2], pytest.approx([0.305, 0.405]))
    assert panels["GRPO w/ Clip-Cov"]["after RL"] == ([1, 2], pytest.approx([0.315, 0.415]))
    assert panels["GRPO"]["Base policy (toy:paths)"] == ([1, 2], pytest.approx([0.205, 0.305]))



def test_a_studys_band_figure_groups_its_rows_with_seed_bands(tmp_path, monkeypatch):
    """Each band group names rows of its study; the page draws them as the mean over seeds with a
    band of one standard deviation, the positives' gradient share among the metrics."""
    from asymrl import plots

    for each in side_by_side.STUDIES.values():
        study_rows = {row for row, _ in each.titles}
        grouped = {row for _, rows in each.band_groups for row in rows}
        assert grouped <= study_rows and study_rows - grouped == {"base"}, each.name  # every trained method is drawn
    built = {}

    def recording(*args, **kwargs):
        built["groups"] = plots_groups(*args, **kwargs)
        return built["groups"]

    plots_groups = plots.paper_groups_figure
    monkeypatch.setattr(plots, "paper_groups_figure", recording)
    banded = dataclasses.replace(study, band_groups=(("two", ("grpo", "grpo_clip_cov")),))
    runs = study.plan(SCALE, tmp_path, ["grpo", "grpo_clip_cov"], (0, 1))
    for run in runs:
        finish(run.directory, run.config, wide=run.wide)
        offset = 0.1 * (run.row == "grpo_clip_cov") + 0.02 * run.seed
        records = [{"step": step, "entropy/all": 0.3 + offset} | ({"actor/sign/grad_share_pos": 0.4 + offset} if step % 10 == 0 else {})
                   for step in range(1, 31)]
        (run.directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    side_by_side.write_report(banded, SCALE, side_by_side.study_results(runs), runs, tmp_path, wall_s=60.0, linked=[])
    assert (tmp_path / "figures" / "groups_with_seed_bands.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = {axis.get_title(): axis for axis in built["groups"].axes}
    assert len(panels) == len(side_by_side.STUDY_BAND_METRICS)
    entropy = plotted(panels["two: token entropy"])
    assert entropy["GRPO (2 seeds)"] == (list(range(1, 31)), pytest.approx([0.31] * 30))
    share = plotted(panels["two: grad. share of positives (every 10 steps)"])
    assert share["GRPO w/ Clip-Cov (2 seeds)"] == ([10, 20, 30], pytest.approx([0.51] * 3))
    # the band: one standard deviation of the two seeds (0.02 apart: sd 0.02 / sqrt 2) on each side
    band = panels["two: token entropy"].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.31 - 0.02 / math.sqrt(2)) and band.max() == pytest.approx(0.31 + 0.02 / math.sqrt(2))


def test_page_only_rebuilds_the_published_page_and_trains_nothing(tmp_path, monkeypatch):
    """After a sitting cut short, ``--page-only`` builds the page from the runs published so far: of
    every row published, whatever ``--rows`` names (an invocation that adds one row keeps the others)."""
    from asymrl import reproduce

    monkeypatch.setattr(reproduce, "execute", lambda *args: pytest.fail("--page-only trained a run"))
    record_figures(monkeypatch)
    published = tmp_path / "docs"
    for run in study.plan(SCALE, published / "runs", ["base", "grpo"], (0,)):
        finish(run.directory, run.config, wide=run.wide)
        (run.directory / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "entropy/all": 0.3, "val/accuracy": 0.4}) + "\n"
                                                             for s in range(1, 11)))
    side_by_side.main(["--study", "entropy_controls", "--rows", "gspo", "--publish", str(published), "--page-only"])
    results = json.loads((published / "results.json").read_text())
    assert set(results["rows"]) == {"base", "grpo"} and results["rows"]["grpo"]["scores"] == {"paths:test": [30.0]}
    assert "| GRPO | 1 | 30.0 |" in (published / "report.md").read_text()
    with pytest.raises(SystemExit):
        side_by_side.main(["--study", "entropy_controls", "--page-only"])  # no DIR named
    with pytest.raises(SystemExit):
        side_by_side.main(["--study", "entropy_controls", "--publish", str(tmp_path / "empty"), "--page-only"])
    assert not (tmp_path / "empty").exists()


def test_a_wide_evaluation_of_the_step0_policy_is_not_the_methods(tmp_path, monkeypatch):
    """A trained run whose validation never rose above the start keeps best/ = step 0: its pass@k to
    the largest k is the base policy's. The table, the comparison with GRPO and the page say so and
    leave that seed out, instead of crediting the method with the base's breadth."""
    wide_scale = dataclasses.replace(SCALE, wide_every_seed=True)
    runs = study.plan(wide_scale, tmp_path, ["base", "grpo", "grpo_clip_cov"], (0, 1))
    for run in runs:
        finish(run.directory, run.config, wide=True)
        wide = {"base": 0.9, "grpo": 0.7, "grpo_clip_cov": 0.6 if run.seed == 0 else 0.9}[run.row]
        (run.directory / "eval_wide" / "summary.json").write_text(json.dumps({"data": "paths:test", "pass_at_k": {"1": 0.3, "32": wide}}))
        (run.directory / "metrics.jsonl").write_text(json.dumps({"step": 1, "entropy/all": 0.3}) + "\n")
        if run.row == "base" or (run.row == "grpo_clip_cov" and run.seed == 1):
            summary = json.loads((run.directory / "summary.json").read_text())
            (run.directory / "summary.json").write_text(json.dumps({**summary, "best_step": 0}))
    results = side_by_side.study_results(runs)
    assert results["grpo_clip_cov"]["pass_at_k_wide_best_steps"] == [120, 0]
    record_figures(monkeypatch)
    report = side_by_side.write_report(study, wide_scale, results, runs, tmp_path, wall_s=60.0, linked=[]).read_text()
    assert "| GRPO w/ Clip-Cov | 2 | 30.0 ± 0.0 | 60.0 (1 of best/ = step 0 left out) |" in report
    assert "| Base policy (toy:paths) | 2 | 30.0 ± 0.0 | 90.0 ± 0.0 |" in report  # the base's own step 0 is its policy
    found = {c["quantity"]: c for c in json.loads((tmp_path / "results.json").read_text())["comparisons"] if c["row"] == "grpo_clip_cov"}
    assert found["test pass@k, largest k"]["difference"] == pytest.approx(-10.0)
    assert found["test pass@k, largest k"]["verdict"] == "one seed: no verdict"
    assert "the step-0 policy, the base, where a run's validation accuracy never rose above the base's: GRPO w/ Clip-Cov (1 of 2)" in report


def test_the_rollout_rounds_a_step_drew_are_summarised_and_published(tmp_path, monkeypatch):
    """Dynamic sampling draws up to its round limit of rollouts a step, so at one step count it spends
    more samples than the other rows: its mean rounds per step is in each seed's diagnostics, survives
    publishing (the published metrics drop time/*) and is a column of the page's diagnostics."""
    from asymrl.reproduce import publish_run

    runs = study.plan(SCALE, tmp_path / "out", ["grpo", "grpo_dynamic_sampling"], (0, 1))
    rounds = {0: [1, 2, 3, 4], 1: [2, 2, 2, 2]}  # means 2.5 and 2.0
    for run in runs:
        finish(run.directory, run.config, wide=run.wide)
        records = [{"step": step, "entropy/all": 0.3} | ({"time/generation_rounds": float(rounds[run.seed][step - 1])}
                                                        if run.row == "grpo_dynamic_sampling" else {}) for step in range(1, 5)]
        (run.directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    published = [dataclasses.replace(run, directory=publish_run(run, tmp_path / "published", covariance_steps=0,
                                                                extra_summaries=side_by_side.STUDY_SUMMARIES)) for run in runs]
    assert all("time/" not in line for run in published for line in (run.directory / "metrics.jsonl").read_text().splitlines())
    for these in (runs, published):
        results = side_by_side.study_results(these)
        assert [d["generation_rounds_mean"] for d in results["grpo_dynamic_sampling"]["diagnostics"]] == [2.5, 2.0]
        assert [d["generation_rounds_mean"] for d in results["grpo"]["diagnostics"]] == [None, None]
    record_figures(monkeypatch)
    report = side_by_side.write_report(study, SCALE, results, published, tmp_path, wall_s=60.0, linked=[]).read_text()
    diagnostics = report.split("## Diagnostics")[1].split("##")[0]
    header = next(line for line in diagnostics.splitlines() if line.startswith("| Method"))
    assert header.endswith("| grad. share of positives | rollout rounds per step |")
    assert next(line for line in diagnostics.splitlines() if line.startswith("| GRPO w/ dynamic sampling")).endswith("| — | 2.25 |")
    assert next(line for line in diagnostics.splitlines() if line.startswith("| GRPO |")).endswith("| — | — |")


def test_a_row_whose_batch_cannot_be_split_stops_the_invocation_before_any_run(tmp_path, monkeypatch):
    """A row override that breaks the batch shapes (micro-batches that do not divide a mini-batch) is
    refused when the invocation is planned, naming the knob, not when that run's turn comes."""
    from asymrl import reproduce

    monkeypatch.setattr(reproduce, "execute", lambda *args: pytest.fail("a run started"))
    broken = dataclasses.replace(study, row_overrides={"grpo_22_prompts": {"train.prompts_per_step": 22, "train.mini_batch_prompts": 11}})
    with pytest.raises(reproduce.ConfigError, match=r"train.micro_batch_size \(32\) must divide .* 88"):
        broken.plan(SCALE, tmp_path, ["grpo", "grpo_22_prompts"], (0,))
    monkeypatch.setitem(side_by_side.STUDIES, "entropy_controls", broken)
    with pytest.raises(SystemExit):
        side_by_side.main(["--study", "entropy_controls", "--rows", "grpo_22_prompts", "--seeds", "0", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    assert [run.config.train.micro_batch_size for run in study.plan(SCALE, tmp_path, ["grpo_22_prompts"], (0,))] == [44]
