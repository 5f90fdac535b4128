"""Channel rounding (torchvision's ``_make_divisible``): the one rule width scaling and block
kinds' inner widths share; it depends on nothing, so every layer of search_spaces may use it."""
from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without dropping more than 10%."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
