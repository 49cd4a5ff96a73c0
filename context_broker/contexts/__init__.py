"""The NGSI-LD core @context shipped with the broker (package data)."""
