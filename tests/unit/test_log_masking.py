"""Addresses are masked completely, the same way, whatever characters they hold; no log line
carries Mailchimp's subscriber hash. Properties over generated addresses (hypothesis), through
the function and through the logger's own formatter."""

import hashlib
import json
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chimpbridge.observability import logger, mask_emails
from tests.support.logs import last_line, log_buffer

# What a local part may hold: RFC 5322 atext, dots, and any letter, mark, digit or symbol of
# another script (SMTPUTF8).
ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~."
local_parts = st.text(
    alphabet=st.one_of(
        st.sampled_from(ATEXT),
        st.characters(codec="utf-8", categories=("L", "M", "N", "S"), exclude_characters='@"(),:;<>[]\\'),
    ),
    min_size=1,
    max_size=64,
)
labels = st.text(
    alphabet=st.one_of(st.sampled_from(string.ascii_lowercase + string.digits + "-"), st.characters(categories=("L",))),
    min_size=1,
    max_size=20,
)
domains = st.lists(labels, min_size=2, max_size=4).map(".".join)


def expected(local: str, domain: str) -> str:
    return f"{local[0]}***@{domain[0]}***.{domain.rsplit('.', 1)[1]}"


def log_line(message: str, **extra: object) -> str:
    """The JSON line the bundle's logger writes for ``message`` and ``extra``."""
    with log_buffer() as buffer:
        logger.info(message, extra=extra)
    return last_line(buffer)


@settings(deadline=None)  # a busy machine must not fail a property
@given(local=local_parts, domain=domains)
@example(local="o'brien&co/x!y%z", domain="example.com")
@example(local="jürgen.müller", domain="bücher.de")
@example(local="用户", domain="例子.广告")
@example(local="a%40b", domain="example.org")
def test_every_address_is_masked_to_one_shape(local, domain):
    # Given an address with any characters a local part may hold, in a sentence
    address = f"{local}@{domain}"

    # When it is masked
    masked = mask_emails(f"signup for {address}, queued")

    # Then only its first character, the domain's first character and the TLD remain
    assert masked == f"signup for {expected(local, domain)}, queued"


@settings(deadline=None)  # a busy machine must not fail a property
@given(local=local_parts, domain=domains)
@example(local="o'brien&co/x!y%z", domain="example.com")
def test_log_lines_hold_no_part_of_the_local_part(local, domain):
    # Given an address in a message, an extra field, a nested list and a dict key
    address = f"{local}@{domain}"

    # When the logger writes a line
    line = json.loads(log_line(f"for {address}", email=address, seen=[{"to": address}], by_address={address: 1}))

    # Then every place holds the same mask, and nothing of the local part beyond its first character
    mask = expected(local, domain)
    assert line["message"] == f"for {mask}"
    assert line["email"] == mask
    assert line["seen"] == [{"to": mask}]
    assert line["by_address"] == {mask: 1}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("a+b@mail.example.co.uk", "a***@m***.uk"),
        ("<o'brien@example.com>", "<o***@e***.com>"),
        ("mailto:bob@example.com?subject=x", "mailto:b***@e***.com?subject=x"),
        ("https://example.org/done?email=bob%40example.com&ok=1", "https://example.org/done?email=b***@e***.com&ok=1"),
        ("bob@[192.0.2.1]", "b***@[***]"),
        ("sent to bob@example.com.", "sent to b***@e***.com."),
        ("root@localhost", "r***@l***"),
    ],
)
def test_addresses_in_their_usual_surroundings(text, masked):
    assert mask_emails(text) == masked


def test_text_without_addresses_is_unchanged():
    text = "status=pending list=a1b2c3d4e5 @home 50% off; id=0123456789abcdef0123456789abcdef"
    assert mask_emails(text) == text


def test_a_member_path_loses_its_subscriber_hash():
    member = hashlib.md5(b"jane@example.com").hexdigest()

    line = log_line("retrying upstream call", path=f"/3.0/lists/a1b2c3d4e5/members/{member}/tags")

    assert member not in line
    assert json.loads(line)["path"] == "/3.0/lists/a1b2c3d4e5/members/{subscriber_hash}/tags"


def test_fields_holding_an_address_hash_are_redacted():
    member = hashlib.md5(b"jane@example.com").hexdigest()

    line = json.loads(log_line("event", subscriber_hash=member, detail={"old_subscriber_hash": member}))

    assert line["subscriber_hash"] == "<redacted>"
    assert line["detail"] == {"old_subscriber_hash": "<redacted>"}


def test_an_exception_text_is_masked():
    with log_buffer() as buffer:
        try:
            raise ValueError("o'brien&co@example.com looks fake")
        except ValueError:
            logger.exception("refused")
    line = last_line(buffer)
    assert "brien" not in line
    assert "o***@e***.com looks fake" in json.loads(line)["exception"]
