"""`contesto models ...`: list and show the catalogue, validate payload files offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from contesto._cli_tables import add_whole_column

if TYPE_CHECKING:
    from datamodels import Catalogue, Form, Profile, ValidationResult

models_app = typer.Typer(
    name="models",
    help="The regional data models: list, show, and validate payload files offline.",
    no_args_is_help=True,
)
_FORMS: tuple[Form, ...] = ("normalized", "concise", "keyValues")


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False)


@models_app.command("list")
def list_models() -> None:
    """List the models and regional profiles in the catalogue."""
    from datamodels import load_catalogue

    catalogue = load_catalogue()
    table = Table(title="Data models")
    add_whole_column(table, "model", [model.name for model in catalogue])
    for header in ("subject", "licence", "profiles"):
        table.add_column(header)
    for model in catalogue:
        count = len(catalogue.profiles_of(model.name))
        table.add_row(model.name, model.subject, model.licence, str(count) if count else "-")
    console = _console()
    console.print(table)
    for profile in catalogue.profiles.values():
        console.print(f"profile {profile.name} (over {profile.base})")


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A model (ParkingSpot) or a profile name.")],
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema.")] = False,
) -> None:
    """Show a model's attributes and @context, or a profile's rules."""
    from datamodels import CatalogueError, load_catalogue

    catalogue = load_catalogue()
    console = _console()
    try:
        if name in catalogue.profiles:
            _show_profile(console, catalogue.profile(name))
            return
        model = catalogue.model(name)
    except CatalogueError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from None
    if schema:
        typer.echo(json.dumps(model.schema, indent=2, ensure_ascii=False))
        return
    console.print(f"[bold]{model.name}[/bold] ({model.subject}, {model.licence})")
    console.print(model.description)
    console.print(f"@context: {model.context}")
    console.print(f"required: {', '.join(model.required)}")
    table = Table("attribute", "kind", "description")
    for attr in model.attributes.values():
        table.add_row(attr.name, attr.kind, attr.description)
    console.print(table)
    profiles = catalogue.profiles_of(model.name)
    if profiles:
        console.print(f"profiles: {', '.join(p.name for p in profiles)}")


def _show_profile(console: Console, profile: Profile) -> None:
    console.print(f"[bold]{profile.name}[/bold] (profile of {profile.base})")
    if profile.description:
        console.print(profile.description)
    console.print(f"required: {', '.join(profile.required) or '-'}")
    table = Table("attribute", "unitCode", "minimum", "maximum", "allowed values")
    for attr, rule in profile.attributes.items():
        table.add_row(
            attr,
            rule.unit_code or "",
            "" if rule.minimum is None else str(rule.minimum),
            "" if rule.maximum is None else str(rule.maximum),
            ", ".join(map(str, rule.enum)) if rule.enum else "",
        )
    console.print(table)
    for attr, personal in profile.personal.items():
        why = f" ({personal.purpose})" if personal.purpose else ""
        console.print(f"personal data: {attr}, kept {personal.retention_days} days{why}")
    if profile.private:
        console.print(f"private to the utility: {', '.join(sorted(profile.private))}")


def _with_profile_file(catalogue: Catalogue, profile: str | None) -> tuple[Catalogue, str | None]:
    """Accept a profile file path as well as a catalogue name (a city's own profile)."""
    from datamodels import Profile

    if profile is None or profile in catalogue.profiles:
        return catalogue, profile
    path = Path(profile)
    if path.suffix in {".yaml", ".yml", ".json"} and path.is_file():
        loaded = Profile.from_text(path.stem, path.read_text(encoding="utf-8"))
        return catalogue.with_profiles([loaded]), loaded.name
    return catalogue, profile


def _entities(path: Path) -> list[Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


@models_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="JSON files: one entity or an array.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model (default: each entity's type).")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", help="Profile name (toscana/ParkingSpot) or YAML file."),
    ] = None,
    form: Annotated[
        str | None,
        typer.Option("--form", help="normalized, concise or keyValues (default: detected)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Validate payload files offline; exit code 1 when any entity breaks a rule."""
    from datamodels import CatalogueError, load_catalogue, validate_entity

    if form is not None and form not in _FORMS:
        typer.echo(f"error: --form must be one of {', '.join(_FORMS)}", err=True)
        raise typer.Exit(2)
    try:
        catalogue, profile = _with_profile_file(load_catalogue(), profile)
        if model is not None:
            catalogue.model(model)
        if profile is not None:
            catalogue.profile(profile)
    except CatalogueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report: list[dict[str, Any]] = []
    failed = 0
    checked = 0
    for path in files:
        try:
            entities = _entities(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            failed += 1
            report.append({"file": str(path), "error": f"cannot read JSON: {exc}"})
            if not as_json:
                typer.echo(f"{path}: FAIL cannot read JSON: {exc}")
            continue
        for index, entity in enumerate(entities):
            checked += 1
            result = validate_entity(
                entity,
                model,
                profile,
                form=form,
                catalogue=catalogue,
            )
            failed += 0 if result.ok else 1
            where = f"{path}" + (f"[{index}]" if len(entities) > 1 else "")
            report.append({"file": where, **_as_dict(result)})
            if not as_json:
                _print_result(where, result)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"{checked} checked, {checked - failed} valid, {failed} with violations")
    if failed:
        raise typer.Exit(1)


def _print_result(where: str, result: ValidationResult) -> None:
    label = result.model or "?"
    if result.profile:
        label += f" + {result.profile}"
    status = "ok" if result.ok else f"FAIL ({len(result.violations)} violations)"
    typer.echo(f"{where}: {result.entity_id or '<no id>'} [{label}, {result.form}] {status}")
    for kind, items in (("error", result.violations), ("warning", result.warnings)):
        for item in items:
            typer.echo(f"  {kind} {item.path} [{item.rule}] {item.message}")
            if item.hint:
                typer.echo(f"      hint: {item.hint}")


def _as_dict(result: ValidationResult) -> dict[str, Any]:
    def rows(items: tuple[Any, ...]) -> list[dict[str, str]]:
        return [
            {"path": v.path, "rule": v.rule, "message": v.message, "hint": v.hint} for v in items
        ]

    return {
        "id": result.entity_id,
        "model": result.model,
        "profile": result.profile,
        "form": result.form,
        "ok": result.ok,
        "violations": rows(result.violations),
        "warnings": rows(result.warnings),
    }
