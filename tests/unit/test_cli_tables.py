"""The ids and names a user copies from a CLI table into the next command are printed whole
at 80 columns, however long the other cells are."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from contesto._cli_models import models_app
from contesto._cli_tables import add_whole_column
from datamodels import load_catalogue


def test_models_list_prints_every_model_name_whole_at_80_columns() -> None:
    result = CliRunner().invoke(models_app, ["list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert max(len(line) for line in result.output.splitlines()) <= 80
    first_cells = {row.split("│")[1].strip() for row in rows}
    assert {model.name for model in load_catalogue()} <= first_cells
    assert "SmartMeteringObservation" in first_cells


def test_a_whole_column_keeps_its_values_when_the_others_are_long() -> None:
    ids = ["6b1198b9c79bd8c291643eb4", "6b1198b9c79bd8c291643eb5"]
    table = Table()
    add_whole_column(table, "id", ids)
    table.add_column("message")
    for letter_id in ids:
        table.add_row(letter_id, "a message long enough to take every column it is given " * 3)
    console = Console(width=60, record=True)
    console.print(table)
    text = console.export_text()
    assert all(f"│ {letter_id} │" in text for letter_id in ids), text
