"""Tasks: what a data name brings with it, so that no command scores a task with another's reward.

A task is a unit: where its problems come from (named splits of its own files, or any dataset), the
reward that scores them, the prompt the policy sees, how long an answer may be, how much context a
prompt needs, and (for the embedded tasks) the base policy warm-started on it. ``data.train=paths``
alone trains the path-finding policy with the ``paths`` reward, the bare ``{problem}`` template and
32-token answers; ``python -m asymrl.evaluate --data paths`` evaluates with the same. A data name
that is not a registered task (a known benchmark such as ``math500``, a JSONL / JSON / Parquet file,
a hub id) belongs to the ``math`` task. A setting given explicitly (``reward.name``,
``data.prompt_template``, ``rollout.max_new_tokens``, ...) always wins over the task's, and a run's
``config.yaml`` records the values used.

Built in:

==========  =====================================  =========  ==============  ===========  ==========
task        problems                               reward     template        max answer   policy
==========  =====================================  =========  ==============  ===========  ==========
``math``    any dataset (``math_train``, ...)      ``math``   Qwen-math       4096 tokens  (none)
``toy``     ``toy[:split]``, arithmetic            ``math``   ``{problem}``   64           ``toy:tiny``
``paths``   ``paths[:split]``, path-finding        ``paths``  ``{problem}``   32           ``toy:paths``
==========  =====================================  =========  ==============  ===========  ==========

Adding one is one definition plus its test::

    from asymrl import tasks

    tasks.register(tasks.Task(name="sorting", reward="my_rewards:sorted_exactly", prompt_template="{problem}",
                              max_new_tokens=48, max_prompt_tokens=64, files=my_module.sorting_files))
    # train.py data.train=sorting        or, for a file of such problems: data.task=sorting data.train=my.jsonl

``data.task`` also takes ``module:name`` naming a ``Task`` (or a function returning one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from asymrl.registry import Registry

# The Qwen-math prompt: the paper's models answer in \boxed{}.
MATH_PROMPT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class Task:
    """Everything a data name decides about a run (module docstring)."""

    name: str
    reward: str = "math"  # a registered reward name or module:function (asymrl.reward)
    reward_kwargs: Mapping[str, Any] = field(default_factory=dict)
    prompt_template: str = MATH_PROMPT  # {problem} is replaced
    use_chat_template: bool = True
    max_new_tokens: int = 4096  # the longest answer, in training and evaluation
    max_prompt_tokens: int = 512  # the context a prompt needs: longer training prompts are dropped
    base_policy: str | None = None  # model.path when none is given (an embedded task's own policy)
    validation: str = "math500"  # data.validation / data.validation_split when none is given
    validation_split: str | None = None
    # split -> JSONL file, generated on first use; None: the task has no problems of its own (math).
    files: Callable[[], Mapping[str, Path]] | None = None
    default_split: str = "train"

    def split_file(self, split: str | None) -> Path:
        """The JSONL file of ``split`` (default ``default_split``); a KeyError names the splits."""
        if self.files is None:
            raise KeyError(f"the {self.name} task has no problems of its own: name a dataset (a known name, a file, a hub id)")
        files = self.files()
        split = split or self.default_split
        if split not in files:
            raise KeyError(f"the {self.name} task has splits {', '.join(files)}, not {split!r}")
        return files[split]


TASKS: Registry[Task] = Registry("task")
available = TASKS.available


def register(task: Task) -> Task:
    """Add ``task`` under its name (a name is registered once)."""
    return TASKS.register(task.name)(task)


def get(name: str) -> Task:
    """The task registered as ``name``, or the ``Task`` (or function returning one) that
    ``module:name`` imports; a KeyError says why not."""
    task = TASKS.get(name)
    if not isinstance(task, Task) and callable(task):
        task = task()
    if not isinstance(task, Task):
        raise KeyError(f"task {name!r} is a {type(task).__name__}, not an asymrl.tasks.Task")
    return task


def parse_data_name(source: str) -> tuple[Task | None, str | None]:
    """``(task, split)`` of a data name: ``paths:test`` is the paths task's test split, ``toy`` the toy
    task's default split; ``(None, None)`` when ``source`` names no registered task with files (a
    dataset of the math task)."""
    head, _, split = source.partition(":")
    if head in TASKS:
        task = get(head)
        if task.files is not None:
            return task, split or None
    return None, None


def task_of(data_name: str, task_name: str | None = None) -> Task:
    """The task of a run or an evaluation: ``task_name`` when given (``data.task``), else the task
    ``data_name`` names, else ``math``."""
    if task_name:
        return get(task_name)
    return parse_data_name(data_name)[0] or get("math")


def _toy_files() -> Mapping[str, Path]:
    from asymrl.toy.task import ensure_task_data

    return ensure_task_data()


def _paths_files() -> Mapping[str, Path]:
    from asymrl.toy.paths import ensure_paths_data

    return ensure_paths_data()


register(Task(name="math"))  # validated on MATH-500, as the paper
# The arithmetic task's prompts are at most 18 tokens; its solutions end within 64.
register(Task(name="toy", prompt_template="{problem}", max_new_tokens=64, max_prompt_tokens=64,
              base_policy="toy:tiny", validation="toy", validation_split="validation", files=_toy_files))
# Path-finding: prompts of 13 tokens, the longest path (8 hops) is 26 characters; the policy has 64 positions.
register(Task(name="paths", reward="paths", prompt_template="{problem}", max_new_tokens=32, max_prompt_tokens=32,
              base_policy="toy:paths", validation="paths", validation_split="validation", files=_paths_files))
