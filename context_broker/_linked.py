"""Linked Entity Retrieval (ETSI GS CIM 009 V1.8 clause 4.5.23): the entities the
Relationships of an answer point to, fetched level by level, and the two ways of showing
them, `join=inline` (inside each Relationship) and `join=flat` (after the entities).

Fetching is bounded: at most `max_level` levels, at most `max_entities` linked entities per
answer, and one read of the tenant's entities per level (an `$in` of every id the level
names), never one read per Relationship. The reader is the tenant's own, so a Relationship
to another tenant's entity finds nothing. `containedBy` (V1.8) names entities already
traversed, which are neither fetched nor joined again; an entity the answer already holds
is not joined again either, so a loop of Relationships ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from context_broker._attributes import RenderOptions
from context_broker._entities import instances_of, render_entity
from context_broker._errors import BadRequestData, TooManyResults
from context_broker._jsonld import TermMap
from context_broker._names import check_name, check_uri, encode_field

Document = dict[str, Any]
Reader = Callable[[Sequence[str]], Awaitable[dict[str, Document]]]
Join = Literal["inline", "flat"]
JOINS = ("inline", "flat", "@none")


@dataclass(slots=True, frozen=True)
class LinkedRetrieval:
    """`join`, `joinLevel` and `containedBy` of a request (None: no join)."""

    join: Join
    level: int = 1
    contained_by: frozenset[str] = frozenset()


def parse_join(
    join: str | None, join_level: str | None, max_level: int, contained_by: str | None = None
) -> LinkedRetrieval | None:
    """`join=inline|flat|@none`, `joinLevel` (a positive integer up to `max_level`) and
    `containedBy` (the comma-separated ids of the entities already traversed)."""
    traversed = frozenset(
        check_uri(item.strip(), "containedBy") for item in (contained_by or "").split(",") if item
    )
    if join is None or join == "@none":
        if join_level is not None and join is None:
            raise BadRequestData("joinLevel needs join=inline or join=flat")
        return None
    if join not in ("inline", "flat"):
        raise BadRequestData(f"join must be one of inline, flat, @none; got {join!r}")
    level = 1
    if join_level is not None:
        if not join_level.isdigit() or not 1 <= int(join_level) <= max_level:
            raise BadRequestData(
                f"joinLevel must be an integer from 1 to {max_level} "
                f"(CONTESTO_JOIN_MAX_LEVEL); got {join_level!r}"
            )
        level = int(join_level)
    return LinkedRetrieval(join, level, traversed)  # type: ignore[arg-type]


def targets(doc: Document) -> list[str]:
    """The ids the entity's Relationships and ListRelationships point to, in order."""
    found: list[str] = []
    for name in doc.get("an", ()):
        for instance in instances_of(doc, encode_field(name)):
            found.extend(_objects(instance))
    return list(dict.fromkeys(found))


def relationship_targets(doc: Document, name: str) -> list[str]:
    """The ids the entity's Relationship `name` (expanded) points to, every instance."""
    return [t for instance in instances_of(doc, encode_field(name)) for t in _objects(instance)]


def _objects(instance: dict[str, Any]) -> list[str]:
    if instance.get("type") == "Relationship":
        target = instance.get("object")
    elif instance.get("type") == "ListRelationship":
        target = instance.get("objectList")
    else:
        return []
    items = target if isinstance(target, list) else [target]
    # A ListRelationship's entries are {"object": uri} (clause 4.5.22).
    ids = [item.get("object") if isinstance(item, dict) else item for item in items]
    return [entity_id for entity_id in ids if isinstance(entity_id, str)]


async def fetch_linked(
    read: Reader,
    docs: Iterable[Document],
    level: int,
    max_entities: int,
    traversed: Iterable[str] = (),
) -> dict[str, Document]:
    """The entities linked from `docs` up to `level` Relationships away, by id, one read
    per level, leaving out the `traversed` ids; TooManyResults past `max_entities`."""
    known: dict[str, Document] = {entity_id: {} for entity_id in traversed}
    known |= {doc["_id"]: doc for doc in docs}
    linked: dict[str, Document] = {}
    frontier = list(known.values())
    for _ in range(level):
        wanted = [t for doc in frontier for t in targets(doc) if t not in known]
        wanted = list(dict.fromkeys(wanted))
        if not wanted:
            break
        if len(linked) + len(wanted) > max_entities:
            raise TooManyResults(
                f"the answer links more than {max_entities} entities, the most one answer "
                "joins (CONTESTO_JOIN_MAX_ENTITIES); lower joinLevel, limit or narrow the query"
            )
        found = await read(wanted)
        for entity_id in wanted:
            known[entity_id] = found.get(entity_id, {})
        frontier = [found[entity_id] for entity_id in wanted if entity_id in found]
        linked.update((doc["_id"], doc) for doc in frontier)
    return linked


@dataclass(slots=True, frozen=True)
class LinkedProjection:
    """`pick` or `omit` of the entities one Relationship links to (clause 4.21,
    `managedBy{name}`): shown or hidden members (core members by name, attributes
    expanded), and the projections of their own Relationships."""

    names: frozenset[str]
    pick: bool
    nested: Mapping[str, LinkedProjection] = field(default_factory=dict)

    def apply(self, body: dict[str, Any], terms: TermMap) -> dict[str, Any]:
        keys = {name if name in _CORE_MEMBERS else terms.compact(name) for name in self.names}
        return {k: v for k, v in body.items() if (k in keys) == self.pick}


_CORE_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "expiresAt"})


def split_projection(raw: str | None, key: str) -> tuple[str | None, dict[str, str]]:
    """A pick or omit list without its linked parts, for the projection of the entities
    themselves: `a,rel{b,c}` is `a,rel` and {"rel": "b,c"} for pick (picking into rel
    shows rel), `a` and {"rel": "b,c"} for omit (omitting in rel keeps rel); None when no
    name is left."""
    if raw is None or "{" not in raw:
        return raw, {}
    items: list[str] = []
    depth, start = 0, 0
    for position, char in enumerate(raw + ","):
        depth += (char == "{") - (char == "}")
        if depth < 0:
            raise BadRequestData(f"{key} has unbalanced braces: {raw!r}")
        if char in ",|" and depth == 0:
            items.append(raw[start:position].strip())
            start = position + 1
    if depth != 0:
        raise BadRequestData(f"{key} has unbalanced braces: {raw!r}")
    names: list[str] = []
    nested: dict[str, str] = {}
    for item in items:
        name, brace, inner = item.partition("{")
        if key == "pick" or not brace:
            names.append(name.strip())
        if brace:
            if not inner.endswith("}") or not inner[:-1].strip():
                raise BadRequestData(f"{key}: {item!r} must be name{{member,...}}")
            nested[name.strip()] = inner[:-1]
    return ",".join(names) or None, nested


def linked_projections(
    nested: Mapping[str, str], pick: bool, expand: Callable[[str], str], key: str
) -> dict[str, LinkedProjection]:
    """The projections of linked entities by (expanded) Relationship name."""
    found: dict[str, LinkedProjection] = {}
    for relationship, inner in nested.items():
        names_text, deeper = split_projection(inner, key)
        names = frozenset(
            name if name in _CORE_MEMBERS else expand(check_name(name, key))
            for name in (n.strip() for n in (names_text or "").replace("|", ",").split(","))
            if name
        )
        found[expand(relationship)] = LinkedProjection(
            names, pick, linked_projections(deeper, pick, expand, key)
        )
    return found


@dataclass(slots=True, frozen=True)
class JoinedRendering:
    """Renders entities with their linked entities, as `join` asks, each linked entity
    projected as `pick`/`omit` say for its Relationship and shaped by `shape` (a GeoJSON
    answer shows each linked entity as a Feature, clause 4.5.23 with 4.5.16)."""

    retrieval: LinkedRetrieval
    linked: dict[str, Document]
    terms: TermMap
    options: RenderOptions
    projections: Mapping[str, LinkedProjection] = field(default_factory=dict)
    shape: Callable[[Document, dict[str, Any]], dict[str, Any]] = field(
        default=lambda _doc, body: body
    )

    def inline(
        self,
        doc: Document,
        body: dict[str, Any],
        level: int | None = None,
        projections: Mapping[str, LinkedProjection] | None = None,
    ) -> dict[str, Any]:
        """`body` (the entity rendered) with each Relationship's target inside it: `entity`
        (`entityList` for a ListRelationship) in normalized and concise form, the target
        entity in place of its id in keyValues."""
        depth = self.retrieval.level if level is None else level
        if depth <= 0:
            return body
        chosen = self.projections if projections is None else projections
        for name in doc.get("an", ()):
            key = self.terms.compact(name)
            if key not in body:
                continue
            instances = instances_of(doc, encode_field(name))
            rendered = body[key]
            several = isinstance(rendered, list) and len(instances) > 1
            items = rendered if several else [rendered]
            joined = [
                self._joined_instance(instance, item, depth, chosen.get(name))
                for instance, item in zip(instances, items, strict=False)
            ]
            body[key] = joined if several else joined[0]
        return body

    def _joined_instance(
        self, instance: dict[str, Any], item: Any, depth: int, projection: LinkedProjection | None
    ) -> Any:
        objects = _objects(instance)
        if not objects:
            return item
        entities = [self._entity(target, depth - 1, projection) for target in objects]
        present = [entity for entity in entities if entity is not None]
        if not present:
            return item
        is_list = instance["type"] == "ListRelationship" or isinstance(instance.get("object"), list)
        if self.options.format == "keyValues":
            return present if is_list else present[0]
        if not isinstance(item, dict):
            return item
        return {**item, "entityList": present} if is_list else {**item, "entity": present[0]}

    def _entity(
        self, entity_id: str, depth: int, projection: LinkedProjection | None
    ) -> dict[str, Any] | None:
        doc = self.linked.get(entity_id)
        if doc is None:
            return None
        body = render_entity(doc, self.terms, self.options)
        if projection is None:
            return self.shape(doc, self.inline(doc, body, depth, {}))
        joined = self.inline(doc, body, depth, projection.nested)
        return self.shape(doc, projection.apply(joined, self.terms))

    def flat(self, docs: Sequence[Document]) -> list[dict[str, Any]]:
        """The linked entities that are not among `docs`, rendered and projected, in the
        order found."""
        projections = self._flat_projections(docs)
        shown = {doc["_id"] for doc in docs}
        bodies = []
        for entity_id, doc in self.linked.items():
            if entity_id in shown:
                continue
            body = render_entity(doc, self.terms, self.options)
            projection = projections.get(entity_id)
            if projection is not None:
                body = projection.apply(body, self.terms)
            bodies.append(self.shape(doc, body))
        return bodies

    def _flat_projections(self, docs: Sequence[Document]) -> dict[str, LinkedProjection]:
        """The projection of each linked entity, by the Relationship path that first
        reached it, level by level (`pick=managedBy{name,ownedBy{name}}`)."""
        found: dict[str, LinkedProjection] = {}
        reached: set[str] = {doc["_id"] for doc in docs}
        frontier = [(doc, self.projections) for doc in docs]
        for _ in range(self.retrieval.level):
            following: list[tuple[Document, Mapping[str, LinkedProjection]]] = []
            for doc, chosen in frontier:
                for name in doc.get("an", ()):
                    projection = chosen.get(name)
                    for instance in instances_of(doc, encode_field(name)):
                        for target in _objects(instance):
                            linked = self.linked.get(target)
                            if linked is None or target in reached:
                                continue
                            reached.add(target)
                            if projection is not None:
                                found[target] = projection
                            following.append((linked, projection.nested if projection else {}))
            frontier = following
        return found
