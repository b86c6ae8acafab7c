"""Final-answer extraction from a model response, in linear time.

Order: text after the last ``</think>``; the last ``\\boxed{...}`` / ``\\fbox{...}`` (braces matched
from its opening, so nested braces work) or ``\\boxed x``; else an explicit statement such as
"the final answer is 12". No "last number in the text" fallback: an unboxed, unstated answer is no
answer. Hedges ("2 or 3", two boxes joined by "or") and empty or unclosed boxes give ``None``;
boxes joined by "and" or "," form one multi-part answer ``"a, b"``.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_FINAL_STATEMENT = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:)\s*([^\n]{1,120}?)\s*(?:\.(?=\s|$)|$|I hope)", re.IGNORECASE | re.MULTILINE
)
_HEDGE = re.compile(r"(?:^|\s|\$)or(?:\s|\$|$)")
MAX_RESPONSE_CHARS = 200_000


def _box_contents(text: str) -> list[tuple[int, int, str | None]]:
    """Every box as (start, end, content); content None for an empty or unclosed box."""
    boxes = []
    for match in _BOX.finditer(text):
        start, position = match.start(), match.end()
        if position < len(text) and text[position] == "{":
            depth, index = 0, position
            while index < len(text):
                char = text[index]
                if char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                    if depth == 0:
                        break
                index += 1
            if depth != 0:
                boxes.append((start, len(text), None))
                continue
            content = text[position + 1 : index].strip()
            boxes.append((start, index + 1, content or None))
        else:  # "\boxed 5": the next token
            token = re.match(r"[^\s$.,;]+", text[position:])
            boxes.append((start, position + (token.end() if token else 0), token.group(0) if token else None))
    return boxes


def extract_answer(response: str) -> str | None:
    """The final answer of ``response`` as a string, or None when there is none (or it hedges)."""
    if not response:
        return None
    text = response[-MAX_RESPONSE_CHARS:]
    think_end = text.rfind("</think>")
    if think_end >= 0:
        text = text[think_end + len("</think>") :]
    boxes = _box_contents(text)
    if boxes:
        last_start, last_end, content = boxes[-1]
        if content is None:
            return None
        parts = [content]
        end = last_start
        # Walk back over boxes joined by "and" / "," (one multi-part answer) or "or" (a hedge).
        for start, box_end, previous in reversed(boxes[:-1]):
            between = re.sub(r"\\(?:quad|qquad|text\{\s*(and|or)\s*\})|[\s$\\\[\]]", lambda m: m.group(1) or "", text[box_end:end]).lower()
            if between == "or":
                return None
            if between in (",", "and", ",and", ""):
                if previous is None:
                    return None
                parts.insert(0, previous)
                end = start
                continue
            break
        answer = ", ".join(parts)
    else:
        statements = _FINAL_STATEMENT.findall(text)
        if not statements:
            return None
        answer = statements[-1].strip().strip("$").strip()
        # "Final Answer: The largest $n$ is 34" states its value after the last "is".
        if " is " in answer:
            answer = answer.rsplit(" is ", 1)[1].strip().strip("$").strip()
    if _HEDGE.search(answer):
        return None
    return answer
