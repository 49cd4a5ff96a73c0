"""Conformance kit: sensor payloads against regional models; any NGSI-LD broker against the spec."""
