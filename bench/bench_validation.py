"""Validation throughput per core: datamodels' compiled validators vs a naive jsonschema call.

`python -m bench.bench_validation [--seconds S]` (or `python bench/bench_validation.py`).
Each cell runs single-threaded for about S seconds (default 0.4) and reports validations/s.
Columns:
- naive: `jsonschema.validate(entity, schema, ...)` per entity, keyValues form (it builds
  and checks a validator on every call, as code that calls it per message does);
- compiled jsonschema: datamodels with backend="jsonschema" (compiled once, cached);
- datamodels: the default backend (jsonschema-rs decides validity, jsonschema reports
  the violations), in keyValues and in normalized form, and normalized with the
  model's toscana profile;
- ratio: datamodels keyValues / naive.
It also checks that both backends report identical results on the whole corpus.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jsonschema

from datamodels import Catalogue, load_catalogue, to_key_values

MODELS = ("AirQualityObserved", "ParkingSpot", "WaterConsumptionObserved")
TARGET = 20_000


def _corpus(catalogue: Catalogue) -> dict[str, dict[str, dict[str, Any]]]:
    """Per model: a valid and an invalid entity, each in normalized form."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in MODELS:
        valid = catalogue.example(name, "normalized")
        if name == "AirQualityObserved":  # upstream example quirks: windDirection, tsp
            valid["windDirection"]["value"] = 180
            valid["tsp"]["value"] = 73
            for attr, value in (("pm10", 23.4), ("pm25", 14.2), ("no2", 31.8)):
                valid[attr] = {"type": "Property", "value": value, "unitCode": "GQ"}
            valid["co"] = {"type": "Property", "value": 0.5, "unitCode": "GP"}
            valid["temperature"]["unitCode"] = "CEL"
        if name == "WaterConsumptionObserved":
            valid["refDevice"] = {"type": "Relationship", "object": "urn:ngsi-ld:Device:wm-1"}
            valid["dateObserved"] = {"type": "Property", "value": "2024-05-01T10:00:00Z"}
            for attr in ("waterConsumption", "maxFlow", "minFlow"):
                valid[attr]["unitCode"] = "LTR"
        invalid = copy.deepcopy(valid)
        if name == "AirQualityObserved":
            invalid["pm10"]["value"] = "high"
            del invalid["dateObserved"]
        elif name == "ParkingSpot":
            invalid["status"]["value"] = "busy"
            invalid["category"]["value"] = []
        else:
            invalid["alarmTamper"]["value"] = 3
            invalid["waterConsumption"]["value"] = "12.5"
        out[name] = {"valid": valid, "invalid": invalid}
    return out


def _rate(call: Callable[[], object], seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(10):
            call()
        count += 10
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def _naive(schema: dict[str, Any], entity: dict[str, Any], catalogue: Catalogue) -> bool:
    try:
        jsonschema.validate(
            entity,
            schema,
            registry=catalogue.registry,
            format_checker=jsonschema.FormatChecker(),
        )
    except jsonschema.ValidationError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.4, help="time per cell")
    args = parser.parse_args(argv if argv is not None else [])
    fast = load_catalogue()
    slow = fast.with_backend("jsonschema")
    corpus = _corpus(fast)
    backend = fast.validator(MODELS[0]).backend
    print(f"validations/s on one core ({os.cpu_count()} cores here, {args.seconds:g} s a cell)")
    print(f"datamodels backend: {backend}; target >= {TARGET:,}/s")
    head = (
        f"{'model':<26} {'entity':<8} {'naive':>8} {'compiled':>9} {'dm kv':>9} "
        f"{'dm norm':>9} {'dm+prof':>9} {'ratio':>7}"
    )
    print(head)
    print("-" * len(head))
    identical = True
    for name in MODELS:
        profile = f"toscana/{name}"
        schema = dict(fast.model(name).schema)
        for label, normalized in corpus[name].items():
            kv = to_key_values(normalized)
            results = [
                v.validate(e)
                for v in (fast.validator(name), slow.validator(name))
                for e in (kv, normalized)
            ] + [
                v.validate(normalized)
                for v in (fast.validator(name, profile), slow.validator(name, profile))
            ]
            identical &= results[0] == results[2] and results[1] == results[3]
            identical &= results[4] == results[5]
            assert results[0].ok == (label == "valid") == results[4].ok, (name, label, results)
            plain, compiled = fast.validator(name), slow.validator(name)
            profiled = fast.validator(name, profile)
            rates = [
                _rate(lambda s=schema, e=kv: _naive(s, e, fast), args.seconds / 2),
                _rate(lambda v=compiled, e=kv: v.validate(e), args.seconds),
                _rate(lambda v=plain, e=kv: v.validate(e), args.seconds),
                _rate(lambda v=plain, e=normalized: v.validate(e), args.seconds),
                _rate(lambda v=profiled, e=normalized: v.validate(e), args.seconds),
            ]
            print(
                f"{name:<26} {label:<8} {rates[0]:>8,.0f} {rates[1]:>9,.0f} {rates[2]:>9,.0f} "
                f"{rates[3]:>9,.0f} {rates[4]:>9,.0f} {rates[2] / rates[0]:>6.0f}x",
                flush=True,
            )
    print(f"identical results for both backends on the corpus: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
