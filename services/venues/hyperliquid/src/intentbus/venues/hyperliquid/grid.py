"""Hyperliquid's size and price grid: pure functions shared by the executor and the venue.

Size: at most ``szDecimals`` decimals. Price (perps): at most 5 significant figures and at
most ``6 - szDecimals`` decimals; an integer price is always valid.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from intentbus.venues.hyperliquid.constants import MAX_PERP_DECIMALS, MAX_SIGNIFICANT_FIGURES

_NOISE = Decimal("1e-12")


def price_decimals(sz_decimals: int) -> int:
    """Return the most decimals a perp price may have."""
    return max(MAX_PERP_DECIMALS - sz_decimals, 0)


def _sig_decimals(price: Decimal) -> int:
    """Return the decimals that keep 5 significant figures of ``price``."""
    if price == 0:
        return 0
    exponent = math.floor(math.log10(abs(price)))
    return MAX_SIGNIFICANT_FIGURES - 1 - exponent


def valid_price(price: float | str | Decimal, sz_decimals: int) -> bool:
    """Say whether the venue accepts ``price`` for an asset with ``sz_decimals``."""
    value = Decimal(str(price))
    if value <= 0:
        return False
    if value == value.to_integral_value():
        return True
    decimals = -int(value.normalize().as_tuple().exponent)
    return decimals <= price_decimals(sz_decimals) and decimals <= _sig_decimals(value)


def _exact(value: float) -> Decimal:
    """Return ``value`` without float noise (3200 * 1.003 is 3209.6, not 3209.5999...)."""
    return Decimal(repr(value)).quantize(_NOISE)


def round_price(price: float, sz_decimals: int, *, up: bool) -> float:
    """Round ``price`` to the venue grid, up (sells) or down (buys)."""
    value = _exact(price)
    decimals = min(price_decimals(sz_decimals), max(_sig_decimals(value), 0))
    quantum = Decimal(1).scaleb(-decimals)
    rounded = value.quantize(quantum, rounding=ROUND_CEILING if up else ROUND_FLOOR)
    if not valid_price(rounded, sz_decimals):  # rounding up crossed a power of ten
        rounded = rounded.quantize(quantum * 10, rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return float(rounded)


def tick(price: float, sz_decimals: int) -> float:
    """Return the price step near ``price``."""
    decimals = min(price_decimals(sz_decimals), max(_sig_decimals(Decimal(str(price))), 0))
    return float(Decimal(1).scaleb(-decimals))


def valid_size(size: float | str, sz_decimals: int) -> bool:
    """Say whether ``size`` has at most ``sz_decimals`` decimals and is positive."""
    value = Decimal(str(size))
    if value <= 0:
        return False
    return -int(value.normalize().as_tuple().exponent) <= sz_decimals


def round_size(size: float, sz_decimals: int) -> float:
    """Round ``size`` down to the size grid."""
    quantum = Decimal(1).scaleb(-sz_decimals)
    return float(_exact(size).quantize(quantum, rounding=ROUND_FLOOR))


def wire(value: float) -> str:
    """Format a number as the venue does on the wire (``65000.0``, ``0.01``)."""
    text = f"{value:.8f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
