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
DEFAULT_PASSIVE_OFFSET_BPS = 10
# Liquidity per mark update and side, in USD; 0 means unlimited.
DEFAULT_DEPTH_USD = 0.0
# The server's lease on its venue name: renewed every third of it.
DEFAULT_LEASE_S = 10.0
# Heartbeats repeat each account's event sequence number so clients notice lost events.
DEFAULT_HEARTBEAT_S = 1.0
# How long the executor waits for the server's answer.
DEFAULT_TIMEOUT_S = 5.0
# Sizes closer than this to zero are zero (float noise of partial fills).
SIZE_EPSILON = 1e-12
# Orders one step (a mark update, an expiry tick, a group of requests) may change, so its
# journal entry stays far below NATS's 1 MB message limit; the rest waits for the next
# mark, tick or entry.
MAX_ORDERS_PER_STEP = 200
# Fills and orders per reply page (a reply stays below the 1 MB message limit).
PAGE_SIZE = 500
