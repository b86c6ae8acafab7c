"""`make reproduce-table1` (asymrl.reproduce): row configs at every scale, skipping and resuming,
and a real two-row run of the tiny scale whose table matches its evaluations."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from helpers import fake_finished_run, plotted, record_figures

from asymrl import reproduce
from asymrl.config import build_config, load_yaml
from asymrl.table1 import ROWS


@pytest.mark.parametrize("scale", sorted(reproduce.SCALES))
def test_every_row_builds_a_valid_config_at_every_scale(scale, tmp_path):
    runs = reproduce.plan(reproduce.SCALES[scale], tmp_path, [row for row, _ in ROWS], (0, 1))
    assert len(runs) == 30 and len({run.directory for run in runs}) == 30
    by_name = {run.name: run.config for run in runs}
    # The row's algorithm survives the scale's overrides.
    assert by_name["asymgrpo/seed0"].algorithm.estimator == "asymgrpo"
    assert by_name["asymgrpo_clip_higher/seed1"].algorithm.eps_high == pytest.approx(0.28)
    assert by_name["grpo_entropy_reg/seed0"].algorithm.entropy_coef > 0
    assert by_name["pos_only/seed1"].train.seed == 1
    assert by_name["base/seed0"].train.total_steps == 0          # the base row is never updated
    if scale == "paper":
        assert by_name["grpo/seed0"].model.path == "Qwen/Qwen3-4B"
        assert by_name["dr_grpo/seed0"].loss_agg_constant == 4096
    else:
        assert by_name["grpo/seed0"].model.path == reproduce.SCALES[scale].overrides["model.path"]
        assert by_name["grpo/seed0"].train.total_steps == reproduce.SCALES[scale].steps
        # Dr.GRPO's constant is the max response length of the scale (the knob's default).
        assert by_name["dr_grpo/seed0"].loss_agg_constant == reproduce.SCALES[scale].overrides["rollout.max_new_tokens"]
        assert runs[0].name == "base/seed0" and runs[15].name == "base/seed1"  # seed by seed


def test_the_collapse_scale_gives_every_row_the_same_settings_but_its_own(tmp_path):
    """The regime's Table 1: every row's config is GRPO's except for the keys its own YAML changes
    (and its seed and folder); 15 rows x the seeds, seed by seed; pass@k to 64 for every seed."""
    from asymrl.config import _flatten, all_keys, mapping_keys

    scale = reproduce.SCALES["collapse"]
    rows = [row for row, _ in ROWS]
    runs = reproduce.plan(scale, tmp_path, rows, scale.seeds)
    assert len(runs) == 15 * len(scale.seeds) >= 60 and [run.name for run in runs[:2]] == ["base/seed0", "reinforce/seed0"]
    assert all(run.wide for run in runs) and scale.pass_at_k_wide == (64, 200) and scale.seeds_per_invocation == 1
    # the last step's policy is evaluated too (eval_final/), for every trained row
    assert all(run.final == (run.row != "base") and run.config.train.save_final == (run.row != "base") for run in runs)

    def flat(run) -> dict:
        values = _flatten(run.config.to_dict(), all_keys(), mapping_keys())
        return {k: v for k, v in values.items() if k not in ("train.seed", "train.output_dir")}

    grpo = {run.seed: flat(run) for run in runs if run.row == "grpo"}
    assert grpo[0]["train.lr"] == 3e-4 and grpo[0]["train.total_steps"] == 800 and grpo[0]["model.path"] == "toy:paths"
    for run in runs:
        if run.row in ("base", "grpo"):
            continue
        own = set(load_yaml(reproduce.ROW_CONFIGS / f"{run.row}.yaml")) - set(load_yaml(reproduce.ROW_CONFIGS / "grpo.yaml"))
        own |= {key for key, value in load_yaml(reproduce.ROW_CONFIGS / f"{run.row}.yaml").items()
                if load_yaml(reproduce.ROW_CONFIGS / "grpo.yaml").get(key) != value}
        changed = {key for key, value in flat(run).items() if grpo[run.seed][key] != value}
        assert changed <= own, (run.name, changed - own)
        assert changed, run.name  # and something does change
    assert all(run.config.train.seed == run.seed for run in runs)


def test_every_row_resolves_to_its_full_config_of_before():
    # Each row's full YAML as it was before rows became deltas over base.yaml (load_yaml's values).
    before = json.loads((Path(__file__).parent / "data" / "table1_rows_full.json").read_text())
    assert sorted(before) == sorted(row for row, _ in ROWS)
    for row, values in before.items():
        delta = load_yaml(reproduce.ROW_CONFIGS / f"{row}.yaml")
        assert build_config(delta) == build_config(values), row
        assert len((reproduce.ROW_CONFIGS / f"{row}.yaml").read_text().splitlines()) <= (42 if row == "base" else 12), row  # base: the full setting, engine sections nested


def test_a_new_scale_follows_its_fields_not_its_name(tmp_path, capsys, monkeypatch):
    tiny = reproduce.SCALES["tiny"]
    mini = dataclasses.replace(tiny, name="mini", needs_gpu=True, estimate_cost=True, confirm_seconds=3,
                               base_row_title="Base policy (mini)")
    monkeypatch.setitem(reproduce.SCALES, "mini", mini)
    runs = reproduce.plan(mini, tmp_path, ["base", "grpo"], (0,))
    assert [run.config.train.total_steps for run in runs] == [0, tiny.steps]
    assert reproduce.row_titles(mini) == {"base": "Base policy (mini)"} and reproduce.row_titles(reproduce.SCALES["paper"]) == {}
    args = ["--scale", "mini", "--rows", "base,grpo", "--out", str(tmp_path)]
    reproduce.main([*args, "--dry-run"])
    printed = capsys.readouterr().out
    assert "Table 1, scale mini" in printed and "GPU-hours" in printed and "grpo/seed0: to do" in printed
    monkeypatch.setattr(reproduce, "_cuda_available", lambda: False)
    with pytest.raises(SystemExit):
        reproduce.main(args)
    refusal = capsys.readouterr().err
    assert "scale mini trains on GPUs" in refusal and "SCALE=tiny" in refusal   # the scales that need none
    # With a GPU: the pause of confirm_seconds comes before anything starts; --yes skips it.
    monkeypatch.setattr(reproduce, "_cuda_available", lambda: True)
    events = []

    def started(*args, **kwargs):
        events.append("started")
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce.time, "sleep", lambda seconds: events.append(f"paused {seconds} s"))
    monkeypatch.setattr(reproduce, "run_all", started)
    with pytest.raises(KeyboardInterrupt):
        reproduce.main(args)
    with pytest.raises(KeyboardInterrupt):
        reproduce.main([*args, "--yes"])
    assert events == ["paused 3 s", "started", "started"]
    # The same scale without a GPU, estimate or pause: no estimate is printed, nothing waits.
    monkeypatch.setitem(reproduce.SCALES, "mini", dataclasses.replace(mini, needs_gpu=False, estimate_cost=False, confirm_seconds=0))
    monkeypatch.setattr(reproduce, "_cuda_available", lambda: False)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        reproduce.main(args)
    assert events[3:] == ["started"] and "GPU-hours" not in capsys.readouterr().out


def test_a_scale_with_an_invalid_config_fails_at_plan_time(tmp_path, capsys, monkeypatch):
    broken = dataclasses.replace(reproduce.SCALES["tiny"], name="broken", overrides={**reproduce.SCALES["tiny"].overrides, "model.path": None})
    monkeypatch.setitem(reproduce.SCALES, "broken", broken)
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "broken", "--rows", "grpo", "--out", str(tmp_path)])
    assert "model.path: expected a string, got None" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())                     # nothing was started


def test_paper_scale_estimate_scales_with_steps(tmp_path, capsys):
    scale = reproduce.SCALES["paper"]
    runs = reproduce.plan(scale, tmp_path, ["grpo"], (42,))
    hours, details = reproduce.paper_gpu_hours(runs)
    runs[0].config.train.total_steps = 2 * details["grpo/seed42"]["steps"]
    assert reproduce.paper_gpu_hours(runs)[0] == pytest.approx(2 * hours)
    assert hours > 1
    reproduce.main(["--scale", "paper", "--rows", "grpo", "--out", str(tmp_path), "--dry-run"])
    assert "GPU-hours" in capsys.readouterr().out


def test_bad_rows_and_overrides_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "tiny", "--rows", "grpo,gpro", "--dry-run", "--out", str(tmp_path)])
    assert "gpro" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "tiny", "--set", "train.lrr=1", "--dry-run", "--out", str(tmp_path)])
    assert "did you mean 'train.lr'" in capsys.readouterr().err


def test_tiny_scale_two_rows_end_to_end_then_nothing_is_redone(tmp_path, monkeypatch):
    args = ["--scale", "tiny", "--rows", "base,pos_only", "--seeds", "0", "--steps", "3", "--eval-limit", "40",
            "--set", "eval.max_problems=40", "--set", "train.prompts_per_step=8", "--set", "train.save_every=1",
            "--out", str(tmp_path)]
    built = record_figures(monkeypatch)
    reproduce.main(args)
    run_dir = tmp_path / "pos_only" / "seed0"
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 3
    evaluation = json.loads((run_dir / "eval" / "summary.json").read_text())["benchmarks"]["toy:test"]
    assert evaluation["problems"] == 40 and evaluation["avg_at_k"] == 4
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rows"]["pos_only"]["scores"]["toy:test"] == [evaluation["accuracy"]]
    assert results["rows"]["base"]["diagnostics"][0]["entropy_mean"] is None      # never trained
    assert results["rows"]["pos_only"]["diagnostics"][0]["entropy_mean"] > 0
    markdown = (tmp_path / "table1.md").read_text()
    assert f"| Pos-Only | {evaluation['accuracy']:.2f} |" in markdown and "Base policy (toy:tiny)" in markdown
    # The figures plot the run's own series: entropy per step (EMA 0.6), validation at each check.
    from asymrl.metrics import read_metrics
    from asymrl.plots import ema

    records = read_metrics(run_dir / "metrics.jsonl")
    steps = [r["step"] for r in records if "entropy/all" in r]
    assert plotted(built["entropy"].axes[0]) == {"Pos-Only": (steps, pytest.approx(ema([r["entropy/all"] for r in records if "entropy/all" in r], 0.6)))}
    validation = plotted(built["validation_accuracy"].axes[0])
    assert validation["Pos-Only"][0] == [r["step"] for r in records if "val/accuracy" in r] and "Base policy (toy:tiny)" in validation
    assert set(built) == {"entropy", "validation_accuracy", "solved_fractions", "logp_increment", "covariance_by_accuracy"}
    assert all((tmp_path / "figures" / f"{name}.png").is_file() for name in built)
    # A second invocation finds both runs done: no child process is started again.
    logs = {path: path.read_text() for path in tmp_path.glob("*/seed0/*.log")}
    reproduce.main(args)
    assert {path: path.read_text() for path in tmp_path.glob("*/seed0/*.log")} == logs
    # An interrupted run (no summary.json yet) resumes from its checkpoint instead of restarting.
    (run_dir / "summary.json").unlink()
    (run_dir / "eval" / "summary.json").unlink()
    reproduce.main([*args[:7], "6", *args[8:]])
    assert "resumed from" in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 6


def test_a_run_stopped_early_is_not_finished(tmp_path):
    tiny, paper = (reproduce.plan(reproduce.SCALES[s], tmp_path / s, ["grpo"], (0,))[0] for s in ("tiny", "paper"))
    for run, total in ((tiny, 60), (paper, 295)):
        assert not run.trained                      # nothing there yet
        run.directory.mkdir(parents=True)
        # train.max_wall_s stopped it at step 40: not finished, so the next invocation resumes it.
        (run.directory / "summary.json").write_text(json.dumps({"steps": 40, "total_steps": total}))
        assert not run.trained
        (run.directory / "summary.json").write_text(json.dumps({"steps": total, "total_steps": total}))
        assert run.trained
    assert paper.config.train.total_steps is None   # epochs-based: the trainer's own count decides


def test_children_get_their_gpu_and_thread_count(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    tiny_env = reproduce._child_env(reproduce.SCALES["tiny"], None)
    assert tiny_env["OMP_NUM_THREADS"] == "1" and "CUDA_VISIBLE_DEVICES" not in tiny_env
    assert reproduce._child_env(reproduce.SCALES["small"], "3")["CUDA_VISIBLE_DEVICES"] == "3"


def test_gpu_scales_refuse_to_start_without_a_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "_cuda_available", lambda: False)
    for scale in ("paper", "small"):
        with pytest.raises(SystemExit):
            reproduce.main(["--scale", scale, "--rows", "grpo", "--out", str(tmp_path / scale)])
        assert "SCALE=tiny" in capsys.readouterr().err
        assert not (tmp_path / scale / "grpo").exists()      # nothing was started


def test_paths_scale_evaluates_by_pass_at_k_and_draws_the_curves(tmp_path, monkeypatch):
    # The exploration testbed's scale, shrunk to one row (the untrained row's path is the tiny test's):
    # the table's accuracy is pass@1, the curve is kept per seed, and the first seed is also
    # evaluated to a larger k (eval_wide/).
    small = dataclasses.replace(reproduce.SCALES["paths"], pass_at_k_wide=(8, 10))
    monkeypatch.setitem(reproduce.SCALES, "paths", small)
    args = ["--scale", "paths", "--rows", "grpo", "--seeds", "0,1", "--steps", "2", "--eval-limit", "12",
            "--set", "eval.max_problems=12", "--set", "train.prompts_per_step=4", "--out", str(tmp_path)]
    built = record_figures(monkeypatch)
    reproduce.main(args)
    results = json.loads((tmp_path / "results.json").read_text())["rows"]
    curves = [json.loads((tmp_path / "grpo" / f"seed{seed}" / "eval" / "summary.json").read_text()) for seed in (0, 1)]
    assert [c["problems"] for c in curves] == [12, 12] and set(curves[0]["pass_at_k"]) == {"1", "2"}
    # Scored as the runs trained: the paths reward and template (the math verifier would score 0 here).
    assert all((c["task"], c["reward"], c["prompt_template"]) == ("paths", "paths", "{problem}") for c in curves)
    assert sum(c["pass_at_k"]["2"] for c in curves) > 0  # 24 problem-draws of pass@2 ~ 0.4 each
    assert results["grpo"]["scores"]["paths:test"] == [pytest.approx(100 * c["pass_at_k"]["1"]) for c in curves]
    assert results["grpo"]["pass_at_k"] == [c["pass_at_k"] for c in curves]
    wide = json.loads((tmp_path / "grpo" / "seed0" / "eval_wide" / "summary.json").read_text())
    assert wide["n"] == 8 and wide["problems"] == 10 and results["grpo"]["pass_at_k_wide"] == wide["pass_at_k"]
    assert not (tmp_path / "grpo" / "seed1" / "eval_wide").exists()
    report = (tmp_path / "report.md").read_text()
    mean_pass_2 = 100 * sum(c["pass_at_k"]["2"] for c in curves) / 2
    assert "| GRPO | " in report and f"{mean_pass_2:.1f} ± " in report
    assert "## pass@k to k = 8: seed 0 of each row, 8 samples on the first 10 problems" in report
    panels = {axis.get_title(): plotted(axis) for axis in built["pass_at_k"].axes if axis.get_visible()}
    after = [value for title, panel in panels.items() if "GRPO" in title for label, value in panel.items() if label == "after RL"]
    assert after == [([1, 2], pytest.approx([sum(c["pass_at_k"][k] for c in curves) / 2 for k in ("1", "2")]))], panels
    assert (tmp_path / "figures" / "pass_at_k.png").is_file()
    invocations = [json.loads(line) for line in (tmp_path / "invocations.jsonl").read_text().splitlines()]
    assert invocations[0]["runs_done"] == 2 and invocations[0]["wall_s"] > 0


def test_pass_at_k_means_and_table():
    from asymrl.plots import pass_at_k_means

    curves = [{"1": 0.2, "2": 0.3, "4": 0.5}, {"1": 0.4, "2": 0.5}]
    ks, means, stds = pass_at_k_means(curves)
    assert ks == [1, 2] and means == pytest.approx([0.3, 0.4]) and stds == pytest.approx([0.1414214, 0.1414214])
    table = reproduce.pass_at_k_markdown({"grpo": curves, "base": [curves[0]]})
    assert table.splitlines()[0] == "| Method | pass@1 | pass@2 |"
    assert table.splitlines()[2] == "| Qwen3-4B | 20.0 | 30.0 |"          # base first (the paper's order), one seed: no spread
    assert table.splitlines()[3] == "| GRPO | 30.0 ± 14.1 | 40.0 ± 14.1 |"


def test_a_published_run_reads_like_the_run_itself(tmp_path):
    """publish_run keeps what the page needs, at a size to commit: the page built from the published
    folder has the run's statistics at full resolution and the same evaluations."""
    scale = dataclasses.replace(reproduce.SCALES["paths"], steps=100, wide_every_seed=True, evaluate_final=True)
    (run,) = reproduce.plan(scale, tmp_path / "runs", ["grpo"], (3,))
    fake_finished_run(run.directory)
    target = reproduce.publish_run(run, tmp_path / "published", covariance_steps=40)
    assert target == tmp_path / "published" / "grpo" / "seed3"
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["metrics.jsonl", "row.yaml", "statistics.json"] + ["summary.json"] * 4
    # the config it trained with, less the machine's path: what a study compares before reusing it
    recorded = build_config(load_yaml(target / "row.yaml"))
    assert recorded.train.output_dir == "grpo/seed3" and str(tmp_path) not in (target / "row.yaml").read_text()
    assert dataclasses.replace(recorded.train, output_dir="") == dataclasses.replace(run.config.train, output_dir="")
    assert recorded.to_dict()["algorithm"] == run.config.to_dict()["algorithm"]
    thinned = [json.loads(line) for line in (target / "metrics.jsonl").read_text().splitlines()]
    # every step up to the covariance window, then every 5th, and every step with a validation or a
    # log-prob increment (steps 41, 51, ...: none a multiple of 5); no time/* or loss
    assert [r["step"] for r in thinned] == sorted([*range(0, 41), *range(45, 101, 5), *range(41, 101, 10)])
    assert [r["step"] for r in thinned if "logp_increment/correct" in r] == list(range(1, 101, 10))
    assert thinned[[r["step"] for r in thinned].index(51)] == {"step": 51, "logp_increment/correct": 0.01}  # nothing else off the grid
    assert all(not k.startswith(("time/", "actor/pg_loss")) for r in thinned for k in r)
    assert "run_dir" not in json.loads((target / "summary.json").read_text())
    (published,) = reproduce.plan(scale, tmp_path / "published", ["grpo"], (3,))
    original, copy = reproduce.collect([run])["grpo"], reproduce.collect([published])["grpo"]
    assert copy == original and copy["diagnostics"][0]["entropy_first"] == pytest.approx(0.3 - 0.002 * 5.5)
    assert copy["pass_at_k_wide_seeds"] == [{"1": 0.3, "2": 0.45}]
    assert copy["scores"] == {"paths:test": [30.0]} and copy["scores_final"] == {"paths:test": [25.0]}
    assert "| GRPO | 1 | 30.0 | 25.0 |" in reproduce.best_and_final_markdown({"grpo": copy})
    headed_by_final = reproduce.collect([published], headline="final")["grpo"]
    assert headed_by_final["scores"] == {"paths:test": [25.0]} and headed_by_final["scores_best"] == {"paths:test": [30.0]}
    assert reproduce.SCALES["collapse"].headline == "final" and reproduce.SCALES["paths"].headline == "best"
    # published again (another page reusing it): copied as it is, not thinned a second time
    again = reproduce.publish_run(published, tmp_path / "other_page", covariance_steps=40)
    assert sorted(p.relative_to(again) for p in again.rglob("*")) == sorted(p.relative_to(target) for p in target.rglob("*"))
    assert all((again / p.relative_to(target)).read_bytes() == p.read_bytes() for p in target.rglob("*") if p.is_file())


def test_an_invocation_adds_whole_seeds_after_the_published_ones(tmp_path):
    published = tmp_path / "runs"
    for row, seeds in (("grpo", (0, 1, 2)), ("asymgrpo", (0, 1))):
        for seed in seeds:
            (published / row / f"seed{seed}" / "eval").mkdir(parents=True)
            (published / row / f"seed{seed}" / "eval" / "summary.json").write_text("{}")
    assert reproduce.published_seeds(published, ["grpo", "asymgrpo"]) == ({0, 1}, {0, 1, 2})
    assert reproduce.next_seeds(published, ["grpo", "asymgrpo"], 2) == (2, 3)   # finish seed 2, then a new one
    assert reproduce.next_seeds(published, ["grpo"], 2) == (3, 4)
    assert reproduce.next_seeds(tmp_path / "none", ["grpo"], 3) == (0, 1, 2)


def test_a_sitting_cut_short_keeps_every_run_it_finished(tmp_path, monkeypatch):
    """Each run is published as soon as it has finished, not at the end of the invocation: a sitting
    stopped part-way (Ctrl-C, a machine taken back) leaves its finished runs under DIR/runs, and
    --page-only rebuilds the page from them without training anything."""
    scale = dataclasses.replace(reproduce.SCALES["paths"], steps=100, wide_every_seed=True, evaluate_final=True)
    monkeypatch.setitem(reproduce.SCALES, "paths", scale)
    record_figures(monkeypatch)
    started = []

    def execute(run, scale, gpu):
        started.append(run.name)
        if run.row == "grpo":
            fake_finished_run(run.directory)
            return "trained (fake)"
        raise KeyboardInterrupt  # the sitting is stopped during the second run

    monkeypatch.setattr(reproduce, "execute", execute)
    published = tmp_path / "docs"
    args = ["--scale", "paths", "--rows", "grpo,asymgrpo", "--seeds", "0", "--parallel", "1", "--out", str(tmp_path / "runs"),
            "--publish", str(published)]
    with pytest.raises(KeyboardInterrupt):
        reproduce.main(args)
    assert started == ["grpo/seed0", "asymgrpo/seed0"]
    assert (published / "runs" / "grpo" / "seed0" / "eval" / "summary.json").is_file()
    assert not (published / "runs" / "asymgrpo").exists() and not (published / "results.json").exists()
    reproduce.main(["--scale", "paths", "--rows", "asymgrpo", "--publish", str(published), "--page-only"])  # the page: every row published
    assert started == ["grpo/seed0", "asymgrpo/seed0"]              # nothing trained
    results = json.loads((published / "results.json").read_text())
    assert set(results["rows"]) == {"grpo"} and results["rows"]["grpo"]["scores"] == {"paths:test": [30.0]}
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "paths", "--page-only"])          # no DIR named
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "paths", "--publish", str(tmp_path / "empty"), "--page-only"])  # nothing published there
    assert not (tmp_path / "empty").exists()


def test_the_collapse_config_is_the_collapse_tables_asymgrpo_row():
    """configs/collapse_asymgrpo.yaml runs by hand what SCALE=collapse runs as its AsymGRPO row: every
    setting the same but where it writes, its wall-time stop and its progress bar (data.max_prompt_tokens:
    the paths task's own, which no testbed prompt reaches)."""
    from asymrl.config import _flatten, all_keys, mapping_keys

    def flat(config) -> dict:
        return _flatten(config.to_dict(), all_keys(), mapping_keys())

    mine = flat(build_config(load_yaml(reproduce.REPO / "configs" / "collapse_asymgrpo.yaml")))
    row = flat(build_config(reproduce.row_values("asymgrpo", reproduce.SCALES["collapse"], 0, Path("unused"))))
    differing = {key for key in mine.keys() | row.keys() if mine.get(key) != row.get(key)}
    assert differing == {"train.output_dir", "train.max_wall_s", "log.progress_bar", "data.max_prompt_tokens"}
    assert mine["algorithm.estimator"] == "asymgrpo" and mine["train.lr"] == 3e-4 and mine["train.total_steps"] == 800


def test_the_base_row_has_its_score_when_the_last_step_heads_the_table(tmp_path):
    """SCALE=collapse heads its table with final/; the base row is never trained and has one
    evaluation, of the policy itself, which heads its row (it was missing: a '—' in the table)."""
    scale = dataclasses.replace(reproduce.SCALES["collapse"], steps=100)
    base, grpo = reproduce.plan(scale, tmp_path, ["base", "grpo"], (0,))
    assert not base.final and grpo.final
    fake_finished_run(grpo.directory)
    fake_finished_run(base.directory)
    shutil.rmtree(base.directory / "eval_final")
    results = reproduce.collect([base, grpo], headline="final")
    assert results["base"]["scores"] == {"paths:test": [30.0]} and "scores_final" not in results["base"]
    assert results["grpo"]["scores"] == {"paths:test": [25.0]}
    assert "| Base policy (toy:paths) | 30.00 |" in reproduce.to_markdown(reproduce.assemble(
        {row: {b: reproduce.mean_and_std(v) for b, v in entry["scores"].items()} for row, entry in results.items()},
        benchmarks=scale.benchmarks), reproduce.row_titles(scale))
