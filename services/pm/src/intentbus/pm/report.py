"""Backtest output: trades and PnL as tables, equity and position as a PNG plot."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from intentbus.pm.backtest import BacktestResult


def trades_table(result: BacktestResult, limit: int | None = None) -> Table:
    """Return one row per intent: time, position, action, side, size, price, fee, PnL."""
    table = Table(title="Trades")
    for column in ("time", "position", "action", "side", "size", "price", "fee", "pnl", "note"):
        table.add_column(column, justify="right" if column in {"size", "price"} else "left")
    trades = result.trades if limit is None else result.trades[-limit:]
    for trade in trades:
        table.add_row(
            trade.at.strftime("%Y-%m-%d %H:%M"),
            trade.position_id[-24:],
            trade.action,
            trade.side,
            f"{trade.size:g}",
            f"{trade.price:.6g}",
            f"{trade.fee_usd:.2f}",
            f"{trade.realized_pnl_usd:.2f}",
            trade.skip_reason or "",
        )
    return table


def summary_table(result: BacktestResult) -> Table:
    """Return the run's totals: candles, intents, fills, skips, refusals, PnL, drawdown."""
    table = Table(title="PnL")
    table.add_column("figure")
    table.add_column("value", justify="right")
    filled = sum(1 for t in result.trades if t.filled)
    final = result.equity[-1].equity_usd if result.equity else 0.0
    rows = [
        ("candles", f"{result.candles}"),
        ("intents", f"{len(result.intents)}"),
        ("filled", f"{filled}"),
        ("skipped", f"{len(result.trades) - filled}"),
        ("refused by caps", f"{len(result.refusals)}"),
        ("positions", f"{len(result.positions)}"),
        ("realized PnL (USD)", f"{result.realized_pnl_usd:,.2f}"),
        ("fees (USD)", f"{result.fees_usd:,.2f}"),
        ("final equity PnL (USD)", f"{final:,.2f}"),
        ("max drawdown (USD)", f"{result.max_drawdown_usd:,.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def print_report(result: BacktestResult, console: Console, limit: int | None = None) -> None:
    """Print the trades and PnL tables."""
    console.print(trades_table(result, limit))
    console.print(summary_table(result))


def plot(result: BacktestResult, path: Path, title: str = "intentbus backtest") -> Path:
    """Write a PNG: price with fills, equity (PnL) and position size. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional dependency: intentbus-pm[plot]
        raise RuntimeError("the plot needs matplotlib: pip install 'intentbus-pm[plot]'") from exc
    times = [p.at for p in result.equity]
    figure, (price, equity, size) = plt.subplots(3, 1, sharex=True, figsize=(11, 8))
    price.plot(times, [p.close for p in result.equity], linewidth=0.8, color="black")
    buys = [t for t in result.trades if t.filled and t.side == "buy"]
    sells = [t for t in result.trades if t.filled and t.side == "sell"]
    price.scatter([t.at for t in buys], [t.price for t in buys], marker="^", color="green", s=18)
    price.scatter([t.at for t in sells], [t.price for t in sells], marker="v", color="red", s=18)
    price.set_ylabel("close")
    equity.plot(times, [p.equity_usd for p in result.equity], color="tab:blue")
    equity.set_ylabel("PnL (USD)")
    size.step(times, [p.position_size for p in result.equity], where="post", color="tab:orange")
    size.set_ylabel("position")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
