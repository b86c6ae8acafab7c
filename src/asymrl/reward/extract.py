"""Final-answer extraction from a model response, in linear time.

Order: text after the last ``</think>``; the last ``\\boxed{...}`` / ``\\fbox{...}`` (braces matched
from its opening, so nested braces work) or ``\\boxed x``; else an explicit statement such as
"the final answer is 12". No "last number in the text" fallback: an unboxed, unstated answer is no
answer. Hedges ("2 or 3", two boxes joined by "or") and empty or unclosed boxes give ``None``;
boxes joined by "and" or "," form one multi-part answer ``"a, b"``.
"""

from __future__ import annotations

import re

from asymrl.reward.equivalence import fast_verdict

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_FINAL_STATEMENT = re.compile(
    # "The answer is: 12", "**Final Answer:** 42": markdown stars and a colon after "is" are not the answer.
    r"(?:final answer|the answer)\**\s*(?:is\s*:?|:)\**\s*([^\n]{1,120}?)\s*(?:\.(?=\s|$)|$|I hope)",
    re.IGNORECASE | re.MULTILINE,
)
HEDGE = re.compile(r"(?:^|\s|\$|\{)or(?:\s|\$|$|\})")  # "2 or 3", "2 \\text{or} 3"
MAX_RESPONSE_CHARS = 200_000


def _closing_braces(text: str) -> dict[int, int]:
    """For each ``{`` in ``text`` that is closed, the index of its ``}``: one pass with a stack, so
    nested or unclosed boxes cost linear time. Escaped braces ``\\{ \\}`` are set delimiters, not groups."""
    closing, stack = {}, []
    for index, char in enumerate(text):
        if char not in "{}" or (index and text[index - 1] == "\\"):
            continue
        if char == "{":
            stack.append(index)
        elif stack:
            closing[stack.pop()] = index
    return closing


def _box_contents(text: str) -> list[tuple[int, int, str | None]]:
    """Every outermost box as (start, end, content); content None for an empty or unclosed box.
    A box inside a box is part of the outer box's content; a box that only wraps a box is unwrapped."""
    closing = _closing_braces(text) if "{" in text else {}
    boxes: list[tuple[int, int, str | None]] = []
    for match in _BOX.finditer(text):
        start, position = match.start(), match.end()
        if boxes and start < boxes[-1][1]:
            continue  # nested in the previous box
        if position < len(text) and text[position] == "{":
            close = closing.get(position)
            if close is None:  # unclosed: no answer, unless a later box gives one
                boxes.append((start, position + 1, None))
                continue
            inner_start, inner_end = position + 1, close
            # "\\boxed{\\boxed{7}}" is a box around 7.
            while inner := _BOX.match(text, inner_start):
                if inner.end() < inner_end and text[inner.end()] == "{" and closing.get(inner.end()) == inner_end - 1:
                    inner_start, inner_end = inner.end() + 1, inner_end - 1
                else:
                    break
            content = text[inner_start:inner_end].strip()
            boxes.append((start, close + 1, content or None))
        else:  # "\\boxed 5": the next token
            token = re.match(r"[^\s$.,;]+", text[position : position + 1000])
            boxes.append((start, position + (token.end() if token else 0), token.group(0) if token else None))
    return boxes


def _boxed_answer(text: str, boxes: list[tuple[int, int, str | None]], or_is_list: bool) -> str | None:
    """The last box's content, joined with the boxes before it when "and" or "," joins them; None for
    an empty or unclosed box or two boxes joined by "or" (a hedge)."""
    last_start, _, content = boxes[-1]
    if content is None:
        return None
    parts = [content]
    end = last_start
    for start, box_end, previous in reversed(boxes[:-1]):
        between = re.sub(r"\\(?:quad|qquad|text\{\s*(and|or)\s*\})|[\s$\\\[\]]", lambda m: m.group(1) or "", text[box_end:end]).lower()
        if between in ("or", ",or") and not or_is_list:
            if previous is not None and fast_verdict(previous, content):
                break  # one value restated ("15\\frac{39}{40}, or \\frac{639}{40}"), not a hedge
            return None
        if between in (",", "and", ",and", "", "or", ",or"):
            if previous is None:
                return None
            parts.insert(0, previous)
            end = start
            continue
        break
    return ", ".join(parts)


def _states_a_final_value(statements: list[re.Match]) -> bool:
    """Whether the last statement after the last box gives "the final answer" as maths ("Final Answer:
    The final answer is $10,455$" after intermediate boxes), which overrides the boxes; "the final
    answer is correct" does not."""
    return bool(statements) and "final answer" in statements[-1].group(0).lower() and bool(re.search(r"[\d$\\]", statements[-1].group(1)))


def _statement_value(statement: str) -> str:
    """The value in a final-answer statement: "$12$" -> "12"; "The largest $n$ is 34" -> "34"."""
    answer = statement.strip().strip("$").strip()
    if " is " in answer:
        answer = answer.rsplit(" is ", 1)[1].strip().strip("$").strip()
    return answer


def extract_answer(response: str, or_is_list: bool = False) -> str | None:
    """The final answer of ``response`` as a string, or None when there is none (or it hedges).

    ``or_is_list``: the reference itself lists its values with "or" ("-2 or -12", as some MATH
    answers do), so an "or" in the response lists values too instead of hedging between them."""
    if not response:
        return None
    text = response[-MAX_RESPONSE_CHARS:]
    think_end = text.rfind("</think>")
    if think_end >= 0:
        text = text[think_end + len("</think>") :]
    boxes = _box_contents(text)
    statements = list(_FINAL_STATEMENT.finditer(text, boxes[-1][1] if boxes else 0))
    if boxes and not _states_a_final_value(statements):
        answer = _boxed_answer(text, boxes, or_is_list)
    elif statements:
        answer = _statement_value(statements[-1].group(1))
    else:
        return None
    if answer is None:
        return None
    if not or_is_list and HEDGE.search(answer):
        return None
    return answer
