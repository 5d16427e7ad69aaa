"""Answers that grow with the catalog, sent in parts under the frame limit as their rows arrive.

A listing reads its rows a page at a time (an async iterator over catalog pages) and cuts them into
parts of at most `PART_BYTES` of text. Every full part goes out as a streamed reply (`more=True`,
`rows=<data key>`); what is left when the rows end becomes the final reply. A listing that fits in
one part is therefore one plain reply, byte for byte what it was before streaming existed. The
Director holds one page and one part at a time, whatever the size of the listing.
"""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from typing import Final, Generic, TypeAlias, TypeVar

from director.console.registry import Args, CommandError, Reply

PART_BYTES: Final = (
    256 * 1024
)  # text per part; with its data a part stays far below the 1 MB frame limit
PAGE_ROWS: Final = 1000  # catalog rows read per query
NO_RESULTS: Final = "No results to list."
T = TypeVar("T")
K = TypeVar("K")  # the key a catalog page continues after (a JobId, a MediaId, ...)
R = TypeVar("R")  # one row of a listing
Row: TypeAlias = Mapping[str, object]  # a row of a table or of `llist`: column -> value


@dataclass(frozen=True)
class Window:
    """`limit=` and `offset=` of a listing (Bareos): skip `offset` rows, then list at most `limit`."""

    limit: int | None = None
    offset: int = 0

    @classmethod
    def parse(cls, args: Args) -> Window:
        def number(key: str) -> int | None:
            raw = args.get(key)
            if raw is None:
                return None
            if not raw.isdigit():
                raise CommandError(f"{key}={raw!r}: expected a whole number")
            return int(raw)

        return cls(limit=number("limit"), offset=number("offset") or 0)

    def page(self, read: int) -> int:
        """How many rows the next query may return, `read` rows being listed already."""
        return PAGE_ROWS if self.limit is None else max(0, min(PAGE_ROWS, self.limit - read))


class Layout(Generic[R]):
    """How rows become text: a table, `llist`'s one `key: value` block per row, or bare lines."""

    def header(self) -> list[str]:
        return []

    def prepare(self, rows: list[R]) -> None:
        """Look at the rows of a part before rendering them (a Table fits its columns)."""

    def lines(self, row: R) -> list[str]:
        raise NotImplementedError

    def footer(self, count: int) -> list[str]:
        return [] if count else [NO_RESULTS]


@dataclass
class Table(Layout[Row]):
    """A bconsole table. Column widths come from the first part's rows and only ever grow, so a
    listing too long for one part keeps its columns (nearly) aligned without holding its rows."""

    columns: list[str]
    optional: tuple[str, ...] = ()  # shown when a row of the first part has a value for them
    widths: dict[str, int] = field(default_factory=dict)

    def fit(self, rows: Iterable[Row]) -> None:
        if not self.widths:
            self.columns = self.columns + [c for c in self.optional if any(r.get(c) for r in rows)]
        for row in rows:
            for column in self.columns:
                self.widths[column] = max(
                    self.widths.get(column, len(column)), len(_cell(row.get(column)))
                )

    def prepare(self, rows: list[Row]) -> None:
        self.fit(rows)

    def _sep(self) -> str:
        return "+" + "+".join("-" * (self.widths.get(c, len(c)) + 2) for c in self.columns) + "+"

    def header(self) -> list[str]:
        head = "| " + " | ".join(c.ljust(self.widths.get(c, len(c))) for c in self.columns) + " |"
        return [self._sep(), head, self._sep()]

    def lines(self, row: Row) -> list[str]:
        cells = []
        for column in self.columns:
            value, width = row.get(column), self.widths.get(column, len(column))
            text = _cell(value)
            cells.append(text.rjust(width) if isinstance(value, int) else text.ljust(width))
        return ["| " + " | ".join(cells) + " |"]

    def footer(self, count: int) -> list[str]:
        return [self._sep()] if count else [NO_RESULTS]


class Long(Layout[Row]):
    """`llist`: each row as right-aligned `key: value` lines, rows separated by a blank line."""

    def __init__(self) -> None:
        self._first = True

    def lines(self, row: Row) -> list[str]:
        width = max((len(k) for k in row), default=0)
        out = [] if self._first else [""]
        self._first = False
        return out + [f"{k.rjust(width)}: {'' if v is None else v}" for k, v in row.items()]


@dataclass
class Lines(Layout[R]):
    """One line per row, made by `render`; `empty` when there are none."""

    render: Callable[[R], str]
    empty: str = NO_RESULTS

    def lines(self, row: R) -> list[str]:
        return [self.render(row)]

    def footer(self, count: int) -> list[str]:
        return [] if count or not self.empty else [self.empty]


def _size(row: object) -> int:
    """About how many bytes a row takes as text and as msgpack data."""
    if isinstance(row, Mapping):
        return sum(len(_cell(v)) + len(k) + 4 for k, v in row.items())
    return len(_cell(row)) + 4


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def listing(
    key: str,
    rows: AsyncIterator[R],
    layout: Layout[R],
    *,
    data: Mapping[str, object] | None = None,
    trailer: str | None = None,
    part_bytes: int = PART_BYTES,
) -> Reply:
    """A reply that lists `rows` under `data[key]`, streamed in parts when they do not fit in one.

    `key` may be a dotted path into `data` (`estimate.listing`); `data` is the rest of the final
    reply's data, and `trailer` a last line of its text (a total)."""
    final: dict[str, object] = dict(data or {})
    put_rows(final, key, [])
    summary = Reply(text="", data=final)
    summary.stream = _parts(
        key, rows, layout, summary, final, part_bytes=part_bytes, trailer=trailer
    )
    return summary


def put_rows(data: dict[str, object], key: str, rows: list[R]) -> None:
    """Set `data[a][b]` for the key `a.b`, creating the dicts on the way."""
    *path, last = key.split(".")
    for name in path:
        child = data.setdefault(name, {})
        if not isinstance(child, dict):
            raise TypeError(f"listing key {key!r}: {name!r} holds a {type(child).__name__}")
        data = child
    data[last] = rows


async def _parts(
    key: str,
    rows: AsyncIterator[R],
    layout: Layout[R],
    summary: Reply,
    final: dict[str, object],  # summary.data: the rows go in at `key` when they are all sent
    *,
    part_bytes: int,
    trailer: str | None,
) -> AsyncGenerator[Reply, None]:
    chunk: list[R] = []
    size = 0
    count = 0
    sent = False
    finished = False
    try:
        async for row in rows:
            chunk.append(row)
            count += 1
            size += _size(row)
            if size >= part_bytes:
                text = _render(layout, chunk, first=not sent)
                yield Reply(text="\n".join(text), data=chunk, ok=True, rows=key)
                sent = True
                chunk, size = [], 0
        tail = _render(layout, chunk, first=not sent) + layout.footer(count)
        summary.text = "\n".join(tail + ([trailer] if trailer else []))
        put_rows(final, key, chunk)
        finished = True
    finally:
        if not finished:
            summary.text = f"Listing interrupted after {count} row(s)."
            summary.ok = False
            put_rows(final, key, [])
        if hasattr(rows, "aclose"):
            await rows.aclose()


def _render(layout: Layout[R], rows: list[R], *, first: bool) -> list[str]:
    layout.prepare(rows)
    out = layout.header() if first and rows else []
    for row in rows:
        out.extend(layout.lines(row))
    return out


def split_lines(lines: Iterable[str]) -> Iterator[list[str]]:
    """Group text lines into parts of at most about `PART_BYTES` (one huge line is a part alone)."""
    part: list[str] = []
    size = 0
    for line in lines:
        if part and size + len(line) > PART_BYTES:
            yield part
            part, size = [], 0
        part.append(line)
        size += len(line) + 1
    if part:
        yield part


async def paged(
    fetch: Callable[[K, int, int], Awaitable[list[T]]],
    key_of: Callable[[T], K],
    window: Window,
    start: K,
) -> AsyncGenerator[T, None]:
    """Rows from `fetch(after, size, offset)` one catalog page at a time, within the window:
    the first query skips `offset` rows, each next one starts after the last row's key."""
    after, read, offset = start, 0, window.offset
    while (size := window.page(read)) > 0:
        page = await fetch(after, size, offset)
        offset = 0
        for item in page:
            yield item
        read += len(page)
        if len(page) < size:
            return
        after = key_of(page[-1])
