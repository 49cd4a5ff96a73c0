"""Durable outbox, batching, retries and publishing of fragments into each tenant's broker."""
