"""The PM's configuration file (TOML): its name, features and one table per book.

```toml
[pm]
name = "pm"                  # durable consumer name on CANDLES (one per PM deployment)
result_wait_s = 30           # extra wait for a result after an intent's deadline

[books.main]
venue = "paper"
timeframe = "1h"             # candles the book plans on
planner = "reference"        # entry point name in `intentbus.planners`
legacy = false               # true: the planner returns plan_actions_v4 dicts (phases 2-3)
symbols = ["BTC"]            # symbols the PM opens positions on by itself (may be empty)
allocation_usd = 10000       # allocation of each position the PM opens
max_open_positions = 5       # caps, applied before publishing (refusals are recorded)
max_allocation_usd = 50000
max_intents_per_tick = 10
deadline_bars = 1.0          # an intent's deadline: this many bars of the timeframe

[books.main.planner_options]
cooldown_bars = 12
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from intentbus.bus import check_token
from intentbus.pm.indicators import StackParams
from intentbus.schemas.candle import timeframe_duration


class ConfigError(ValueError):
    """Raise when the configuration file is invalid; the message names the key."""


@dataclass(frozen=True)
class BookConfig:
    """One book: where it trades, how it plans and its caps."""

    book_id: str
    venue: str
    timeframe: str
    planner: str = "reference"
    planner_options: Mapping[str, Any] = field(default_factory=dict)
    legacy: bool = False
    symbols: tuple[str, ...] = ()
    allocation_usd: float = 1_000.0
    max_open_positions: int = 10
    max_allocation_usd: float | None = None
    max_intents_per_tick: int = 20
    deadline_bars: float = 1.0

    def __post_init__(self) -> None:
        try:
            check_token("book", self.book_id)
            check_token("venue", self.venue)
            check_token("timeframe", self.timeframe)
            timeframe_duration(self.timeframe)
            for symbol in self.symbols:
                check_token("symbol", symbol)
        except ValueError as exc:
            raise ConfigError(f"books.{self.book_id}: {exc}") from None
        if self.allocation_usd <= 0 or self.deadline_bars <= 0:
            raise ConfigError(f"books.{self.book_id}: allocation_usd and deadline_bars must be > 0")

    @property
    def ttl(self) -> timedelta:
        """Return the lifetime of this book's intents."""
        return timeframe_duration(self.timeframe) * self.deadline_bars


@dataclass(frozen=True)
class PMConfig:
    """The whole PM configuration."""

    books: tuple[BookConfig, ...]
    name: str = "pm"
    result_wait_s: float = 30.0
    features: StackParams = field(default_factory=StackParams)

    def __post_init__(self) -> None:
        try:
            check_token("pm name", self.name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not self.books:
            raise ConfigError("no book is configured: add a [books.<id>] table")

    @property
    def markets(self) -> set[tuple[str, str]]:
        """Return the (venue, timeframe) pairs whose candles the PM plans on."""
        return {(book.venue, book.timeframe) for book in self.books}

    @property
    def max_ttl(self) -> timedelta:
        """Return the longest intent lifetime of any book."""
        return max(book.ttl for book in self.books)

    @classmethod
    def load(cls, path: Path) -> PMConfig:
        """Read a TOML file."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PMConfig:
        """Build from parsed TOML; an unknown or mistyped key is an error naming it."""
        _no_unknown("", data, {"pm", "books", "features"})
        pm = dict(data.get("pm", {}))
        _no_unknown("pm", pm, {"name", "result_wait_s"})
        features = dict(data.get("features", {}))
        _no_unknown("features", features, {f.name for f in fields(StackParams)})
        if "periods" in features:
            features["periods"] = tuple(features["periods"])
        books = []
        for book_id, raw in dict(data.get("books", {})).items():
            known = {f.name for f in fields(BookConfig)} - {"book_id"}
            _no_unknown(f"books.{book_id}", raw, known)
            values = dict(raw)
            if "symbols" in values:
                values["symbols"] = tuple(values["symbols"])
            try:
                books.append(BookConfig(book_id=book_id, **values))
            except TypeError as exc:
                raise ConfigError(f"books.{book_id}: {exc}") from None
        return cls(books=tuple(books), features=StackParams(**features), **pm)


def _no_unknown(where: str, data: Any, known: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'the file'} must be a table")
    unknown = sorted(set(data) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown key(s): {', '.join(prefix + key for key in unknown)}")
