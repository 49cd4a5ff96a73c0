"""MQTT feeds -> decoded -> mapped to NGSI-LD fragments -> validated -> outbox or dead-letter."""
