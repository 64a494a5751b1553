"""The paper venue: fills at the latest mark with slippage, fees and venue rules."""

from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.executor import PaperExecutor
from intentbus.venues.paper.factory import create_executor

__all__ = ["PaperConfig", "PaperExecutor", "create_executor"]
