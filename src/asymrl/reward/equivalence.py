"""Is a predicted answer equivalent to the reference? Exact first, then exact rationals, then SymPy.

``fast_verdict`` decides the common cases in microseconds without SymPy: equal normalised strings,
or two plain numbers (integers, decimals, ``\\frac{a}{b}``, ``a/b``, mixed numbers) compared as exact
rationals, so 3.14 is never pi and 1/2^99 never 1/2^98. ``symbolic_equal`` handles the rest through
math-verify (LaTeX -> SymPy) and must run in a killable worker (``asymrl.reward.pool``): SymPy can hang.
"""

from __future__ import annotations

import re
from fractions import Fraction

from asymrl.reward.normalize import normalize

_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?(?:\d+\.\d*|\.\d+)")
_FRAC = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")
_FRAC_SHORT = re.compile(r"(-?)\\frac(\d)(\d)")
_SLASH = re.compile(r"(-?\d+)/(-?\d+)")
_MIXED = re.compile(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")
# A numeral in base 2..36 such as 37_8 or 861_{12} (math-verify drops the subscript: 37_8 == 37).
_BASE_NUMERAL = re.compile(r"(-?)([0-9A-Z]*\d[0-9A-Z]*)_(?:\{(\d{1,2})\}|(\d))")
_TEXT = re.compile(r"[A-Za-z][A-Za-z ]*")
_WORD = re.compile(r"[A-Za-z][A-Za-z ]*[A-Za-z]")  # a text answer of two letters or more
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?$")
# Exponents or factorials this large are refused before SymPy ever evaluates them.
_HUGE = re.compile(
    r"\^\s*\{?\s*-?\d{4,}|\^\s*\{[^{}]*\^|\d{4,}\s*!|\^\s*\d+\s*\^|(\d{2,}|\})\s*!\s*!"
    r"|\^[^()!]*\)\s*!"  # the factorial of a power, (10^{100})!: SymPy's N() never returns
)
# Brackets nested deeper than this are refused too: parsing time grows super-linearly with depth.
MAX_NESTING = 40


def nesting_depth(text: str) -> int:
    """The deepest nesting of brackets of any kind in ``text``."""
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def numeral_base(match: re.Match) -> int:
    """The base of a :data:`_BASE_NUMERAL` match."""
    return int(match.group(3) or match.group(4))


def numeral_value(numeral: str, base: int) -> Fraction | None:
    """A signed numeral (``-37``) read in ``base``; None when it uses a digit the base lacks."""
    try:
        return Fraction(int(numeral, base))
    except ValueError:
        return None


def parse_rational(text: str) -> Fraction | None:
    """``text`` (normalised) as an exact rational when it is a plain number, else None."""
    if len(text) > 60:
        return None
    try:
        if _INTEGER.fullmatch(text) or _DECIMAL.fullmatch(text):
            return Fraction(text)
        if match := _FRAC.fullmatch(text) or _FRAC_SHORT.fullmatch(text):
            sign, numerator, denominator = match.groups()
            value = Fraction(int(numerator), int(denominator))
            return -value if sign else value
        if match := _SLASH.fullmatch(text):
            return Fraction(int(match.group(1)), int(match.group(2)))
        if match := _MIXED.fullmatch(text):
            sign, whole, numerator, denominator = match.groups()
            value = int(whole) + Fraction(int(numerator), int(denominator))
            return -value if sign else value
        if match := _BASE_NUMERAL.fullmatch(text):
            return numeral_value(match.group(1) + match.group(2), numeral_base(match))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def fast_verdict(predicted: str, reference: str) -> bool | None:
    """True / False when decidable without SymPy, None when it needs :func:`symbolic_equal`."""
    pred, gold = normalize(predicted), normalize(reference)
    if pred == gold:
        return True
    if not pred:
        return False
    pred_choice, gold_choice = _CHOICE.match(pred), _CHOICE.match(gold)
    if pred_choice and gold_choice:
        return pred_choice.group(1).upper() == gold_choice.group(1).upper()
    if _TEXT.fullmatch(pred) and _TEXT.fullmatch(gold):
        return pred.lower() == gold.lower()  # text answers: "Even" is "even"
    if (_WORD.fullmatch(pred) and parse_rational(gold) is not None) or (_WORD.fullmatch(gold) and parse_rational(pred) is not None):
        return False  # a word ("Evelyn", "odd") is never a number
    if ":" in pred or ":" in gold or "\\ldots" in pred or "\\ldots" in gold:
        return False  # ratios and patterns: only equal strings count (SymPy would equate 1:2:3 and 1:4:9)
    pred_value, gold_value = parse_rational(pred), parse_rational(gold)
    gold_numeral = _BASE_NUMERAL.fullmatch(gold)
    if gold_numeral and re.fullmatch(r"-?[0-9A-Z]+", pred):
        # A numeral without a subscript is read in the reference's base: "10001" answers 10001_2,
        # "17" does not (the question asked for base 2); a subscripted answer states its own base.
        pred_value = numeral_value(pred, numeral_base(gold_numeral))
    if pred_value is None and gold_value is not None:
        # Thousands separators the normaliser left alone ("11, 111, 100") only against a plain number.
        grouped = re.fullmatch(r"-?\d{1,3}(?:,\d{3})+", pred)
        # "32, 349" (comma and space) reads as a list; "32,\! 349" and "32{,}349" are one number.
        if grouped and not re.search(r",\s+\d", predicted):
            pred_value = Fraction(pred.replace(",", ""))
    if pred_value is not None and gold_value is not None:
        return pred_value == gold_value
    if (_BASE_NUMERAL.fullmatch(pred) and pred_value is None) or (_BASE_NUMERAL.fullmatch(gold) and gold_value is None):
        return False  # not a numeral of its base (9_8), or a base numeral against a non-number
    if gold_value is not None and re.fullmatch(r"-?[\d.,/\\{}frac]+", pred) and pred_value is None:
        return False  # a malformed number against a number
    if _HUGE.search(pred) or _HUGE.search(gold):
        return False  # refuse to evaluate; equal strings were already accepted above
    if max(nesting_depth(pred), nesting_depth(gold)) > MAX_NESTING:
        return False  # the LaTeX parser is super-linear in nesting depth; no real answer nests this deep
    return None


def _as_written(expression):
    """``expression`` with each Float replaced by the exact decimal it was written as (0.1 -> 1/10),
    so that decimals compare exactly rather than through binary rounding."""
    import sympy

    floats = expression.atoms(sympy.Float)
    return expression.xreplace({f: sympy.Rational(str(f)) for f in floats}) if floats else expression


def _numbers_agree(gold, pred) -> bool | None:
    """Exact comparison of two SymPy numbers, None when either is not a plain number.

    Rationals compare exactly (1/2^98 is not 1/2^99; math-verify rounds to 6 decimals and equates
    them); a rational is never an irrational (3.14, or pi to 16 digits, is not pi); infinities must be
    identical; the rest (surds, pi, logs) at 50 digits with relative tolerance 1e-30, which separates
    different closed forms but not one closed form written two ways."""
    import sympy

    if not isinstance(gold, sympy.Expr) or not isinstance(pred, sympy.Expr) or gold.free_symbols or pred.free_symbols:
        return None
    gold, pred = _as_written(gold), _as_written(pred)
    if gold.is_Rational and pred.is_Rational:
        return gold == pred
    if (gold.is_Rational and pred.is_rational is False) or (pred.is_Rational and gold.is_rational is False):
        return False
    special = (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan)
    if gold.has(*special) or pred.has(*special):
        return gold == pred
    a, b = sympy.N(gold, 50), sympy.N(pred, 50)
    if not (a.is_number and b.is_number) or a.has(*special) or b.has(*special):
        return None
    try:
        return bool(abs(a - b) <= sympy.Float("1e-30", 50) * max(abs(a), abs(b)))
    except TypeError:  # an unevaluated function left in either: not a plain number after all
        return None


def _with_imaginary_unit(expression):
    """Read a free symbol ``i`` as the imaginary unit (``1+2i``, ``14.0 + -1.0i``)."""
    import sympy

    if isinstance(expression, sympy.Basic):
        return expression.subs({s: sympy.I for s in expression.free_symbols if getattr(s, "name", "") == "i"})
    return expression


def _equations_agree(gold, pred) -> bool | None:
    """Two equations are the same when ``lhs - rhs`` of one is a non-zero constant times the other's."""
    import sympy

    if not isinstance(gold, sympy.Equality) or not isinstance(pred, sympy.Equality):
        return None
    g, p = gold.lhs - gold.rhs, pred.lhs - pred.rhs
    if p == 0:
        return g == 0
    ratio = sympy.simplify(g / p)
    return bool(ratio.is_number and ratio != 0)


def _parse_latex(answer: str) -> list:
    """math-verify's parse of a normalised answer, with its unit stripping off: it reads the ``m`` of
    ``5+3m`` as metres (5+3m == 8); :func:`normalize` strips units only after a final number."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    latex = LatexExtractionConfig(normalization_config=NormalizationConfig(units=False, malformed_operators=True, nits=True))
    return parse(f"${normalize(answer)}$", extraction_config=[latex, ExprExtractionConfig()], parsing_timeout=None)


def symbolic_equal(predicted: str, reference: str) -> bool:
    """math-verify's LaTeX -> SymPy comparison (sets unordered, tuples ordered, intervals with their
    brackets) plus equations up to a factor, the imaginary unit, and an exact numeric check.
    Slow and possibly non-terminating: call it in a worker with a time limit."""
    from math_verify import verify

    gold, pred = _parse_latex(reference), _parse_latex(predicted)
    if not gold or not pred:
        return False
    transforms = [lambda e: e]
    if any(getattr(s, "name", "") == "i" for e in (gold[0], pred[0]) if hasattr(e, "free_symbols") for s in e.free_symbols):
        transforms.append(_with_imaginary_unit)
    for transform in transforms:
        g, p = transform(gold[0]), transform(pred[0])
        for check in (_equations_agree, _numbers_agree):
            verdict = check(g, p)
            if verdict is not None:
                if verdict:
                    return True
                break
        else:
            if verify([g], [p], timeout_seconds=None):
                return True
    return False
