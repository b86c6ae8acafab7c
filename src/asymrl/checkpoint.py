"""Checkpoints that survive ``kill -9``: written aside, then renamed into place.

A checkpoint directory ``<run>/checkpoints/step_000040/`` holds what ``accelerator.save_state``
writes (model, optimizer, DeepSpeed shards, per-process RNG states, registered objects: the lr
scheduler and the updater's step counters) plus ``trainer_state.json`` (step, data position, best validation so far). It is
written as ``step_000040.partial`` and renamed only once every process has finished, so a crash
mid-save leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from accelerate import Accelerator

STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d{6,})$")


class _TiedHeadNotice(logging.Filter):
    """Drops accelerate's "Removed shared tensor {'model.lm_head.weight'} while saving": a head tied
    to the embeddings is stored once by design, and the warning, printed at every save, breaks the
    progress bar. Any other shared tensor is still reported."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Removed shared tensor" in message and "lm_head" in message)


@contextmanager
def quiet_tied_head():
    """Silence exactly the tied-head notice of accelerate's safetensors save, for the block."""
    logger = logging.getLogger("accelerate.utils.other")
    notice = _TiedHeadNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:06d}"


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint directories of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))


def resolve_resume(resume: str, run_dir: Path) -> Path | None:
    """``auto``: the latest complete checkpoint of this run, if any; ``never``: None; else a path."""
    if resume == "never":
        return None
    if resume == "auto":
        found = complete_checkpoints(run_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"train.resume={resume!r}: no {STATE_FILE} there (not a complete checkpoint)")
    return path


def save_checkpoint(accelerator: Accelerator, run_dir: Path, step: int, trainer_state: dict, keep_last: int) -> Path:
    """Save everything needed to continue from ``step``; prune to the ``keep_last`` newest."""
    final = checkpoint_dir(run_dir, step)
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    with quiet_tied_head():
        accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps(trainer_state, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in complete_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, path: Path) -> dict:
    """Restore model, optimizer, RNG and registered objects; return the saved trainer state."""
    accelerator.load_state(str(path))
    return json.loads((Path(path) / STATE_FILE).read_text())
