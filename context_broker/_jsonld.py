"""JSON-LD @context handling for NGSI-LD: term maps, expansion, compaction, context resolution.

Pure: it takes parsed JSON and a fetch function, so it runs anywhere (API, tests, tools).
Fetched documents are shared by all tenants (one download per URL), but each cached URL
remembers which tenants' requests used it: a tenant lists, reads and evicts only those.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Final, Generic, TypeVar
from urllib.parse import urljoin, urlsplit

from context_broker._errors import BadRequestData

__all__ = [
    "DEFAULT_VOCAB",
    "NGSI_LD_CORE_CONTEXT_URL",
    "ContextResolver",
    "ContextUsage",
    "FetchContext",
    "HostedLookup",
    "TermMap",
    "core_context_document",
    "core_term_map",
    "is_core_context_url",
]

NGSI_LD_CORE_CONTEXT_URL: Final = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
DEFAULT_VOCAB: Final = "https://uri.etsi.org/ngsi-ld/default-context/"

MAX_CONTEXT_DEPTH: Final = 8
_MEMO_LIMIT: Final = 20_000
_TENANTS_PER_URL: Final = 512  # more than the region's municipalities; the oldest user drops
_CORE_FILE: Final = "ngsi-ld-core-context-v1.8.jsonld"
_CORE_URL_RE: Final = re.compile(
    r"https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context[^/?#]*\.jsonld", re.ASCII
)

FetchContext = Callable[[str], Awaitable[object]]
"""Returns the parsed JSON document at a URL; raises LdContextNotAvailable."""

HostedLookup = Callable[[str, str | None], object | None]
"""The document a URL names among the contexts this broker hosts for a tenant; None when
the URL is not one of the broker's own; raises LdContextNotAvailable when it is another
tenant's."""

ContextValue = str | list[object] | dict[str, object]


def is_core_context_url(url: str) -> bool:
    """True for any version of the NGSI-LD core context URL (resolved without a fetch)."""
    return _CORE_URL_RE.fullmatch(url) is not None


class TermMap:
    """An immutable resolved @context: the core terms, the user terms over them, the vocab."""

    __slots__ = (
        "_compacted",
        "_expanded",
        "_inverse",
        "_prefixes",
        "_terms",
        "_user",
        "_vocab",
        "response_context",
    )

    def __init__(
        self,
        core: Mapping[str, str],
        user: Mapping[str, str],
        vocab: str,
        response_context: ContextValue,
    ) -> None:
        self._user = dict(user)
        self._terms: dict[str, str] = {**user, **core}
        self._vocab = vocab
        self.response_context = response_context
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}
        self._inverse: dict[str, str] | None = None
        self._prefixes: list[tuple[str, str]] = []

    @property
    def vocab(self) -> str:
        return self._vocab

    def is_default(self) -> bool:
        """True when only the core context is in force (no user term, default vocab)."""
        return not self._user and self._vocab == DEFAULT_VOCAB

    def expand(self, term: str) -> str:
        """The IRI of an attribute name, entity type or VocabProperty value."""
        iri = self._expanded.get(term)
        if iri is None:
            iri = self._expand(term)
            if len(self._expanded) >= _MEMO_LIMIT:
                self._expanded.clear()
            self._expanded[term] = iri
        return iri

    def compact(self, iri: str) -> str:
        """The shortest name of an IRI under this context (the inverse of expand)."""
        term = self._compacted.get(iri)
        if term is None:
            term = self._compact(iri)
            if len(self._compacted) >= _MEMO_LIMIT:
                self._compacted.clear()
            self._compacted[iri] = term
        return term

    def _expand(self, term: str) -> str:
        if term.startswith("@"):
            return term
        iri = self._terms.get(term)
        if iri is not None:
            return iri
        if ":" in term:
            prefix, suffix = term.split(":", 1)
            base = self._terms.get(prefix)
            if base is not None and not base.startswith("@") and not suffix.startswith("//"):
                return base + suffix
            return term
        return self._vocab + term

    def _compact(self, iri: str) -> str:
        inverse = self._inverse if self._inverse is not None else self._build_inverse()
        term = inverse.get(iri)
        if term is not None:
            return term
        if iri.startswith("@"):
            return iri
        if iri.startswith(self._vocab):
            rest = iri[len(self._vocab) :]
            if rest and not _has_any(rest, "/#:") and rest not in self._terms:
                return rest
        for base, prefix in self._prefixes:
            if len(iri) > len(base) and iri.startswith(base):
                rest = iri[len(base) :]
                candidate = f"{prefix}:{rest}"
                if not rest.startswith("//") and candidate not in self._terms:
                    return candidate
        return iri

    def _build_inverse(self) -> dict[str, str]:
        def rank(term: str) -> tuple[bool, int, str]:
            return (term not in self._user, len(term), term)

        inverse: dict[str, str] = {}
        for term, iri in self._terms.items():
            best = inverse.get(iri)
            if best is None or rank(term) < rank(best):
                inverse[iri] = term
        prefixes = [
            (iri, term)
            for term, iri in self._terms.items()
            if ":" not in term and iri.endswith(("/", "#")) and not iri.startswith("@")
        ]
        prefixes.sort(key=lambda pair: (-len(pair[0]), rank(pair[1])))
        self._prefixes = prefixes
        self._inverse = inverse
        return inverse


def _has_any(text: str, chars: str) -> bool:
    return any(c in text for c in chars)


_Layer = dict[str, object] | None  # an inline context object, or None: reset to the core


class _LayerParser:
    """Turns one inline context object into term -> IRI (None: undefined) and its @vocab."""

    def __init__(
        self,
        ctx: Mapping[str, object],
        core: Mapping[str, str],
        earlier: Mapping[str, str],
        vocab: str,
        *,
        scoped_contexts: bool = False,
    ) -> None:
        self._ctx = ctx
        self._scoped_contexts = scoped_contexts
        self._core = core
        self._earlier = earlier
        self._vocab = vocab
        self._defined: dict[str, str | None] = {}
        self._in_progress: set[str] = set()

    def parse(self) -> tuple[dict[str, str | None], str]:
        if "@vocab" in self._ctx:
            raw = self._ctx["@vocab"]
            if raw is None:
                self._vocab = DEFAULT_VOCAB
            elif isinstance(raw, str) and ":" in raw and not raw.startswith("@"):
                self._vocab = self._value_iri(raw, "@vocab")
            else:
                raise BadRequestData(f"@vocab in @context must be an absolute IRI, not {raw!r}")
        for term in self._ctx:
            if term == "":
                raise BadRequestData("a term in @context must not be the empty string")
            if not term.startswith("@"):
                self._define(term)
        return self._defined, self._vocab

    def _define(self, term: str) -> str | None:
        if term in self._defined:
            return self._defined[term]
        if term in self._in_progress:
            raise BadRequestData(f"the definition of term {term!r} in @context is cyclic")
        self._in_progress.add(term)
        raw = self._ctx[term]
        iri: str | None
        if raw is None:
            iri = None
        elif isinstance(raw, str):
            iri = self._value_iri(raw, term)
        elif isinstance(raw, dict):
            if "@context" in raw and not self._scoped_contexts:
                raise BadRequestData(
                    f"the term definition of {term!r} holds a scoped @context, which NGSI-LD "
                    "does not take"
                )
            if "@id" in raw:
                raw_id = raw["@id"]
                if raw_id is not None and not isinstance(raw_id, str):
                    raise BadRequestData(
                        f"invalid term definition for {term!r} in @context: @id must be a string"
                    )
                iri = None if raw_id is None else self._value_iri(raw_id, term)
            elif ":" in term:
                iri = self._value_iri(term, term)
            else:
                iri = self._vocab + term
        else:
            raise BadRequestData(
                f"invalid term definition for {term!r} in @context: "
                "expected a string, an object or null"
            )
        self._in_progress.discard(term)
        self._defined[term] = iri
        return iri

    def _value_iri(self, value: str, self_term: str) -> str:
        """Expand an IRI-valued entry: core terms first, then this context, then earlier ones."""
        if value.startswith("@"):
            return value
        if ":" in value:
            prefix, suffix = value.split(":", 1)
            if suffix.startswith("//") or prefix == self_term:
                return value
            base = self._lookup(prefix)
            if base is None or base.startswith("@"):
                return value
            return base + suffix
        if value == self_term:
            return self._vocab + value
        iri = self._lookup(value)
        return self._vocab + value if iri is None else iri

    def _lookup(self, term: str) -> str | None:
        if term in self._core:
            return self._core[term]
        if term in self._ctx:
            return self._define(term)
        return self._earlier.get(term)


def _build_term_map(
    layers: list[_Layer], core: Mapping[str, str], response_context: ContextValue
) -> TermMap:
    user: dict[str, str] = {}
    vocab: str = DEFAULT_VOCAB
    for layer in layers:
        if layer is None:
            user, vocab = {}, DEFAULT_VOCAB
            continue
        defined, vocab = _LayerParser(layer, core, user, vocab).parse()
        for term, iri in defined.items():
            if term in core:
                continue  # the core context is protected: its terms win
            if iri is None:
                user.pop(term, None)
            else:
                user[term] = iri
    return TermMap(core, user, vocab, response_context)


@functools.cache
def _core_terms() -> dict[str, str]:
    text = resources.files("context_broker.contexts").joinpath(_CORE_FILE).read_text("utf-8")
    document = json.loads(text)
    # The core context's own scoped context (ngsildproof) is the only one taken.
    defined, _ = _LayerParser(
        document["@context"], {}, {}, DEFAULT_VOCAB, scoped_contexts=True
    ).parse()
    return {term: iri for term, iri in defined.items() if iri is not None}


@functools.cache
def core_context_document() -> object:
    """The shipped core context document, as GET /jsonldContexts serves it."""
    text = resources.files("context_broker.contexts").joinpath(_CORE_FILE).read_text("utf-8")
    document: object = json.loads(text)
    return document


@functools.cache
def core_term_map() -> TermMap:
    """The term map of the shipped core context alone (built once)."""
    return TermMap(_core_terms(), {}, DEFAULT_VOCAB, NGSI_LD_CORE_CONTEXT_URL)


def _context_of(document: object) -> object:
    if not isinstance(document, dict) or "@context" not in document:
        raise ValueError
    return document["@context"]


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Lru(Generic[_K, _V]):
    __slots__ = ("_data", "_size")

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._size = size

    def get(self, key: _K) -> _V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def peek(self, key: _K) -> _V | None:
        """The value without making it the most recent."""
        return self._data.get(key)

    def pop(self, key: _K) -> _V | None:
        return self._data.pop(key, None)

    def items(self) -> Iterator[tuple[_K, _V]]:
        return iter(list(self._data.items()))

    def clear(self) -> None:
        self._data.clear()


@dataclass(slots=True)
class ContextUsage:
    """When a context came to the broker and how often requests used it (POSIX seconds)."""

    created_at: float = field(default_factory=time.time)
    hits: int = 0
    last_used: float | None = None

    def hit(self) -> None:
        self.hits += 1
        self.last_used = time.time()


@dataclass(slots=True)
class _Cached:
    """A fetched document and the tenants whose requests used it, least recent first."""

    document: object
    tenants: OrderedDict[str | None, None] = field(default_factory=OrderedDict)
    usage: ContextUsage = field(default_factory=ContextUsage)

    def claim(self, tenant: str | None) -> None:
        self.tenants[tenant] = None
        self.tenants.move_to_end(tenant)
        while len(self.tenants) > _TENANTS_PER_URL:
            self.tenants.popitem(last=False)


@dataclass(slots=True)
class _Resolved:
    """A term map, the remote URLs it was built from and the tenants that claimed them."""

    term_map: TermMap
    urls: tuple[str, ...]
    tenants: set[str | None] = field(default_factory=set)
    hosted_urls: tuple[str, ...] = ()


@dataclass(slots=True)
class _Build:
    """What one resolution used: for whom, which remote URLs, and which hosted contexts."""

    tenant: str | None
    urls: list[str] = field(default_factory=list)
    hosted_urls: list[str] = field(default_factory=list)


def _withdraw(maps: _Lru[_K, _Resolved], url: str, tenant: str | None, *, dropped: bool) -> None:
    """After a tenant evicted url: its next use of a map built on url claims it again, or,
    once the document is dropped, the map goes so that the next use fetches it again."""
    for key, resolved in maps.items():
        if url in resolved.urls:
            if dropped:
                maps.pop(key)
            else:
                resolved.tenants.discard(tenant)


class ContextResolver:
    """Resolves request @context values to TermMaps, caching fetched documents and maps.

    A term map built from remote and inline contexts only is shared by all tenants: a
    cache hit (the hot path) is one lookup, plus, on a tenant's first hit, recording its
    claim on the documents behind the map. A map built from a hosted context is its
    tenant's alone.
    """

    def __init__(
        self,
        fetch: FetchContext,
        *,
        cache_entries: int = 256,
        hosted: HostedLookup | None = None,
    ) -> None:
        if cache_entries < 1:
            raise ValueError("cache_entries must be at least 1")
        self._fetch = fetch
        self._hosted = hosted
        self._maps: _Lru[str, _Resolved] = _Lru(cache_entries)
        self._hosted_maps: _Lru[tuple[str | None, str], _Resolved] = _Lru(cache_entries)
        self._documents: _Lru[str, _Cached] = _Lru(cache_entries)
        self._local: dict[str, object] = {}
        self._pending: dict[str, asyncio.Future[object]] = {}
        self.core_usage = ContextUsage()

    async def resolve(self, context: ContextValue | None, tenant: str | None = None) -> TermMap:
        """The term map for a tenant's request @context (None: the core context alone)."""
        self.core_usage.hit()  # every term map includes the core context
        if context is None:
            return core_term_map()
        if isinstance(context, str):
            key = context
        elif isinstance(context, list | dict):
            try:
                key = "\x00" + json.dumps(
                    context, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                )
            except (TypeError, ValueError) as exc:
                raise BadRequestData("the @context is not a JSON value") from exc
        else:
            raise BadRequestData(
                f"@context must be a URL, an object or an array, not {type(context).__name__}"
            )
        resolved = self._maps.get(key)
        if resolved is None and self._hosted is not None:
            resolved = self._hosted_maps.get((tenant, key))
        if resolved is None:
            return await self._build(context, key, tenant)
        for url in resolved.urls:
            if (cached := self._documents.peek(url)) is not None:
                cached.usage.hit()
        if resolved.hosted_urls and self._hosted is not None:
            for url in resolved.hosted_urls:
                self._hosted(url, tenant)  # counts the use of the hosted context
        if tenant not in resolved.tenants:
            self._claim(resolved, tenant)
        return resolved.term_map

    async def _build(self, context: ContextValue, key: str, tenant: str | None) -> TermMap:
        build = _Build(tenant)
        layers = await self._layers(context, base=None, chain=(), build=build)
        response = context if isinstance(context, str) else copy.deepcopy(context)
        term_map = _build_term_map(layers, _core_terms(), response)
        resolved = _Resolved(term_map, tuple(build.urls), {tenant}, tuple(build.hosted_urls))
        if build.hosted_urls:
            self._hosted_maps.put((tenant, key), resolved)
        else:
            self._maps.put(key, resolved)
        return term_map

    def _claim(self, resolved: _Resolved, tenant: str | None) -> None:
        for url in resolved.urls:
            if (cached := self._documents.peek(url)) is not None:
                cached.claim(tenant)
        if len(resolved.tenants) >= _TENANTS_PER_URL:
            resolved.tenants.clear()
        resolved.tenants.add(tenant)

    def _clear_maps(self) -> None:
        self._maps.clear()
        self._hosted_maps.clear()

    def add_local(self, url: str, document: object) -> None:
        """Serve a context hosted by this broker under url, without fetching it."""
        try:
            _context_of(document)
        except ValueError:
            raise BadRequestData(
                f"the context document for {url} must be a JSON object with @context"
            ) from None
        self._local[url] = document
        self._documents.pop(url)
        self._clear_maps()

    def remove_local(self, url: str) -> None:
        if self._local.pop(url, None) is not None:
            self._clear_maps()

    def evict(self, url: str, tenant: str | None = None) -> bool:
        """Withdraw the tenant's use of a cached remote context (False: it had none).

        The document is dropped, so that its next use fetches it again, once no tenant
        uses it; other tenants keep it and are not made to wait for a download.
        """
        cached = self._documents.peek(url)
        if cached is None or tenant not in cached.tenants:
            return False
        del cached.tenants[tenant]
        dropped = not cached.tenants
        if dropped:
            self._documents.pop(url)
        _withdraw(self._maps, url, tenant, dropped=dropped)
        _withdraw(self._hosted_maps, url, tenant, dropped=dropped)
        return True

    async def reload(self, url: str, tenant: str | None = None) -> bool:
        """Fetch a cached remote context the tenant uses again and replace it for everyone.

        False when the tenant uses no such context; a failed fetch raises and keeps the
        cached document.
        """
        cached = self._documents.peek(url)
        if cached is None or tenant not in cached.tenants:
            return False
        cached.document = await self._fetch(url)
        self._clear_maps()
        return True

    def forget_hosted(self, tenant: str | None) -> None:
        """Drop the tenant's term maps built from hosted contexts, after one was deleted."""
        for key, _ in self._hosted_maps.items():
            if key[0] == tenant:
                self._hosted_maps.pop(key)

    def cached_urls(self, tenant: str | None = None) -> list[str]:
        """URLs of the cached remote contexts the tenant's requests used (least recent first)."""
        return [url for url, cached in self._documents.items() if tenant in cached.tenants]

    def cached_usage(self, tenant: str | None = None) -> list[tuple[str, ContextUsage]]:
        """The cached remote contexts the tenant's requests used, with their usage."""
        return [
            (url, cached.usage)
            for url, cached in self._documents.items()
            if tenant in cached.tenants
        ]

    def cached_document(self, url: str, tenant: str | None = None) -> object | None:
        """A local or cached remote context document the tenant uses, as served or fetched."""
        if url in self._local:
            return self._local[url]
        cached = self._documents.peek(url)
        if cached is None or tenant not in cached.tenants:
            return None
        return cached.document

    async def _layers(
        self, value: object, *, base: str | None, chain: tuple[str, ...], build: _Build
    ) -> list[_Layer]:
        if value is None:
            return [None]
        if isinstance(value, dict):
            return [value]
        if isinstance(value, str):
            return await self._url_layers(value, base=base, chain=chain, build=build)
        if isinstance(value, list):
            layers: list[_Layer] = []
            for item in value:
                if isinstance(item, list):
                    raise BadRequestData("an @context array must not contain arrays")
                layers.extend(await self._layers(item, base=base, chain=chain, build=build))
            return layers
        raise BadRequestData(
            f"an @context entry must be a URL, an object or null, not {type(value).__name__}"
        )

    async def _url_layers(
        self, value: str, *, base: str | None, chain: tuple[str, ...], build: _Build
    ) -> list[_Layer]:
        try:
            url = value if base is None else urljoin(base, value)
            scheme = urlsplit(url).scheme
        except ValueError:
            raise BadRequestData(f"the @context URL is malformed: {value!r}") from None
        if is_core_context_url(url):
            return []
        if not scheme:
            raise BadRequestData(f"the @context URL must be absolute: {value!r}")
        if url in chain:
            raise BadRequestData(
                f"the @context {url} includes itself (cycle: {' -> '.join(chain)})"
            )
        if len(chain) >= MAX_CONTEXT_DEPTH:
            raise BadRequestData(
                f"the @context nests more than {MAX_CONTEXT_DEPTH} documents deep at {url}"
            )
        document = self._local.get(url)
        if document is None and self._hosted is not None:
            document = self._hosted(url, build.tenant)
            if document is not None:
                build.hosted_urls.append(url)
        if document is None:
            document = await self._document(url, build.tenant)
            build.urls.append(url)
        try:
            inner = _context_of(document)
        except ValueError:
            raise BadRequestData(
                f"the document at {url} is not a JSON-LD context (no @context member)"
            ) from None
        return await self._layers(inner, base=url, chain=(*chain, url), build=build)

    async def _document(self, url: str, tenant: str | None) -> object:
        """The fetched document at url, claimed for the tenant; concurrent requests for one
        URL share one fetch."""
        cached = self._documents.get(url)
        if cached is not None:
            cached.claim(tenant)
            cached.usage.hit()
            return cached.document
        while (pending := self._pending.get(url)) is not None:
            try:
                document = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise
            else:
                if (cached := self._documents.peek(url)) is not None:
                    cached.claim(tenant)
                return document
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending[url] = future
        try:
            document = await self._fetch(url)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here; waiters (if any) get it too
            raise
        finally:
            del self._pending[url]
        cached = _Cached(document)
        cached.claim(tenant)
        cached.usage.hit()
        self._documents.put(url, cached)
        future.set_result(document)
        return document
