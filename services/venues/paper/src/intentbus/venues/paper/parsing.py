"""Parse the paper venue's option strings."""

from __future__ import annotations

import math
import re

_BOOK = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")


class OptionError(ValueError):
    """Raise when a venue option is malformed; the message names the option."""


def parse_float(
    name: str, raw: str, *, minimum: float | None = None, strict: bool = False
) -> float:
    """Parse a finite float, at least ``minimum`` (above it when ``strict``)."""
    try:
        value = float(raw)
    except ValueError:
        raise OptionError(f"option {name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise OptionError(f"option {name}={raw!r} must be finite")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        relation = ">" if strict else ">="
        raise OptionError(f"option {name}={raw!r} must be {relation} {minimum:g}")
    return value


def parse_bool(name: str, raw: str) -> bool:
    """Parse true/false, yes/no, on/off, 1/0."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"option {name}={raw!r} is not a boolean (true/false)")


def parse_symbol_map(name: str, raw: str, *, positive: bool = True) -> dict[str, float]:
    """Parse ``SYM:VALUE,SYM:VALUE`` (empty string: empty map)."""
    table: dict[str, float] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        symbol, sep, value = part.rpartition(":")
        symbol = symbol.strip()
        if not sep or not symbol or any(ch.isspace() for ch in symbol):
            raise OptionError(f"option {name}: {part!r} is not SYMBOL:VALUE")
        label = f"{name}[{symbol}]"
        table[symbol] = parse_float(label, value.strip(), minimum=0.0, strict=positive)
    return table


_ACCOUNT = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")


def parse_accounts(raw: str) -> dict[str, str]:
    """Parse ``BOOK:ACCOUNT,...``: each book trades on its own account, never two on one."""
    table: dict[str, str] = {}
    owners: dict[str, str] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        book, sep, account = (s.strip() for s in part.partition(":"))
        if not sep or not _BOOK.fullmatch(book) or not _ACCOUNT.fullmatch(account):
            raise OptionError(
                f"option accounts: {part!r} is not BOOK:ACCOUNT (a book is 1-64 and an "
                "account 1-128 of letters, digits, '_', '-', '=')"
            )
        if book in table and table[book] != account:
            raise OptionError(f"option accounts: book {book!r} is mapped twice")
        if owners.get(account, book) != book:
            raise OptionError(
                f"option accounts: books {owners[account]!r} and {book!r} cannot share "
                f"account {account!r} (one account per book)"
            )
        table[book] = account
        owners[account] = book
    return table
