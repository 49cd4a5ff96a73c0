"""Notification delivery (ETSI GS CIM 009 clause 5.11): the durable queue a write's
notifications enter before it is acknowledged (`_queue`, `_sink`), and the notifier that
sends them to HTTP and MQTT endpoints."""

from context_broker._delivery._queue import NotificationQueue, Queued, queue_record
from context_broker._delivery._sink import QueueingSink

__all__ = ["NotificationQueue", "Queued", "QueueingSink", "queue_record"]
