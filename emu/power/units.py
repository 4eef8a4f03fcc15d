"""Quantities with SI prefixes: "100uF", "2.8", "1mW", "10ms", "10MOhm".

`parse_quantity(text, unit)` is what the command line and the TOML reader use; errors name
the bad value and the expected form.
"""

from __future__ import annotations

import math
import re

from ..errors import EmuError

__all__ = ["parse_quantity", "parse_fraction", "format_quantity", "QUANTITY_NAMES"]

_PREFIXES = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3,
             "M": 1e6, "G": 1e9}
_EXPONENTS = {"p": -12, "n": -9, "u": -6, "µ": -6, "μ": -6, "m": -3, "k": 3, "M": 6, "G": 9}
# unit -> (what it measures, an example, accepted spellings)
QUANTITY_NAMES = {
    "F": ("capacitance", "100uF", ("F",)),
    "V": ("voltage", "2.8V", ("V",)),
    "W": ("power", "1mW", ("W",)),
    "A": ("current", "2mA", ("A",)),
    "s": ("time", "10ms", ("s",)),
    "Ohm": ("resistance", "10MOhm", ("Ohm", "ohm", "Ω", "R")),
    "Hz": ("frequency", "8MHz", ("Hz",)),
    "J": ("energy", "70nJ", ("J",)),
}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"


def parse_quantity(text: str | float | int, unit: str, *, what: str | None = None) -> float:
    """The value of `text` in base SI units. `text` is a number, or a string: a number,
    an optional SI prefix (p n u/µ m k M G) and the optional unit, e.g. "100uF", "100u",
    "1e-4", "2.8V". `what` names the setting in error messages."""
    name, example, spellings = QUANTITY_NAMES[unit]
    label = what or name
    if isinstance(text, bool):
        raise EmuError(f"bad {label} {text!r}: expected a {name} such as {example}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().replace(" ", "")
        match = re.fullmatch(rf"({_NUMBER})([pnuµμmkMG]?)({'|'.join(map(re.escape, spellings))})?", s)
        if match is None:
            # "1m" would be read as 1 milli; a trailing unit of the wrong kind is a mistake
            raise EmuError(f"bad {label} {str(text)!r}: expected a number with an optional SI prefix "
                           f"(p n u m k M G) and unit {unit}, such as {example}")
        number, prefix = match.group(1), match.group(2)
        if prefix and "e" not in number.lower():  # "30nF" -> float("30e-9"): the nearest double
            value = float(f"{number}e{_EXPONENTS[prefix]}")
        else:
            value = float(number) * _PREFIXES[prefix]
    if not math.isfinite(value):
        raise EmuError(f"bad {label} {text!r}: must be a finite number, such as {example}")
    return value


def parse_fraction(text: str | float | int, *, what: str = "fraction") -> float:
    """0.25, "0.25" or "25%"."""
    if isinstance(text, bool):
        raise EmuError(f"bad {what} {text!r}: expected a number between 0 and 1 or a percentage, such as 0.5 or 50%")
    try:
        if isinstance(text, str) and text.strip().endswith("%"):
            value = float(text.strip()[:-1]) / 100.0
        else:
            value = float(text)
    except ValueError:
        raise EmuError(f"bad {what} {text!r}: expected a number between 0 and 1 or a percentage, "
                       "such as 0.5 or 50%") from None
    if not 0.0 <= value <= 1.0:
        raise EmuError(f"bad {what} {text!r}: must lie between 0 and 1 (0% and 100%)")
    return value


def format_quantity(value: float, unit: str) -> str:
    """Engineering notation: 1e-4, "F" -> "100uF"."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}{unit}"
    exponent = int(math.floor(math.log10(abs(value)) / 3) * 3)
    exponent = max(-12, min(9, exponent))
    prefix = {-12: "p", -9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G"}[exponent]
    return f"{value / 10 ** exponent:.4g}{prefix}{unit}"
