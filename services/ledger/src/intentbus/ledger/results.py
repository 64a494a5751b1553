"""Apply one ``RESULTS`` message: an ``OrderUpdate`` (an order is live) or a final result.

Positions move only with fills. An ``OrderUpdate`` records a working order (intent,
position, side, size, price); the intent's fills reduce its open size; its final
``ExecutionResult`` removes it. A final result is stored once (by ``result_id``) as its
intent's summary and checked against the fills the ledger applied for the intent
(:mod:`intentbus.ledger.checks`); a disagreement is stored as ``mismatch`` with notes
and logged, never corrected silently. A result whose ``last_fill_seq`` is beyond the
``FILLS`` sequence the ledger has committed is :class:`Waiting`: nothing is applied.

Closing: the final result of an EXIT or EMERGENCY_EXIT (status not ``unknown``) closes
its position when the position was flat at ``FILLS`` sequence ``max(last_fill_seq, the
position's results_fill_seq)`` and no other order of it is working. Judging at that
sequence (not at whatever ``FILLS`` point the ledger reached) gives the same answer live
and on a rebuild. A closed position stays closed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import msgspec

from intentbus.ledger.accounting import ZERO, InvalidFill, check_identity, dec, later
from intentbus.ledger.applier import Applied, Duplicate, Outcome, Rejected, Waiting
from intentbus.ledger.checks import check_result, totals
from intentbus.ledger.storage import LedgerTransaction, ResultSummary, WorkingOrder
from intentbus.schemas import (
    CLOSING_ACTIONS,
    ExecutionResult,
    ExecutionStatus,
    OrderUpdate,
    result_id_for,
)
from intentbus.telemetry import instruments

log = logging.getLogger(__name__)

NOTE_UNKNOWN_POSITION = "unknown position"
NOTE_NOT_LIVE = "order update not live: no working order"
NOTE_AFTER_RESULT = "order update after the final result: ignored"

ResultsMessage = ExecutionResult | OrderUpdate
_decoder: msgspec.json.Decoder[ResultsMessage] = msgspec.json.Decoder(ResultsMessage)


def decode_results_message(data: bytes) -> ResultsMessage:
    """Decode a ``RESULTS`` message (tagged by ``schema``); raise ``msgspec.MsgspecError``."""
    return _decoder.decode(data)


async def apply_results_message(tx: LedgerTransaction, data: bytes, seq: int) -> Outcome:
    """Apply the message at ``RESULTS`` sequence ``seq``.

    The sequence is handled whatever the outcome, except :class:`Waiting`. A rejected
    message stores no id, so a corrected copy is still applied later.
    """
    try:
        message = decode_results_message(data)
    except msgspec.MsgspecError as exc:
        await tx.advance_seq("results", seq)
        return Rejected(f"invalid result or order update: {exc}")
    if isinstance(message, OrderUpdate):
        await tx.advance_seq("results", seq)
        return await _apply_update(tx, message, seq)
    if await tx.summary(message.result_id) is not None:
        await tx.advance_seq("results", seq)
        return Duplicate(message.result_id)
    fills_seq = await tx.applied_seq("fills")
    if message.last_fill_seq > fills_seq:
        return Waiting(message.result_id, message.last_fill_seq, fills_seq)
    await tx.advance_seq("results", seq)
    return await _apply_result(tx, message, seq, data)


async def _apply_update(tx: LedgerTransaction, update: OrderUpdate, seq: int) -> Outcome:
    if not update.order_state.is_live:
        return Applied(update.update_id, (NOTE_NOT_LIVE,))
    if await tx.summary(result_id_for(update.intent_id)) is not None:
        return Applied(update.update_id, (NOTE_AFTER_RESULT,))
    state = await tx.load(update.position_id)
    if state is None:
        return Rejected(
            f"order update {update.update_id} is for position {update.position_id}, which "
            "the ledger does not know"
        )
    try:
        check_identity(
            state, f"order update {update.update_id}", update.venue, update.book_id,
            update.token_contract,
        )  # fmt: skip
    except InvalidFill as exc:
        return Rejected(str(exc))
    existing = await tx.working(update.intent_id, update.position_id)
    if existing is not None and existing.update_id == update.update_id:
        return Duplicate(update.update_id)
    filled = totals(await tx.fills_of_intent(update.intent_id)).size
    await tx.save_working(
        WorkingOrder(
            intent_id=update.intent_id,
            position_id=update.position_id,
            update_id=update.update_id,
            side=update.side,
            size=dec(update.size),
            price=None if update.price is None else dec(update.price),
            filled=filled,
            order_state=update.order_state.value,
            client_order_id=update.client_order_id,
            results_seq=seq if existing is None else existing.results_seq,
            created_at=update.created_at if existing is None else existing.created_at,
        )
    )
    return Applied(update.update_id)


async def _apply_result(
    tx: LedgerTransaction, result: ExecutionResult, seq: int, data: bytes
) -> Outcome:
    state = await tx.load(result.position_id)
    notes: list[str] = []
    if state is not None:
        try:
            check_identity(
                state, f"result {result.result_id}", result.venue, result.book_id,
                result.token_contract,
            )  # fmt: skip
        except InvalidFill as exc:
            return Rejected(str(exc))
    check = check_result(result, await tx.fills_of_intent(result.intent_id))
    await tx.remove_working(result.intent_id, result.position_id)
    closes = False
    if state is None:
        notes.append(NOTE_UNKNOWN_POSITION)
    else:
        as_of = max(result.last_fill_seq, state.results_fill_seq)
        if result.action in CLOSING_ACTIONS and result.status is not ExecutionStatus.UNKNOWN:
            flat = await tx.size_as_of(state.position_id, as_of) == ZERO
            closes = flat and not await tx.working_of(state.position_id)
            if closes and state.size != ZERO:  # logged, not noted: a rebuild may not see it
                log.warning(
                    "position %s closed as flat at FILLS seq %d, but later fills left size %s",
                    state.position_id, as_of, state.size,
                )  # fmt: skip
        await tx.save(
            replace(
                state,
                results_applied=state.results_applied + 1,
                results_fill_seq=as_of,
                closed=state.closed or closes,
                closed_at=state.closed_at or (result.created_at if closes else None),
                closed_fills_seq=as_of if closes and not state.closed else state.closed_fills_seq,
                updated_at=later(state.updated_at, result.created_at),
            )
        )
    if check.mismatch:
        log.warning("result %s disagrees with its fills: %s", result.result_id, check.problems)
    applied_at = datetime.now(UTC)
    age = (
        (applied_at - result.intent_created_at).total_seconds()
        if result.intent_created_at
        else None
    )
    if age is not None:  # intent published -> its final result applied here
        instruments.intent_to_ledger().record(age, {"venue": result.venue, "book": result.book_id})
    await tx.record_summary(
        ResultSummary(
            result_id=result.result_id,
            results_seq=seq,
            position_id=result.position_id,
            intent_id=result.intent_id,
            action=result.action.value,
            status=result.status.value,
            last_fill_seq=result.last_fill_seq,
            fill_count=check.totals.count,
            filled_size=check.totals.size,
            fees_usd=check.totals.fees_usd,
            mismatch=check.mismatch,
            closes=closes,
            applied_at=applied_at,
            notes=(*check.problems, *notes),
            result_json=data.decode("utf-8"),
        )
    )
    return Applied(result.result_id, (*check.problems, *notes))
