"""X-Mandrill-Signature: chimpbridge's implementation against vectors computed without it
(Mandrill's documented PHP ported line for line in tests/support/mandrill.py, and fixed
vectors computed with `openssl dgst -sha1 -hmac <key> -binary | base64`)."""

import pytest

from chimpbridge.errors import Unauthorized
from chimpbridge.logic.mandrill_webhook_auth import signature, verify
from tests.support.mandrill import php_signature

KEY = "abcdEFGH1234"
UNICODE_EVENTS = '[{"event":"send","msg":{"subject":"Grüße ☃"}}]'


@pytest.mark.parametrize(
    ("url", "fields", "expected"),
    [
        # printf '%s' "<url>mandrill_events<value>" | openssl dgst -sha1 -hmac abcdEFGH1234 -binary | base64
        (
            "https://example.org/hooks/mandrill/?source=mandrill&x=1",
            {"mandrill_events": UNICODE_EVENTS},
            "beQfoCVqQQ7W83SWkK0XUtZiWlc=",
        ),
        # two fields, given out of order: signed as a (empty list), then mandrill_events, then z
        (
            "https://example.org/webhooks/mandrill",
            {"z": "last", "mandrill_events": "[]", "a": ""},
            "xVmXhHwIfMTdcU+p0DJEP1wrHao=",
        ),
    ],
)
def test_fixed_vectors_computed_with_openssl(url, fields, expected):
    assert signature(KEY, url, fields) == expected
    assert php_signature(KEY, url, fields) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.org/webhooks/mandrill",
        "https://api.example.org/webhooks/mandrill/",
        "https://api.example.org/webhooks/mandrill?secret=s3cr3t&b=2",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/webhooks/mandrill",
        "http://127.0.0.1:3000/webhooks/mandrill",
    ],
)
@pytest.mark.parametrize(
    "fields",
    [
        {"mandrill_events": "[]"},
        {"mandrill_events": UNICODE_EVENTS},
        {"mandrill_events": '[{"event":"click","url":"https:\\/\\/example.org\\/?a=1&b=2"}]', "extra": "x y+z"},
        {"b": "2", "a": "1", "mandrill_events": "[]"},
    ],
)
def test_our_signature_is_mandrills_documented_one(url, fields):
    assert signature(KEY, url, fields) == php_signature(KEY, url, fields)


def test_the_order_the_fields_came_in_does_not_matter():
    # Given the same fields in two orders
    forward = {"a": "1", "mandrill_events": "[]", "z": "9"}
    backward = dict(reversed(list(forward.items())))

    # Then both sign the same
    assert signature(KEY, "https://x.example/h", forward) == signature(KEY, "https://x.example/h", backward)


def test_a_signature_made_by_mandrill_is_accepted_with_either_key_of_a_rotation():
    url, fields = "https://api.example.org/webhooks/mandrill", {"mandrill_events": UNICODE_EVENTS}

    verify(php_signature("old", url, fields), url, fields, ["new", "old"])
    verify(php_signature("new", url, fields), url, fields, ["new", "old"])


@pytest.mark.parametrize(
    ("signed_url", "checked_url"),
    [
        ("https://api.example.org/webhooks/mandrill/", "https://api.example.org/webhooks/mandrill"),
        ("https://api.example.org/webhooks/mandrill", "https://api.example.org/webhooks/mandrill/"),
        ("https://api.example.org/webhooks/mandrill?a=1", "https://api.example.org/webhooks/mandrill"),
        ("http://api.example.org/webhooks/mandrill", "https://api.example.org/webhooks/mandrill"),
    ],
)
def test_a_signature_for_another_url_is_refused(signed_url, checked_url):
    fields = {"mandrill_events": "[]"}

    with pytest.raises(Unauthorized):
        verify(php_signature(KEY, signed_url, fields), checked_url, fields, [KEY])


def test_a_tampered_value_is_refused():
    url = "https://api.example.org/webhooks/mandrill"
    signed = php_signature(KEY, url, {"mandrill_events": UNICODE_EVENTS})

    with pytest.raises(Unauthorized):
        verify(signed, url, {"mandrill_events": UNICODE_EVENTS.replace("send", "open")}, [KEY])


@pytest.mark.parametrize("presented", [None, "", "not base64", "beQfoCVqQQ7W83SWkK0XUtZiWl=="])
def test_a_missing_or_malformed_signature_is_refused(presented):
    with pytest.raises(Unauthorized):
        verify(presented, "https://x.example/h", {"mandrill_events": "[]"}, [KEY])


def test_no_key_accepts_nothing():
    url, fields = "https://x.example/h", {"mandrill_events": "[]"}

    with pytest.raises(Unauthorized):
        verify(php_signature("", url, fields), url, fields, [""])
