"""Names of the UN/CEFACT common codes (Recommendation 20) the regional profiles use."""

from __future__ import annotations

UNIT_NAMES: dict[str, str] = {
    "CEL": "degree Celsius",
    "FAH": "degree Fahrenheit",
    "KEL": "kelvin",
    "GQ": "microgram per cubic metre",
    "GP": "milligram per cubic metre",
    "P1": "percent",
    "C62": "one (a plain number)",
    "MTR": "metre",
    "CMT": "centimetre",
    "MMT": "millimetre",
    "KMH": "kilometre per hour",
    "MTS": "metre per second",
    "A97": "hectopascal",
    "MTQ": "cubic metre",
    "LTR": "litre",
    "MQH": "cubic metre per hour",
    "KWH": "kilowatt hour",
    "WTT": "watt",
    "AMP": "ampere",
    "VLT": "volt",
    "DD": "degree (angle)",
}


def unit_phrase(code: str) -> str:
    name = UNIT_NAMES.get(code)
    return f"`{code}` ({name})" if name else f"`{code}`"
