"""Conformance kit: sensor payloads against regional models, and any NGSI-LD broker against the spec."""
