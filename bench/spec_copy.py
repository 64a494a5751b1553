"""A faithful copy of the founding spec's ``ExecutionIntent`` dataclass (codec baseline).

Copied from ``spec/execution-intent-interface.md`` with one change, the least that lets
Python import it: the spec's class puts fields without defaults (``reason_codes`` ...)
after defaulted ones (``max_slippage_bps`` ...), which ``@dataclass`` refuses, so the
decorator here is ``@dataclass(kw_only=True)``. Field order, types, ``to_dict`` and
``from_dict`` are the spec's, untouched; the spec path serialises with ``json``.
"""

# ruff: noqa: UP006, UP035, UP045
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional


class ActionType(Enum):
    """Universal action types - venue-agnostic"""

    HOLD = "hold"
    ADD = "add"  # Increase position
    TRIM = "trim"  # Reduce position
    EXIT = "exit"  # Full exit
    RECLAIM = "reclaim"  # Reclaim EMA (S2 dip buy)
    EMERGENCY_EXIT = "emergency_exit"  # Emergency exit (S0, reclaimed EMA333)


@dataclass(kw_only=True)  # the spec has @dataclass: with it the class cannot be imported
class ExecutionIntent:
    """Universal execution intent from PM Core - venue-agnostic"""

    # Core action
    action: ActionType

    # Sizing
    size_frac: float  # Fraction of position/allocation (0.0-1.0)

    # Urgency/Priority
    urgency: str  # "low", "medium", "high", "critical"
    priority: int  # 0-100 (higher = more urgent)

    # Constraints (optional, executor can override)
    max_slippage_bps: Optional[int] = None  # Max slippage in basis points
    reduce_only: bool = False  # Only reduce position (no new entries)
    post_only: bool = False  # Post-only order (maker only)

    # Context for learning/audit
    reason_codes: List[str]  # ["buy_flag", "s2_dip", "high_a_score"]
    state: str  # Current uptrend state (S0-S4)
    prev_state: str  # Previous state
    a_final: float  # Final aggressiveness score
    e_final: float  # Final exit assertiveness score

    # Metadata
    position_id: str
    token_contract: str
    token_chain: str  # Actually "venue namespace" (see naming discussion)
    book_id: str
    timeframe: str

    # Optional: PM-level risk constraints
    max_leverage: Optional[float] = None  # If PM wants to cap leverage
    risk_reason: Optional[str] = None  # Why risk constraint applied

    def to_dict(self) -> Dict[str, Any]:
        """Convert to dict for storage/logging"""
        return {
            "action": self.action.value,
            "size_frac": self.size_frac,
            "urgency": self.urgency,
            "priority": self.priority,
            "max_slippage_bps": self.max_slippage_bps,
            "reduce_only": self.reduce_only,
            "post_only": self.post_only,
            "reason_codes": self.reason_codes,
            "state": self.state,
            "prev_state": self.prev_state,
            "a_final": self.a_final,
            "e_final": self.e_final,
            "position_id": self.position_id,
            "token_contract": self.token_contract,
            "token_chain": self.token_chain,
            "book_id": self.book_id,
            "timeframe": self.timeframe,
            "max_leverage": self.max_leverage,
            "risk_reason": self.risk_reason,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ExecutionIntent:
        """Create from dict"""
        return cls(
            action=ActionType(data["action"]),
            size_frac=data["size_frac"],
            urgency=data["urgency"],
            priority=data["priority"],
            max_slippage_bps=data.get("max_slippage_bps"),
            reduce_only=data.get("reduce_only", False),
            post_only=data.get("post_only", False),
            reason_codes=data.get("reason_codes", []),
            state=data["state"],
            prev_state=data.get("prev_state", ""),
            a_final=data["a_final"],
            e_final=data["e_final"],
            position_id=data["position_id"],
            token_contract=data["token_contract"],
            token_chain=data["token_chain"],
            book_id=data["book_id"],
            timeframe=data["timeframe"],
            max_leverage=data.get("max_leverage"),
            risk_reason=data.get("risk_reason"),
        )
