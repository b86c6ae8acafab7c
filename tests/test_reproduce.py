"""`make reproduce-table1` (asymrl.reproduce): row configs at every scale, skipping and resuming,
and a real two-row run of the tiny scale whose table matches its evaluations."""

from __future__ import annotations

import json

import pytest

from asymrl import reproduce
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
        assert by_name["grpo/seed0"].model.path == f"toy:{scale}"
        assert by_name["grpo/seed0"].train.total_steps == reproduce.SCALES[scale].steps
        # Dr.GRPO's constant is the max response length of the scale (the knob's default).
        assert by_name["dr_grpo/seed0"].loss_agg_constant == 64


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


def test_tiny_scale_two_rows_end_to_end_then_nothing_is_redone(tmp_path):
    args = ["--scale", "tiny", "--rows", "base,pos_only", "--seeds", "0", "--steps", "3", "--eval-limit", "40",
            "--set", "eval.max_problems=40", "--set", "train.prompts_per_step=8", "--set", "train.save_every=1",
            "--out", str(tmp_path)]
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
    for name in ("entropy", "validation_accuracy", "solved_fractions", "logp_increment", "covariance_by_accuracy"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
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
