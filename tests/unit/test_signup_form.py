"""Reading signups: JSON and Mailchimp embedded-form posts, the field map's allowlists, email
addresses, languages and the bot screen. Pure functions, no I/O."""

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from chimpbridge.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chimpbridge.logic import signup_guard
from chimpbridge.logic.signup_form import build_signup, normalise_email, read_fields
from chimpbridge.logic.signup_language import language_from_header, mailchimp_language
from chimpbridge.models.signup import SignupFieldMap, SignupSubmission

FORM = "application/x-www-form-urlencoded"
FIELD_MAP = SignupFieldMap.from_document(
    {"merge_fields": {"company": "company"}, "tags": {"2004321": "Newsletter"}, "interests": {"21469:1": "abc"}}
)


def form(fields, field_map=FIELD_MAP):
    body = urlencode(fields).encode()
    return read_fields(SignupSubmission(body=body, content_type=FORM), field_map, 16_384)


def json_fields(document, field_map=FIELD_MAP):
    body = json.dumps(document).encode()
    return read_fields(SignupSubmission(body=body, content_type="application/json"), field_map, 16_384)


def signup(fields, field_map=FIELD_MAP, accept_language=None):
    return build_signup(
        fields,
        field_map=field_map,
        list_id="a1b2c3d4e5",
        status_if_new="pending",
        accept_language=accept_language,
        source_ip="203.0.113.7",
        now=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    )


# ---------------------------------------------------------------- embedded-form names
def test_embedded_form_fields_become_merge_fields():
    fields = form({"EMAIL": "ann@example.org", "FNAME": "Ann", "MMERGE7": "Acme"})
    assert fields.email == "ann@example.org"
    assert fields.merge_fields == {"FNAME": "Ann", "MMERGE7": "Acme"}


def test_birthday_parts_become_mm_dd():
    fields = form({"EMAIL": "a@example.org", "BIRTHDAY[month]": "3", "BIRTHDAY[day]": "9"})
    assert fields.merge_fields["BIRTHDAY"] == "03/09"


def test_us_phone_parts_are_joined():
    fields = form({"EMAIL": "a@example.org", "PHONE[area]": "555", "PHONE[detail1]": "123", "PHONE[detail2]": "4567"})
    assert fields.merge_fields["PHONE"] == "555-123-4567"


def test_address_parts_stay_an_object():
    fields = form({"EMAIL": "a@example.org", "ADDRESS[addr1]": "1 Main St", "ADDRESS[city]": "X", "ADDRESS[zip]": ""})
    assert fields.merge_fields["ADDRESS"] == {"addr1": "1 Main St", "city": "X"}


def test_group_checkboxes_and_radios_become_interest_keys():
    fields = form([("EMAIL", "a@example.org"), ("group[21469][1]", "1"), ("group[300]", "4")])
    assert fields.interests == {"21469:1": True, "300:4": True}


def test_gdpr_checkboxes_become_marketing_permissions():
    fields = form({"EMAIL": "a@example.org", "gdpr[17]": "Y", "gdpr[18]": ""})
    assert fields.marketing_permissions == [{"marketing_permission_id": "17", "enabled": True}]


def test_mailchimp_account_and_list_fields_are_ignored():
    fields = form({"EMAIL": "a@example.org", "u": "abc", "id": "zzz", "f_id": "1", "subscribe": "Subscribe"})
    assert fields.merge_fields == {}


def test_mailchimp_honeypot_is_detected():
    assert form({"EMAIL": "a@example.org", "b_abc_123": "x"}).honeypot_filled
    assert not form({"EMAIL": "a@example.org", "b_abc_123": ""}).honeypot_filled


def test_tags_field_holds_comma_separated_values():
    assert form({"EMAIL": "a@example.org", "tags": "2004321, 99"}).tags == ["2004321", "99"]


def test_without_any_merge_tag_only_mapped_fields_pass():
    strict = SignupFieldMap(any_merge_tag=False, merge_fields={"FNAME": "FNAME"})
    assert form({"EMAIL": "a@example.org", "FNAME": "Ann", "LNAME": "Lee"}, strict).merge_fields == {"FNAME": "Ann"}


def test_too_many_form_fields_are_refused():
    with pytest.raises(InvalidRequest):
        form([("EMAIL", "a@example.org")] + [(f"F{index}", "x") for index in range(300)])


# ---------------------------------------------------------------- JSON
def test_json_names_map_to_merge_tags():
    fields = json_fields({"email": "a@example.org", "first_name": "Ann", "company": "Acme", "merge_fields": {"x": 1}})
    assert fields.merge_fields == {"FNAME": "Ann", "COMPANY": "Acme", "X": 1}


def test_json_interests_may_be_a_list():
    assert json_fields({"email": "a@example.org", "interests": ["abc"]}).interests == {"abc": True}


def test_json_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest) as raised:
        json_fields(["a@example.org"])
    assert raised.value.detail == "Send the signup as a JSON object."


def test_json_field_errors_name_the_field():
    with pytest.raises(InvalidRequest) as raised:
        json_fields({"email": "a@example.org", "marketing_permissions": [{"enabled": True}]})
    assert raised.value.errors[0].field == "marketing_permissions.0.marketing_permission_id"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "email"),
        ({"email": 42}, "email"),
        ({"email": "a@example.org", "first_name": ["Ann"]}, "first_name"),
        ({"email": "a@example.org", "merge_fields": ["Ann"]}, "merge_fields"),
        ({"email": "a@example.org", "merge_fields": {"FNAME": ["Ann"]}}, "merge_fields.FNAME"),
        ({"email": "a@example.org", "tags": [1, 2]}, "tags"),
        ({"email": "a@example.org", "interests": {"abc": "maybe"}}, "interests"),
        ({"email": "a@example.org", "language": "x" * 21}, "language"),
        (
            {"email": "a@example.org", "marketing_permissions": [{"marketing_permission_id": "p", "enabled": 2}]},
            "marketing_permissions.0.enabled",
        ),
        ({"email": "a@example.org", "company": {"name": "Acme"}}, "company"),
    ],
)
def test_wrongly_typed_json_members_are_named(document, field):
    # Given a JSON body with one member of the wrong type or size
    # When it is read
    with pytest.raises(InvalidRequest) as raised:
        json_fields(document)
    # Then the error names that member, for the person to fix
    assert [error.field for error in raised.value.errors] == [field]


def test_json_yes_and_no_are_read_as_pages_send_them():
    # Given a page that turned its form into JSON: checkboxes are "on", or numbers
    fields = json_fields(
        {
            "email": "a@example.org",
            "interests": {"abc": "on", "def": 0},
            "marketing_permissions": [{"marketing_permission_id": "p1", "enabled": "true"}],
        }
    )
    # Then they are read as yes and no
    assert fields.interests == {"abc": True, "def": False}
    assert fields.marketing_permissions == [{"marketing_permission_id": "p1", "enabled": True}]


def test_json_address_parts_are_trimmed():
    fields = json_fields({"email": "a@example.org", "merge_fields": {"ADDRESS": {"addr1": "  1 Main St "}}})
    assert fields.merge_fields["ADDRESS"] == {"addr1": "1 Main St"}


def test_json_honeypot_and_token_are_read_with_or_without_underscore():
    assert json_fields({"email": "a@example.org", "honeypot": "x"}).honeypot_filled
    assert json_fields({"email": "a@example.org", "_form_token": "123.abc"}).form_token == "123.abc"


def test_oversized_body_is_refused_before_parsing():
    with pytest.raises(PayloadTooLarge):
        read_fields(SignupSubmission(body=b"x" * 2048, content_type=FORM), FIELD_MAP, 1024)


@pytest.mark.parametrize("content_type", [None, "text/plain", "multipart/form-data; boundary=x"])
def test_other_content_types_are_refused(content_type):
    with pytest.raises(UnsupportedMediaType):
        read_fields(SignupSubmission(body=b"EMAIL=a%40example.org", content_type=content_type), FIELD_MAP, 1024)


def test_json_with_a_charset_parameter_is_read():
    submission = SignupSubmission(body=b'{"email": "a@example.org"}', content_type="application/json; charset=utf-8")
    assert read_fields(submission, FIELD_MAP, 1024).email == "a@example.org"


# ---------------------------------------------------------------- the field map
def test_allowed_tags_match_by_form_value_or_name_and_unknown_ones_are_dropped():
    fields = json_fields({"email": "a@example.org", "tags": ["2004321", "newsletter", "vip"]})
    assert signup(fields).tags == ["Newsletter"]


def test_default_tags_come_first():
    field_map = SignupFieldMap(default_tags=["website"], tags={"blog": "blog"})
    fields = json_fields({"email": "a@example.org", "tags": ["blog"]}, field_map)
    assert signup(fields, field_map).tags == ["website", "blog"]


def test_interests_are_translated_and_unknown_ones_dropped():
    fields = form([("EMAIL", "a@example.org"), ("group[21469][1]", "1"), ("group[21469][2]", "2")])
    assert signup(fields).interests == {"abc": True}


def test_field_map_lists_mean_the_same_name():
    assert SignupFieldMap.from_document({"tags": ["a"], "interests": ["b"]}).tags == {"a": "a"}


def test_field_map_tag_ids_may_be_numbers():
    assert SignupFieldMap.from_document({"tags": [2004321]}).tags == {"2004321": "2004321"}


def test_field_map_refuses_unknown_keys():
    with pytest.raises(ValueError, match="tagz"):
        SignupFieldMap.from_document({"tagz": ["a"]})


# ---------------------------------------------------------------- the domain signup
def test_signup_carries_what_mailchimp_needs():
    result = signup(json_fields({"email": "Ann@Example.ORG", "first_name": "Ann"}), accept_language="de-CH,de;q=0.8")
    assert result.email == "Ann@example.org"
    assert result.language == "de"
    assert result.ip_signup == "203.0.113.7"
    assert result.timestamp_signup == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_explicit_language_wins_over_the_browser():
    assert (
        signup(json_fields({"email": "a@example.org", "language": "fr-CA"}), accept_language="en").language == "fr_CA"
    )


def test_empty_merge_values_are_not_sent():
    assert signup(form({"EMAIL": "a@example.org", "FNAME": "", "LNAME": "Lee"})).merge_fields == {"LNAME": "Lee"}


# ---------------------------------------------------------------- email addresses
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("jane@example.org", "jane@example.org"),
        ("  Jane.Doe+news@Example.ORG ", "Jane.Doe+news@example.org"),
        ("mailto:jane@example.org", "jane@example.org"),
        ("jane@bücher.de", "jane@xn--bcher-kva.de"),
        ("o'neil@example.co.uk", "o'neil@example.co.uk"),
    ],
)
def test_valid_addresses_are_normalised(given, expected):
    assert normalise_email(given) == expected


@pytest.mark.parametrize(
    "given",
    ["jane", "jane@", "@example.org", "jane@example", "jane@@example.org", "ja ne@example.org", "jane.@example.org",
     "jane@-example.org", "jane@example.c", "jäne@example.org", "x" * 65 + "@example.org"],
)  # fmt: skip
def test_invalid_addresses_are_field_errors(given):
    with pytest.raises(InvalidRequest) as raised:
        normalise_email(given, "EMAIL")
    assert raised.value.errors[0].field == "EMAIL"


def test_a_missing_address_is_asked_for():
    with pytest.raises(InvalidRequest) as raised:
        normalise_email("   ")
    assert raised.value.errors[0].message == "Enter your email address."


# ---------------------------------------------------------------- languages
@pytest.mark.parametrize(
    ("given", "expected"),
    [("en", "en"), ("en-US", "en"), ("fr-CA", "fr_CA"), ("pt-BR", "pt"), ("pt_PT", "pt_PT"), ("es-ES", "es_ES"),
     ("es-MX", "es"), ("zh-TW", "zh_TW"), ("zh-Hant", "zh_TW"), ("nb-NO", "no"), ("xx", None), ("", None)],
)  # fmt: skip
def test_languages_map_to_mailchimp_codes(given, expected):
    assert mailchimp_language(given) == expected


def test_accept_language_takes_the_most_preferred_known_language():
    assert language_from_header("xx-YY;q=1, de;q=0.7, fr-CA;q=0.9") == "fr_CA"


def test_accept_language_without_a_known_language_is_none():
    assert language_from_header("*, xx;q=0.5") is None
    assert language_from_header(None) is None


# ---------------------------------------------------------------- bots
def screen(**overrides):
    arguments = {
        "honeypot_filled": False,
        "form_token": None,
        "user_agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15",
        "browser_form": True,
        "form_secret_arn": None,
    }
    return signup_guard.screen(**(arguments | overrides))


def test_a_person_is_a_person():
    assert not screen().bot


def test_filled_honeypot_is_a_bot():
    assert screen(honeypot_filled=True).reason == "honeypot"


@pytest.mark.parametrize(
    "agent", ["Googlebot/2.1", "AhrefsBot", "Mozilla/5.0 (compatible; bingbot/2.0)", "Chrome-Lighthouse"]
)
def test_crawler_user_agents_are_bots(agent):
    assert screen(user_agent=agent).reason == "user-agent"


def test_a_browser_form_without_a_user_agent_is_a_bot_but_an_api_client_is_not():
    assert screen(user_agent="").bot
    assert not screen(user_agent="", browser_form=False).bot
