"""The data stage: problems from JSONL / hub datasets / the toy tasks, prompts, and a resumable sampler.

Every problem comes out as ``{"id", "problem", "answer", ...extra fields}``. Known short names map to
a local file (``<data.local_dir>/<name>.jsonl``, or ``$ASYMRL_DATA_DIR/<name>.jsonl``) and to their hub
id; a local file always wins, so the same configs run offline with local copies and on the hub elsewhere.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from asymrl.tasks import parse_data_name

# Short name -> (hub id, hub split). Local copies are looked up as <local_dir>/<short name>.jsonl.
KNOWN_DATASETS = {
    "math_train": ("hendrycks/competition_math", "train"),
    "math500": ("HuggingFaceH4/MATH-500", "test"),
    "aime24": ("HuggingFaceH4/aime_2024", "train"),
    "aime25": ("yentinglin/aime_2025", "train"),
    "amc23": ("math-ai/amc23", "test"),
    "olympiadbench": ("Hothan/OlympiadBench", "train"),
}

# Problems each known dataset yields (its default split, rows with an empty answer dropped as
# load_problems drops them), counted from the benchmarks' files: code that only plans or estimates (the
# paper-scale GPU-hour estimate) needs these numbers, not the data. MATH train has 7,500 rows, 2 of
# them with an empty answer.
KNOWN_SIZES = {
    "math_train": 7498,
    "math500": 500,
    "aime24": 30,
    "aime25": 30,
    "amc23": 40,
    "olympiadbench": 675,
}


def default_local_dir() -> Path | None:
    """The folder searched for ``<name>.jsonl`` when ``data.local_dir`` is not set.

    ``$ASYMRL_DATA_DIR`` when that variable is set and not empty; else none (known names go to the hub).
    """
    folder = os.environ.get("ASYMRL_DATA_DIR")
    return Path(folder) if folder else None


@dataclass
class LoadStats:
    rows: int = 0
    kept: int = 0
    skipped_empty_answer: int = 0

    def __str__(self) -> str:
        return f"{self.kept} kept of {self.rows}, {self.skipped_empty_answer} skipped for an empty answer"


class DataError(ValueError):
    """A malformed data file: the message names the file and line."""


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def _normalise(rows: list[dict], where: str, problem_field: str, answer_field: str, id_field: str) -> tuple[list[dict], LoadStats]:
    stats = LoadStats(rows=len(rows))
    problems = []
    for number, row in enumerate(rows, start=1):
        if problem_field not in row:
            raise DataError(f"{where}:{number}: missing field {problem_field!r} (fields: {', '.join(row)})")
        if not isinstance(row[problem_field], str):
            raise DataError(f"{where}:{number}: field {problem_field!r} must be a string, got {type(row[problem_field]).__name__}")
        answer = row.get(answer_field)
        if answer is None or str(answer).strip() == "":
            stats.skipped_empty_answer += 1
            continue
        extra = {k: v for k, v in row.items() if k not in (problem_field, answer_field, id_field)}
        problems.append({**extra, "id": str(row.get(id_field, number)), "problem": row[problem_field], "answer": str(answer)})
    stats.kept = len(problems)
    return problems, stats


# Where a data name is a file: what ends in one of these and does not exist is a missing file, not a hub id.
FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


def resolve_source(source: str, split: str | None, local_dir: str | Path | None) -> tuple[str, Path | None, str | None]:
    """(kind, local path, hub split) of a data name: a task's split (``paths:test``, asymrl.tasks), a
    file, ``<local_dir>/<name>.jsonl``, or a hub dataset."""
    task, named_split = parse_data_name(source)
    if task is not None:
        try:
            return "file", task.split_file(split or named_split), None
        except KeyError as error:
            raise DataError(error.args[0]) from None
    path = Path(source)
    if path.exists():
        return "file", path, split
    if source.endswith(FILE_SUFFIXES):
        raise DataError(f"{source}: no such file (from {Path.cwd()})")
    folder = Path(local_dir) if local_dir else default_local_dir()
    if folder is not None and (folder / f"{source}.jsonl").is_file():
        return "file", folder / f"{source}.jsonl", None
    if source in KNOWN_DATASETS:
        hub_id, hub_split = KNOWN_DATASETS[source]
        return "hub", None, split or hub_split
    return "hub", None, split or "train"


def load_problems(source: str, split: str | None = None, *, problem_field: str = "problem", answer_field: str = "answer",
                  id_field: str = "id", local_dir: str | Path | None = None) -> tuple[list[dict], LoadStats]:
    """Problems from ``source``: a task's split ('toy[:split]', 'paths[:split]'), a known short name, a
    JSONL / JSON / Parquet path, or a hub id."""
    kind, path, hub_split = resolve_source(source, split, local_dir)
    if kind == "file":
        if path.suffix == ".jsonl":
            rows = read_jsonl(path)
        else:
            import datasets

            rows = list(datasets.load_dataset(path.suffix.lstrip(".") or "json", data_files=str(path), split="train"))
        return _normalise(rows, str(path), problem_field, answer_field, id_field)
    import datasets

    hub_id = KNOWN_DATASETS.get(source, (source, None))[0]
    try:
        rows = list(datasets.load_dataset(hub_id, split=hub_split))
    except Exception as error:  # offline, or not cached
        raise DataError(
            f"cannot load {source!r} (hub id {hub_id!r}, split {hub_split!r}): {error}. Offline, put a JSONL copy at "
            f"<data.local_dir>/{source}.jsonl or pass a file path."
        ) from None
    return _normalise(rows, hub_id, problem_field, answer_field, id_field)


def count_problems(source: str, split: str | None = None, local_dir: str | Path | None = None) -> int:
    """How many problems ``source`` yields: the known size of a known name (read nowhere), else the
    count of what ``load_problems`` keeps from it."""
    if source in KNOWN_SIZES and split in (None, KNOWN_DATASETS[source][1]):
        return KNOWN_SIZES[source]
    return len(load_problems(source, split, local_dir=local_dir)[0])


class PromptSampler:
    """Batches of problems in a seeded order, reshuffled every epoch; resumable exactly.

    ``state_dict()`` is (epoch, position); after ``load_state_dict`` the next batch is the one the
    interrupted run would have drawn, so nothing is repeated or skipped.
    """

    def __init__(self, problems: list[dict], batch_size: int, seed: int):
        if len(problems) < batch_size:
            raise ValueError(f"{len(problems)} problems cannot fill a batch of {batch_size} prompts")
        self.problems, self.batch_size, self.seed = problems, batch_size, seed
        self.epoch, self.position = 0, 0

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.problems)))
        random.Random(self.seed * 100_003 + epoch).shuffle(order)
        return order

    def next_batch(self) -> list[dict]:
        if self.position + self.batch_size > len(self.problems):  # drop the ragged tail of an epoch
            self.epoch, self.position = self.epoch + 1, 0
        order = self._order(self.epoch)
        batch = [self.problems[i] for i in order[self.position : self.position + self.batch_size]]
        self.position += self.batch_size
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
