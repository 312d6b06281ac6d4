"""The one way outside input is checked, for the pydantic models and the lean dataclasses alike.

- **Text rules** (:func:`text_problem`, :func:`address_problem`): what a value of text may hold.
  Valid JSON or a valid form field can still carry what is not valid data: a lone UTF-16
  surrogate (Mailchimp answers 500 to it, for ever), NUL and other control characters, line
  breaks in a one-line value (a CR/LF in a name becomes a header line in an email), and the
  bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make a
  name read differently from what it is. The marks U+200E/U+200F stay allowed in names (right-
  to-left names need them) but not in addresses. The pydantic types in
  :mod:`chimpbridge.models.fields` wrap these same functions.
- **JSON bodies** (:func:`read_json`): NaN and Infinity (Python's json reads them, JSON does
  not have them), numbers longer than :data:`MAX_NUMBER_LENGTH` characters (a 4,000-digit
  number is valid JSON, and no value of ours), and nesting deeper than :data:`MAX_JSON_DEPTH`
  (checked before parsing, without recursion: a parser's recursion is what fails on it).
- **The dataclass idiom** (:class:`Checks`): one message per member, collected; a request's
  become an :class:`~chimpbridge.errors.InvalidRequest` (a 422 with per-field errors), a stored
  document's or a setting's a ValueError naming the member, never its value.
- **One variable's text** (:func:`integer`, :func:`text`, :func:`json_value`...): the parsers the
  settings declare their variables with (``settings.env(NAME, parser)``), raising ValueError;
  the same text rules and JSON reading, since configuration is outside input too.
- **Pydantic's errors** become per-field errors in :func:`invalid_request`, the one place.

Standard library only: the signup function imports this, and its cold start keeps pydantic out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from typing import Any, TypeVar

from chimpbridge.errors import FieldError, InvalidRequest

T = TypeVar("T")
MAX_JSON_DEPTH = 32
MAX_NUMBER_LENGTH = 40

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls but tab, LF and CR; DEL; C1 controls (NEL among them).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile("[\t\n\r\u2028\u2029]")
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BIDI_MARK = re.compile("[\u061c\u200e\u200f]")

SURROGATE_MESSAGE = "Remove the invalid character (a lone UTF-16 surrogate)."
CONTROL_MESSAGE = "Remove the control characters."
LINE_BREAK_MESSAGE = "Keep this on one line."
BIDI_MESSAGE = "Remove the text-direction control characters."


# ---------------------------------------------------------------- text rules
def text_problem(value: str, max_length: int | None = None, *, lines: bool = False) -> str | None:
    """What is wrong with ``value`` as text of at most ``max_length`` characters (one line
    unless ``lines``), written for the person who typed it; None when nothing is."""
    if _SURROGATE.search(value):
        return SURROGATE_MESSAGE
    if _CONTROL.search(value):
        return CONTROL_MESSAGE
    if not lines and _LINE_BREAK.search(value):
        return LINE_BREAK_MESSAGE
    if _BIDI_CONTROL.search(value):
        return BIDI_MESSAGE
    if max_length is not None and len(value) > max_length:
        return f"Keep this under {max_length} characters."
    return None


def address_problem(value: str) -> str | None:
    """What is wrong with ``value`` as the text of an email address (its syntax is checked by
    the endpoint): one line, no controls, no direction marks at all."""
    return text_problem(value, 254) or (BIDI_MESSAGE if _BIDI_MARK.search(value) else None)


def check_text(value: str, max_length: int | None = None, *, lines: bool = False) -> str:
    """``value`` if it passes :func:`text_problem`, else ValueError with the problem (the
    shape pydantic validators and setting parsers use)."""
    problem = text_problem(value, max_length, lines=lines)
    if problem is not None:
        raise ValueError(problem)
    return value


# ---------------------------------------------------------------- JSON
class BadNumber:
    """Where JSON had a number that is not one of ours; reported with the member's path."""

    def __init__(self, token: str) -> None:
        self.token = token

    @property
    def message(self) -> str:
        if self.token in ("NaN", "Infinity", "-Infinity"):
            return "Send a number; NaN and Infinity are not numbers in JSON."
        return f"Send a number of at most {MAX_NUMBER_LENGTH} characters."


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
# How NUL and lone surrogates get into a JSON string: escaped (raw ones are not valid JSON, or
# come from bytes decoded with surrogatepass). Only a body holding one of these is walked.
_SUSPECT_ESCAPE = re.compile(r"\\u0000|\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}|[\ud800-\udfff]")


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than ``max_depth`` (strings skipped); a scan, not
    a parse, so a body nested 100,000 times costs a loop, not a recursion."""
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) <= max_depth:
        return False
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            return True
    return False


def read_json(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, text_rules: bool = True) -> Any:
    """The JSON document in ``body``; raises InvalidRequest (``field`` "body" when the body as a
    whole is wrong, the member's path for a bad number or string).

    ``text_rules``: every string and key must be free of lone surrogates and NUL, which no
    value of ours may hold; off for documents whose values are someone else's (Mandrill's events).
    """
    if isinstance(body, bytes):
        try:
            body = body.decode(json.detect_encoding(body), "surrogatepass")
        except UnicodeDecodeError:
            raise InvalidRequest("The body is not valid JSON.", [FieldError("body", "Send UTF-8 JSON.")]) from None
    if json_depth_exceeds(body, max_depth):
        message = f"Nest arrays and objects at most {max_depth} levels deep."
        raise InvalidRequest("The body nests too deep.", [FieldError("body", message)])
    bad_numbers: list[BadNumber] = []

    def bad_number(token: str) -> BadNumber:
        bad_numbers.append(BadNumber(token))
        return bad_numbers[-1]

    def parse_int(token: str) -> int | BadNumber:
        return bad_number(token) if len(token) > MAX_NUMBER_LENGTH else int(token)

    def parse_float(token: str) -> float | BadNumber:
        return bad_number(token) if len(token) > MAX_NUMBER_LENGTH else float(token)

    try:
        document = json.loads(body or "null", parse_int=parse_int, parse_float=parse_float, parse_constant=bad_number)
    except ValueError:  # JSONDecodeError, and int()'s limit on digits
        raise InvalidRequest("The body is not valid JSON.", [FieldError("body", "Send valid JSON.")]) from None
    check_text = text_rules and _SUSPECT_ESCAPE.search(body) is not None
    if bad_numbers or check_text:  # the walk names where; most bodies need none
        errors = [FieldError(path or "body", message) for path, message in _bad_values(document, check_text)]
        if errors:
            raise InvalidRequest("Some values are not valid.", errors)
    return document


def _bad_values(document: Any, text_rules: bool) -> Iterator[tuple[str, str]]:
    """(path, message) of every bad number, and of every string or key that breaks the rules
    for all text, in document order; the depth is bounded already, the walk keeps its own stack
    anyway."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, BadNumber):
            yield path, value.message
        elif isinstance(value, str):
            if text_rules and (_SURROGATE.search(value) or "\x00" in value):
                yield path, SURROGATE_MESSAGE if _SURROGATE.search(value) else CONTROL_MESSAGE
        elif isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = [(f"{path}.{key}" if path else str(key), key, item) for key, item in items]
            for child, key, item in reversed(children):  # popped in document order
                if text_rules and isinstance(key, str) and (_SURROGATE.search(key) or "\x00" in key):
                    stack.append((_printable(child), _BadName()))
                else:
                    stack.append((child, item))
        elif isinstance(value, _BadName):
            yield path, "Remove the invalid characters from this name."


class _BadName:
    """A member whose name breaks the rules for all text, reported where it stands."""


def _printable(path: str) -> str:
    return _CONTROL.sub("?", _SURROGATE.sub("?", path))


# ---------------------------------------------------------------- the dataclass idiom
_KIND_NAMES = {str: "text", bool: "true or false", dict: "a JSON object", list: "a JSON list"}


class Checks:
    """Collects one message per member that is missing, mistyped or breaks a text rule.

    A request's checks end in :meth:`raise_invalid` (422, per-field errors, for people); a stored
    document's or a setting's in :meth:`raise_value_error` (the first problem, naming the member).
    """

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, name: str, message: str) -> None:
        self.errors.append(FieldError(name, message))

    def check(self, name: str, ok: bool, message: str) -> bool:
        if not ok:
            self.add(name, message)
        return ok

    def text(
        self,
        document: dict[str, Any],
        name: str,
        max_length: int,
        *,
        alias: str | None = None,
        lines: bool = False,
    ) -> str | None:
        """The member ``name`` (or ``alias``) as stripped text; None when absent or wrong."""
        key = name if name in document or alias is None else alias
        value = document.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(name, "Enter text here.")
            return None
        problem = text_problem(value.strip(), max_length, lines=lines)
        if problem is not None:
            self.add(name, problem)
            return None
        return value.strip()

    def value_text(self, name: str, value: str, max_length: int | None = None, *, lines: bool = False) -> bool:
        """Whether ``value`` (already read) passes the text rules; a problem is collected."""
        problem = text_problem(value, max_length, lines=lines)
        return self.check(name, problem is None, problem or "")

    def items(self, document: dict[str, Any], name: str, kind: type[list[Any] | dict[str, Any]], max_items: int) -> Any:
        value = document.get(name)
        if value is None:
            return kind()
        if not isinstance(value, kind):
            self.add(name, f"Send a JSON {'object' if kind is dict else 'list'} here.")
            return kind()
        if len(value) > max_items:
            self.add(name, f"Send at most {max_items} of these.")
            return kind()
        return value

    def kind(self, members: dict[str, Any], kind: type, *names: str) -> None:
        """Each of ``names`` present in ``members`` is a ``kind``."""
        for name in names:
            if name in members and not isinstance(members[name], kind):
                self.add(name, f"{name} must be {_KIND_NAMES.get(kind, kind.__name__)}")

    def text_list(self, members: dict[str, Any], *names: str) -> None:
        """Each of ``names`` present in ``members`` is a list of text."""
        for name in names:
            value = members.get(name, [])
            if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                self.add(name, f"{name} must be a list of text")

    def raise_invalid(self, detail: str) -> None:
        if self.errors:
            raise InvalidRequest(detail, self.errors)

    def raise_value_error(self) -> None:
        if self.errors:
            raise ValueError(self.errors[0].message)


def json_members(document: Any, model: type, *, forbid_unknown: bool = False) -> dict[str, Any]:
    """The members of a JSON object that the dataclass ``model`` has, null ones left out."""
    if not isinstance(document, dict):
        raise ValueError(f"a {model.__name__} must be a JSON object")
    names = {item.name for item in fields(model)}
    unknown = document.keys() - names
    if forbid_unknown and unknown:
        raise ValueError("unknown member " + ", ".join(sorted(unknown)))
    return {name: value for name, value in document.items() if name in names and value is not None}


def expect(members: dict[str, Any], kind: type, *names: str) -> None:
    """Each of ``names`` present in ``members`` is a ``kind``; ValueError naming the first that is not."""
    checks = Checks()
    checks.kind(members, kind, *names)
    checks.raise_value_error()


def expect_text_list(members: dict[str, Any], *names: str) -> None:
    """Each of ``names`` present in ``members`` is a list of text; ValueError naming the first that is not."""
    checks = Checks()
    checks.text_list(members, *names)
    checks.raise_value_error()


# ---------------------------------------------------------------- one value's text: str -> value or ValueError
# The settings' parsers (settings.env(NAME, parser)): a variable is outside input too.
def integer(*, ge: int | None = None, le: int | None = None) -> Callable[[str], int]:
    def parse_integer(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("not a whole number") from None
        return _in_range(value, ge, le)

    return parse_integer


def seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def _in_range(value: int, ge: int | None, le: int | None) -> int:
    if ge is not None and value < ge:
        raise ValueError(f"must be at least {ge}")
    if le is not None and value > le:
        raise ValueError(f"must be at most {le}")
    return value


def text(*, max_length: int | None = None, pattern: str | None = None) -> Callable[[str], str]:
    compiled = re.compile(pattern) if pattern else None

    def parse_text(raw: str) -> str:
        if max_length is not None and len(raw) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        check_text(raw)
        if compiled is not None and not compiled.match(raw):
            raise ValueError(f"does not match {pattern}")
        return raw

    return parse_text


def one_of(*choices: str) -> Callable[[str], str]:
    def parse_choice(raw: str) -> str:
        if raw not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return raw

    return parse_choice


def comma_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def json_value(build: Callable[[Any], T]) -> Callable[[str], T]:
    """JSON text, checked by ``build`` (which raises ValueError)."""

    def parse_json(raw: str) -> T:
        try:
            document = read_json(raw)  # as a request body is read: no NaN, no nesting past the bound
        except InvalidRequest as exc:
            first = exc.errors[0] if exc.errors else None
            where = f"{first.field}: " if first is not None and first.field != "body" else ""
            raise ValueError(f"not valid JSON ({where}{first.message if first else exc.detail})") from None
        return build(document)

    return parse_json


# ---------------------------------------------------------------- pydantic's errors, in one place
def field_errors(errors: Iterable[dict[str, Any]]) -> list[FieldError]:
    """Pydantic's ``ValidationError.errors()`` as per-field errors: the dotted location (the
    body as a whole is "body") and the message without pydantic's "Value error, " prefix."""
    return [
        FieldError(
            ".".join(str(part) for part in error["loc"]) or "body", str(error["msg"]).removeprefix("Value error, ")
        )
        for error in errors
    ]


def invalid_request(exc: Any, detail: str, *, fields_in_detail: bool = False) -> InvalidRequest:
    """A pydantic ``ValidationError`` as the InvalidRequest an endpoint raises (duck-typed, so
    that this module never imports pydantic). ``fields_in_detail``: the detail also lists them
    (``"<detail>: <field>: <message>; ..."``), for a caller that shows only the detail, such as a
    state machine's error cause."""
    errors = field_errors(exc.errors(include_input=False, include_url=False))
    if fields_in_detail:
        detail = f"{detail}: " + "; ".join(f"{error.field}: {error.message}" for error in errors)
    return InvalidRequest(detail, errors)
