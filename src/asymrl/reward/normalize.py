"""Answer normalisation: the string-level clean-ups that make equal answers equal strings.

Conservative by design: each rule removes notation only (dollar signs, ``\\left``, spacing,
thousands separators, ``\\dfrac``), or a unit / degree / percent sign *after a final number*; a
variable is never stripped (``5+3m`` stays). Unicode maths (minus sign, ``½``, ``√``, ``π``, ``°``)
is mapped to LaTeX.
"""

from __future__ import annotations

import re

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times", "\u00b7": "\\cdot", "\u03c0": "\\pi", "\u221e": "\\infty",
    "\u221a": "\\sqrt", "\u00b0": "^\\circ", "\u2264": "\\le", "\u2265": "\\ge", "\u00bd": "\\frac{1}{2}",
    "\u00bc": "\\frac{1}{4}", "\u00be": "\\frac{3}{4}", "\u2153": "\\frac{1}{3}", "\u2154": "\\frac{2}{3}",
}
_UNITS = (
    "cm|mm|km|m|meters?|inches|inch|in|feet|foot|ft|yards?|miles?|units?|square units|sq units|degrees?|"
    "dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|years?|mph|kg|g|grams?|pounds?|lbs?|ounces?|oz|"
    "liters?|ml|students|people|ways|points|cups|pages|books|marbles|cookies|apples"
)
_TRAILING_UNIT = re.compile(rf"^(-?[\d.,/{{}}\\a-z]*\d\}}?)\s*(?:\\(?:text|mbox|mathrm)\{{\s*(?:{_UNITS})\s*\}}|(?:{_UNITS}))(\^[23]|\^\{{[23]\}})?$")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\,|,|\\ |\s)(?=\d{3}(?!\d))")


def normalize(answer: str) -> str:
    """A canonical string for ``answer`` (LaTeX or plain text)."""
    text = answer.strip()
    for old, new in _UNICODE.items():
        text = text.replace(old, new)
    text = text.strip("$ ").rstrip(".").strip()
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?=[()\[\]|.\\{}])", "", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = text.replace("\\!", "").replace("\\;", " ").replace("\\:", " ").replace("~", " ")
    text = re.sub(r"\^\{?\\circ\}?|\\degree|°", "", text)
    text = text.replace("\\%", "").replace("%", "")
    unit = _TRAILING_UNIT.match(text)
    if unit:
        text = unit.group(1)
    # Thousands separators only in a plain number (never inside a tuple such as (1,234)).
    if re.fullmatch(r"-?\d{1,3}(?:(?:\{,\}|\\,|,|\\ | )\d{3})+(?:\.\d+)?", text):
        text = _THOUSANDS.sub("", text)
    text = _TEXT_WRAP.sub(r"\1", text)
    # A single assignment "x = 5" answers with its value.
    assignment = re.fullmatch(r"[a-zA-Z]\s*=\s*([^=<>]+)", text)
    if assignment and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", assignment.group(1))):
        text = assignment.group(1)
    text = re.sub(r"\s+", "", text)
    return text
