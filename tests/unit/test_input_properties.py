"""Properties of the parsers that take outside input, over generated input (hypothesis):

- whatever arrives, the only error is the documented one (``InvalidRequest`` and its kinds, a
  422/413/415 problem), never an exception that would be a 500;
- what a person or a sender wrote arrives as written: form fields and embedded-form names,
  JSON members, the Kratos body our Jsonnet renders, Mailchimp's PHP-style form, Mandrill's
  ``mandrill_events``: no value lost or mangled on the way in.
"""

from __future__ import annotations

import json
import string
import uuid
from typing import Any
from urllib.parse import urlencode

import _jsonnet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chimpbridge.errors import InvalidRequest
from chimpbridge.logic import mailchimp_payload, mandrill_webhook, registration_hook, signup_form
from chimpbridge.models.signup import SignupFieldMap, SignupSubmission
from tests.support.registration import JSONNET, kratos_ctx

PROPERTIES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The Jsonnet engine takes a while per evaluation: fewer, larger examples.
JSONNET_PROPERTIES = settings(PROPERTIES, max_examples=30)
FIELD_MAP = SignupFieldMap()
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 16_384

# What a person types in a one-line field and the text rules keep: no controls, line breaks,
# lone surrogates or format characters (bidi overrides among them).
clean_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda text: text.strip() == text and text != "")
any_text = st.text(max_size=60)
addresses = st.builds(
    "{}@{}.{}".format,
    st.text(string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=20).filter(
        lambda local: not local.startswith(".") and not local.endswith(".") and ".." not in local
    ),
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=20),
    st.sampled_from(["org", "com", "io", "museum"]),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def read(body: bytes, content_type: str) -> signup_form.SignupFields:
    return signup_form.read_fields(SignupSubmission(body=body, content_type=content_type), FIELD_MAP, MAX_BODY)


def only_documented_errors(call: Any) -> Any:
    """``call()``, or None when it refused the input the documented way."""
    try:
        return call()
    except InvalidRequest:  # 422, and its kinds 413 and 415
        return None


# ---------------------------------------------------------------- signup: form posts
@PROPERTIES
@given(body=st.binary(max_size=300) | any_text.map(str.encode))
def test_any_form_body_is_read_or_refused_as_invalid(body: bytes):
    fields = only_documented_errors(lambda: read(body, FORM))
    if fields is not None:
        only_documented_errors(lambda: build(fields))


@PROPERTIES
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["EMAIL", "FNAME", "tags", "group[1][2]", "gdpr[7]", "ADDRESS[city]", "b_x_y", "u"])
            | any_text,
            any_text,
        ),
        max_size=12,
    )
)
def test_any_embedded_form_is_read_or_refused_as_invalid(pairs: list[tuple[str, str]]):
    body = urlencode(pairs).encode()
    fields = only_documented_errors(lambda: read(body, FORM))
    if fields is not None:
        only_documented_errors(lambda: build(fields))


@PROPERTIES
@given(
    email=addresses,
    first=clean_text,
    last=clean_text,
    merge=st.dictionaries(st.from_regex(r"\AMMERGE[1-9]\Z"), clean_text, max_size=3),
    city=clean_text,
    birthday=st.tuples(st.integers(1, 12), st.integers(1, 28)),
    group=st.tuples(st.integers(1, 10**9), st.integers(1, 999)),
    permission=st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
    tags=st.lists(st.text(string.ascii_letters + string.digits + " ", min_size=1, max_size=10), max_size=3),
)
def test_an_embedded_form_arrives_as_typed(email, first, last, merge, city, birthday, group, permission, tags):
    # Given Mailchimp's embedded form, filled in (with surrounding spaces a browser keeps)
    pairs = [
        ("EMAIL", f" {email} "),
        ("FNAME", f"{first} "),
        ("LNAME", last),
        *merge.items(),
        ("ADDRESS[city]", city),
        ("BIRTHDAY[month]", str(birthday[0])),
        ("BIRTHDAY[day]", str(birthday[1])),
        (f"group[{group[0]}][{group[1]}]", str(group[1])),
        (f"gdpr[{permission}]", "Y"),
        ("tags", ",".join(tags)),
        ("u", "0123456789abcdef"),
        ("id", "a6b5da1054"),
        ("b_0123456789abcdef_a6b5da1054", ""),
    ]

    # When it is posted
    fields = read(urlencode(pairs).encode(), FORM)

    # Then every value is where the form meant it, as typed (trimmed), and nothing else came in
    assert fields.email == email and fields.email_field == "EMAIL"
    assert fields.merge_fields == {
        "FNAME": first,
        "LNAME": last,
        **merge,
        "ADDRESS": {"city": city},
        "BIRTHDAY": f"{birthday[0]:02}/{birthday[1]:02}",
    }
    assert fields.interests == {f"{group[0]}:{group[1]}": True}
    assert fields.marketing_permissions == [{"marketing_permission_id": permission, "enabled": True}]
    assert fields.tags == [tag.strip() for tag in tags if tag.strip()]
    assert not fields.honeypot_filled
    assert build(fields).email == email


# ---------------------------------------------------------------- signup: JSON
@PROPERTIES
@given(document=json_values | st.dictionaries(st.sampled_from(sorted(signup_form.JSON_MEMBERS)), json_values))
def test_any_json_signup_is_read_or_refused_as_invalid(document: Any):
    fields = only_documented_errors(lambda: read(json.dumps(document).encode(), "application/json"))
    if fields is not None:
        only_documented_errors(lambda: build(fields))


@PROPERTIES
@given(body=st.binary(max_size=200))
def test_any_bytes_as_json_are_read_or_refused_as_invalid(body: bytes):
    only_documented_errors(lambda: read(body, "application/json"))


@PROPERTIES
@given(
    email=addresses,
    first=clean_text,
    merge=st.dictionaries(
        st.from_regex(r"\A[A-Z][A-Z0-9_]{0,9}\Z").filter(lambda tag: tag not in ("EMAIL", "FNAME")),
        clean_text | st.integers(-(10**9), 10**9) | st.booleans(),
        max_size=4,
    ),
    tags=st.lists(clean_text, max_size=4),
    language=st.sampled_from(["fr", "de", "pt_PT", "es"]),
)
def test_json_members_arrive_as_sent(email, first, merge, tags, language):
    document = {"email": email, "first_name": first, "merge_fields": merge, "tags": tags, "language": language}

    fields = read(json.dumps(document, ensure_ascii=False).encode(), "application/json")

    assert fields.email == email
    assert fields.merge_fields == {"FNAME": first, **merge}
    assert fields.tags == tags
    assert fields.language == language


@PROPERTIES
@given(raw=any_text)
def test_an_address_is_normalised_once_or_refused(raw: str):
    normalised = only_documented_errors(lambda: signup_form.normalise_email(raw))
    if normalised is not None:
        assert signup_form.normalise_email(normalised) == normalised
        assert normalised.split("@")[1] == normalised.split("@")[1].lower()


def build(fields: signup_form.SignupFields) -> Any:
    return signup_form.build_signup(
        fields, field_map=FIELD_MAP, list_id="list1", status_if_new="pending", accept_language=None, source_ip=None
    )


# ---------------------------------------------------------------- Kratos: the Jsonnet and the hook body
def render(ctx: dict[str, Any]) -> dict[str, Any] | None:
    """The shipped Jsonnet's output, or None when it cancels the hook (no email)."""
    try:
        return dict(json.loads(_jsonnet.evaluate_file(str(JSONNET), tla_codes={"ctx": json.dumps(ctx)})))
    except RuntimeError as error:
        assert "cancel" in str(error)
        return None


@JSONNET_PROPERTIES
@given(
    email=addresses,
    name=st.fixed_dictionaries({}, optional={"first": clean_text, "last": clean_text}),
    locale=st.none() | st.sampled_from(["en-GB", "fr", "de-CH"]),
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    consents=st.dictionaries(st.from_regex(r"\A[a-z_]{1,12}\Z"), st.booleans(), max_size=4),
)
def test_the_jsonnet_output_carries_the_identity_as_it_is(email, name, locale, payload, consents):
    # Given the ctx Kratos renders the hook with
    traits: dict[str, Any] = {"name": name, **consents, **({"locale": locale} if locale else {})}
    traits.pop("email", None)
    ctx = kratos_ctx(email=email, traits=traits, transient_payload=payload)

    # When the shipped Jsonnet renders it
    body = render(ctx)

    # Then every value arrives unchanged (numbers within a double's exact range), no cookie or header
    assert body is not None
    assert body["identity_id"] == ctx["identity"]["id"] and body["flow"]["id"] == ctx["flow"]["id"]
    assert body["email"] == email
    assert body["name"] == name
    # (the transient payload: what leaves is as it was; its plain members always leave)
    assert all(key in payload and payload[key] == value for key, value in body["transient_payload"].items())
    assert plain_members(payload).items() <= body["transient_payload"].items()
    assert body["consents"] == consents
    assert body.get("locale", "en-GB") == (locale or "en-GB")
    assert not {"request_cookies", "request_headers", "ctx"} & set(body)
    # and the hook reads it (or refuses it the documented way: never a 500)
    request = only_documented_errors(lambda: registration_hook._parse(json.dumps(body).encode()))
    if request is not None:
        assert request.email == email


def plain_members(payload: dict[str, Any]) -> dict[str, Any]:
    """Members the Jsonnet forwards: booleans, numbers, text up to 200 characters."""
    return {
        key: value
        for key, value in payload.items()
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 200)
    }


@JSONNET_PROPERTIES
@given(traits=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_the_jsonnet_renders_any_traits_or_cancels(traits: dict[str, Any]):
    ctx = kratos_ctx(traits={})
    ctx["identity"]["traits"] = traits
    ctx["identity"]["verifiable_addresses"] = []

    body = render(ctx)

    if body is not None:
        assert body["email"] == traits["email"]
        only_documented_errors(lambda: registration_hook._parse(json.dumps(body).encode()))
    else:
        assert not (isinstance(traits.get("email"), str) and traits["email"])


@PROPERTIES
@given(document=json_values | st.dictionaries(st.sampled_from(["identity_id", "email", "name", "flow"]), json_values))
def test_any_hook_body_is_read_or_refused_as_invalid(document: Any):
    only_documented_errors(lambda: registration_hook._parse(json.dumps(document).encode()))


# ---------------------------------------------------------------- Mailchimp's audience webhook
php_keys = st.from_regex(r"\A[a-z_]{1,8}\Z")
php_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
php_documents = st.dictionaries(
    php_keys,
    st.recursive(
        php_values, lambda children: st.dictionaries(php_keys, children, min_size=1, max_size=3), max_leaves=6
    ),
    max_size=5,
)


def php_form(document: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in document.items():
        name = f"{prefix}[{key}]" if prefix else key
        pairs += php_form(value, name) if isinstance(value, dict) else [(name, value)]
    return pairs


@PROPERTIES
@given(document=php_documents)
def test_a_mailchimp_form_is_read_back_as_nested_as_it_was_sent(document: dict[str, Any]):
    assert mailchimp_payload.parse_form(urlencode(php_form(document)).encode()) == document


@PROPERTIES
@given(items=st.lists(php_values, min_size=1, max_size=5))
def test_numbered_mailchimp_fields_become_a_list_in_order(items: list[str]):
    body = urlencode([(f"data[merges][GROUPINGS][{index}][name]", item) for index, item in enumerate(items)])

    document = mailchimp_payload.parse_form(body.encode())

    assert document == {"data": {"merges": {"GROUPINGS": [{"name": item} for item in items]}}}


@PROPERTIES
@given(
    body=st.binary(max_size=300)
    | st.lists(
        st.tuples(
            st.sampled_from(["type", "fired_at", "data[email]", "data[list_id]", "data[web_id]", "data[merges][X]"])
            | any_text,
            any_text | st.sampled_from(["subscribe", "upemail", "campaign", "2009-03-26 21:35:57", "²", "٣"]),
        ),
        max_size=10,
    ).map(lambda pairs: urlencode(pairs).encode())
)
def test_any_mailchimp_delivery_is_read_or_refused_as_invalid(body: bytes):
    document = only_documented_errors(lambda: mailchimp_payload.parse_form(body))
    if document is not None:
        only_documented_errors(lambda: mailchimp_payload.to_event(document, ("user",)))


@pytest.mark.parametrize("digits", ["²", "٣", "1" * 5000], ids=["superscript", "arabic-indic", "5000 digits"])
def test_a_web_id_that_is_not_a_plain_number_is_left_out(digits: str):
    # Given a subscribe whose web_id is made of characters str.isdigit() accepts but int() may not
    body = urlencode(
        {
            "type": "subscribe",
            "fired_at": "2009-03-26 21:35:57",
            "data[list_id]": "a6b5da1054",
            "data[email]": "api@mailchimp.com",
            "data[web_id]": digits,
        }
    ).encode()

    # When it is read
    event = mailchimp_payload.to_event(mailchimp_payload.parse_form(body), ("user",))

    # Then it is published without a web id rather than failing
    assert event is not None and event.detail.web_id is None


@pytest.mark.parametrize("key", ["²", "٣", "1" * 5000], ids=["superscript", "arabic-indic", "5000 digits"])
def test_a_numbered_key_in_another_script_stays_a_key(key: str):
    document = mailchimp_payload.parse_form(urlencode({f"data[{key}]": "x"}).encode())

    assert document == {"data": {key: "x"}}


# ---------------------------------------------------------------- Mandrill's webhook
mandrill_events = st.lists(
    st.dictionaries(st.sampled_from(["event", "_id", "ts", "msg", "type", "reject"]), json_values, max_size=5),
    max_size=5,
)


@PROPERTIES
@given(events=mandrill_events)
def test_mandrill_events_arrive_as_sent_and_are_queued_whole(events: list[dict[str, Any]]):
    # Given a delivery as Mandrill posts it
    body = urlencode({"mandrill_events": json.dumps(events)}).encode()

    # When the receiver reads it and slices it into queue messages
    fields = mandrill_webhook._form(FORM, body)
    read_back = mandrill_webhook._events(fields["mandrill_events"])
    messages = mandrill_webhook._queue_messages(read_back, str(uuid.uuid4()), 262_144)

    # Then the events are the ones sent, and the messages hold each of them once, in order
    assert read_back == events
    queued = [event for message in messages for event in json.loads(message)["events"]]
    assert queued == events


@PROPERTIES
@given(
    body=st.binary(max_size=300)
    | st.dictionaries(st.sampled_from(["mandrill_events", "x"]) | any_text, any_text, max_size=3).map(
        lambda fields: urlencode(fields).encode()
    ),
    content_type=st.sampled_from([FORM, "application/json", "", "text/plain; charset=utf-8"]),
)
def test_any_mandrill_delivery_is_read_or_refused_as_invalid(body: bytes, content_type: str):
    fields = only_documented_errors(lambda: mandrill_webhook._form(content_type, body))
    if fields is not None:
        only_documented_errors(lambda: mandrill_webhook._events(fields.get("mandrill_events")))
