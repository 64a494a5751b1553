"""The intentbus bus: connection, topology, provisioning, publishing and consuming."""

from intentbus.bus.coalesce import Coalescer
from intentbus.bus.connection import BusSettings, connect
from intentbus.bus.consumer import Ack, Disposition, MessageConsumer, Nak, Term
from intentbus.bus.control import HaltStore, HeartbeatLoop, ServiceRegistry
from intentbus.bus.position_reads import PositionReads
from intentbus.bus.positions import LedgerError, LedgerUnavailable, PositionClient, last_drifts
from intentbus.bus.publisher import Publisher, PublishFailed, publish_with_id
from intentbus.bus.refusals import PermissionDenied
from intentbus.bus.replies import Replies
from intentbus.bus.streams import (
    ConsumerSpec,
    StreamSpec,
    core_streams,
    ensure_consumer,
    ensure_stream,
    provision,
)
from intentbus.bus.subjects import InvalidSubjectToken, Topology, check_token

__all__ = [
    "Ack",
    "BusSettings",
    "Coalescer",
    "ConsumerSpec",
    "Disposition",
    "HaltStore",
    "HeartbeatLoop",
    "InvalidSubjectToken",
    "LedgerError",
    "LedgerUnavailable",
    "MessageConsumer",
    "Nak",
    "PermissionDenied",
    "PositionClient",
    "PositionReads",
    "PublishFailed",
    "Publisher",
    "Replies",
    "ServiceRegistry",
    "StreamSpec",
    "Term",
    "Topology",
    "check_token",
    "connect",
    "core_streams",
    "ensure_consumer",
    "ensure_stream",
    "last_drifts",
    "provision",
    "publish_with_id",
]
