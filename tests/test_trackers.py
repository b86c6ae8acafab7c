"""Experiment trackers through accelerate (log.trackers), offline: a 2-step run logs the same values
to metrics.jsonl (the source of truth), TensorBoard, wandb (offline mode) and MLflow (file store)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import run_train, tensorboard_scalars

from asymrl.config import ConfigError, build_config
from asymrl.metrics import read_metrics, tracker_key

INSTALLED = [name for name in ("wandb", "mlflow") if importlib.util.find_spec(name) is not None]
CHECKED = ("reward/accuracy", "entropy/all", "actor/pg_loss", "val/accuracy")


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("trackers") / "run"
    environment = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "MLFLOW_TRACKING_URI": f"file:{out.parent / 'mlruns'}",
                   "MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow 3 refuses a file store unless allowed
    run_train(out, "train.total_steps=2", "train.save_every=0", "eval.at_start=false", "eval.every_steps=0",
              "log.project=asymrl-test", f"log.trackers=[tensorboard,{','.join(INSTALLED)}]", env=environment)
    return out, read_metrics(out / "metrics.jsonl")


def expected(records: list[dict], key: str) -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in records if r.get(key) is not None]


def assert_same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [step for step, _ in got] == [step for step, _ in want]
    assert [value for _, value in got] == pytest.approx([value for _, value in want], rel=1e-6)


def test_tensorboard_holds_the_logged_values(tracked_run):
    out, records = tracked_run
    assert [r["step"] for r in records] == [1, 2]
    for key in CHECKED:
        assert_same(tensorboard_scalars(out / "tensorboard" / "asymrl-test", key), expected(records, key))


def wandb_history(run_file: Path) -> dict[int, dict]:
    """The history rows of a wandb run file (``run-<id>.wandb``): protobuf records in the LevelDB
    log framing wandb uses (a 7-byte file header, 32 KiB blocks, 7-byte chunk headers); wandb has no
    offline reader of its own."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending, history = 7, 32768, b"", {}
    while position + 7 <= len(data):
        room = block - position % block
        if room < 7:  # a block's tail too short for a chunk header is padding
            position += room
            continue
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a FULL chunk, or the LAST of a FIRST, MIDDLE..., LAST sequence
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                history[record.history.step.num] = row
    return history


@pytest.mark.skipif("wandb" not in INSTALLED, reason="wandb is not installed (pip install 'asymrl[wandb]')")
def test_wandb_offline_run_holds_the_logged_values(tracked_run):
    out, records = tracked_run
    run_files = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    history = wandb_history(run_files[0])
    for key in CHECKED:
        got = [(step, row[tracker_key(key)]) for step, row in sorted(history.items()) if tracker_key(key) in row]
        assert_same(got, expected(records, key))


@pytest.mark.skipif("mlflow" not in INSTALLED, reason="mlflow is not installed (pip install 'asymrl[mlflow]')")
def test_mlflow_file_store_holds_the_logged_values(tracked_run, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out, records = tracked_run
    client = MlflowClient(tracking_uri=f"file:{out.parent / 'mlruns'}")
    experiment = client.get_experiment_by_name("asymrl-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.data.params["train.total_steps"] == "2"
    for key in CHECKED:
        history = sorted(client.get_metric_history(run.info.run_id, tracker_key(key)), key=lambda m: m.step)
        assert_same([(m.step, m.value) for m in history], expected(records, key))


def test_an_unknown_tracker_and_the_old_key_are_named():
    with pytest.raises(ConfigError, match="log.trackers: 'tensorbored' is not a tracker; choose from .*tensorboard"):
        build_config({"log.trackers": ["tensorboard", "tensorbored"]})
    with pytest.raises(ConfigError, match=r"log.tensorboard was replaced: use log.trackers"):
        build_config({"log.tensorboard": False})


def test_a_tracker_registered_with_accelerate_is_chosen_by_name(tmp_path):
    """Extending: a GeneralTracker subclass registered with accelerate is a valid log.trackers entry."""
    from accelerate.tracking import GeneralTracker, register_tracker_class

    from asymrl.metrics import MetricsLog
    from asymrl.update import build_accelerator

    class Recorder(GeneralTracker):
        name = "asymrl_test_recorder"
        requires_logging_directory = False
        rows: list = []

        def __init__(self, project: str, **kwargs):
            super().__init__()
            self.project = project

        @property
        def tracker(self):
            return self.rows

        def store_init_configuration(self, values: dict):
            self.rows.append(("config", values))

        def log(self, values: dict, step: int | None = None, **kwargs):
            self.rows.append((step, values))

    register_tracker_class(Recorder)
    assert build_config({"log.trackers": [Recorder.name]}).log.trackers == [Recorder.name]
    log = MetricsLog(tmp_path, build_accelerator(1, 1, 1.0, trackers=[Recorder.name], run_dir=tmp_path))
    log.start("toy", {"train": {"lr": 0.001, "adam_betas": [0.9, 0.999]}})
    log.log(1, {"reward/accuracy": 0.5, "cov/p=0.500": 0.25})
    log.close()
    assert Recorder.rows == [("config", {"train.lr": 0.001, "train.adam_betas": "[0.9, 0.999]"}),
                             (1, {"reward/accuracy": 0.5, "cov/p_0.500": 0.25})]
