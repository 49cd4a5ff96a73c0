"""The soak's verdict (bench/bench_soak.py): a process "levels off" when the least-squares line
over the last half of the measured window grows less than 10 MB or 5 % of its RSS."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_soak import ingest_figures, levels_off, role, slope_per_hour


def _line(start_mb: float, mb_per_hour: float, minutes: int = 30) -> list[tuple[float, float]]:
    return [(t * 30.0, start_mb + mb_per_hour * t * 30.0 / 3600) for t in range(minutes * 2 + 1)]


def test_the_slope_of_a_straight_line_is_its_rate_per_hour() -> None:
    assert slope_per_hour(_line(100.0, 360.0)) == pytest.approx(360.0)
    assert slope_per_hour(_line(100.0, 0.0)) == pytest.approx(0.0)
    assert slope_per_hour([(0.0, 5.0)]) == 0.0


def test_growth_in_a_straight_line_does_not_level_off() -> None:
    # The store of the issue: 57 to 238 MB in 30 minutes.
    flat, growth = levels_off(_line(57.0, 362.0))
    assert not flat
    assert growth == pytest.approx(181.0)


def test_a_plateau_with_noise_levels_off() -> None:
    samples = [(t, 250.0 + (3.0 if n % 2 else -3.0)) for n, (t, _) in enumerate(_line(0, 0))]
    flat, growth = levels_off(samples)
    assert flat
    assert abs(growth) < 1.0


def test_small_growth_levels_off_under_either_bound() -> None:
    assert levels_off(_line(8.0, 9.0))[0]  # 4.5 MB over half an hour: under 10 MB
    assert levels_off(_line(400.0, 36.0))[0]  # 18 MB, under 5 % of 418 MB
    assert not levels_off(_line(100.0, 36.0))[0]  # 18 MB, over 5 % of 118 MB


def test_the_processes_of_the_stack_are_named_by_their_command_line() -> None:
    assert role("/usr/sbin/mosquitto -c /tmp/x/mosquitto.conf") == "mosquitto"
    assert role("/venv/bin/python -m contesto ingest --data-dir /tmp/x") == "ingest"
    python = "/venv/bin/python /venv/contesto/_switch_interval.py 0.0005"
    assert role(f"{python} /venv/bin/secantusd-py --port 1") == "store"


def test_ingest_figures_sum_their_labels() -> None:
    exposition = "\n".join(
        [
            "# HELP contesto_ingest_messages_total MQTT messages stored by ingest",
            'contesto_ingest_messages_total{format="iotagent-json",outcome="stored"} 120.0',
            'contesto_ingest_messages_total{format="flat-json",outcome="stored"} 3.0',
            "contesto_ingest_lag_seconds 1.5",
            "contesto_outbox_depth 7.0",
        ]
    )
    figures = ingest_figures(exposition)
    assert figures == {"ingested": 123.0, "dead_letters": 0.0, "lag_s": 1.5, "outbox": 7.0}
