"""Parse tokens into raw resources: `Type { Directive = value ... Block { ... } }`, with locations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common.config.errors import ConfigError, SourceLocation
from common.config.lexer import Kind, Token, tokenize


def normalize(name: str) -> str:
    """Directive and resource names ignore case, spaces and underscores."""
    return "".join(ch for ch in name.lower() if ch not in " _\t")


@dataclass(frozen=True)
class RawDirective:
    """`Name = value`: the value as comma-separated items, each a list of tokens."""

    key: str
    name: str
    items: tuple[tuple[Token, ...], ...]
    loc: SourceLocation

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        for n, item in enumerate(self.items):
            if n:
                out.append(Token(Kind.COMMA, ",", self.loc, False))
            out.extend(item)
        return out

    def text(self) -> str:
        """The whole value as written (adjacent tokens joined without a space)."""
        return join_tokens(self.tokens())

    def item_texts(self) -> list[str]:
        return [join_tokens(list(item)) for item in self.items if item]


def join_tokens(tokens: list[Token]) -> str:
    out: list[str] = []
    for n, tok in enumerate(tokens):
        if n and tok.spaced and tok.kind is not Kind.COMMA:
            out.append(" ")
        out.append(tok.value)
    return "".join(out)


@dataclass
class RawResource:
    """A resource or nested block with its directives and blocks in order."""

    key: str
    name: str
    loc: SourceLocation
    directives: list[RawDirective] = field(default_factory=list)
    blocks: list[RawResource] = field(default_factory=list)


class _Stream:
    def __init__(self, tokens: Iterator[Token]) -> None:
        self._tokens = tokens
        self._peeked: Token | None = None

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = next(self._tokens)
        return self._peeked

    def next(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def skip_eols(self) -> None:
        while self.peek().kind is Kind.EOL:
            self.next()


def parse_file(path: Path) -> list[RawResource]:
    """All top-level resources in one file (with its includes)."""
    stream = _Stream(tokenize(path))
    resources: list[RawResource] = []
    while True:
        stream.skip_eols()
        tok = stream.peek()
        if tok.kind is Kind.EOF:
            return resources
        name_tokens = _words_until(stream, {Kind.LBRACE})
        if not name_tokens:
            raise ConfigError.at(tok.loc, f"expected a resource name, found {_describe(tok)}")
        opener = stream.next()
        if opener.kind is not Kind.LBRACE:
            raise ConfigError.at(
                opener.loc,
                f"expected '{{' after resource type {_words(name_tokens)!r}, found {_describe(opener)}",
            )
        resources.append(_block(stream, name_tokens))


def _words(tokens: list[Token]) -> str:
    return " ".join(t.value for t in tokens)


def _describe(tok: Token) -> str:
    if tok.kind in (Kind.WORD, Kind.STRING):
        return repr(tok.value)
    return tok.kind.value if tok.kind in (Kind.EOL, Kind.EOF) else f"'{tok.value}'"


def _words_until(stream: _Stream, stops: set[Kind]) -> list[Token]:
    words: list[Token] = []
    while True:
        tok = stream.peek()
        if tok.kind is Kind.WORD:
            words.append(stream.next())
            continue
        if tok.kind in stops:
            return words
        if tok.kind is Kind.EOL and not words:
            stream.next()
            continue
        if words:
            name = _words(words)
            if tok.kind is Kind.EOL:
                raise ConfigError.at(
                    words[0].loc, "expected '=' (or '{' for a block) after the name", name
                )
            raise ConfigError.at(tok.loc, f"expected '=' or '{{', found {_describe(tok)}", name)
        return words


def _block(stream: _Stream, name_tokens: list[Token]) -> RawResource:
    name = _words(name_tokens)
    block = RawResource(key=normalize(name), name=name, loc=name_tokens[0].loc)
    while True:
        stream.skip_eols()
        tok = stream.peek()
        if tok.kind is Kind.RBRACE:
            stream.next()
            return block
        if tok.kind is Kind.EOF:
            raise ConfigError.at(block.loc, f"missing '}}' to close {name} (end of file reached)")
        if tok.kind is not Kind.WORD:
            raise ConfigError.at(tok.loc, f"expected a directive name, found {_describe(tok)}")
        words = _words_until(stream, {Kind.EQUALS, Kind.LBRACE})
        sep = stream.next()
        if sep.kind is Kind.LBRACE:
            block.blocks.append(_block(stream, words))
            continue
        block.directives.append(_directive(stream, words))


def _directive(stream: _Stream, words: list[Token]) -> RawDirective:
    name = _words(words)
    items: list[tuple[Token, ...]] = []
    current: list[Token] = []
    while True:
        tok = stream.peek()
        if tok.kind in (Kind.EOL, Kind.EOF, Kind.RBRACE):
            break
        stream.next()
        if tok.kind is Kind.LBRACE:
            raise ConfigError.at(tok.loc, "unexpected '{' in a value", name)
        if tok.kind is Kind.COMMA:
            items.append(tuple(current))
            current = []
            continue
        current.append(tok)
    items.append(tuple(current))
    if not any(items):
        raise ConfigError.at(words[0].loc, "missing value after '='", name)
    return RawDirective(key=normalize(name), name=name, items=tuple(items), loc=words[0].loc)


def parse_source(path: Path) -> tuple[list[RawResource], list[Path]]:
    """A single file, or a `<daemon>.d/<type>/*.conf` tree (read in sorted order)."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*/*.conf") if p.is_file())
        if not files:
            files = sorted(p for p in path.glob("*.conf") if p.is_file())
        if not files:
            raise ConfigError(path, 0, "no *.conf files in this configuration directory")
    elif path.exists():
        files = [path]
    else:
        raise ConfigError(path, 0, "configuration file or directory not found")
    resources: list[RawResource] = []
    for file in files:
        resources.extend(parse_file(file))
    return resources, files
