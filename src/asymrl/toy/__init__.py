"""The embedded default: a tiny base policy and a math task it can learn, built on a laptop CPU.

``asymrl.toy.task`` generates problems with worked solutions, ``asymrl.toy.tokenizer`` builds a
character-level tokenizer with a chat template, ``asymrl.toy.build`` warm-starts a small Llama on
the worked solutions (``python -m asymrl.toy.build --preset tiny``), and ``asymrl.toy.report`` measures
the result. ``asymrl.toy.paths`` is a second task, path-finding on a fixed random graph, with its
reward ``paths``.
"""

import os
from pathlib import Path


def cache_root() -> Path:
    """Where generated task data and built policies are cached: ``$ASYMRL_CACHE/toy`` (default
    ``~/.cache/asymrl/toy``). Here rather than in ``build`` so that the tasks need no torch."""
    return Path(os.environ.get("ASYMRL_CACHE", Path.home() / ".cache" / "asymrl")) / "toy"
