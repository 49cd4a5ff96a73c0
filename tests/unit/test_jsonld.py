"""@context handling: expansion, compaction, core protection, resolution, caching, errors.

data/dataModel.Environment.context.jsonld: Smart Data Models Program (smartdatamodels.org),
github.com/smart-data-models, CC BY 4.0, copied unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from context_broker._errors import BadRequestData, LdContextNotAvailable
from context_broker._jsonld import (
    DEFAULT_VOCAB,
    NGSI_LD_CORE_CONTEXT_URL,
    ContextResolver,
    TermMap,
    core_term_map,
    is_core_context_url,
)

NGSI = "https://uri.etsi.org/ngsi-ld/"
SDM_ENV_URL = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
SDM_ENV = json.loads(
    (Path(__file__).parent / "data" / "dataModel.Environment.context.jsonld").read_text("utf-8")
)
CORE_FILE = (
    Path(__file__).parents[2] / "context_broker" / "contexts" / "ngsi-ld-core-context-v1.8.jsonld"
)


class Documents:
    """A fetch function over a dict of URL -> document that counts its calls."""

    def __init__(self, documents: dict[str, object]) -> None:
        self.documents = documents
        self.calls: list[str] = []

    async def __call__(self, url: str) -> object:
        self.calls.append(url)
        await asyncio.sleep(0)
        if url not in self.documents:
            raise LdContextNotAvailable(f"@context {url}: the server answered HTTP 404")
        return self.documents[url]


def resolver_over(documents: dict[str, object] | None = None) -> tuple[ContextResolver, Documents]:
    fetch = Documents(documents or {})
    return ContextResolver(fetch), fetch


async def resolve_inline(context: dict[str, object] | list[object]) -> TermMap:
    return await ContextResolver(Documents({})).resolve(context)


# --- the core context --------------------------------------------------------------------


def test_core_file_has_the_1_7_terms_and_those_of_1_8_and_1_9() -> None:
    core = json.loads(CORE_FILE.read_text("utf-8"))["@context"]
    assert len([term for term in core if not term.startswith("@")]) >= 200
    for term in (
        "JsonProperty",
        "VocabProperty",
        "ListProperty",
        "ListRelationship",
        "valueList",
        "objectList",
        "objectType",
        "entityMap",
        "jsonKeys",
        "expandValues",
        "previousJson",
        "previousValueList",
        "previousObjectList",
        "datasetId",
        "deletedAt",
    ):
        assert term in core, term
    assert core["json"] == {"@id": "ngsi-ld:hasJSON", "@type": "@json"}
    assert core["valueList"]["@container"] == "@list"
    assert core["@vocab"] == DEFAULT_VOCAB


@pytest.mark.parametrize(
    ("term", "iri"),
    [
        ("Property", NGSI + "Property"),
        ("GeoProperty", NGSI + "GeoProperty"),
        ("JsonProperty", NGSI + "JsonProperty"),
        ("VocabProperty", NGSI + "VocabProperty"),
        ("VocabularyProperty", NGSI + "VocabProperty"),
        ("ListRelationship", NGSI + "ListRelationship"),
        ("location", NGSI + "location"),
        ("observedAt", NGSI + "observedAt"),
        ("value", NGSI + "hasValue"),
        ("object", NGSI + "hasObject"),
        ("json", NGSI + "hasJSON"),
        ("vocab", NGSI + "hasVocab"),
        ("valueList", NGSI + "hasValueList"),
        ("objectList", NGSI + "hasObjectList"),
        ("objectType", NGSI + "hasObjectType"),
        ("entityMap", NGSI + "hasEntityMap"),
        ("Point", "https://purl.org/geojson/vocab#Point"),
        ("description", "http://purl.org/dc/terms/description"),
        ("attributeCount", DEFAULT_VOCAB + "attributeCount"),
        ("id", "@id"),
        ("type", "@type"),
    ],
)
def test_core_terms_expand_to_their_iris(term: str, iri: str) -> None:
    assert core_term_map().expand(term) == iri


def test_undefined_terms_expand_with_the_default_vocab() -> None:
    core = core_term_map()
    assert core.expand("temperature") == DEFAULT_VOCAB + "temperature"
    assert core.compact(DEFAULT_VOCAB + "temperature") == "temperature"
    assert core.is_default()
    assert core.response_context == NGSI_LD_CORE_CONTEXT_URL


def test_keywords_absolute_iris_and_urns_are_kept() -> None:
    core = core_term_map()
    assert core.expand("@id") == "@id"
    assert core.expand("@type") == "@type"
    assert core.expand("http://example.org/ns#speed") == "http://example.org/ns#speed"
    assert core.expand("urn:ngsi-ld:Sensor:1") == "urn:ngsi-ld:Sensor:1"


def test_compact_iris_expand_with_a_defined_prefix() -> None:
    core = core_term_map()
    assert core.expand("ngsi-ld:speed") == NGSI + "speed"
    assert core.expand("geojson:Feature") == "https://purl.org/geojson/vocab#Feature"
    # "prefix://..." is an absolute IRI even when the prefix is a term
    assert core.expand("ngsi-ld://host/x") == "ngsi-ld://host/x"


def test_compaction_of_core_iris() -> None:
    core = core_term_map()
    assert core.compact(NGSI + "hasValue") == "value"
    # the alias of 1.7 and the name of 1.8 map one IRI: the shorter term answers
    assert core.compact(NGSI + "VocabProperty") == "VocabProperty"
    assert core.compact(NGSI + "notATerm") == "ngsi-ld:notATerm"
    assert core.compact("https://purl.org/geojson/vocab#other") == "geojson:other"
    assert core.compact("http://example.org/x") == "http://example.org/x"
    assert core.compact("@id") == "id"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/other-context.jsonld", False),
        ("https://example.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", False),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld/x", False),
    ],
)
def test_core_context_urls(url: str, expected: bool) -> None:
    assert is_core_context_url(url) is expected


# --- user contexts -----------------------------------------------------------------------


async def test_smart_data_models_terms_expand_through_their_context() -> None:
    resolver, fetch = resolver_over({SDM_ENV_URL: SDM_ENV})
    term_map = await resolver.resolve([SDM_ENV_URL, NGSI_LD_CORE_CONTEXT_URL])
    sdm = "https://smartdatamodels.org/"
    assert term_map.expand("AirQualityObserved") == sdm + "dataModel.Environment/AirQualityObserved"
    assert term_map.expand("airQualityIndex") == sdm + "dataModel.Environment/airQualityIndex"
    assert term_map.expand("dateObserved") == sdm + "dateObserved"
    assert term_map.expand("location") == NGSI + "location"
    assert term_map.expand("NO2") == DEFAULT_VOCAB + "NO2"
    assert term_map.compact(sdm + "dataModel.Environment/AirQualityObserved") == (
        "AirQualityObserved"
    )
    assert term_map.compact(sdm + "address") == "address"
    assert not term_map.is_default()
    assert term_map.response_context == [SDM_ENV_URL, NGSI_LD_CORE_CONTEXT_URL]
    assert fetch.calls == [SDM_ENV_URL]


async def test_core_terms_cannot_be_overridden() -> None:
    term_map = await resolve_inline(
        {"location": "http://example.org/where", "value": "http://example.org/v", "id": "@type"}
    )
    assert term_map.expand("location") == NGSI + "location"
    assert term_map.expand("value") == NGSI + "hasValue"
    assert term_map.expand("id") == "@id"
    assert term_map.compact(NGSI + "location") == "location"
    assert term_map.is_default()  # nothing of the user's context took effect


async def test_later_contexts_override_earlier_ones_and_null_undefines() -> None:
    term_map = await resolve_inline(
        [
            {"speed": "http://a.example/speed", "heading": "http://a.example/heading"},
            {"speed": "http://b.example/speed", "heading": None},
        ]
    )
    assert term_map.expand("speed") == "http://b.example/speed"
    assert term_map.expand("heading") == DEFAULT_VOCAB + "heading"


async def test_term_definition_forms() -> None:
    term_map = await resolve_inline(
        {
            "ex": "http://example.org/ns#",
            "schema": {"@id": "https://schema.org/"},
            "speed": "ex:speed",
            "name": {"@id": "schema:name", "@type": "@id"},
            "quality": {"@type": "@vocab"},
            "Sensor": "Property",
            "level": "level",
            "ex:direct": {"@type": "@id"},
            "abs": {"@id": "http://other.example/abs"},
        }
    )
    assert term_map.expand("speed") == "http://example.org/ns#speed"
    assert term_map.expand("name") == "https://schema.org/name"
    assert term_map.expand("quality") == DEFAULT_VOCAB + "quality"
    assert term_map.expand("Sensor") == NGSI + "Property"
    assert term_map.expand("level") == DEFAULT_VOCAB + "level"
    assert term_map.expand("ex:direct") == "http://example.org/ns#direct"
    assert term_map.expand("ex:other") == "http://example.org/ns#other"
    assert term_map.expand("schema:Place") == "https://schema.org/Place"
    assert term_map.expand("abs") == "http://other.example/abs"
    assert term_map.compact("http://example.org/ns#unknown") == "ex:unknown"
    assert term_map.compact("https://schema.org/name") == "name"


async def test_definitions_may_refer_to_terms_defined_later_in_the_same_object() -> None:
    term_map = await resolve_inline({"speed": "ex:speed", "ex": "http://example.org/ns#"})
    assert term_map.expand("speed") == "http://example.org/ns#speed"


async def test_prefixes_of_earlier_contexts_and_of_the_core_are_usable() -> None:
    term_map = await resolve_inline(
        [{"ex": "http://example.org/ns#"}, {"speed": "ex:speed", "flag": "ngsi-ld:flag"}]
    )
    assert term_map.expand("speed") == "http://example.org/ns#speed"
    assert term_map.expand("flag") == NGSI + "flag"


async def test_a_user_vocab_replaces_the_default_vocab() -> None:
    term_map = await resolve_inline({"@vocab": "http://example.org/terms/"})
    assert term_map.expand("speed") == "http://example.org/terms/speed"
    assert term_map.compact("http://example.org/terms/speed") == "speed"
    assert term_map.expand("location") == NGSI + "location"
    assert term_map.compact(DEFAULT_VOCAB + "speed") == "ngsi-ld:default-context/speed"
    assert not term_map.is_default()


async def test_a_user_term_is_preferred_over_a_core_term_for_the_same_iri() -> None:
    term_map = await resolve_inline({"where": NGSI + "location"})
    assert term_map.compact(NGSI + "location") == "where"
    assert term_map.expand("location") == NGSI + "location"


async def test_compaction_does_not_shadow_a_term_with_another_meaning() -> None:
    term_map = await resolve_inline({"speed": "http://example.org/speed"})
    # stored earlier under the default vocab: "speed" would now expand elsewhere
    assert term_map.compact(DEFAULT_VOCAB + "speed") == "ngsi-ld:default-context/speed"


async def test_the_core_url_alone_resolves_without_fetching() -> None:
    resolver, fetch = resolver_over()
    term_map = await resolver.resolve("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld")
    assert term_map.is_default()
    assert term_map.response_context == (
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
    )
    assert (await resolver.resolve(None)) is core_term_map()
    assert fetch.calls == []


async def test_nested_contexts_resolve_recursively_and_relative_urls_against_their_base() -> None:
    resolver, _ = resolver_over(
        {
            "https://ctx.example/all.jsonld": {
                "@context": ["https://ctx.example/a.jsonld", "b.jsonld", {"c": "http://c/"}]
            },
            "https://ctx.example/a.jsonld": {"@context": {"a": "http://a.example/a"}},
            "https://ctx.example/b.jsonld": {
                "@context": [{"b": "http://b.example/b"}, NGSI_LD_CORE_CONTEXT_URL]
            },
        }
    )
    term_map = await resolver.resolve("https://ctx.example/all.jsonld")
    assert term_map.expand("a") == "http://a.example/a"
    assert term_map.expand("b") == "http://b.example/b"
    assert term_map.expand("c") == "http://c/"


async def test_hosted_contexts_resolve_without_fetching_and_removal_invalidates() -> None:
    url = "http://broker.local/ngsi-ld/v1/jsonldContexts/abc"
    resolver, fetch = resolver_over({url: {"@context": {"speed": "http://remote/speed"}}})
    resolver.add_local(url, {"@context": {"speed": "http://hosted/speed"}})
    assert (await resolver.resolve(url)).expand("speed") == "http://hosted/speed"
    assert fetch.calls == []
    assert resolver.cached_document(url) == {"@context": {"speed": "http://hosted/speed"}}
    resolver.remove_local(url)
    assert (await resolver.resolve(url)).expand("speed") == "http://remote/speed"
    assert fetch.calls == [url]


async def test_fetched_documents_and_maps_are_cached() -> None:
    resolver, fetch = resolver_over({SDM_ENV_URL: SDM_ENV})
    first = await resolver.resolve(SDM_ENV_URL)
    assert (await resolver.resolve(SDM_ENV_URL)) is first
    inline: list[object] = [SDM_ENV_URL, {"speed": "http://example.org/speed"}]
    await resolver.resolve(inline)
    same_value: list[object] = [SDM_ENV_URL, {"speed": "http://example.org/speed"}]
    assert (await resolver.resolve(same_value)) is (await resolver.resolve(inline))
    assert fetch.calls == [SDM_ENV_URL]
    assert resolver.cached_urls() == [SDM_ENV_URL]
    assert resolver.evict(SDM_ENV_URL)
    assert resolver.cached_urls() == []
    await resolver.resolve(SDM_ENV_URL)
    assert fetch.calls == [SDM_ENV_URL, SDM_ENV_URL]


async def test_the_caches_are_bounded() -> None:
    urls = [f"https://ctx.example/{i}.jsonld" for i in range(5)]
    fetch = Documents({url: {"@context": {"t": url}} for url in urls})
    resolver = ContextResolver(fetch, cache_entries=2)
    for url in urls:
        await resolver.resolve(url)
    assert resolver.cached_urls() == urls[-2:]
    await resolver.resolve(urls[0])
    assert fetch.calls == [*urls, urls[0]]


async def test_concurrent_requests_for_a_new_url_share_one_fetch() -> None:
    resolver, fetch = resolver_over({SDM_ENV_URL: SDM_ENV})
    maps = await asyncio.gather(*(resolver.resolve(SDM_ENV_URL) for _ in range(10)))
    assert {m.expand("airQualityIndex") for m in maps} == {
        "https://smartdatamodels.org/dataModel.Environment/airQualityIndex"
    }
    assert fetch.calls == [SDM_ENV_URL]


async def test_a_failed_fetch_is_not_cached() -> None:
    resolver, fetch = resolver_over()
    for _ in range(2):
        with pytest.raises(LdContextNotAvailable):
            await resolver.resolve("https://ctx.example/missing.jsonld")
    assert len(fetch.calls) == 2
    assert resolver.cached_urls() == []


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("context", [42, 1.5, True])
async def test_context_values_of_other_types_are_bad_request_data(context: object) -> None:
    with pytest.raises(BadRequestData):
        await ContextResolver(Documents({})).resolve(context)  # type: ignore[arg-type]


@pytest.mark.parametrize("definition", [42, True, ["http://a"], {"@id": 7}])
async def test_invalid_term_definitions_name_the_term(definition: object) -> None:
    with pytest.raises(BadRequestData, match="'speed'"):
        await resolve_inline({"speed": definition})


@pytest.mark.parametrize(
    "context",
    [
        [[{"a": "http://a"}]],
        [7],
        {"@vocab": 5},
        {"@vocab": "relative"},
        {"a": "b:x", "b": "a:y"},
        {"": "http://empty"},
    ],
)
async def test_malformed_contexts_are_bad_request_data(context: dict[str, object]) -> None:
    with pytest.raises(BadRequestData):
        await resolve_inline(context)


async def test_cycles_between_documents_are_bad_request_data() -> None:
    resolver, _ = resolver_over(
        {
            "https://ctx.example/a": {"@context": "https://ctx.example/b"},
            "https://ctx.example/b": {"@context": ["https://ctx.example/a"]},
        }
    )
    with pytest.raises(BadRequestData, match="cycle"):
        await resolver.resolve("https://ctx.example/a")


async def test_nesting_beyond_the_depth_limit_is_bad_request_data() -> None:
    documents: dict[str, object] = {
        f"https://ctx.example/{i}": {"@context": f"https://ctx.example/{i + 1}"} for i in range(20)
    }
    resolver, _ = resolver_over(documents)
    with pytest.raises(BadRequestData, match="deep"):
        await resolver.resolve("https://ctx.example/0")


async def test_a_document_without_context_is_bad_request_data() -> None:
    """Clause 6.3.5: the document is there but is no JSON-LD @context: the request's error."""
    resolver, _ = resolver_over({"https://ctx.example/x": {"speed": "http://a"}})
    with pytest.raises(BadRequestData, match=re.escape("https://ctx.example/x")):
        await resolver.resolve("https://ctx.example/x")


async def test_relative_context_urls_are_bad_request_data() -> None:
    with pytest.raises(BadRequestData, match="absolute"):
        await ContextResolver(Documents({})).resolve("context.jsonld")


def test_hosting_a_non_context_document_is_bad_request_data() -> None:
    with pytest.raises(BadRequestData):
        ContextResolver(Documents({})).add_local("http://broker/ctx", {"speed": "http://a"})


# --- properties --------------------------------------------------------------------------

simple_terms = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,20}", fullmatch=True).filter(
    lambda term: term != "VocabularyProperty"  # a 1.7 alias: compacts to its 1.8 name
)


@given(
    user=st.dictionaries(simple_terms, st.integers(0, 10**6), max_size=12),
    probes=st.lists(simple_terms, max_size=12),
)
def test_compact_inverts_expand_for_simple_terms(user: dict[str, int], probes: list[str]) -> None:
    context: dict[str, object] = {
        term: f"http://example.org/{n}/{term}" for term, n in user.items()
    }
    term_map = asyncio.run(resolve_inline(context))
    for term in [*user, *probes]:
        assert term_map.compact(term_map.expand(term)) == term


@given(probes=st.lists(simple_terms, max_size=20))
def test_compact_inverts_expand_under_the_core_context(probes: list[str]) -> None:
    core = core_term_map()
    for term in probes:
        assert core.compact(core.expand(term)) == term


def test_the_core_context_round_trips_its_own_terms() -> None:
    core = core_term_map()
    document = json.loads(CORE_FILE.read_text("utf-8"))["@context"]
    aliases = {"VocabularyProperty"}  # a 1.7 alias: compacts to its 1.8 name
    for term in document:
        if not term.startswith("@") and term not in aliases:
            assert core.compact(core.expand(term)) == term
