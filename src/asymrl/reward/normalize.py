"""Answer normalisation: the string-level clean-ups that make equal answers equal strings.

Conservative by design: each rule removes notation only (dollar signs, ``\\left``, spacing,
thousands separators, ``\\dfrac``), or a unit / degree / percent sign *after a final number*; a
variable is never stripped (``5+3m`` stays). Unicode maths (minus sign, ``½``, ``√``, ``π``, ``°``)
and plain-text maths (``pi``, ``sqrt(2)``, ``exp(3)``) are mapped to LaTeX; a repeating decimal
(``0.1\\overline{6}``) becomes the exact fraction it denotes.
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
    "liters?|ml|students|people|ways|points|cups|pages|books|marbles|cookies|apples|euros?|yuan"
)
# A final number (possibly times pi) followed by a unit word, possibly squared or cubed.
_TRAILING_UNIT = re.compile(
    rf"^(-?[\d.,/{{}}\\a-z]*(?:\d\}}?|\\pi))\s*(?:\\(?:text|textnormal|mbox|mathrm)\{{\s*(?:{_UNITS})\s*\}}|(?:{_UNITS}))"
    r"(\^[23]|\^\{[23]\})?$"
)
# Any words in \\text{} after a final number are its unit or noun ("9\\text{ values}", "2 \\text{ euros}"):
# \\text{} never holds a variable, so this cannot strip one.
_TRAILING_TEXT_UNIT = re.compile(
    r"^(-?[\d.,/{}\\a-z]*(?:\d\}?|\\pi))\s*\\(?:text|textnormal|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(\^[23]|\^\{[23]\})?$"
)
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|textnormal|mathrm|mathbf|mbox)\{([^{}]*)\}")
_UNICODE_ROOT_OF_NUMBER = re.compile(r"\u221a(\d+(?:\.\d+)?)")
_PLAIN_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")
_OR_SEPARATOR = re.compile(r"\s*,?\s*(?:\\(?:text|mbox|textnormal)\{\s*,?\s*or\s*\}|\sor\s)\s*")
# A \\frac argument is a braced group (without nested braces), one digit, one letter or one command.
_FRAC_ARGUMENTS = re.compile(r"\\frac\s*(\{[^{}]*\}|\d|[A-Za-z]|\\[A-Za-z]+)\s*(\{[^{}]*\}|\d|[A-Za-z]|\\[A-Za-z]+)")
_SPACING = re.compile(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])|\s+")
_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\,|,|\\ |\s)(?=\d{3}(?!\d))")


def _matching_paren(text: str, open_index: int) -> int | None:
    """Index of the ``)`` that closes the ``(`` at ``open_index``, or None when it is unclosed."""
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _rewrite_calls(text: str, name: str, template: str) -> str:
    """Rewrite each plain-text call ``name(arg)`` (also ``\\name(arg)``) as ``template.format(arg)``,
    matching parentheses, e.g. ``sqrt(x+1)`` -> ``\\sqrt{x+1}``. Unclosed calls are left alone."""
    pattern = re.compile(rf"(?<![A-Za-z])\\?{name}\(")
    pieces, position = [], 0
    while match := pattern.search(text, position):
        close = _matching_paren(text, match.end() - 1)
        if close is None:
            break
        argument = _rewrite_calls(text[match.end() : close], name, template)
        pieces.append(text[position : match.start()] + template.format(argument))
        position = close + 1
    return "".join(pieces) + text[position:]


def plain_text_to_latex(text: str) -> str:
    """``pi``, ``sqrt(...)``, ``exp(...)`` written as plain text (a model answering in code style)
    as LaTeX, which the LaTeX parser reads correctly (it reads ``pi`` as ``p*i``)."""
    if "pi" in text:
        text = _PLAIN_PI.sub(r"\\pi ", text).rstrip()  # the space keeps "pi x" from becoming "\\pix"
    if "sqrt(" in text:
        text = _rewrite_calls(text, "sqrt", "\\sqrt{{{}}}")
    if "exp(" in text:
        text = _rewrite_calls(text, "exp", "e^{{{}}}")
    return text


def repeating_decimal_to_fraction(match: re.Match) -> str:
    """``-1.2\\overline{34}`` as the exact fraction it denotes, as LaTeX (``\\frac{p}{q}``)."""
    from fractions import Fraction

    sign, whole, fixed, repeating = match.groups()
    value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed))
    value += Fraction(int(repeating), (10 ** len(repeating) - 1) * 10 ** len(fixed))
    if value.denominator == 1:
        return f"{sign}{value.numerator}"
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _braced_fraction(match: re.Match) -> str:
    """``\\frac12``, ``\\frac{270}7``, ``\\frac\\pi 2`` with both arguments braced."""
    numerator, denominator = (argument if argument.startswith("{") else f"{{{argument}}}" for argument in match.groups())
    return f"\\frac{numerator}{denominator}"


def normalize(answer: str) -> str:
    """A canonical string for ``answer`` (LaTeX or plain text)."""
    text = answer.strip()
    # "√23" is the root of 23, but LaTeX's "\\sqrt23" is sqrt(2)*3: brace the number first.
    text = _UNICODE_ROOT_OF_NUMBER.sub(r"\\sqrt{\1}", text)
    for old, new in _UNICODE.items():
        text = text.replace(old, new)
    text = plain_text_to_latex(text)
    text = _REPEATING.sub(repeating_decimal_to_fraction, text)
    text = text.strip("$ ").rstrip(".").strip()
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?=[()\[\]|.\\{}])", "", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = _FRAC_ARGUMENTS.sub(_braced_fraction, text)
    text = text.replace("\\!", "").replace("\\;", " ").replace("\\:", " ").replace("~", " ")
    text = re.sub(r"\^\{?\\circ\}?|\\degree|°", "", text)
    text = text.replace("\\%", "").replace("%", "")
    unit = _TRAILING_UNIT.match(text) or _TRAILING_TEXT_UNIT.match(text)
    if unit:
        text = unit.group(1)
    # Thousands separators only in a plain number (never inside a tuple such as (1,234)).
    if re.fullmatch(r"-?\d{1,3}(?:(?:\{,\}|\\,|,|\\ | )\d{3})+(?:\.\d+)?", text):
        text = _THOUSANDS.sub("", text)
    # "-2 or -12" lists values (a reference can; a response only when its reference does).
    text = _OR_SEPARATOR.sub(",", text)
    text = _TEXT_WRAP.sub(r"\1", text)
    # A single assignment "x = 5" answers with its value.
    assignment = re.fullmatch(r"[a-zA-Z]\s*=\s*([^=<>]+)", text)
    if assignment and not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", assignment.group(1))):
        text = assignment.group(1)
    # Drop spacing, but keep one space where it ends a command name: "2\\pi r" must not become "\\pir".
    text = _SPACING.sub(lambda m: f"{m.group(1)} " if m.group(1) else "", text)
    return text
