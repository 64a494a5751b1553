"""What ``python3 dev.py demo`` needs to run the feed and the PM beside the other services.

The lead's demo starts processes with ``intentbus <args>``; these helpers give it the
PM's configuration file and the two command lines::

    config = write_demo_config(workdir / "pm.toml")
    for name, args in demo_commands(config, common):   # common: --nats-url/--namespace
        processes.start(name, *args)

The feed publishes ``candles`` seeded synthetic candles in lockstep with the PM (each
candle waits until the PM has finished the previous one and its intents have results),
so the demo is the same every time: with the defaults, 11 intents on one position
opened by the PM (EMA333 is warm after 333 candles). It needs a ledger and a paper
executor running on the same server and namespace.
"""

from __future__ import annotations

from pathlib import Path

DEMO_PM_NAME = "pm-demo"


def demo_config_text(
    *,
    venue: str = "paper",
    book: str = "demo",
    symbol: str = "BTC",
    timeframe: str = "1h",
    allocation_usd: float = 10_000.0,
    deadline_bars: float = 0.01,
) -> str:
    """Return a PM configuration with one book trading ``symbol`` with the reference planner.

    ``deadline_bars`` is short (36 s on 1h candles) because the demo's candles come much
    faster than their timeframe: an order that rests is cancelled quickly.
    """
    return (
        f'[pm]\nname = "{DEMO_PM_NAME}"\nresult_wait_s = 10\n\n'
        f'[books.{book}]\nvenue = "{venue}"\ntimeframe = "{timeframe}"\n'
        f'planner = "reference"\nsymbols = ["{symbol}"]\nallocation_usd = {allocation_usd}\n'
        f"max_open_positions = 1\nmax_intents_per_tick = 5\ndeadline_bars = {deadline_bars}\n"
    )


def write_demo_config(path: Path, **options: object) -> Path:
    """Write :func:`demo_config_text` to ``path`` and return it."""
    path.write_text(demo_config_text(**options))  # type: ignore[arg-type]
    return path


def demo_commands(
    config: Path,
    common: list[str],
    *,
    candles: int = 600,
    seed: int = 7,
    venue: str = "paper",
    symbol: str = "BTC",
    timeframe: str = "1h",
) -> list[tuple[str, list[str]]]:
    """Return (process name, ``intentbus`` arguments) of the PM and the feed, in start order."""
    return [
        ("pm", ["pm", "--config", str(config), *common]),
        (
            "feed",
            [
                "feed", "--synthetic", str(candles), "--seed", str(seed), "--venue", venue,
                "--symbol", symbol, "--timeframe", timeframe, "--lockstep", DEMO_PM_NAME,
                *common,
            ],
        ),
    ]  # fmt: skip
