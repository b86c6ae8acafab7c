"""The embedded default: a tiny base policy and a math task it can learn, built on a laptop CPU.

``asymrl.toy.task`` generates problems with worked solutions, ``asymrl.toy.tokenizer`` builds a
character-level tokenizer with a chat template, ``asymrl.toy.build`` warm-starts a small Llama on
the worked solutions (``python -m asymrl.toy.build --preset tiny``), and ``asymrl.toy.report`` measures
the result. ``asymrl.toy.paths`` is a second task, path-finding on a fixed random graph, with its
reward ``paths``.
"""

import os
import shutil
from pathlib import Path
from typing import Callable


def cache_root() -> Path:
    """Where generated task data and built policies are cached: ``$ASYMRL_CACHE/toy`` (default
    ``~/.cache/asymrl/toy``). Here rather than in ``build`` so that the tasks need no torch."""
    return Path(os.environ.get("ASYMRL_CACHE", Path.home() / ".cache" / "asymrl")) / "toy"


def ensure_generated(out: Path, splits: tuple[str, ...], write: Callable[[Path], object]) -> dict[str, Path]:
    """``<out>/<split>.jsonl`` for every split, written by ``write(folder)`` on first use. The files
    are written into a private folder and renamed into place, so processes that start at once (two
    ranks, two runs) never read a half-written split."""
    files = {split: out / f"{split}.jsonl" for split in splits}
    if not all(f.is_file() for f in files.values()):
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        write(tmp)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():  # another process finished first: its files are the same
            shutil.rmtree(tmp)
        else:
            tmp.rename(out)
    return files
