"""The broker's query languages: `q` (clause 4.9) and `scopeQ` (clause 4.19), parsed to values
and translated to MongoDB filters. Pure: no web or database library is imported here."""

from context_broker._query._q import (
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
from context_broker._query._scope import ScopePattern, ScopeQuery, parse_scope_q, scope_q_to_mongo
from context_broker._query._to_mongo import to_mongo

__all__ = [
    "And",
    "AttrPath",
    "Comparison",
    "Exists",
    "Or",
    "Pattern",
    "Query",
    "Range",
    "ScopePattern",
    "ScopeQuery",
    "ValueList",
    "parse_q",
    "parse_scope_q",
    "scope_q_to_mongo",
    "to_mongo",
    "to_q_string",
]
