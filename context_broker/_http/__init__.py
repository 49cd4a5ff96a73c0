"""The NGSI-LD HTTP binding (ETSI GS CIM 009 clause 6) on FastAPI."""
