"""Pages of one type cut from its id ranges: which range of ids holds a page. Pure.

Each type's entities are split, in id order, into consecutive id ranges (buckets) of about
`BUCKET_SIZE` entities that each know how many entities they hold. A page at an offset then
lies in one or a few ranges, and the store reads those only, however large the type: the
embedded store reads every entity a lookup selects before it skips and limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BUCKET_SIZE = 64
"""Entities per range when ranges are cut afresh."""
MAX_BUCKET = 2 * BUCKET_SIZE
"""A range that grew past this is cut again."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """The entities of one type whose ids lie in [lo, hi) (hi None: no upper bound)."""

    lo: str
    hi: str | None
    n: int


@dataclass(frozen=True, slots=True)
class PageRange:
    """The ids [lo, hi) to read in id order, skipping the first `skip` of them."""

    lo: str
    hi: str | None
    skip: int

    def id_condition(self) -> dict[str, str]:
        """The range as a condition on `_id`."""
        condition = {"$gte": self.lo}
        if self.hi is not None:
            condition["$lt"] = self.hi
        return condition


def total(buckets: Sequence[Bucket]) -> int:
    """How many entities the ranges hold."""
    return sum(bucket.n for bucket in buckets)


def page_range(buckets: Sequence[Bucket], offset: int, want: int) -> PageRange | None:
    """The fewest consecutive ranges holding the entities at positions offset ..
    offset + want - 1 (in id order); None when no entity lies at `offset` or after.

    `buckets` are in id order and cover every id. A range's count that lags a write in
    flight moves the page by that entity only, as if the write came after the read."""
    before = reached = skip = 0
    start: int | None = None
    for index, bucket in enumerate(buckets):
        if start is None:
            if before + bucket.n <= offset:
                before += bucket.n
                continue
            start = index
            skip = offset - before
            reached = before
        reached += bucket.n
        if reached >= offset + want:
            return PageRange(buckets[start].lo, bucket.hi, skip)
    if start is None:
        return None
    return PageRange(buckets[start].lo, None, skip)


def bounds(ids: Sequence[str], size: int = BUCKET_SIZE) -> list[Bucket]:
    """Ranges of `size` entities over sorted `ids`: the first starts at the smallest id
    there is (""), the last has no upper bound."""
    starts = [ids[i] for i in range(size, len(ids), size)]
    los = ["", *starts]
    his: list[str | None] = [*starts, None]
    counts = [min(size, len(ids) - i) for i in range(0, max(len(ids), 1), size)]
    return [Bucket(lo, hi, n) for lo, hi, n in zip(los, his, counts, strict=True)]
