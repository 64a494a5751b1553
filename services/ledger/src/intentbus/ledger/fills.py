"""Apply one ``FILLS`` message: the position moves, the fill id is stored, in one transaction.

A fill for a position the ledger does not know is refused (dead-lettered), never used
to create one: the ledger cannot know the position's allocation or intended direction.
The recovery is to open the position, then ``intentbus ledger --rebuild``, which
re-reads ``FILLS`` and applies it. A fill on a closed position is applied (the money
moved) and noted; so is a venue ``closed_pnl`` that differs from the ledger's realized PnL.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import msgspec

from intentbus.ledger.accounting import (
    InvalidFill,
    Trade,
    apply_trade,
    check_identity,
    dec,
    fee_in_usd,
    later,
)
from intentbus.ledger.applier import Applied, Duplicate, Outcome, Rejected
from intentbus.ledger.checks import close_enough, late_fill_problem
from intentbus.ledger.storage import FillRecord, LedgerTransaction
from intentbus.schemas import Fill, decoder, result_id_for
from intentbus.telemetry import instruments

log = logging.getLogger(__name__)

NOTE_CLOSED = "fill on a closed position"

_fill_decoder = decoder(Fill)


def unknown_position_error(fill: Fill) -> str:
    """Say why a fill for an unknown position is refused and what to do."""
    return (
        f"fill {fill.fill_id} is for position {fill.position_id} (venue {fill.venue}, book "
        f"{fill.book_id}, symbol {fill.symbol}), which the ledger does not know: open the "
        "position (`intentbus positions open`), then run `intentbus ledger --rebuild` to "
        "apply its fills"
    )


async def apply_fill_message(tx: LedgerTransaction, data: bytes, seq: int) -> Outcome:
    """Apply the fill at ``FILLS`` sequence ``seq`` (the sequence is handled whatever happens).

    A rejected fill stores no fill id, so a corrected copy is still applied later.
    """
    await tx.advance_seq("fills", seq)
    try:
        fill = _fill_decoder.decode(data)
    except msgspec.MsgspecError as exc:
        return Rejected(f"invalid fill: {exc}")
    if await tx.fill(fill.fill_id) is not None:
        return Duplicate(fill.fill_id)
    state = await tx.load(fill.position_id)
    if state is None:
        return Rejected(unknown_position_error(fill))
    try:
        check_identity(state, f"fill {fill.fill_id}", fill.venue, fill.book_id, fill.symbol)
        trade = Trade(
            side=fill.side,
            size=dec(fill.size),
            price=dec(fill.price),
            fee_usd=fee_in_usd(fill.fee, fill.fee_currency),
        )
        effect = apply_trade(state, trade)
    except InvalidFill as exc:
        return Rejected(f"fill {fill.fill_id} refused: {exc}")
    notes = list(effect.notes)
    if fill.closed_pnl is not None and not close_enough(dec(fill.closed_pnl), effect.realized_usd):
        notes.append(f"venue closed_pnl {fill.closed_pnl!r}, ledger realized {effect.realized_usd}")
    if state.closed and seq > state.closed_fills_seq:
        notes.append(NOTE_CLOSED)
        log.warning("fill %s applied to closed position %s", fill.fill_id, state.position_id)
    summary = await tx.summary(result_id_for(fill.intent_id))
    if summary is not None and seq > summary.last_fill_seq:
        problem = late_fill_problem(fill.fill_id, seq, summary.last_fill_seq)
        await tx.flag_mismatch(summary.result_id, problem)
        notes.append(problem)
        log.warning("result %s mismatch: %s", summary.result_id, problem)
    working = await tx.working(fill.intent_id, fill.position_id)
    if working is not None:
        await tx.save_working(replace(working, filled=working.filled + trade.size))
    new = replace(
        effect.state,
        fills_applied=state.fills_applied + 1,
        updated_at=later(state.updated_at, fill.created_at),
    )
    await tx.save(new)
    applied_at = datetime.now(UTC)
    labels = {"venue": fill.venue, "book": fill.book_id}  # fill built -> applied here
    instruments.fill_to_ledger().record((applied_at - fill.created_at).total_seconds(), labels)
    await tx.record_fill(
        FillRecord(
            fill_id=fill.fill_id,
            fills_seq=seq,
            position_id=fill.position_id,
            intent_id=fill.intent_id,
            side=fill.side,
            size=trade.size,
            price=trade.price,
            fee_usd=trade.fee_usd,
            realized_pnl_usd=effect.realized_usd,
            size_after=new.size,
            direction_after=new.direction,
            applied_at=applied_at,
            notes=tuple(notes),
            fill_json=data.decode("utf-8"),
        )
    )
    return Applied(fill.fill_id, tuple(notes))
