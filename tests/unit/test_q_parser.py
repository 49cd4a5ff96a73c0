"""The q parser (ETSI GS CIM 009 clause 4.9): the spec's examples, each construct, errors that
point at the offending character, and printed ASTs that parse back to themselves."""

from __future__ import annotations

import contextlib
import string
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from context_broker._errors import BadRequestData
from context_broker._query import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Or,
    Pattern,
    Query,
    Range,
    ValueList,
    parse_q,
    to_q_string,
)


def cmp(attribute: str, op: str, value: object) -> Comparison:
    return Comparison(AttrPath(attribute), op, value)  # type: ignore[arg-type]


# --- the spec's examples (clause 4.9) --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("temperature", Exists(AttrPath("temperature"))),
        ("temperature==20", cmp("temperature", "==", 20)),
        ('brandName!="Mercedes"', cmp("brandName", "!=", "Mercedes")),
        (
            'isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"',
            cmp("isParked", "==", "urn:ngsi-ld:OffStreetParking:Downtown1"),
        ),
        (
            'speed>50;brandName!="Mercedes"',
            And((cmp("speed", ">", 50), cmp("brandName", "!=", "Mercedes"))),
        ),
        ("isMonitoredBy", Exists(AttrPath("isMonitoredBy"))),
        (
            '((speed>50|rpm>3000);brandName=="Mercedes")',
            And(
                (
                    Or((cmp("speed", ">", 50), cmp("rpm", ">", 3000))),
                    cmp("brandName", "==", "Mercedes"),
                )
            ),
        ),
        (
            "(temperature>=20;temperature<=25)|capacity<=10",
            Or(
                (
                    And((cmp("temperature", ">=", 20), cmp("temperature", "<=", 25))),
                    cmp("capacity", "<=", 10),
                )
            ),
        ),
        (
            "temperature.observedAt>=2017-12-24T12:00:00Z",
            Comparison(
                AttrPath("temperature", ("observedAt",)),
                ">=",
                datetime(2017, 12, 24, 12, tzinfo=UTC),
            ),
        ),
        (
            'address[city]=="Berlin"',
            Comparison(AttrPath("address", (), ("city",)), "==", "Berlin"),
        ),
        (
            "sensor.rawdata[airquality.particulate]==40",
            Comparison(AttrPath("sensor", ("rawdata",), ("airquality", "particulate")), "==", 40),
        ),
        (
            'parkingTickets[value]=="Overstay 60 minutes"',
            Comparison(AttrPath("parkingTickets", (), ("value",)), "==", "Overstay 60 minutes"),
        ),
        ("gender==Male", cmp("gender", "==", "Male")),
        ('color[en]=="red"', Comparison(AttrPath("color", (), ("en",)), "==", "red")),
        ('color[*]!="red"', Comparison(AttrPath("color", (), ("*",)), "!=", "red")),
        ("temperature==10..20", cmp("temperature", "==", Range(10, 20))),
        ("temperature!=10..20", cmp("temperature", "!=", Range(10, 20))),
        ('color=="black","red"', cmp("color", "==", ValueList(("black", "red")))),
    ],
)
def test_the_spec_examples_parse(text: str, expected: Query) -> None:
    assert parse_q(text) == expected


# --- operators, precedence and grouping ------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    a, b, c = cmp("a", "==", 1), cmp("b", "==", 2), cmp("c", "==", 3)
    assert parse_q("a==1|b==2;c==3") == Or((a, And((b, c))))
    assert parse_q("a==1;b==2|c==3") == Or((And((a, b)), c))


def test_parentheses_override_precedence_and_nest() -> None:
    a, b, c, d = (cmp(name, "==", 1) for name in "abcd")
    assert parse_q("(a==1|b==1);c==1") == And((Or((a, b)), c))
    assert parse_q("((a==1|b==1);(c==1|d==1))|a==1") == Or((And((Or((a, b)), Or((c, d)))), a))
    assert parse_q("(((a==1)))") == a


def test_long_chains_are_one_node() -> None:
    assert parse_q("a;b;c") == And(tuple(Exists(AttrPath(n)) for n in "abc"))
    assert parse_q("a|b|c") == Or(tuple(Exists(AttrPath(n)) for n in "abc"))


@pytest.mark.parametrize("op", ["==", "!=", ">", ">=", "<", "<="])
def test_every_comparison_operator(op: str) -> None:
    assert parse_q(f"speed{op}50") == cmp("speed", op, 50)


def test_non_existence() -> None:
    assert parse_q("!temperature") == Exists(AttrPath("temperature"), negated=True)
    assert parse_q("!a.b;c") == And((Exists(AttrPath("a", ("b",)), True), Exists(AttrPath("c"))))


def test_patterns_run_to_a_logical_operator_outside_their_groups() -> None:
    name = AttrPath("name")
    assert parse_q("name~=^Pra(to|ti)$;x") == And(
        (Pattern(name, "^Pra(to|ti)$"), Exists(AttrPath("x")))
    )
    assert parse_q("(name!~=a[;|)]b)|x") == Or(
        (Pattern(name, "a[;|)]b", negated=True), Exists(AttrPath("x")))
    )
    assert parse_q(r"name~=a\)b") == Pattern(name, r"a\)b")
    assert parse_q("name~=[]x]") == Pattern(name, "[]x]")
    assert parse_q("name~=(?i)prato") == Pattern(name, "(?i)prato")
    assert parse_q("name~=[[a]--b]") == Pattern(name, "[[a]--b]")  # no FutureWarning escapes


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("-5", -5),
        ("3.25", 3.25),
        ("-1.5e3", -1500.0),
        ("2E-2", 0.02),
        ("true", True),
        ("false", False),
        ('"with \\"quotes\\" and \\u00e8"', 'with "quotes" and è'),
        ('"a;b|c(d)"', "a;b|c(d)"),
        ('""', ""),
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.250Z", datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-31T14:00:00+02:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.123456789Z", datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-31", date(2026, 1, 31)),
        ("12:30:00Z", time(12, 30, tzinfo=UTC)),
        ("12:30", time(12, 30)),
        ("urn:ngsi-ld:Parking:1", "urn:ngsi-ld:Parking:1"),
        ("https://example.org/a/b?c=d#e", "https://example.org/a/b?c=d#e"),
        ("Male", "Male"),
    ],
)
def test_values_take_their_type(text: str, value: object) -> None:
    parsed = parse_q(f"a=={text}")
    assert isinstance(parsed, Comparison)
    assert parsed.value == value
    assert type(parsed.value) is type(value)


def test_relationship_objects_may_be_unquoted() -> None:
    assert parse_q("refParking==urn:ngsi-ld:Parking:1") == cmp(
        "refParking", "==", "urn:ngsi-ld:Parking:1"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1..5", Range(1, 5)),
        ("-2.5..-1", Range(-2.5, -1)),
        ('"a".."m"', Range("a", "m")),
        ("2026-01-01..2026-12-31", Range(date(2026, 1, 1), date(2026, 12, 31))),
        (
            "2026-01-01T00:00:00Z..2026-01-02T00:00:00Z",
            Range(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)),
        ),
        ("1,2,3", ValueList((1, 2, 3))),
        ('"a",true,urn:x:1,2026-01-01', ValueList(("a", True, "urn:x:1", date(2026, 1, 1)))),
    ],
)
def test_ranges_and_lists(text: str, value: object) -> None:
    assert parse_q(f"a=={text}") == cmp("a", "==", value)
    assert parse_q(f"a!={text}") == cmp("a", "!=", value)


def test_names_may_carry_a_prefix_and_unicode() -> None:
    assert parse_q("schema:name_2.città-x") == Exists(AttrPath("schema:name_2", ("città-x",)))


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("", 0, "expected an attribute name"),
        ("temperature>>3", 12, "expected a value"),
        ("temperature=3", 11, "expected an operator"),
        ("a==1;", 5, "expected an attribute name"),
        ("a==1|", 5, "expected an attribute name"),
        ("(a==1", 5, "expected ')' to close the '(' at position 0"),
        ("a==1)", 4, "closes no '('"),
        ("a==1 ", 4, "expected ';', '|' or the end"),
        ("a == 1", 1, "expected an operator"),
        ("1a==1", 0, "expected an attribute name"),
        ("a.==1", 2, "sub-attribute name"),
        ("a[]==1", 2, "JSON member name"),
        ("a[b==1", 3, "expected '.' or ']'"),
        ("a{b}==1", 1, "linked-entity paths"),
        ("!a==1", 2, "takes no operator"),
        ('a=="open', 3, "no closing quote"),
        ('a=="\\x"', 3, "invalid string"),
        ("a>true", 2, "compares with a number"),
        ("a>urn:x:1", 2, "compares with a number"),
        ("a>1..2", 2, "needs == or !="),
        ("a<1,2", 2, "needs == or !="),
        ('a==1.."z"', 6, "same type"),
        ("a==true..false", 3, "range end"),
        ("a==2026-13-01", 3, "not a valid number, date or time"),
        ("a==0001-01-01T00:00:00+01:00", 3, "not a valid number, date or time"),
        ("a==1e999", 3, "not a valid number"),
        ("a==<3", 3, "expected a value"),
        ("a==,", 3, "expected a value"),
        ("a~=", 3, "expected a regular expression"),
        ("a~=(b", 3, "invalid regular expression"),
        ("a~=x{2,1}", 3, "invalid repetition size"),
        ("a~=(x)\\1", 3, "without backreferences"),
    ],
)
def test_errors_point_at_the_offending_character(text: str, position: int, words: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_q(text)
    detail = caught.value.detail
    first, caret = detail.split("\n")
    assert first.startswith("q: ")
    assert words in first
    assert f"at position {position}: " in first
    assert first.endswith(text)
    # The caret stands under the offending character of the echoed text.
    assert caret == " " * (len(first) - len(text) + position) + "^"


def test_the_error_shape_of_the_brief() -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_q("temperature>>3")
    first, caret = caught.value.detail.split("\n")
    assert first[caret.index("^")] == ">"
    assert caught.value.status == 400


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(BadRequestData, match="nest deeper than 32 levels"):
        parse_q("(" * 2_000 + "a" + ")" * 2_000)
    with pytest.raises(BadRequestData, match="at most 4096 characters"):
        parse_q("(" * 10_000 + "a" + ")" * 10_000)


def test_more_than_32_terms_are_refused_before_any_translation() -> None:
    parse_q(";".join(f"a{i}>0" for i in range(32)))
    with pytest.raises(BadRequestData, match="at most 32 terms"):
        parse_q(";".join(f"a{i}>0" for i in range(33)))


# --- printed ASTs parse back -----------------------------------------------------------------

_LETTERS = string.ascii_letters + "àèìòùß"
_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_LETTERS),
    st.text(_LETTERS + string.digits + "_-:", max_size=8),
)
_members = st.text(_LETTERS + string.digits + "_-:@", min_size=1, max_size=6)
_paths = st.builds(
    AttrPath,
    _names,
    st.lists(_names, max_size=2).map(tuple),
    st.one_of(st.just(()), st.just(("*",)), st.lists(_members, min_size=1, max_size=3).map(tuple)),
)
_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
)
_datetimes = st.datetimes(
    min_value=datetime(1000, 1, 1), timezones=st.just(UTC), allow_imaginary=False
).map(lambda value: value.replace(fold=0))
_times = st.times(timezones=st.one_of(st.none(), st.just(UTC))).map(
    lambda value: value.replace(fold=0)
)
_comparables = st.one_of(_numbers, st.text(), _datetimes, st.dates(), _times)
_uris = st.builds(
    lambda tail: "urn:ngsi-ld:" + tail, st.text(string.ascii_letters + ":", max_size=8)
)
_scalars = st.one_of(_comparables, st.booleans(), _uris)


def _same_type_range(kind: st.SearchStrategy[object]) -> st.SearchStrategy[Range]:
    return st.builds(Range, kind, kind)


_ranges = st.one_of(
    _same_type_range(_numbers),
    _same_type_range(st.text()),
    _same_type_range(_datetimes),
    _same_type_range(st.dates()),
    _same_type_range(_times),
)
_lists = st.lists(_scalars, min_size=2, max_size=4).map(lambda items: ValueList(tuple(items)))
_equality = st.builds(
    Comparison, _paths, st.sampled_from(["==", "!="]), st.one_of(_scalars, _ranges, _lists)
)
_ordering = st.builds(Comparison, _paths, st.sampled_from([">", ">=", "<", "<="]), _comparables)


def _regex_pieces() -> st.SearchStrategy[str]:
    literal = st.text(string.ascii_letters + string.digits + " -_/:", min_size=1, max_size=3)
    atom = st.recursive(
        st.one_of(literal, st.sampled_from([".", r"\d", "[a-z]", r"\)", "[;|)]"])),
        lambda inner: st.lists(inner, min_size=1, max_size=3).map(
            lambda alts: f"({'|'.join(alts)})"
        ),
        max_leaves=4,
    )
    piece = st.builds(lambda a, q: a + q, atom, st.sampled_from(["", "*", "+", "?", "{1,2}"]))
    return st.lists(piece, min_size=1, max_size=4).map("".join)


_patterns = st.builds(Pattern, _paths, _regex_pieces(), st.booleans())
_terms = st.one_of(st.builds(Exists, _paths, st.booleans()), _equality, _ordering, _patterns)
queries: st.SearchStrategy[Query] = st.recursive(
    _terms,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda terms: And(tuple(terms))),
        st.lists(inner, min_size=2, max_size=3).map(lambda terms: Or(tuple(terms))),
    ),
    max_leaves=8,
)


@given(queries)
@example(cmp("a", "==", -0.0))
@example(cmp("a", "==", Range(1.0, 1e16)))
@example(cmp("a", "!=", ValueList((datetime(2026, 1, 1, tzinfo=UTC), time(1, 2, 3, 4)))))
def test_printedqueries_parse_back_to_themselves(query: Query) -> None:
    text = to_q_string(query)
    parsed = parse_q(text)
    assert parsed == query
    # `==` lets True equal 1 and 1.0 equal 1: the types must survive too.
    assert repr(parsed) == repr(query)


def test_printing_uses_the_spec_forms() -> None:
    assert to_q_string(parse_q("a==1|(b>=2;c~=x)")) == "a==1|(b>=2;c~=x)"
    assert to_q_string(parse_q("a==2026-01-31T14:00:00+02:00")) == "a==2026-01-31T12:00:00Z"
    tz = timezone(timedelta(hours=1))
    assert to_q_string(cmp("t", "<", time(8, tzinfo=tz))) == "t<08:00:00+01:00"


# --- arbitrary text: an AST or BadRequestData, nothing else -----------------------------------

_q_alphabet = _LETTERS[:8] + '019.-:;|()!=<>~"[]{}*,\\ T Z'


@given(st.one_of(st.text(), st.text(_q_alphabet, max_size=40)))
def test_any_text_parses_or_is_bad_request_data(text: str) -> None:
    try:
        parse_q(text)
    except BadRequestData as exc:
        assert exc.detail.startswith("q: ")


@given(queries, st.integers(min_value=0), st.text(_q_alphabet, min_size=1, max_size=3))
def test_mangledqueries_parse_or_are_bad_request_data(query: Query, at: int, junk: str) -> None:
    text = to_q_string(query)
    at %= len(text) + 1
    with contextlib.suppress(BadRequestData):
        parse_q(text[:at] + junk + text[at:])
