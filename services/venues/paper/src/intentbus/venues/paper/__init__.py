"""The paper venue: a venue server (accounts, resting orders, fills) and its executor."""

from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.executor import PaperExecutor, PaperExecutorOptions
from intentbus.venues.paper.factory import create_executor
from intentbus.venues.paper.lease import VenueBusy
from intentbus.venues.paper.server import PaperVenueServer

__all__ = [
    "PaperConfig",
    "PaperExecutor",
    "PaperExecutorOptions",
    "PaperVenueServer",
    "VenueBusy",
    "create_executor",
]
