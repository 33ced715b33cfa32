# SPDX-License-Identifier: Apache-2.0
"""Query-option text -> Query (OGC 18-088 §9.3, OData 4.0 URL conventions §5.1).

A recursive-descent parser over the tokens of hub.query.lexer. `and`/`or`
are one level each (`or` loosest); `not` binds tighter than `and` and takes a
comparison as its operand (STA-NOTES 8, as FROST); below it a precedence
climber handles comparisons, `in` and arithmetic from the BINARY table.
Every failure is a QueryError naming the option, the position and the token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from hub.errors import BadRequestError
from hub.query.ast import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Constant,
    ConstantKind,
    Expand,
    Expr,
    In,
    Lambda,
    Negate,
    Not,
    OrderBy,
    Path,
    Query,
    ResultFormat,
)
from hub.query.lexer import LexError, Token, shorten, tokenize

# Expressions (and parentheses, calls, lambdas, $expand levels) nest at most this deep.
MAX_NESTING = 50
# A run of more `and`s or `or`s than this becomes a balanced tree, so that long id lists
# (`id eq 1 or id eq 2 or ...`) stay shallow for the compiler; the value is the same.
BALANCE_ABOVE = 16
# $skip becomes a SQL bigint.
MAX_SKIP = 2**63 - 1

_T = TypeVar("_T")
_V = TypeVar("_V")

# ---- grammar tables ------------------------------------------------------------------------------

# Binding strength, loosest first (OData 4.0 §5.1.1.9; `not` per STA-NOTES 8).
OR, AND, NOT, EQUALITY, RELATIONAL, ADDITIVE, MULTIPLICATIVE, UNARY, PRIMARY = range(1, 10)

LOGICAL: tuple[Literal["or", "and"], ...] = ("or", "and")  # by level, loosest first
BINARY: dict[str, int] = {
    "or": OR, "and": AND,
    "eq": EQUALITY, "ne": EQUALITY,
    "gt": RELATIONAL, "ge": RELATIONAL, "lt": RELATIONAL, "le": RELATIONAL, "in": RELATIONAL,
    "add": ADDITIVE, "sub": ADDITIVE,
    "mul": MULTIPLICATIVE, "div": MULTIPLICATIVE, "mod": MULTIPLICATIVE,
}  # fmt: skip
_BUILD: dict[str, Callable[[Expr, Expr], Expr]] = {
    "or": lambda a, b: BoolOp("or", a, b),
    "and": lambda a, b: BoolOp("and", a, b),
    "eq": lambda a, b: Compare("eq", a, b),
    "ne": lambda a, b: Compare("ne", a, b),
    "gt": lambda a, b: Compare("gt", a, b),
    "ge": lambda a, b: Compare("ge", a, b),
    "lt": lambda a, b: Compare("lt", a, b),
    "le": lambda a, b: Compare("le", a, b),
    "add": lambda a, b: BinOp("add", a, b),
    "sub": lambda a, b: BinOp("sub", a, b),
    "mul": lambda a, b: BinOp("mul", a, b),
    "div": lambda a, b: BinOp("div", a, b),
    "mod": lambda a, b: BinOp("mod", a, b),
}
WORD_CONSTANTS: dict[str, Constant] = {
    "true": Constant(True, "bool"),
    "false": Constant(False, "bool"),
    "null": Constant(None, "null"),
}
# Literal token kind -> Constant kind (the lexer has converted the value).
LITERAL_TOKENS: dict[str, ConstantKind] = {
    "string": "string", "int": "int", "float": "float", "datetime": "datetime", "date": "date",
    "time": "time", "duration": "duration", "geography": "geography",
}  # fmt: skip
LAMBDAS: dict[str, Literal["any", "all"]] = {"any": "any", "all": "all"}
EMPTY_LAMBDA_OK = frozenset({"any"})  # `Datastreams/any()`: the collection is not empty
DIRECTIONS: dict[str, bool] = {"asc": False, "desc": True}  # keyword -> descending
BOOLEANS: dict[str, bool] = {"true": True, "false": False}
RESULT_FORMATS: dict[str, ResultFormat] = {"dataarray": "dataArray", "csv": "CSV", "geojson": "GeoJSON"}


class QueryError(BadRequestError):
    """A query option that cannot be read or does not fit the model (HTTP 400).

    The parser's messages name the option, the position and the token, e.g.
    `$filter: unexpected 'eq' at position 12 (expected a value)`; `option` and
    `position` (0-based, in the option's decoded value) are kept for callers.
    """

    def __init__(self, message: str, *, option: str | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.option = option
        self.position = position


def query_error(option: str, detail: str, position: int | None = None, hint: str = "") -> QueryError:
    """`{option}: {detail} at position {position} ({hint})`."""
    where = "" if position is None else f" at position {position}"
    message = f"{option}: {detail}{where}" + (f" ({hint})" if hint else "")
    return QueryError(message, option=option, position=position)


@dataclass
class _Options:
    """The options of one level (the request, or one $expand item) while they are read."""

    default_top: int
    max_top: int
    top: int | None = None
    skip: int = 0
    count: bool = False
    filter: Expr | None = None
    orderby: tuple[OrderBy, ...] = ()
    select: tuple[Path, ...] | None = None
    expand: tuple[Expand, ...] = ()
    result_format: ResultFormat | None = None
    skiptoken: str | None = None
    seen: set[str] = field(default_factory=set)

    def build(self) -> Query:
        top = self.default_top if self.top is None else self.top
        return Query(
            top=min(top, self.max_top),
            skip=self.skip,
            count=self.count,
            top_given=self.top is not None,
            filter=self.filter,
            orderby=self.orderby,
            select=self.select,
            expand=self.expand,
            result_format=self.result_format,
            skiptoken=self.skiptoken,
        )


def _unexpected(token: Token) -> str:
    """`unexpected 'eq'`, with long tokens cut short."""
    if token.kind == "end":
        return "unexpected end of input"
    return f"unexpected {shorten(token.text)!r}"


class _Parser:
    """Reads one option's text; `option` names it in errors."""

    def __init__(self, text: str, option: str, default_top: int = 0, max_top: int = 0) -> None:
        try:
            self.tokens = tokenize(text)
        except LexError as error:
            raise query_error(option, error.detail, error.position) from None
        self.option = option
        self.default_top = default_top
        self.max_top = max_top
        self.index = 0
        self.depth = 0
        self.scopes: list[str] = []  # lambda variables, innermost last
        self.heights: dict[int, tuple[Expr, int]] = {}  # id(node) -> (node, tree height)

    # ---- tokens --------------------------------------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def keyword(self) -> str | None:
        """The next token as a lower-case word, or None when it is no word."""
        token = self.peek()
        return token.text.lower() if token.kind == "ident" else None

    def accept(self, kind: str) -> bool:
        if self.peek().kind != kind:
            return False
        self.advance()
        return True

    def expect(self, kind: str, hint: str) -> Token:
        if self.peek().kind != kind:
            raise self.error(self.peek(), hint)
        return self.advance()

    def error(self, token: Token, hint: str) -> QueryError:
        return query_error(self.option, _unexpected(token), token.position, hint)

    def finish(self, hint: str) -> None:
        """The text must end here."""
        self.expect("end", hint)

    # ---- nesting limits ------------------------------------------------------------------------

    def descend(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            position = self.peek().position
            raise query_error(self.option, f"nested deeper than {MAX_NESTING} levels", position)

    def ascend(self) -> None:
        self.depth -= 1

    def node(self, expr: Expr, children: Sequence[Expr]) -> Expr:
        """`expr` after checking that the tree it tops stays within MAX_NESTING."""
        height = 1 + max((self.heights.get(id(c), (c, 1))[1] for c in children), default=1)
        if height > MAX_NESTING:
            position = self.peek().position
            raise query_error(self.option, f"expression nested deeper than {MAX_NESTING} levels", position)
        self.heights[id(expr)] = (expr, height)
        return expr

    # ---- expressions ---------------------------------------------------------------------------

    def expression(self, level: int = 0) -> Expr:
        """`or` (level 0) and `and` (level 1) chains over `not` expressions."""
        if level == len(LOGICAL):
            return self.negation()
        op = LOGICAL[level]
        operands = [self.expression(level + 1)]
        while self.keyword() == op:
            self.advance()
            operands.append(self.expression(level + 1))
        if len(operands) > BALANCE_ABOVE:
            return self.balanced(op, operands)
        result = operands[0]
        for right in operands[1:]:
            result = self.node(BoolOp(op, result, right), (result, right))
        return result

    def balanced(self, op: Literal["or", "and"], operands: Sequence[Expr]) -> Expr:
        """A balanced tree over `operands` (the left half left, so the printed text reads back alike)."""
        if len(operands) == 1:
            return operands[0]
        half = len(operands) // 2
        left, right = self.balanced(op, operands[:half]), self.balanced(op, operands[half:])
        return self.node(BoolOp(op, left, right), (left, right))

    def negation(self) -> Expr:
        """`not` over a comparison (binds tighter than `and`, looser than `eq`)."""
        if self.keyword() != "not":
            return self.binary(EQUALITY)
        self.advance()
        self.descend()
        operand = self.negation()
        self.ascend()
        return self.node(Not(operand), (operand,))

    def binary(self, min_precedence: int) -> Expr:
        """Comparisons, `in` and arithmetic by precedence climbing over the BINARY table."""
        left = self.unary()
        while True:
            op = self.keyword() or ""
            precedence = BINARY.get(op, 0)
            if precedence < max(min_precedence, EQUALITY):
                return left
            self.advance()
            if op == "in":
                values = self.parenthesized(self.expression)
                left = self.node(In(left, values), (left, *values))
            else:
                right = self.binary(precedence + 1)
                left = self.node(_BUILD[op](left, right), (left, right))

    def unary(self) -> Expr:
        """Unary minus, a `not` in operand position, or a primary."""
        if self.keyword() == "not":
            return self.negation()
        if self.peek().kind != "-":
            return self.primary()
        self.advance()
        self.descend()
        operand = self.unary()
        self.ascend()
        return self.node(Negate(operand), (operand,))

    def primary(self) -> Expr:
        token = self.advance()
        if token.kind in LITERAL_TOKENS:
            return Constant(token.value, LITERAL_TOKENS[token.kind])
        if token.kind == "(":
            self.descend()
            inner = self.expression()
            self.expect(")", "expected an operator or ')'")
            self.ascend()
            return inner
        if token.kind == "ident":
            return self.word(token)
        raise self.error(token, "expected a value")

    def word(self, token: Token) -> Expr:
        """A keyword constant, a function call, a member path or a lambda."""
        lowered = token.text.lower()
        if lowered in WORD_CONSTANTS:
            return WORD_CONSTANTS[lowered]
        if lowered in BINARY or lowered in DIRECTIONS:
            raise self.error(token, "expected a value")
        if self.peek().kind == "(":
            args = self.parenthesized(self.expression, empty=True)
            return self.node(Call(lowered, args), args)
        return self.member(token)

    def member(self, first: Token) -> Expr:
        """`a/b/c`, `d/b` inside a lambda over `d`, or `a/b/any(d: ...)`."""
        variable = first.text if first.text in self.scopes else None
        segments = [] if variable is not None else [first.text]
        while self.accept("/"):
            token = self.advance()
            op = LAMBDAS.get(token.text.lower()) if token.kind == "ident" else None
            if op is not None and self.peek().kind == "(":
                return self.lambda_(Path(tuple(segments), variable), op, token)
            segments.append(self.segment(token, "expected a property name"))
        return Path(tuple(segments), variable)

    def lambda_(self, path: Path, op: Literal["any", "all"], token: Token) -> Expr:
        self.advance()  # "("
        self.descend()
        if op in EMPTY_LAMBDA_OK and self.accept(")"):
            self.ascend()
            return self.node(Lambda(path, op, "", Constant(True, "bool")), ())
        variable = self.expect("ident", "expected a lambda variable such as 'd: ...'").text
        self.expect(":", f"expected ':' after the lambda variable {variable!r}")
        self.scopes.append(variable)
        predicate = self.expression()
        self.scopes.pop()
        self.expect(")", "expected an operator or ')'")
        self.ascend()
        return self.node(Lambda(path, op, variable, predicate), (predicate,))

    def parenthesized(self, item: Callable[[], _T], *, empty: bool = False) -> tuple[_T, ...]:
        """`( item, item, ... )`; `()` only when `empty`."""
        self.expect("(", "expected '('")
        self.descend()
        items: list[_T] = []
        if not (empty and self.accept(")")):
            items.append(item())
            while self.accept(","):
                items.append(item())
            self.expect(")", "expected ',' or ')'")
        self.ascend()
        return tuple(items)

    def segment(self, token: Token, hint: str) -> str:
        """One path segment: a name, or digits after a `/` (a JSON array index or key)."""
        if token.kind == "ident" or (token.kind == "int" and token.text.isdigit()):
            return token.text
        raise self.error(token, hint)

    # ---- $orderby, $select, $expand -----------------------------------------------------------

    def orderby(self) -> tuple[OrderBy, ...]:
        """`expr [asc|desc], ...`."""
        items = [self.orderby_item()]
        while self.accept(","):
            items.append(self.orderby_item())
        return tuple(items)

    def orderby_item(self) -> OrderBy:
        expr = self.expression()
        descending = DIRECTIONS.get(self.keyword() or "")
        if descending is None:
            return OrderBy(expr)
        self.advance()
        return OrderBy(expr, descending)

    def select(self) -> tuple[Path, ...]:
        """`path, path, ...` with paths such as `@iot.id`, `properties/x`, `Datastreams`."""
        paths = [self.select_path()]
        while self.accept(","):
            paths.append(self.select_path())
        return tuple(paths)

    def select_path(self) -> Path:
        first = self.advance()
        if first.kind != "ident":
            raise self.error(first, "expected a property name")
        segments = [first.text]
        while self.accept("/"):
            segments.append(self.segment(self.advance(), "expected a property name"))
        return Path(tuple(segments))

    def expand(self) -> tuple[Expand, ...]:
        """`Nav[/Nav...][(options)], ...`."""
        items = [self.expand_item()]
        while self.accept(","):
            items.append(self.expand_item())
        return tuple(items)

    def expand_item(self) -> Expand:
        """One item; options on an inner step (`A($top=1)/B`) nest the rest inside that step."""
        steps: list[tuple[str, Query | None]] = []
        while True:
            token = self.advance()
            if token.kind != "ident":
                raise self.error(token, "expected a navigation property")
            query = None
            if self.peek().kind == "(":
                self.descend()  # ascended below: every step with options is one level deeper
                query = self.expand_options()
            steps.append((token.text, query))
            if not self.accept("/"):
                break
        self.depth -= sum(query is not None for _, query in steps)
        return self.nest(steps)

    def nest(self, steps: Sequence[tuple[str, Query | None]]) -> Expand:
        """Expand over `steps`; an inner step with options gets the rest as its own expand."""
        for index, (_, query) in enumerate(steps[:-1]):
            if query is not None:
                inner = self.nest(steps[index + 1 :])
                path = tuple(name for name, _ in steps[: index + 1])
                return Expand(path, replace(query, expand=(*query.expand, inner)))
        last = steps[-1][1]
        query = last if last is not None else _Options(self.default_top, self.max_top).build()
        return Expand(tuple(name for name, _ in steps), query)

    def expand_options(self) -> Query:
        """`($filter=...;$top=...;...)`; empty options and a trailing `;` are tolerated."""
        self.advance()  # "("
        options = _Options(self.default_top, self.max_top)
        while not self.accept(")"):
            if not self.accept(";"):
                self.expand_option(options)
                if self.peek().kind != ")":
                    self.expect(";", "expected ';' or ')'")
        return options.build()

    def expand_option(self, options: _Options) -> None:
        token = self.expect("option", "expected a query option such as $filter, or ')'")
        name = OPTION_NAMES.get(token.text.lower(), token.text)
        if name not in EXPAND_OPTIONS:
            known = name in OPTION_NAMES.values()
            detail = f"{name} is not allowed inside $expand" if known else f"unknown query option {name!r}"
            raise query_error(self.option, detail, token.position)
        if name in options.seen:
            raise query_error(self.option, f"{name} given more than once", token.position)
        options.seen.add(name)
        self.expect("=", f"expected '=' after {name}")
        OPTIONS[name](self, options)

    # ---- option values -------------------------------------------------------------------------

    def non_negative(self, name: str) -> int:
        token = self.advance()
        if token.kind != "int" or not isinstance(token.value, int) or token.value < 0:
            raise self.error(token, f"expected a non-negative integer for {name}")
        return token.value

    def choice(self, table: Mapping[str, _V], hint: str) -> _V:
        token = self.advance()
        value = table.get(token.text.lower()) if token.kind == "ident" else None
        if value is None:
            raise self.error(token, hint)
        return value


# ---- options -------------------------------------------------------------------------------------


def _filter(parser: _Parser, options: _Options) -> None:
    options.filter = parser.expression()


def _orderby(parser: _Parser, options: _Options) -> None:
    options.orderby = parser.orderby()


def _select(parser: _Parser, options: _Options) -> None:
    options.select = parser.select()


def _expand(parser: _Parser, options: _Options) -> None:
    options.expand = parser.expand()


def _top(parser: _Parser, options: _Options) -> None:
    options.top = parser.non_negative("$top")


def _skip(parser: _Parser, options: _Options) -> None:
    token = parser.peek()
    options.skip = parser.non_negative("$skip")
    if options.skip > MAX_SKIP:
        raise query_error(parser.option, f"$skip {options.skip} is too large", token.position)


def _count(parser: _Parser, options: _Options) -> None:
    options.count = parser.choice(BOOLEANS, "expected true or false for $count")


def _result_format(parser: _Parser, options: _Options) -> None:
    options.result_format = parser.choice(RESULT_FORMATS, "expected dataArray, CSV or GeoJSON")


def _skiptoken(options: _Options, text: str) -> None:
    options.skiptoken = text  # opaque: kept exactly as given


def _tolerated(options: _Options, text: str) -> None:
    """$id and $format are outside STA's request-data class; clients still send them."""


# Options with a grammar, read by the parser; the same handler serves a $expand level.
OPTIONS: dict[str, Callable[[_Parser, _Options], None]] = {
    "$filter": _filter,
    "$orderby": _orderby,
    "$select": _select,
    "$expand": _expand,
    "$top": _top,
    "$skip": _skip,
    "$count": _count,
    "$resultFormat": _result_format,
}
EXPAND_OPTIONS = frozenset({"$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count"})
# Options taken as raw text.
RAW_OPTIONS: dict[str, Callable[[_Options, str], None]] = {
    "$skiptoken": _skiptoken,
    "$id": _tolerated,
    "$format": _tolerated,
}
TOLERATED_OPTIONS = frozenset({"$id", "$format"})
# Lower-case name -> canonical name: option names are matched case-insensitively (as FROST).
OPTION_NAMES: dict[str, str] = {name.lower(): name for name in (*OPTIONS, *RAW_OPTIONS)}
# What may follow a complete value, for the error at a stray token.
_END_HINTS: dict[str, str] = {
    "$filter": "expected an operator or the end of $filter",
    "$orderby": "expected asc, desc, ',' or the end of $orderby",
    "$select": "expected '/', ',' or the end of $select",
    "$expand": "expected '/', '(', ',' or the end of $expand",
}


def _parse_option(name: str, text: str, options: _Options) -> None:
    """Read the value of the option `name` (canonical) into `options`."""
    raw = RAW_OPTIONS.get(name)
    if raw is not None:
        raw(options, text)
        return
    parser = _Parser(text, name, options.default_top, options.max_top)
    OPTIONS[name](parser, options)
    parser.finish(_END_HINTS.get(name, f"expected the end of {name}"))


def parse_query(params: Mapping[str, str], default_top: int, max_top: int) -> Query:
    """Read the system query options of one request into a Query.

    Parameters without a `$` are the client's business and ignored; a `$` option
    that is unknown or given twice is a QueryError.
    """
    options = _Options(default_top, max_top)
    for raw_name, text in params.items():
        name = raw_name.strip()
        if not name.startswith("$"):
            continue
        canonical = OPTION_NAMES.get(name.lower())
        if canonical is None:
            raise query_error(name, f"unknown query option {name!r}")
        if canonical in options.seen:
            raise query_error(canonical, "given more than once")
        options.seen.add(canonical)
        _parse_option(canonical, text, options)
    return options.build()


def _parse(option: str, text: str, read: Callable[[_Parser], _T], top: tuple[int, int] = (0, 0)) -> _T:
    parser = _Parser(text, option, *top)
    result = read(parser)
    parser.finish(_END_HINTS[option])
    return result


def parse_filter(text: str) -> Expr:
    """`$filter` text -> expression."""
    return _parse("$filter", text, _Parser.expression)


def parse_orderby(text: str) -> tuple[OrderBy, ...]:
    """`$orderby` text -> keys."""
    return _parse("$orderby", text, _Parser.orderby)


def parse_select(text: str) -> tuple[Path, ...]:
    """`$select` text -> paths."""
    return _parse("$select", text, _Parser.select)


def parse_expand(text: str, default_top: int, max_top: int) -> tuple[Expand, ...]:
    """`$expand` text -> items; a level without $top gets `default_top`, and $top is clamped."""
    return _parse("$expand", text, _Parser.expand, (default_top, max_top))
