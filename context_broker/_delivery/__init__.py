"""Notification delivery (ETSI GS CIM 009 clause 5.11): the durable queue a write's
notifications enter before it is acknowledged (`_queue`, `_sink`), and the notifier that
sends them to HTTP and MQTT endpoints."""

from context_broker._delivery._http_send import HttpSender
from context_broker._delivery._mqtt_send import MqttSender
from context_broker._delivery._notifier import Notifier, NotifierOptions
from context_broker._delivery._periodic import PeriodicSweep
from context_broker._delivery._queue import NotificationQueue, Queued, queue_record
from context_broker._delivery._sink import QueueingSink

__all__ = [
    "HttpSender",
    "MqttSender",
    "NotificationQueue",
    "Notifier",
    "NotifierOptions",
    "PeriodicSweep",
    "Queued",
    "QueueingSink",
    "queue_record",
]
