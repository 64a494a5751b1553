"""Defaults of the paper venue."""

from __future__ import annotations

VENUE = "paper"
DEFAULT_LOT_SIZE = 0.0001
DEFAULT_MIN_NOTIONAL_USD = 10.0
DEFAULT_SLIPPAGE_BPS = 5.0
DEFAULT_TAKER_FEE_BPS = 4.5
DEFAULT_MAKER_FEE_BPS = 1.5
DEFAULT_LEVERAGE = 1.0
DEFAULT_MAX_LEVERAGE = 10.0
DEFAULT_MAX_SLIPPAGE_BPS = 50
ACCOUNT_BUCKET_PREFIX = "PAPER_"
# Orders of stopped placers a book may list before a commit finalises them itself.
UNFINALISED_ORDERS_PER_SYMBOL = 32
# Status of the zero-size order that fences a client order id the runtime will not send.
FENCED = "fenced"
