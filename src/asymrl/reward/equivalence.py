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
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?$")
# Exponents or factorials this large are refused before SymPy ever evaluates them.
_HUGE = re.compile(r"\^\s*\{?\s*-?\d{4,}|\^\s*\{[^{}]*\^|\d{4,}\s*!|\^\s*\d+\s*\^|(\d{2,}|\})\s*!\s*!")


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
    if re.fullmatch(r"[A-Za-z][A-Za-z ]*", pred) and re.fullmatch(r"[A-Za-z][A-Za-z ]*", gold):
        return pred.lower() == gold.lower()  # text answers: "Even" is "even"
    if ":" in pred or ":" in gold or "\\ldots" in pred or "\\ldots" in gold:
        return False  # ratios and patterns: only equal strings count (SymPy would equate 1:2:3 and 1:4:9)
    pred_value, gold_value = parse_rational(pred), parse_rational(gold)
    if pred_value is None and gold_value is not None:
        # Thousands separators the normaliser left alone ("11, 111, 100") only against a plain number.
        grouped = re.fullmatch(r"-?\d{1,3}(?:,\d{3})+", pred)
        # "32, 349" (comma and space) reads as a list; "32,\! 349" and "32{,}349" are one number.
        if grouped and not re.search(r",\s+\d", predicted):
            pred_value = Fraction(pred.replace(",", ""))
    if pred_value is not None and gold_value is not None:
        return pred_value == gold_value
    if gold_value is not None and re.fullmatch(r"-?[\d.,/\\{}frac]+", pred) and pred_value is None:
        return False  # a malformed number against a number
    if _HUGE.search(pred) or _HUGE.search(gold):
        return False  # refuse to evaluate; equal strings were already accepted above
    return None


def _numbers_agree(gold, pred) -> bool | None:
    """Exact-enough comparison of two SymPy numbers (relative 1e-12 at 40 digits): math-verify rounds
    to 6 decimals, which equates 1/2^98 and 1/2^99. None when either is not a plain number."""
    import sympy

    if not isinstance(gold, sympy.Expr) or not isinstance(pred, sympy.Expr) or gold.free_symbols or pred.free_symbols:
        return None
    a, b = complex(sympy.N(gold, 40)), complex(sympy.N(pred, 40))
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1e-300)


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


def symbolic_equal(predicted: str, reference: str) -> bool:
    """math-verify's LaTeX -> SymPy comparison (sets unordered, tuples ordered, intervals with their
    brackets) plus equations up to a factor, the imaginary unit, and an exact numeric check.
    Slow and possibly non-terminating: call it in a worker with a time limit."""
    from math_verify import ExprExtractionConfig, parse, verify

    gold = parse(f"${normalize(reference)}$", parsing_timeout=None)
    candidates = [parse(f"${normalize(predicted)}$", parsing_timeout=None)]
    if re.search(r"\*|\bexp\(|\bsqrt\(|\bpi\b", predicted):  # plain-text maths: exp(16), 2*pi
        candidates.append(parse(predicted, extraction_config=[ExprExtractionConfig()], parsing_timeout=None))
    if not gold:
        return False
    for pred in candidates:
        if not pred:
            continue
        for transform in (lambda e: e, _with_imaginary_unit):
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
