"""Parsing of label-code lists and mappings given on the command line or in Processing fields."""
from __future__ import annotations

from .errors import LandcoverError


def parse_codes(text: str | None) -> tuple[int, ...]:
    """``"0,255"`` → (0, 255); empty or None → (). Raises ``LandcoverError`` for non-integers."""
    try:
        return tuple(int(v) for v in (text or "").split(",") if v.strip())
    except ValueError:
        raise LandcoverError(f"codes must be comma-separated integers like 0,255, got {text!r}") from None


def parse_mapping(text: str | None) -> dict[int, int]:
    """``"13-19:13,0:5"`` → {13: 13, …, 19: 13, 0: 5}. Raises ``LandcoverError`` on bad syntax."""
    mapping = {}
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        try:
            source, target = item.split(":")
            lo, _, hi = source.partition("-")
            for code in range(int(lo), int(hi or lo) + 1):
                mapping[code] = int(target)
        except ValueError:
            raise LandcoverError(f"mapping entry {item!r} must look like CODE:VALUE or FROM-TO:VALUE") from None
    return mapping
