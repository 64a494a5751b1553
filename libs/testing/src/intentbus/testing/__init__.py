"""Private test helpers for intentbus: real NATS servers and waiting on conditions."""

from intentbus.testing.servers import NatsEndpoint, start_endpoint
from intentbus.testing.waiting import wait_for

__all__ = ["NatsEndpoint", "start_endpoint", "wait_for"]
