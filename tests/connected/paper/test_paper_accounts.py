"""Paper venue accounts: nets, reduce-only, fees, closed PnL, one account per book, long ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intentbus.schemas import Liquidity, OrderState, Side
from intentbus.venues.paper import PaperConfig
from intentbus.venues.paper.client import PaperVenueClient
from intentbus.venues.paper.parsing import OptionError
from intentbus.venues.paper.protocol import PaperSubjects
from tests.connected.paper.paper_support import StartPaper, market, plan

EPOCH = datetime.fromtimestamp(0, UTC)


async def test_reduce_only_shrinks_to_the_net_and_never_flips(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    ex = paper.executor
    await ex.place(market(Side.BUY, 2.0, 101.0))
    closing = await ex.place(market(Side.SELL, 5.0, 99.0, reduce_only=True))
    assert (closing.state, closing.size, closing.filled_size) == (OrderState.FILLED, 2.0, 2.0)
    assert "shrunk" in closing.reason
    assert await ex.net_position("main", "BTC") == 0.0
    nothing = await ex.place(market(Side.SELL, 1.0, 99.0, reduce_only=True))
    assert (nothing.state, nothing.filled_size) == (OrderState.REJECTED, 0.0)
    assert "nothing to reduce" in nothing.reason
    wrong_way = await ex.place(market(Side.BUY, 1.0, 101.0, reduce_only=True))
    assert wrong_way.state is OrderState.REJECTED
    # A resting reduce-only order whose net is gone is cancelled, never flips the account.
    await ex.place(market(Side.BUY, 1.0, 101.0))
    resting = plan(side=Side.SELL, size=1.0, price=105.0, reduce_only=True)
    assert (await ex.place(resting)).state is OrderState.WORKING
    await ex.place(market(Side.SELL, 1.0, 99.0))
    await paper.set_mark("BTC", 106.0)
    gone = await paper.status(resting)
    assert (gone.state, gone.filled_size) == (OrderState.CANCELLED, 0.0)
    assert await ex.net_position("main", "BTC") == 0.0
    # One whose net shrank meanwhile fills only what is left of it.
    await ex.place(market(Side.BUY, 2.0, 107.0))
    shrinking = plan(side=Side.SELL, size=2.0, price=108.0, reduce_only=True)
    assert (await ex.place(shrinking)).state is OrderState.WORKING
    await ex.place(market(Side.SELL, 1.5, 105.0))
    await paper.set_mark("BTC", 109.0)
    part = await paper.status(shrinking)
    assert (part.state, part.filled_size) == (OrderState.PARTIALLY_FILLED, 0.5)
    assert await ex.net_position("main", "BTC") == 0.0
    await paper.set_mark("BTC", 110.0)
    assert (await paper.status(shrinking)).state is OrderState.CANCELLED


async def test_fees_and_closed_pnl_like_hyperliquid(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, taker_fee_bps=5.0, maker_fee_bps=1.0)
    ex = paper.executor
    await ex.place(market(Side.BUY, 2.0, 101.0))  # long 2 at 100
    await ex.place(plan(side=Side.SELL, size=1.0, price=110.0))  # rests
    await paper.set_mark("BTC", 111.0)  # maker: sells 1 at 110
    await paper.set_mark("BTC", 90.0)
    await ex.place(market(Side.SELL, 3.0, 89.0))  # closes 1 at 90, opens short 2 at 90
    await paper.set_mark("BTC", 80.0)
    await ex.place(market(Side.BUY, 2.0, 81.0))  # covers the short at 80
    fills = await ex.fills_since("main", EPOCH)
    got = [(f.side, f.size, f.price, f.liquidity, f.closed_pnl) for f in fills]
    assert got == [
        (Side.BUY, 2.0, 100.0, Liquidity.TAKER, 0.0),
        (Side.SELL, 1.0, 110.0, Liquidity.MAKER, 10.0),
        (Side.SELL, 3.0, 90.0, Liquidity.TAKER, -10.0),
        (Side.BUY, 2.0, 80.0, Liquidity.TAKER, 20.0),
    ]
    fees = [f.fee for f in fills]
    assert fees == pytest.approx([0.1, 0.011, 0.135, 0.08])
    assert {f.fee_currency for f in fills} == {"USD"}
    assert await ex.net_position("main", "BTC") == 0.0
    (account,) = await ex.client.accounts("main")
    assert account.fees_usd == pytest.approx(sum(fees))
    assert account.cash_usd == pytest.approx(20.0 - sum(fees))  # flat: cash is the PnL
    assert account.positions["BTC"][2] == pytest.approx(20.0)


async def test_one_account_per_book_and_positions_net_on_it(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0}, accounts={"alpha": "acct-A"})
    ex = paper.executor
    assert (ex.account_for("alpha"), ex.account_for("beta")) == ("acct-A", "beta")
    # Two positions of book alpha trade on one account: one net.
    alpha = {"book": "alpha", "account": "acct-A"}
    await ex.place(market(Side.BUY, 2.0, 101.0, position_id="long-1", **alpha))
    await ex.place(market(Side.SELL, 0.5, 99.0, position_id="short-1", **alpha))
    assert await ex.net_position("acct-A", "BTC") == 1.5
    closing = await ex.place(market(Side.SELL, 9.0, 99.0, reduce_only=True, **alpha))
    assert closing.filled_size == 1.5
    # The wrong account for a book, or a book on another book's account, is refused.
    wrong = await ex.place(market(Side.BUY, 1.0, 101.0, book="alpha", account="alpha"))
    assert wrong.state is OrderState.REJECTED
    assert "trades on account acct-A" in wrong.reason
    await ex.place(market(Side.BUY, 1.0, 101.0, book="beta"))
    assert await ex.net_position("beta", "BTC") == 1.0
    assert await ex.net_position("acct-A", "BTC") == 0.0
    theirs = await ex.place(market(Side.BUY, 1.0, 101.0, book="acct-A", account="acct-A"))
    assert theirs.state is OrderState.REJECTED
    assert "belongs to book alpha" in theirs.reason
    # A refused order binds nothing: gamma's own account is still gamma's.
    astray = await ex.place(market(Side.BUY, 1.0, 101.0, book="delta", account="gamma"))
    assert astray.state is OrderState.REJECTED
    own = await ex.place(market(Side.BUY, 1.0, 101.0, book="gamma"))
    assert own.state is OrderState.FILLED
    assert [a.book_id for a in await ex.client.accounts("gamma")] == ["gamma"]


def test_two_books_on_one_account_are_refused() -> None:
    with pytest.raises(OptionError, match="cannot share account"):
        PaperConfig.from_options({"accounts": "a:shared,b:shared"})
    with pytest.raises(OptionError, match="cannot share account"):
        PaperConfig(accounts={"a": "shared", "b": "shared"})


async def test_ids_at_their_maximum_lengths(start_paper: StartPaper) -> None:
    name, book, account = "v" * 64, "b" * 64, "A" * 128
    symbol = "xyz:" + "S." * 62  # 128 chars, not subject-safe: priced by the start table
    cloid = "0x" + "c" * 126
    assert (len(symbol), len(cloid)) == (128, 128)
    paper = await start_paper(name=name, prices={symbol: 100.0}, accounts={book: account})
    ex = paper.executor
    ids = {"book": book, "account": account, "symbol": symbol, "cloid": cloid, "venue": name}
    order = market(Side.BUY, 1.0, 101.0, **ids)
    placed = await ex.place(order)
    assert (placed.state, placed.account, placed.symbol) == (OrderState.FILLED, account, symbol)
    assert (await ex.order_status(account, symbol, cloid)).filled_size == 1.0
    assert await ex.net_position(account, symbol) == 1.0
    (fill,) = await ex.fills_since(account, EPOCH)
    assert fill.client_order_id == cloid
    await paper.wait_events(cloid, fills=1, orders=1)  # the 128-char account's feed
    await paper.set_mark("BTC", 100.0)  # marks of a 64-char venue name
    assert ex.mark("BTC") == 100.0


async def test_malformed_requests_get_a_structured_error(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    subjects = PaperSubjects(paper.topology, paper.config.name)
    for op, payload in (("place", b"not json"), ("place", b'{"plan": {}}'), ("nope", b"{}")):
        reply = await paper.nc.request(subjects.api(op), payload, timeout=5)
        assert b'"kind":"error"' in reply.data
        assert b'"code":"bad_request"' in reply.data
    client = PaperVenueClient(paper.nc, subjects, timeout_s=5)
    assert (await client.meta()).name == "paper"  # still serving
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert await client.fills_since("nobody", since) == []
