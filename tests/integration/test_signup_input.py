"""POST /subscribe refuses values that are valid JSON (or a valid form field) but not valid
data, at the door, with a 422 naming the field: nothing reaches Mailchimp or the queue.
The real handler, the Mailchimp sandbox and moto."""

import json

import pytest

DEEP = 5_000


def _posted_nothing(signup_api, email):
    assert signup_api.member(email) is None
    assert signup_api.queued() == []


def test_a_lone_surrogate_in_a_json_name_is_422_naming_the_field(signup_api, new_email):
    # Given a name that JSON can carry (an escaped lone surrogate) and no text can hold
    email = new_email()
    body = json.dumps({"email": email}).replace("}", ', "first_name": "Ada\\ud800"}')

    # When it is posted
    answer = signup_api.post(body, "application/json")

    # Then it is refused at the door, naming the field
    assert answer.status == 422
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in answer.body["errors"]] == ["first_name"]
    _posted_nothing(signup_api, email)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1" + "0" * 4_000])
def test_nan_infinity_and_overlong_numbers_are_422_naming_the_merge_field(signup_api, new_email, token):
    email = new_email()
    body = json.dumps({"email": email, "merge_fields": {"FNAME": "Ada", "AGE": "N"}}).replace('"N"', token)

    answer = signup_api.post(body, "application/json")

    assert answer.status == 422
    assert [error["field"] for error in answer.body["errors"]] == ["merge_fields.AGE"]
    _posted_nothing(signup_api, email)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Ada\x00", "Remove the control characters."),
        ("Ada\x1b[31m", "Remove the control characters."),
        ("Ada\r\nBcc: someone@example.org", "Keep this on one line."),
        ("\u202egnihtemos", "Remove the text-direction control characters."),
        ("Ada\u2066x\u2069", "Remove the text-direction control characters."),
    ],
)
def test_control_line_break_and_bidi_characters_in_a_form_name_are_422(signup_api, new_email, value, message):
    email = new_email()

    answer = signup_api.post_form({"EMAIL": email, "FNAME": value})

    assert answer.status == 422
    assert answer.body["errors"] == [{"field": "FNAME", "message": message}]
    _posted_nothing(signup_api, email)


def test_a_line_break_in_an_embedded_form_address_part_is_422_naming_the_form_field(signup_api, new_email):
    # Given Mailchimp's embedded-form address, split in parts, one with a CR/LF
    email = new_email()
    fields = {"EMAIL": email, "ADDRESS[addr1]": "1 Main St\r\nX", "ADDRESS[city]": "Springfield"}

    answer = signup_api.post_form(fields)

    assert answer.status == 422
    assert answer.body["errors"] == [{"field": "ADDRESS", "message": "Keep this on one line."}]
    _posted_nothing(signup_api, email)


def test_a_right_to_left_name_with_its_direction_marks_is_accepted(signup_api, new_email):
    # Given a Hebrew name with a right-to-left mark (a mark, not an override)
    email = new_email()

    answer = signup_api.post_json({"email": email, "first_name": "\u05d3\u05e0\u05d4\u200f"})

    assert answer.status in (200, 202)


def test_json_nested_thousands_deep_is_422_not_500(signup_api, new_email):
    # Given merge_fields holding "[" nested 5,000 times
    email = new_email()
    body = json.dumps({"email": email, "merge_fields": {"FNAME": "N"}}).replace('"N"', "[" * DEEP + "]" * DEEP)

    # When it is posted
    answer = signup_api.post(body, "application/json")

    # Then it is a 422 about the body, not a server error
    assert answer.status == 422
    assert answer.body["errors"] == [{"field": "body", "message": "Nest arrays and objects at most 32 levels deep."}]
    _posted_nothing(signup_api, email)


def test_a_nul_in_a_json_member_name_is_422(signup_api, new_email):
    email = new_email()

    answer = signup_api.post(json.dumps({"email": email, "merge_fields": {"F\x00NAME": "Ada"}}), "application/json")

    assert answer.status == 422
    _posted_nothing(signup_api, email)
