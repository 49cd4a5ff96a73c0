"""The catalogue shipped in the package: models, their schemas, contexts and profiles."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ._profiles import Profile
from ._types import CatalogueError, Entity, Form
from ._validate import Backend, Validator

_EXAMPLE_FILES: dict[str, str] = {
    "normalized": "example-normalized.jsonld",
    "keyValues": "example.jsonld",
    "v2": "example.json",
}
_DESCRIPTION_NOISE = re.compile(r"^(Property|Relationship|GeoProperty)\.\s*|Model:\s*'[^']*'\.?\s*")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute a model's schema declares."""

    name: str
    kind: str  # Property, Relationship or GeoProperty
    description: str = ""
    datetime: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    """A data model: its keyValues JSON Schema, its @context and declared attributes."""

    name: str
    subject: str
    title: str
    description: str
    context: str
    type_iri: str | None
    licence: str
    schema: Mapping[str, Any] = field(repr=False)
    required: tuple[str, ...] = ()
    attributes: Mapping[str, Attribute] = field(default_factory=dict, repr=False)


def clean_description(text: str) -> str:
    return " ".join(_DESCRIPTION_NOISE.sub("", text).split())


def _collect(
    schema: Mapping[str, Any], resolver: Any, into: dict[str, Attribute], depth: int = 0
) -> None:
    """Gather the top-level properties of a schema through `$ref` and `allOf`."""
    if depth > 8:
        return
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        _collect(resolved.contents, resolved.resolver, into, depth + 1)
    for part in schema.get("allOf", ()):
        _collect(part, resolver, into, depth + 1)
    for name, prop in schema.get("properties", {}).items():
        if name in into:
            continue
        target = prop
        if "$ref" in prop:
            target = {**resolver.lookup(prop["$ref"]).contents, **prop}
        description = str(target.get("description", ""))
        if name != "id" and (description.startswith("Relationship") or name.startswith("ref")):
            kind = "Relationship"
        elif name == "location" or description.startswith("GeoProperty"):
            kind = "GeoProperty"
        else:
            kind = "Property"
        into[name] = Attribute(
            name=name,
            kind=kind,
            description=clean_description(description),
            datetime=target.get("format") == "date-time",
        )


def _read_json(node: Traversable) -> Any:
    return json.loads(node.read_text(encoding="utf-8"))


class Catalogue:
    """Models and profiles by name, with one compiled validator per (model, profile)."""

    __slots__ = ("_backend", "_root", "_validators", "models", "profiles", "registry")

    def __init__(
        self,
        models: Mapping[str, Model],
        profiles: Mapping[str, Profile],
        registry: Registry[Any],
        *,
        root: Traversable | None = None,
        backend: Backend = "auto",
    ) -> None:
        self.models = dict(models)
        self.profiles = dict(profiles)
        self.registry = registry
        self._root = root
        self._backend: Backend = backend
        self._validators: dict[tuple[str, str | None], Validator] = {}
        for profile in self.profiles.values():
            if profile.base not in self.models:
                raise CatalogueError(
                    f"profile {profile.name!r}: unknown base model {profile.base!r}"
                )

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models.values())

    def model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise CatalogueError(_unknown("model", name, self.models)) from None

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise CatalogueError(_unknown("profile", name, self.profiles)) from None

    def profiles_of(self, model: str) -> list[Profile]:
        return [p for p in self.profiles.values() if p.base == model]

    def with_profiles(self, profiles: Iterable[Profile]) -> Catalogue:
        """A catalogue that also holds these profiles (e.g. a city's own files)."""
        merged = {**self.profiles, **{p.name: p for p in profiles}}
        return Catalogue(self.models, merged, self.registry, root=self._root, backend=self._backend)

    def with_backend(self, backend: Backend) -> Catalogue:
        return Catalogue(
            self.models, self.profiles, self.registry, root=self._root, backend=backend
        )

    def validator(self, model: str | None = None, profile: str | None = None) -> Validator:
        """The compiled validator for a model (or a profile's base model), cached."""
        prof = self.profile(profile) if profile is not None else None
        if model is None:
            if prof is None:
                raise CatalogueError("name a model or a profile")
            model = prof.base
        elif prof is not None and prof.base != model:
            raise CatalogueError(f"profile {prof.name!r} applies to {prof.base}, not {model}")
        key = (model, profile)
        found = self._validators.get(key)
        if found is None:
            found = Validator(self.model(model), prof, self.registry, backend=self._backend)
            self._validators[key] = found
        return found

    def example(self, model: str, form: Form | str = "normalized") -> Entity:
        """A shipped upstream example of a model (`normalized`, `keyValues` or `v2`)."""
        self.model(model)
        if self._root is None or form not in _EXAMPLE_FILES:
            raise CatalogueError(f"no {form} example for {model}")
        data: Entity = _read_json(self._root / model / _EXAMPLE_FILES[form])
        return data


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {what} {name!r}{hint}"


def _load_profiles(root: Traversable) -> dict[str, Profile]:
    found: dict[str, Profile] = {}
    for region in sorted(root.iterdir(), key=lambda n: n.name):
        if not region.is_dir():
            continue
        for node in sorted(region.iterdir(), key=lambda n: n.name):
            if node.name.endswith((".yaml", ".yml", ".json")):
                name = f"{region.name}/{node.name.rsplit('.', 1)[0]}"
                found[name] = Profile.from_text(name, node.read_text(encoding="utf-8"))
    return found


@functools.cache
def load_catalogue(backend: Backend = "auto") -> Catalogue:
    """The catalogue shipped with the package (read once, then cached)."""
    package = resources.files("datamodels")
    root = package / "catalogue"
    index = _read_json(root / "index.json")
    resources_: list[tuple[str, Resource[Any]]] = [
        (uri, DRAFT202012.create_resource(_read_json(root / path)))
        for uri, path in index["schemas"].items()
    ]
    registry: Registry[Any] = Registry().with_resources(resources_).crawl()
    contexts: dict[str, Mapping[str, Any]] = {}
    models: dict[str, Model] = {}
    for name, meta in index["models"].items():
        schema = _read_json(root / name / "schema.json")
        resource = DRAFT202012.create_resource(schema)
        registry = registry.with_resource(schema["$id"], resource)
        resolver = registry.resolver(base_uri=schema["$id"])
        attributes: dict[str, Attribute] = {}
        _collect(schema, resolver, attributes)
        if meta["context_file"] not in contexts:
            contexts[meta["context_file"]] = _read_json(root / meta["context_file"])["@context"]
        type_iri = contexts[meta["context_file"]].get(name)
        models[name] = Model(
            name=name,
            subject=meta["subject"],
            title=schema.get("title", name),
            description=schema.get("description", ""),
            context=meta["context"],
            type_iri=type_iri if isinstance(type_iri, str) else None,
            licence=meta["licence"],
            schema=schema,
            required=tuple(schema.get("required", ())),
            attributes=attributes,
        )
    profiles = _load_profiles(package / "profiles")
    return Catalogue(models, profiles, registry.crawl(), root=root, backend=backend)
