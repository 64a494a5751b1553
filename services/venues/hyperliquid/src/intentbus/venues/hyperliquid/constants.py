"""Hyperliquid constants: URLs, venue rules and the venue's own error strings."""

from __future__ import annotations

VENUE = "hyperliquid"
MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"
NETWORKS = {"mainnet": MAINNET_API_URL, "testnet": TESTNET_API_URL}

MIN_NOTIONAL_USD = 10.0
MAX_SIGNIFICANT_FIGURES = 5
MAX_PERP_DECIMALS = 6
FILLS_PAGE = 2000  # userFillsByTime answers at most this many fills per request

# Where the secret key comes from (never from a command-line option).
KEY_ENV = "HYPERLIQUID_SECRET_KEY"

TIF_WIRE = {"gtc": "Gtc", "ioc": "Ioc", "post_only": "Alo"}

# Per-order errors (live ones end in " asset=<n>").
ERR_TICK = "Price must be divisible by tick size."
ERR_MIN_VALUE = "Order must have minimum value of $10."
ERR_MARGIN = "Insufficient margin to place order."
ERR_REDUCE_ONLY = "Reduce only order would increase position."
ERR_POST_ONLY = "Post only order would have immediately matched, bbo was {bid}@{ask}."
ERR_IOC_NO_MATCH = "Order could not immediately match against any resting orders."
ERR_INVALID_SIZE = "Order has invalid size."
ERR_INVALID_PRICE = "Order has invalid price."
ERR_PRICE_BAND = "Order price cannot be more than 80% away from the reference price"
ERR_CANCEL_MISSING = "Order was never placed, already canceled, or filled."
# Whole-action errors.
ERR_UNKNOWN_SIGNER = "User or API Wallet {address} does not exist."
ERR_DUPLICATE_NONCE = "Invalid nonce: duplicate nonce {nonce}"
ERR_NONCE_TOO_LOW = "Invalid nonce: nonce too low {nonce} < {lowest}"
ERR_LEVERAGE = "Invalid leverage value"
ERR_SWITCH_MARGIN = "Cannot switch leverage type with open position."
# Not in the collected notes: our wording for cases the venue also refuses.
ERR_EXPIRED = "Action expired: expiresAfter {expires_after} is before now {now}"
ERR_DELISTED = "Trading is halted for this asset."
ERR_ONLY_ISOLATED = "Cross margin is not allowed for this asset."

# orderStatus states that mean "still on the book", "filled", "cancelled".
OPEN_STATUSES = frozenset({"open", "triggered"})
FILLED_STATUSES = frozenset({"filled"})
# An IOC that found nothing to match ends like a cancelled order, not a refused one.
CANCELLED_REJECTIONS = frozenset({"iocCancelRejected"})
