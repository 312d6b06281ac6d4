"""Reading a signup: JSON or a form post (Mailchimp's embedded-form names included) into one
checked :class:`~chimpbridge.models.signup.Signup`.

Nothing here talks to Mailchimp. What a person typed wrong becomes
:class:`~chimpbridge.errors.InvalidRequest` with one message per field, written for people.
What a form may set is decided by the field map: tags and interests that it does not allow
are dropped (and counted), never applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from chimpbridge.errors import FieldError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chimpbridge.logic.signup_language import language_from_header, mailchimp_language
from chimpbridge.models import lax_bool
from chimpbridge.models.checks import Checks, address_problem, read_json
from chimpbridge.models.signup import MergeValue, Signup, SignupFieldMap, SignupSubmission
from chimpbridge.observability import count, logger

MAX_FORM_FIELDS = 200
MAX_MERGE_VALUE_LENGTH = 255
MAX_TAG_LENGTH = 100
# Fields of Mailchimp's embedded form that name *their* account and list, or are buttons: the
# audience is ours to choose, never the form's.
IGNORED_FORM_FIELDS = frozenset({"u", "id", "f_id", "subscribe", "mc-embedded-subscribe", "EMAILTYPE", "MERGE0"})
HONEYPOT_FIELD = "_honeypot"
FORM_TOKEN_FIELD = "_form_token"  # noqa: S105 - a field name, not a secret
BUILT_IN_MERGE_FIELDS = {"first_name": "FNAME", "last_name": "LNAME"}

_MERGE_TAG = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")
_SUB_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,9})\[([A-Za-z0-9_]{1,20})\]$")
_GROUP = re.compile(r"^group\[(\d{1,12})\](?:\[(\d{1,12})\])?$")
_GDPR = re.compile(r"^gdpr\[([A-Za-z0-9_-]{1,64})\]$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TOP_LEVEL_DOMAIN = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


@dataclass
class SignupFields:
    """What a person sent, by meaning, before the field map's allowlists apply."""

    email: str = ""
    merge_fields: dict[str, MergeValue] = field(default_factory=dict)
    # merge tag -> the field name the person's form used, so errors point at their field.
    merge_field_names: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    interests: dict[str, bool] = field(default_factory=dict)
    language: str | None = None
    marketing_permissions: list[dict[str, Any]] = field(default_factory=list)
    honeypot_filled: bool = False
    form_token: str | None = None
    source: str = "json"
    email_field: str = "email"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def read_fields(submission: SignupSubmission, field_map: SignupFieldMap, max_body_bytes: int) -> SignupFields:
    """The submission's fields, from JSON or from a form post."""
    if len(submission.body) > max_body_bytes:
        raise PayloadTooLarge(f"A signup can be at most {max_body_bytes} bytes.")
    kind = media_type(submission.content_type)
    if kind == "application/x-www-form-urlencoded":
        return _form_fields(submission.body, field_map)
    if kind == "application/json" or kind.endswith("+json"):
        return _json_fields(submission.body, field_map)
    raise UnsupportedMediaType("Send the signup as application/json or application/x-www-form-urlencoded.")


def build_signup(
    fields: SignupFields,
    *,
    field_map: SignupFieldMap,
    list_id: str,
    status_if_new: str,
    accept_language: str | None,
    source_ip: str | None,
    now: datetime | None = None,
) -> Signup:
    """Check the fields and apply the field map's allowlists."""
    email = normalise_email(fields.email, fields.email_field)
    _check_text(fields)
    language = mailchimp_language(fields.language) if fields.language else None
    return Signup(
        list_id=list_id,
        email=email,
        status_if_new="subscribed" if status_if_new == "subscribed" else "pending",
        merge_fields={tag: value for tag, value in fields.merge_fields.items() if value not in ("", {})},
        tags=allowed_tags(fields.tags, field_map),
        interests=allowed_interests(fields.interests, field_map),
        language=language or language_from_header(accept_language),
        ip_signup=source_ip or None,
        timestamp_signup=(now or datetime.now(UTC)).replace(microsecond=0),
        marketing_permissions=fields.marketing_permissions,
        source="form" if fields.source == "form" else "json",
    )


def normalise_email(raw: str, field_name: str = "email") -> str:
    """A deliverable-looking address with its domain lower-cased (IDN domains as punycode).

    Mailchimp keys members by the MD5 of the lower-cased address; the local part keeps the
    person's spelling for display.
    """
    value = raw.strip().removeprefix("mailto:")
    if not value:
        raise InvalidRequest("Enter your email address.", [FieldError(field_name, "Enter your email address.")])
    problem = address_problem(value)
    if problem is not None:
        raise InvalidRequest("Check your email address.", [FieldError(field_name, problem)])
    invalid = InvalidRequest(
        "Check your email address.", [FieldError(field_name, "Enter a valid email address, like name@example.org.")]
    )
    if value.count("@") != 1 or len(value) > 254:
        raise invalid
    local_part, domain = value.split("@")
    domain = domain.rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise invalid from None
    labels = domain.split(".")
    if (
        len(local_part) > 64
        or not _LOCAL_PART.match(local_part)
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.match(label) for label in labels)
        or not _TOP_LEVEL_DOMAIN.match(labels[-1])
    ):
        raise invalid
    return f"{local_part}@{domain}"


def allowed_tags(requested: list[str], field_map: SignupFieldMap) -> list[str]:
    """The field map's default tags plus the requested tags it allows (by form value or name)."""
    allowed = {key.casefold(): name for key, name in field_map.tags.items()}
    allowed.update({name.casefold(): name for name in field_map.tags.values()})
    tags = list(field_map.default_tags)
    for value in requested:
        name = allowed.get(value.strip().casefold())
        if name is None:
            _dropped("tag", value)
        elif name not in tags:
            tags.append(name)
    return tags


def allowed_interests(requested: dict[str, bool], field_map: SignupFieldMap) -> dict[str, bool]:
    allowed = dict(field_map.interests)
    allowed.update({interest: interest for interest in field_map.interests.values()})
    interests: dict[str, bool] = {}
    for key, wanted in requested.items():
        interest = allowed.get(key.strip())
        if interest is None:
            _dropped("interest", key)
        else:
            interests[interest] = wanted
    return interests


def _dropped(kind: str, value: str) -> None:
    # The value is what the form sent; it is not personal data, but keep it short in logs.
    logger.warning("signup asked for a %s the field map does not allow; dropped", kind, extra={"value": value[:100]})
    count("SignupFieldDropped")


def _check_text(fields: SignupFields) -> None:
    """Every value that reaches Mailchimp as text follows the text rules (JSON and form posts
    alike): one line, no control or direction-override characters, within Mailchimp's lengths."""
    check = Checks()
    for tag, value in fields.merge_fields.items():
        parts = value.values() if isinstance(value, dict) else [value]
        name = fields.merge_field_names.get(tag, tag)
        all(check.value_text(name, part, MAX_MERGE_VALUE_LENGTH) for part in parts if isinstance(part, str))
    all(check.value_text("tags", tag, MAX_TAG_LENGTH) for tag in fields.tags)
    for key in fields.interests:
        check.value_text("interests", key, 100)
    for permission in fields.marketing_permissions:
        check.value_text("marketing_permissions", str(permission["marketing_permission_id"]), 64)
    check.raise_invalid("Some fields are not valid.")


def _merge_tag_for(name: str, field_map: SignupFieldMap) -> str | None:
    if name in field_map.merge_fields:
        return field_map.merge_fields[name]
    if name in BUILT_IN_MERGE_FIELDS:
        return BUILT_IN_MERGE_FIELDS[name]
    if field_map.any_merge_tag and _MERGE_TAG.match(name) and name != "EMAIL":
        return name
    return None


# ---------------------------------------------------------------- JSON
# The JSON body's own members; others are ignored unless the field map names them.
# "_honeypot" and "_form_token" may also be sent without the underscore.
JSON_MEMBERS = frozenset(
    {"email", "first_name", "last_name", "merge_fields", "tags", "interests", "language", "marketing_permissions"}
    | {"_honeypot", "_form_token", "honeypot", "form_token"}
)


def _json_fields(body: bytes, field_map: SignupFieldMap) -> SignupFields:
    document = read_json(body)
    if not isinstance(document, dict):
        raise InvalidRequest("Send the signup as a JSON object.")
    check = Checks()
    email = document.get("email")
    if check.check("email", email is not None, "Enter your email address."):
        email = check.text(document, "email", 320)
    fields = SignupFields(email=email or "", source="json")
    fields.honeypot_filled = bool(check.text(document, "_honeypot", 1000, alias="honeypot"))
    fields.form_token = check.text(document, "_form_token", 200, alias="form_token")
    _json_merge_fields(check, document, field_map, fields)
    tags = check.items(document, "tags", list, 50)
    if check.check("tags", all(isinstance(tag, str) for tag in tags), "Send tag names as text."):
        fields.tags = [tag for tag in tags if tag.strip()]
    fields.interests = _json_interests(check, document.get("interests"))
    fields.language = check.text(document, "language", 20) or None
    for index, permission in enumerate(check.items(document, "marketing_permissions", list, 20)):
        fields.marketing_permissions.extend(_json_permission(check, f"marketing_permissions.{index}", permission))
    check.raise_invalid("Some fields are missing or invalid.")
    return fields


def _json_merge_fields(
    check: Checks, document: dict[str, Any], field_map: SignupFieldMap, fields: SignupFields
) -> None:
    for name in ("first_name", "last_name"):
        given = check.text(document, name, 255)
        if given:
            _put_merge_field(fields, field_map, name, given)
    for name, value in check.items(document, "merge_fields", dict, 60).items():
        if check.check(f"merge_fields.{name}", _is_merge_value(value), "Enter text, a number or true/false here."):
            _put_merge_field(fields, field_map, name.strip(), value, display=f"merge_fields.{name}")
    # Top-level members the field map names (``"company": "COMPANY"``), as a form would post them.
    for name in field_map.merge_fields.keys() - JSON_MEMBERS:
        given = document.get(name)
        if isinstance(given, str | int | float) and not isinstance(given, bool):
            _put_merge_field(fields, field_map, name, given)
        else:
            check.check(name, given is None, "Enter text here.")


def _json_interests(check: Checks, interests: Any) -> dict[str, bool]:
    """``{"<interest id>": true|false}`` (``"on"``, ``1``... as pages send checkboxes), or a
    list of interest ids to join."""
    if interests is None:
        return {}
    try:
        if isinstance(interests, list) and all(isinstance(key, str) for key in interests):
            wanted = dict.fromkeys(interests, True)
        elif isinstance(interests, dict):
            wanted = {key: lax_bool(value) for key, value in interests.items()}
        else:
            raise ValueError("not a list or an object")
    except ValueError:
        check.check("interests", False, "Send interest ids as a list, or as an object of true/false.")
        return {}
    return wanted if check.check("interests", len(wanted) <= 100, "Send at most 100 of these.") else {}


def _json_permission(check: Checks, name: str, permission: Any) -> list[dict[str, Any]]:
    if not check.check(name, isinstance(permission, dict), "Send each permission as a JSON object."):
        return []
    permission_id = permission.get("marketing_permission_id")
    id_given = isinstance(permission_id, str) and 1 <= len(permission_id) <= 64
    id_ok = check.check(f"{name}.marketing_permission_id", id_given, "Send the permission's id.")
    try:
        enabled = lax_bool(permission.get("enabled"))
    except ValueError:
        check.check(f"{name}.enabled", False, "Send true or false.")
        return []
    return [{"marketing_permission_id": permission_id, "enabled": enabled}] if id_ok else []


def _is_merge_value(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(part, str) for part in value.values())
    return isinstance(value, str | int | float | bool)


def _put_merge_field(
    fields: SignupFields, field_map: SignupFieldMap, name: str, value: MergeValue, display: str | None = None
) -> None:
    tag = _merge_tag_for(name, field_map) or _merge_tag_for(name.upper(), field_map)
    if tag is None:
        return
    if isinstance(value, dict):
        value = {part: text.strip() for part, text in value.items()}
    fields.merge_fields[tag] = value.strip() if isinstance(value, str) else value
    fields.merge_field_names[tag] = display or name


# ---------------------------------------------------------------- form posts
def _form_fields(body: bytes, field_map: SignupFieldMap) -> SignupFields:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except UnicodeDecodeError:
        raise InvalidRequest("The form is not UTF-8 encoded.") from None
    except ValueError:
        raise InvalidRequest(f"A signup form can have at most {MAX_FORM_FIELDS} fields.") from None
    fields = SignupFields(source="form", email_field="EMAIL")
    sub_fields: dict[str, dict[str, str]] = {}
    for name, raw_value in pairs:
        value = raw_value.strip()
        if name in ("EMAIL", "email"):
            fields.email, fields.email_field = value, name
        elif name == HONEYPOT_FIELD or name.startswith("b_"):
            fields.honeypot_filled = fields.honeypot_filled or bool(raw_value)
        elif name == FORM_TOKEN_FIELD:
            fields.form_token = value or None
        elif name == "tags":
            fields.tags.extend(tag.strip() for tag in value.split(",") if tag.strip())
        elif name == "language":
            fields.language = value or None
        elif name not in IGNORED_FORM_FIELDS:
            _form_field(fields, field_map, sub_fields, name, value)
    for tag, parts in sub_fields.items():
        fields.merge_fields[tag] = _combine_sub_fields(parts)
    return fields


def _form_field(
    fields: SignupFields, field_map: SignupFieldMap, sub_fields: dict[str, dict[str, str]], name: str, value: str
) -> None:
    group = _GROUP.match(name)
    if group is not None:
        # Checkboxes post group[<group>][<bit>]=<bit>; radios and drop-downs group[<group>]=<bit>.
        bit = group.group(2) or value
        if value and bit:
            fields.interests[f"{group.group(1)}:{bit}"] = True
        return
    gdpr = _GDPR.match(name)
    if gdpr is not None:
        if value:
            fields.marketing_permissions.append({"marketing_permission_id": gdpr.group(1), "enabled": True})
        return
    sub_field = _SUB_FIELD.match(name)
    if sub_field is not None:
        tag = _merge_tag_for(sub_field.group(1), field_map)
        if tag is not None:
            sub_fields.setdefault(tag, {})[sub_field.group(2)] = value
            fields.merge_field_names[tag] = sub_field.group(1)
        return
    _put_merge_field(fields, field_map, name, value)


def _combine_sub_fields(parts: dict[str, str]) -> MergeValue:
    """Embedded forms split some merge fields: a birthday into month/day, a date into
    month/day/year, a US phone into area/detail1/detail2, an address into its lines."""
    keys = set(parts)
    if keys == {"month", "day"}:
        return f"{parts['month']:0>2}/{parts['day']:0>2}" if parts["month"] and parts["day"] else ""
    if keys == {"month", "day", "year"}:
        return f"{parts['month']:0>2}/{parts['day']:0>2}/{parts['year']}" if all(parts.values()) else ""
    if keys == {"area", "detail1", "detail2"}:
        return "-".join(parts[key] for key in ("area", "detail1", "detail2")) if all(parts.values()) else ""
    return {key: value for key, value in parts.items() if value}
