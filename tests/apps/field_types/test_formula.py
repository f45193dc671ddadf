"""Tests for core.apps.field_types.formula: the guide's examples, the grammar, null semantics and errors."""

import decimal
from decimal import Decimal

import pytest

from core.apps.field_types.formula import FUNCTIONS, Formula, FormulaError, FormulaEvalError, parse


def run(text, record=None):
    return parse(text).evaluate(record or {})


# --- The guide's example for each of the 22 functions -------------------------------------

GUIDE_EXAMPLES = [
    ("add(2, 1, 3)", Decimal(6)),
    ("subtract(10, 5, 2)", Decimal(3)),
    ("multiply(2, 1, 3)", Decimal(6)),
    ("divide(8, 2)", Decimal(4)),
    ("pow(2, 3)", Decimal(8)),
    ("max(2, 4, 7)", Decimal(7)),
    ("min(2, 4, 7)", Decimal(2)),
    ("floor(4.3)", Decimal(4)),
    ("ceil(4.3)", Decimal(5)),
    ('equal("hi", "hi")', True),
    ("equal(1, 2)", False),
    ("abs(-2.5)", Decimal("2.5")),
    ("log(100, 10)", Decimal(2)),
    ("exp(0)", Decimal(1)),
    ("negate(5)", Decimal(-5)),
    ("round(12256.24, 1)", Decimal("12256.2")),
    ('ifElse(true, "A", "B")', "A"),
    ("ifNull(NULL, 0)", Decimal(0)),
    ('strlen("Hello!")', Decimal(6)),
    ('concat("Hello", " ", "world!")', "Hello world!"),
    ('stringToUpper("Hello")', "HELLO"),
    ('stringToLower("Hello")', "hello"),
    ('substring("Hello", 2, 1)', "e"),
    ("add(multiply(3, 4), divide(10, 5))", Decimal(14)),
]


@pytest.mark.parametrize(("text", "expected"), GUIDE_EXAMPLES)
def test_guide_examples(text, expected):
    result = run(text)
    assert result == expected
    assert type(result) is type(expected)


def test_every_function_has_a_guide_example():
    used = {text.split("(")[0] for text, _ in GUIDE_EXAMPLES}
    assert used == set(FUNCTIONS)
    assert len(FUNCTIONS) == 22


# --- More behaviour of individual functions -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add(0.1, 0.2)", Decimal("0.3")),
        ("add(5)", Decimal(5)),
        ("divide(1, 4)", Decimal("0.25")),
        ("pow(2, -1)", Decimal("0.5")),
        ("floor(-4.3)", Decimal(-5)),
        ("ceil(-4.3)", Decimal(-4)),
        ("log(8, 2)", Decimal(3)),
        ("log(1)", Decimal(0)),
        ("round(2.5)", Decimal(3)),
        ("round(-2.5)", Decimal(-3)),
        ("round(1.005, 2)", Decimal("1.01")),
        ("round(1250, -2)", Decimal(1300)),
        ("equal(1, 1.0)", True),
        ('equal("1", 1)', False),
        ("equal(true, 1)", False),
        ("equal(null, NULL)", True),
        ('substring("Hello", 2)', "ello"),
        ('substring("Hello", 4, 10)', "lo"),
        ('concat("n=", 1.50, " ", true)', "n=1.50 true"),
        ('add("12", 1)', Decimal(13)),
        ('ifElse(0, "A", "B")', "B"),
        ('ifElse(0.5, "A", "B")', "A"),
        ('ifElse("", "A", "B")', "B"),
        ('ifElse("x", "A", "B")', "A"),
        ('ifElse(null, "A", "B")', "B"),
        ('ifElse(false, "A", "B")', "B"),
        ('ifNull("x", 0)', "x"),
    ],
)
def test_function_details(text, expected):
    assert run(text) == expected


def test_natural_log_when_base_omitted():
    assert abs(run("log(exp(2))") - 2) < Decimal("1e-25")


def test_round_keeps_requested_decimals():
    assert str(run("round(2, 2)")) == "2.00"
    assert str(run("round(1250, -2)")) == "1300"


# --- Literals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", "12"),
        ("12.345", "12.345"),
        ("0.1234", "0.1234"),
        (".1234", "0.1234"),
        ("-12", "-12"),
        ("-0.5657", "-0.5657"),
        ("+15", "15"),
        ("+.56", "0.56"),
    ],
)
def test_number_spellings(text, expected):
    assert run(text) == Decimal(expected)
    assert run(f"add({text}, 0)") == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'"plain"', "plain"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\\\""', '\\"'),
        (r'""', ""),
        ('"a, b (c)"', "a, b (c)"),
    ],
)
def test_strings_and_escapes(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("False", False), ("null", None), ("NULL", None)],
)
def test_keyword_literals_any_case(text, expected):
    formula = parse(text)
    assert formula.evaluate({text: "a field"}) is expected
    assert formula.fields == frozenset()


def test_whitespace_between_any_tokens():
    assert run(" add ( 1 ,\n\t2 ) ") == 3
    assert run("add (1, 2)") == 3


# --- Fields -------------------------------------------------------------------------------


def test_field_references():
    formula = parse('concat(first_name, " ", last_name)')
    assert formula.fields == frozenset({"first_name", "last_name"})
    assert formula.evaluate({"first_name": "Ada", "last_name": "Lovelace"}) == "Ada Lovelace"


def test_record_numbers_become_decimal():
    formula = parse("add(quantity, price)")
    result = formula.evaluate({"quantity": 2, "price": 0.1})
    assert result == Decimal("2.1") and isinstance(result, Decimal)
    assert parse("x").evaluate({"x": 3}) == Decimal(3)


def test_fields_lists_each_name_once_and_not_functions():
    formula = parse("add(a, multiply(a, b_2), ifNull(C, 0))")
    assert formula.fields == frozenset({"a", "b_2", "C"})
    assert formula.evaluate({"a": 2, "b_2": 3, "C": None}) == 8


def test_missing_field_is_null():
    assert parse("ifNull(nothing, 42)").evaluate({}) == 42
    assert parse("nothing").evaluate({"other": 1}) is None


def test_field_names_that_start_like_keywords():
    formula = parse("add(true_value, nullable)")
    assert formula.fields == frozenset({"true_value", "nullable"})
    assert formula.evaluate({"true_value": 1, "nullable": 2}) == 3


# --- Nulls and arithmetic edge cases ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "add(1, x)",
        "subtract(x, 1)",
        "multiply(2, x)",
        "divide(x, 2)",
        "max(1, x)",
        "round(x, 2)",
        "negate(x)",
        "divide(1, 0)",
        "divide(1, 0.0)",
        "log(0)",
        "log(-1, 10)",
        "log(10, 1)",
        "pow(0, 0)",
        "exp(1000000000)",
        "strlen(x)",
        "stringToUpper(x)",
        "substring(x, 1)",
        'substring("abc", x)',
    ],
)
def test_null_results(text):
    assert parse(text).evaluate({"x": None}) is None


def test_concat_treats_null_as_empty():
    assert run('concat("a", x, "b")', {"x": None}) == "ab"


def test_null_in_ifelse_and_equal():
    assert run("equal(x, null)", {"x": None}) is True
    assert run("equal(x, 0)", {"x": None}) is False
    assert run("ifElse(x, 1, 2)", {"x": None}) == 2


@pytest.mark.parametrize(
    ("text", "function"),
    [
        ('add("abc", 1)', "add"),
        ("multiply(true, 2)", "multiply"),
        ('round(1.5, "x")', "round"),
        ("round(1.5, 0.5)", "round"),
        ('substring("Hello", 0)', "substring"),
        ('substring("Hello", 1.5)', "substring"),
        ('substring("Hello", 1, -1)', "substring"),
    ],
)
def test_wrong_argument_types(text, function):
    with pytest.raises(FormulaEvalError, match=rf"^{function}\(\)"):
        run(text)


def test_wrong_type_from_record_field():
    with pytest.raises(FormulaEvalError, match=r"^abs\(\) expects a number, got 'lots'"):
        run("abs(amount)", {"amount": "lots"})


def test_caller_decimal_context_does_not_matter():
    with decimal.localcontext() as context:
        context.prec = 3
        assert run("divide(1, 3)") == Decimal("0." + "3" * 28)


# --- Syntax errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position", "line", "column"),
    [
        ("add(1, 2", "unexpected end of formula", 8, 1, 9),
        ("add(1,, 2)", 'unexpected ","', 6, 1, 7),
        ('concat("abc, 1)', "unterminated string", 7, 1, 8),
        ("1 2", 'unexpected "2"', 2, 1, 3),
        ("add(1, 2))", 'unexpected ")"', 9, 1, 10),
        ("add(1 # 2)", 'unexpected character "#"', 6, 1, 7),
        ("add(1,\n  2))", 'unexpected ")"', 11, 2, 5),
        ('add("a" "b")', 'unexpected "b"', 8, 1, 9),
        (r'"bad \n escape"', r'invalid escape "\n"', 5, 1, 6),
        ("12abc", 'unexpected "abc"', 2, 1, 3),
        ("1.2.3", 'unexpected ".3"', 3, 1, 4),
        ("- 5", 'unexpected character "-"', 0, 1, 1),
        ("", "empty formula", 0, 1, 1),
        ("   ", "empty formula", 0, 1, 1),
    ],
)
def test_syntax_errors(text, message, position, line, column):
    with pytest.raises(FormulaError) as caught:
        parse(text)
    error = caught.value
    assert (error.message, error.position, error.line, error.column) == (
        message,
        position,
        line,
        column,
    )
    assert str(error) == f"{message} at line {line}, column {column}"


def test_unexpected_close_paren_message():
    with pytest.raises(FormulaError, match=r'^unexpected "\)" at line 1, column 9$'):
        parse("add(1,2))")


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("foo(1)", 'unknown function "foo"', 0),
        ("add(1, Add(2))", 'unknown function "Add"', 7),
        ("add(1, divide(1))", "divide() takes 2 arguments, got 1", 7),
        ("round(1, 2, 3)", "round() takes 1 to 2 arguments, got 3", 0),
        ("  subtract(1)", "subtract() takes at least 2 arguments, got 1", 2),
        ("add()", "add() takes at least 1 argument, got 0", 0),
        ("ifElse(true, 1)", "ifElse() takes 3 arguments, got 2", 0),
        ("exp(1, 2)", "exp() takes 1 argument, got 2", 0),
    ],
)
def test_function_errors_at_parse_time(text, message, position):
    with pytest.raises(FormulaError) as caught:
        parse(text)
    assert caught.value.message == message
    assert caught.value.position == position
    assert caught.value.column == position + 1


def test_errors_are_value_errors():
    assert issubclass(FormulaError, ValueError)
    assert issubclass(FormulaEvalError, ValueError)


# --- Depth and repeated use ---------------------------------------------------------------


def test_deep_nesting_parses_and_evaluates():
    depth = 5000
    formula = parse("add(" * depth + "x" + ", 1)" * depth)
    assert formula.fields == frozenset({"x"})
    assert formula.evaluate({"x": 1}) == depth + 1


def test_deep_nesting_in_the_last_argument():
    depth = 5000
    formula = parse("concat(" * depth + '"a"' + ")" * depth)
    assert formula.evaluate({}) == "a"


def test_formula_is_reusable_across_records():
    formula = parse("multiply(price, quantity)")
    assert isinstance(formula, Formula)
    results = [formula.evaluate({"price": "2.5", "quantity": n}) for n in range(4)]
    assert results == [0, Decimal("2.5"), 5, Decimal("7.5")]
    assert formula.source == "multiply(price, quantity)"
