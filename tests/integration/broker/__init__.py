"""Integration tests of the NGSI-LD broker over real HTTP (ETSI GS CIM 009)."""
