"""Which of a tenant's subscriptions one entity change notifies (clause 5.8.6, 5.11).

Pure. `SubscriptionIndex` keeps each subscription under (entity type, watched attribute)
keys, so a change looks only at the subscriptions of its entity's types and changed
attributes; each of those candidates is then tested whole: entities (id, idPattern on RE2,
type expression), notificationTrigger, watchedAttributes, q, geoQ, scopeQ, isActive and
expiresAt. A `q` through Relationships needs other entities: a subscription whose other
conditions hold is left `pending` for the caller to resolve (`_linked_match.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from context_broker._entities import instances_of
from context_broker._linked_q import LinkedQuery, parse_linked_q
from context_broker._names import encode_field
from context_broker._query._evaluate import q_holds, scope_holds
from context_broker._query._geo import GeoQuery
from context_broker._query._q import Query
from context_broker._query._regex import Regex, compile_regex
from context_broker._query._scope import ScopeQuery, parse_scope_q
from context_broker._query._types import TypeSelection, has_types
from context_broker._subscriptions._model import Document, geo_query_of, q_expander

ChangeKind = Literal["created", "updated", "deleted"]
_Key = tuple[str | None, str | None]


@dataclass(slots=True, frozen=True)
class Change:
    """One entity change: the stored documents before and after, and the attributes (IRIs)
    the change created, updated and deleted."""

    tenant: str | None
    entity_id: str
    kind: ChangeKind
    before: Document | None
    after: Document | None
    created: frozenset[str] = frozenset()
    updated: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()

    @classmethod
    def between(cls, tenant: str | None, before: Document | None, after: Document | None) -> Change:
        """The change from `before` (None: the entity is new) to `after` (None: deleted)."""
        current = after if after is not None else before
        if current is None:
            raise ValueError("a change needs the entity before or after it")
        old = _attributes(before)
        new = _attributes(after)
        if before is None:
            return cls(tenant, current["_id"], "created", None, after, created=frozenset(new))
        if after is None:
            return cls(tenant, current["_id"], "deleted", before, None, deleted=frozenset(old))
        return cls(
            tenant,
            current["_id"],
            "updated",
            before,
            after,
            created=frozenset(new.keys() - old.keys()),
            updated=frozenset(name for name in new.keys() & old.keys() if new[name] != old[name]),
            deleted=frozenset(old.keys() - new.keys()),
        )

    @property
    def entity(self) -> Document:
        """The entity as the subscription's conditions see it: after, or before a deletion."""
        found = self.after if self.after is not None else self.before
        assert found is not None
        return found

    @property
    def types(self) -> frozenset[str]:
        return frozenset(
            name for doc in (self.before, self.after) if doc is not None for name in doc["type"]
        )

    @property
    def attributes(self) -> frozenset[str]:
        """Every attribute the change touched."""
        return self.created | self.updated | self.deleted


def _attributes(doc: Document | None) -> dict[str, list[Any]]:
    if doc is None:
        return {}
    return {name: instances_of(doc, encode_field(name)) for name in doc.get("an", [])}


@dataclass(slots=True, frozen=True)
class _Selector:
    entity_id: str | None
    id_pattern: Regex | None
    types: TypeSelection

    def selects(self, doc: Document) -> bool:
        if self.entity_id is not None and doc["_id"] != self.entity_id:
            return False
        if self.id_pattern is not None and not self.id_pattern.search(doc["_id"]):
            return False
        return has_types(doc["type"], self.types)


@dataclass(slots=True)
class Matchable:
    """A stored subscription, compiled for matching."""

    doc: Document
    selectors: tuple[_Selector, ...]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    q: Query | None
    q_names: Mapping[str, str]
    geo: GeoQuery | None
    scope: ScopeQuery | None
    keys: tuple[_Key, ...] = field(default=())
    # q with terms through Relationships (`managedBy{name}=="Acme"`), decided by the caller
    # once everything else holds; `q` is then its terms that need no linked entity.
    linked: LinkedQuery | None = None

    @classmethod
    def of(cls, doc: Document) -> Matchable:
        selectors = tuple(
            _Selector(
                selector.get("id"),
                compile_regex(selector["idPattern"], "idPattern")
                if "idPattern" in selector
                else None,
                tuple(tuple(group) for group in selector["types"]),
            )
            for selector in doc.get("entities", [])
        )
        watched = frozenset(doc["watchedAttributes"]) if "watchedAttributes" in doc else None
        parsed = parse_linked_q(doc["q"]) if "q" in doc else None
        found = cls(
            doc=doc,
            selectors=selectors,
            watched=watched,
            triggers=frozenset(doc["notificationTrigger"]),
            q=parsed.plain_terms() if parsed is not None else None,
            q_names=dict(doc.get("qNames", [])),
            geo=geo_query_of(doc["geoQ"]) if "geoQ" in doc else None,
            scope=parse_scope_q(doc["scopeQ"]) if "scopeQ" in doc else None,
            linked=parsed if parsed is not None and parsed.conditions else None,
        )
        found.keys = found._index_keys()
        return found

    @property
    def id(self) -> str:
        return str(self.doc["_id"])

    def _index_keys(self) -> tuple[_Key, ...]:
        """Every entity this subscription selects has one of these (type, attribute) keys:
        the first type of each alternative of its type expressions (None: any type), and
        each watched attribute (None: any attribute)."""
        types: list[str | None] = [None]
        if self.selectors and all(selector.types for selector in self.selectors):
            firsts = (group[0] for selector in self.selectors for group in selector.types if group)
            types = [*dict.fromkeys(firsts)]
        attributes: list[str | None] = [None]
        if self.watched:
            attributes = [*sorted(self.watched)]
        return tuple((kind, name) for kind in types for name in attributes)

    @property
    def expand(self) -> Callable[[str], str]:
        """The expansion of the q's names, as the subscription's @context gave them."""
        return q_expander(self.q_names)

    def notifies(self, change: Change, now: datetime) -> bool:
        """Whether `change` is to be notified to this subscription at `now`, but for the
        linked terms of its q (the caller's to resolve)."""
        doc = self.doc
        if not doc.get("isActive", True):
            return False
        expires = doc.get("expiresAt")
        if expires is not None and _aware(expires) <= now:
            return False
        if "timeInterval" in doc:
            return False  # periodic subscriptions notify on their interval, not on changes
        entity = change.entity
        if self.selectors and not any(selector.selects(entity) for selector in self.selectors):
            return False
        if not self._triggered(change):
            return False
        if self.q is not None and not q_holds(self.q, entity, self.expand):
            return False
        if self.scope is not None and not scope_holds(self.scope, entity):
            return False
        return self.geo is None or _geo_holds(self.geo, entity)

    def _triggered(self, change: Change) -> bool:
        def relevant(names: frozenset[str]) -> bool:
            return bool(names if self.watched is None else names & self.watched)

        triggers = self.triggers
        if change.kind == "created":
            return ("entityCreated" in triggers or "attributeCreated" in triggers) and (
                self.watched is None or relevant(change.created)
            )
        if change.kind == "deleted":
            return "entityDeleted" in triggers and (
                self.watched is None or relevant(change.deleted)
            )
        return (
            ("entityUpdated" in triggers and relevant(change.attributes))
            or ("attributeCreated" in triggers and relevant(change.created))
            or ("attributeUpdated" in triggers and relevant(change.updated))
            or ("attributeDeleted" in triggers and relevant(change.deleted))
        )


def _geo_holds(query: GeoQuery, entity: Document) -> bool:
    instance = entity.get("attrs", {}).get(encode_field(query.geoproperty))
    if not isinstance(instance, dict) or instance.get("type") != "GeoProperty":
        return False
    return query.matches(instance["value"]) is not None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(slots=True, frozen=True)
class Match:
    """The subscriptions a change notifies, how many were tested to find them, and those
    that notify if their q's linked terms hold (resolved by the caller)."""

    subscriptions: list[Document]
    evaluated: int
    pending: list[Matchable] = field(default_factory=list)


class SubscriptionIndex:
    """One tenant's subscriptions by (entity type, watched attribute)."""

    def __init__(self, docs: Iterable[Document] = ()) -> None:
        self._by_id: dict[str, Matchable] = {}
        self._by_key: dict[_Key, dict[str, Matchable]] = {}
        for doc in docs:
            self.add(doc)

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, doc: Document) -> None:
        """Add a subscription, or replace the one with its id."""
        self.remove(str(doc["_id"]))
        found = Matchable.of(doc)
        self._by_id[found.id] = found
        for key in found.keys:
            self._by_key.setdefault(key, {})[found.id] = found

    def get(self, subscription_id: str) -> Document | None:
        found = self._by_id.get(subscription_id)
        return found.doc if found is not None else None

    def remove(self, subscription_id: str) -> None:
        found = self._by_id.pop(subscription_id, None)
        if found is None:
            return
        for key in found.keys:
            bucket = self._by_key.get(key)
            if bucket is not None:
                bucket.pop(subscription_id, None)
                if not bucket:
                    del self._by_key[key]

    def candidates(self, change: Change) -> list[Matchable]:
        """The subscriptions whose keys the change meets, each once."""
        types: list[str | None] = [*sorted(change.types), None]
        names: list[str | None] = [*sorted(change.attributes), None]
        found: dict[str, Matchable] = {}
        for kind in types:
            for name in names:
                bucket = self._by_key.get((kind, name))
                if bucket:
                    found.update(bucket)
        return list(found.values())

    def match(self, change: Change, now: datetime) -> Match:
        candidates = self.candidates(change)
        passed = [each for each in candidates if each.notifies(change, now)]
        notified = [each.doc for each in passed if each.linked is None]
        pending = [each for each in passed if each.linked is not None]
        return Match(notified, len(candidates), pending)
