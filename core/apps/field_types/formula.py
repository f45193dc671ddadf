"""Calculated-field formulas (1CRM 8.6 implementation guide, section 7.5.9).

A formula is a single expression, usually a function call such as
``add(multiply(3, 4), divide(10, 5))`` or ``concat(first_name, " ", last_name)``::

    expression := call | number | string | true | false | null | field
    call       := name "(" [expression ("," expression)*] ")"
    number     := [+|-] digits ["." digits]  |  [+|-] "." digits     12  -0.5  +.56
    string     := '"' characters '"'      with the escapes \\" and \\\\
    field      := [A-Za-z][A-Za-z0-9_]*   (true, false and null are literals, in any case)

Whitespace may appear between any two tokens.  parse() checks the syntax, function names
and argument counts up front, then compiles the tree into a flat postfix program, so
evaluate() is a plain loop with no recursion: nesting depth is limited only by memory.
Numbers are decimal.Decimal; null (None) mostly behaves like a blank spreadsheet cell.
"""

from __future__ import annotations

import decimal
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import reduce
from types import MappingProxyType
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

__all__ = ["EXAMPLES", "FUNCTIONS", "Formula", "FormulaError", "FormulaEvalError", "Function", "parse"]


class FormulaError(ValueError):
    """A syntax or arity error, located in the formula text."""

    def __init__(self, message: str, position: int, line: int, column: int):
        super().__init__(f"{message} at line {line}, column {column}")
        self.message = message
        self.position = position  # 0-based character offset
        self.line = line  # 1-based
        self.column = column  # 1-based


class FormulaEvalError(ValueError):
    """A formula cannot be evaluated for a record, e.g. a text where a number is needed."""


def _error(text: str, position: int, message: str) -> FormulaError:
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return FormulaError(message, position, line, column)


# --- Values -------------------------------------------------------------------------------

_NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(_NUMBER)

# Fixed arithmetic settings, so a stored result never depends on the caller's decimal context.
_CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


def _load(value: Any) -> Any:
    """Bring a record value into formula land: every number becomes a Decimal."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # via str, so that 0.1 stays 0.1
        return Decimal(str(value)) if math.isfinite(value) else None
    return value


def _number(function: str, value: Any) -> Decimal:
    """Coerce an argument to Decimal; a numeric string counts as a number."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        return Decimal(value.strip())
    raise FormulaEvalError(f"{function}() expects a number, got {value!r}")


def _whole(function: str, what: str, value: Any) -> int:
    number = _number(function, value)
    if number != number.to_integral_value():
        raise FormulaEvalError(f"{function}() expects a whole number as {what}, got {number}")
    return int(number)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # 100, never 1E+2
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value != 0
    return bool(value)  # None false, booleans as is, strings when non-empty


# --- Functions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    """A formula function: how many arguments it takes and what it does."""

    name: str
    min_args: int  # at least 1 for every function; evaluate() relies on it
    max_args: int | None  # None: no upper limit
    impl: Callable[..., Any]
    numeric: bool = False  # arguments must be numbers; any null argument gives null

    def __call__(self, args: list[Any]) -> Any:
        if not self.numeric:
            return self.impl(*args)
        if None in args:
            return None
        try:
            return self.impl(*[_number(self.name, arg) for arg in args])
        except decimal.DecimalException:  # overflow, 0 ** 0, ...: blank, like divide by zero
            return None

    def arity(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' * (self.min_args != 1)}"
        if self.min_args == self.max_args:
            return f"{self.min_args} argument{'s' * (self.min_args != 1)}"
        return f"{self.min_args} to {self.max_args} arguments"


def _log(n: Decimal, base: Decimal | None = None) -> Decimal | None:
    if n <= 0 or (base is not None and (base <= 0 or base == 1)):
        return None
    if base is None:
        return n.ln()
    with decimal.localcontext() as context:
        context.prec += 10  # extra digits, so exact answers like log(8, 2) round to exact
        result = n.ln() / base.ln()
    return +result  # back to the normal precision


def _round(n: Decimal, decimals: Decimal = Decimal(0)) -> Decimal:
    places = _whole("round", "decimals", decimals)
    result = n.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return result if places >= 0 else result.quantize(Decimal(1))  # 1200, not 1.2E+3


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b  # true is not 1
    return a == b  # numbers are all Decimal by now, so 1 equals 1.0


def _substring(text: Any, offset: Any, *length: Any) -> str | None:
    if text is None or offset is None or None in length:
        return None
    start = _whole("substring", "offset", offset) - 1  # the guide counts from 1
    if start < 0:
        raise FormulaEvalError(f"substring() offset must be at least 1, got {start + 1}")
    if not length:
        return _text(text)[start:]
    count = _whole("substring", "length", length[0])
    if count < 0:
        raise FormulaEvalError(f"substring() length must not be negative, got {count}")
    return _text(text)[start : start + count]


def _text_function(convert: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(_text(value))


# What the Studio's formula editor shows next to each function (the guide's examples).
EXAMPLES: Mapping[str, str] = MappingProxyType({
    "add": "add(2, 1, 3) = 6", "subtract": "subtract(10, 5, 2) = 3",
    "multiply": "multiply(2, 1, 3) = 6", "divide": "divide(8, 2) = 4", "pow": "pow(2, 3) = 8",
    "max": "max(2, 4, 7) = 7", "min": "min(2, 4, 7) = 2", "floor": "floor(4.3) = 4",
    "ceil": "ceil(4.3) = 5", "abs": "abs(-2.5) = 2.5", "log": "log(100, 10) = 2",
    "exp": "exp(0) = 1", "negate": "negate(5) = -5", "round": "round(12256.24, 1) = 12256.2",
    "equal": 'equal("hi", "hi") = true', "ifElse": 'ifElse(true, "A", "B") = "A"',
    "ifNull": "ifNull(null, 0) = 0", "strlen": 'strlen("Hello!") = 6',
    "concat": 'concat("Hello", " ", "world!") = "Hello world!"',
    "stringToUpper": 'stringToUpper("Hello") = "HELLO"',
    "stringToLower": 'stringToLower("Hello") = "hello"',
    "substring": 'substring("Hello", 2, 1) = "e"',
})

FUNCTIONS: Mapping[str, Function] = MappingProxyType({f.name: f for f in [
    Function("add", 1, None, lambda *n: sum(n), numeric=True),
    Function("subtract", 2, None, lambda *n: reduce(operator.sub, n), numeric=True),
    Function("multiply", 1, None, lambda *n: math.prod(n), numeric=True),
    Function("divide", 2, 2, lambda a, b: None if b == 0 else a / b, numeric=True),
    Function("pow", 2, 2, lambda base, exponent: base**exponent, numeric=True),
    Function("max", 1, None, max, numeric=True),
    Function("min", 1, None, min, numeric=True),
    Function("floor", 1, 1, lambda n: n.to_integral_value(ROUND_FLOOR), numeric=True),
    Function("ceil", 1, 1, lambda n: n.to_integral_value(ROUND_CEILING), numeric=True),
    Function("abs", 1, 1, abs, numeric=True),
    Function("log", 1, 2, _log, numeric=True),
    Function("exp", 1, 1, lambda n: n.exp(), numeric=True),
    Function("negate", 1, 1, operator.neg, numeric=True),
    Function("round", 1, 2, _round, numeric=True),
    Function("equal", 2, 2, _equal),
    Function("ifElse", 3, 3, lambda c, yes, no: yes if _truthy(c) else no),
    Function("ifNull", 2, 2, lambda value, default: default if value is None else value),
    Function("strlen", 1, 1, _text_function(lambda s: Decimal(len(s)))),
    Function("concat", 1, None, lambda *values: "".join(map(_text, values))),
    Function("stringToUpper", 1, 1, _text_function(str.upper)),
    Function("stringToLower", 1, 1, _text_function(str.lower)),
    Function("substring", 2, 3, _substring),
]})  # fmt: skip


# --- Parsing and compiling ----------------------------------------------------------------

# Built once: LALR parsing is table driven and iterative, so deep nesting cannot overflow.
_PARSER = Lark(
    rf"""
    ?start: expr
    ?expr: call | NUMBER | STRING | NAME
    call: NAME "(" (expr ("," expr)*)? ")"
    NAME: /[A-Za-z][A-Za-z0-9_]*/
    NUMBER: /{_NUMBER}/
    STRING: /"(\\[\s\S]|[^"\\])*"/
    %ignore /\s+/
    """,
    parser="lalr",
)

_KEYWORDS = {"true": True, "false": False, "null": None}

# Instructions are (opcode, argument, argument count) triples.
_PUSH, _FIELD, _CALL = range(3)


@dataclass(frozen=True)
class Formula:
    """A parsed formula, ready to be evaluated against any number of records."""

    source: str
    fields: frozenset[str]  # the field names the formula reads
    _code: tuple[tuple[int, Any, int], ...] = field(repr=False, compare=False)

    def evaluate(self, record: Mapping[str, Any]) -> Any:
        """Compute the formula for one record; a field missing from it counts as null."""
        stack: list[Any] = []
        push = stack.append
        with decimal.localcontext(_CONTEXT):
            for opcode, argument, count in self._code:
                if opcode == _PUSH:
                    push(argument)
                elif opcode == _FIELD:
                    push(_load(record.get(argument)))
                else:  # a call: its arguments are the top `count` values (count >= 1)
                    args = stack[-count:]
                    del stack[-count:]
                    push(argument(args))
        return stack.pop()


def parse(text: str) -> Formula:
    """Parse and compile a formula; raises FormulaError pointing at the first problem."""
    if not text.strip():
        raise _error(text, 0, "empty formula")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as e:
        # A '"' only fails to lex when no closing quote follows.
        problem = "unterminated string" if e.char == '"' else f'unexpected character "{e.char}"'
        raise _error(text, e.pos_in_stream, problem) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise _error(text, len(text), "unexpected end of formula") from None
        shown = e.token.value if e.token.type == "STRING" else f'"{e.token.value}"'
        raise _error(text, e.token.start_pos, f"unexpected {shown}") from None
    return _compile(text, tree)


def _compile(text: str, root: Tree | Token) -> Formula:
    """Turn the parse tree into postfix code, walking it with an explicit stack."""
    code: list[tuple[int, Any, int]] = []
    fields: set[str] = set()
    todo: list[Any] = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, tuple):  # a call instruction, queued behind its arguments
            code.append(node)
        elif isinstance(node, Tree):
            name, *args = node.children
            todo.append((_CALL, _lookup(text, name, len(args)), len(args)))
            todo.extend(reversed(args))  # so the first argument is compiled first
        elif node.type == "NUMBER":
            code.append((_PUSH, Decimal(node.value), 0))
        elif node.type == "STRING":
            code.append((_PUSH, _unescape(text, node), 0))
        elif node.value.lower() in _KEYWORDS:
            code.append((_PUSH, _KEYWORDS[node.value.lower()], 0))
        else:
            fields.add(node.value)
            code.append((_FIELD, node.value, 0))
    return Formula(text, frozenset(fields), tuple(code))


def _lookup(text: str, name: Token, count: int) -> Function:
    function = FUNCTIONS.get(name.value)
    if function is None:
        raise _error(text, name.start_pos, f'unknown function "{name.value}"')
    if count < function.min_args or (function.max_args is not None and count > function.max_args):
        message = f"{name.value}() takes {function.arity()}, got {count}"
        raise _error(text, name.start_pos, message)
    return function


def _unescape(text: str, token: Token) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in '"\\':
            position = token.start_pos + 1 + match.start()
            raise _error(text, position, f'invalid escape "{match.group(0)}"')
        return match.group(1)

    return re.sub(r"\\([\s\S])", replace, token.value[1:-1])
