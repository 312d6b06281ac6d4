"""POST /subscribe: the signup function, loaded as Lambda loads it, against the Mailchimp sandbox
(official SDK over HTTP) and moto (secrets, the signup queue)."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from chimpbridge.logic import signup_guard
from chimpbridge.logic.signup_apply import subscriber_hash
from sandbox.mailchimp import DEFAULT_LIST_ID
from tests.support.functions import LambdaContext, event
from tests.support.scripted_http import Answer, ScriptedServer
from tests.support.signup import INVALID_INTEREST, api_event

pytestmark = pytest.mark.xdist_group("signup")

FORM_HEADERS = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


# ---------------------------------------------------------------- new people
def test_json_signup_creates_a_pending_member_with_its_details(signup_api, new_email):
    # Given a person who is not on the list
    email = new_email()
    # When they sign up with JSON
    answer = signup_api.post_json(
        {"email": email, "first_name": "Ann", "last_name": "Lee", "tags": ["blog"]},
        headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"},
    )
    # Then they are pending (double opt-in) with their names, tag, language and signup facts
    assert answer.status == 200
    assert answer.body["status"] == "pending"
    member = signup_api.member(email)
    assert member["status"] == "pending"
    assert member["merge_fields"]["FNAME"] == "Ann"
    assert member["merge_fields"]["LNAME"] == "Lee"
    assert [tag["name"] for tag in member["tags"]] == ["blog"]
    assert member["language"] == "fr_CA"
    assert member["ip_signup"] == "203.0.113.7"
    assert member["timestamp_signup"]


def test_embedded_form_post_works_by_changing_its_action(signup_api, new_email):
    # Given an audience with an address field, and Mailchimp's own embedded form for it
    signup_api.lists.add_list_merge_field(DEFAULT_LIST_ID, {"tag": "ADDRESS", "name": "Address", "type": "address"})
    email = new_email()
    fields = [
        ("u", "0123456789abcdef0123456"),
        ("id", "ffffffffff"),
        ("EMAIL", email),
        ("FNAME", "Sam"),
        ("ADDRESS[addr1]", "1 Main St"),
        ("ADDRESS[city]", "Springfield"),
        ("ADDRESS[zip]", "12345"),
        ("tags", "2004321"),
        ("group[21469][1]", "1"),
        ("b_0123456789abcdef0123456_ffffffffff", ""),
        ("subscribe", "Subscribe"),
    ]
    # When it is posted here
    answer = signup_api.post_form(fields, headers={"Accept-Language": "de-DE,de;q=0.9"})
    # Then the person is pending in our audience with the form's fields mapped
    assert answer.status == 200
    member = signup_api.member(email)
    assert member["list_id"] == DEFAULT_LIST_ID
    assert member["merge_fields"]["FNAME"] == "Sam"
    assert member["merge_fields"]["ADDRESS"]["city"] == "Springfield"
    assert [tag["name"] for tag in member["tags"]] == ["newsletter"]
    assert member["interests"] == {"9143cf3bd1": True}
    assert member["language"] == "de"


def test_single_opt_in_subscribes_at_once(signup_api, new_email):
    signup_api.configure(SIGNUP_DOUBLE_OPT_IN="false")
    email = new_email()
    answer = signup_api.post_json({"email": email})
    assert answer.body["status"] == "subscribed"
    assert signup_api.member(email)["status"] == "subscribed"


def test_the_address_is_stored_with_a_lower_case_domain(signup_api, new_email):
    email = new_email("Mixed.Case", domain="Example.ORG")
    signup_api.post_json({"email": f"  {email} "})
    assert signup_api.member(email)["email_address"] == email.replace("Example.ORG", "example.org")


# ---------------------------------------------------------------- people already known
def test_second_signup_of_a_pending_person_stays_pending_without_a_duplicate(signup_api, new_email):
    email = new_email()
    signup_api.post_json({"email": email, "first_name": "Ann"})
    before = signup_api.member_count()
    answer = signup_api.post_json({"email": email.upper(), "first_name": "Annie"})
    assert answer.body["status"] == "pending"
    assert signup_api.member_count() == before
    assert signup_api.member(email)["merge_fields"]["FNAME"] == "Ann"  # a form does not change details


def test_a_pending_person_signing_up_again_is_not_told_of_a_new_email(signup_api, new_email):
    # Given someone who signed up and has not confirmed yet
    email = new_email()
    first = signup_api.post_json({"email": email})
    # When they sign up again (Mailchimp sends no second confirmation for a pending member)
    again = signup_api.post_json({"email": email})
    # Then the first answer spoke of the email just sent, the second of the one sent back then
    assert "just sent" in first.body["message"]
    assert again.body["status"] == "pending"
    assert "just sent" not in again.body["message"]
    assert "already signed up" in again.body["message"]


def test_a_pending_person_signing_up_again_with_single_opt_in_is_told_so_too(signup_api, new_email):
    email = new_email()
    signup_api.post_json({"email": email})
    signup_api.configure(SIGNUP_DOUBLE_OPT_IN="false")
    answer = signup_api.post_json({"email": email})
    assert (answer.body["status"], signup_api.member(email)["status"]) == ("pending", "pending")
    assert "already signed up" in answer.body["message"]


def test_a_pending_person_redirected_after_signing_up_again_carries_the_type(signup_api, new_email):
    email = new_email()
    signup_api.post_json({"email": email})
    signup_api.configure(SIGNUP_SUCCESS_REDIRECT_URL="https://example.org/thanks")
    answer = signup_api.post_form({"EMAIL": email}, headers=FORM_HEADERS)
    query = parse_qs(urlsplit(answer.location).query)
    assert (query["status"], query["type"]) == (["pending"], ["already-pending"])


def test_subscribed_person_stays_subscribed_and_hears_already_subscribed(signup_api, new_email):
    # Given someone who confirmed their subscription
    email = new_email()
    signup_api.put_member(email, "subscribed", merge_fields={"FNAME": "Old"})
    # When they sign up again with a new first name
    answer = signup_api.post_json({"email": email, "first_name": "New"})
    # Then they are told so, stay subscribed (never pending again) and keep their details (an
    # anonymous form may not change them: SIGNUP_UPDATE_EXISTING opts in)
    assert answer.body["status"] == "already_subscribed"
    member = signup_api.member(email)
    assert member["status"] == "subscribed"
    assert member["merge_fields"]["FNAME"] == "Old"


def test_existing_member_gets_new_tags_through_the_tags_endpoint(signup_api, new_email):
    email = new_email()
    signup_api.put_member(email, "subscribed")
    signup_api.post_json({"email": email, "tags": ["newsletter"]})
    assert [tag["name"] for tag in signup_api.member(email)["tags"]] == ["newsletter"]


def test_unsubscribed_person_becomes_pending(signup_api, new_email):
    # Given someone who unsubscribed
    email = new_email()
    signup_api.put_member(email, "unsubscribed")
    # When they sign up again
    answer = signup_api.post_json({"email": email})
    # Then they must confirm by email: pending, the only legal way back (Mailchimp sends it now)
    assert answer.body["status"] == "pending"
    assert "just sent" in answer.body["message"]
    assert signup_api.member(email)["status"] == "pending"


def test_unsubscribed_person_becomes_pending_even_with_single_opt_in(signup_api, new_email):
    signup_api.configure(SIGNUP_DOUBLE_OPT_IN="false")
    email = new_email()
    signup_api.put_member(email, "unsubscribed")
    assert signup_api.post_json({"email": email}).body["status"] == "pending"


def test_cleaned_address_gets_its_own_422(signup_api, new_email):
    email = new_email()
    signup_api.put_member(email, "cleaned")
    answer = signup_api.post_json({"email": email})
    assert answer.status == 422
    assert answer.body["type"] == "urn:chimpbridge:problem:signup-cleaned"
    assert "bounced" in answer.body["detail"]
    assert signup_api.member(email)["status"] == "cleaned"


def test_forgotten_address_gets_its_own_422_with_the_hosted_form(signup_api, new_email):
    # Given an address that was deleted permanently, and the audience's hosted form configured
    email = new_email()
    signup_api.put_member(email, "subscribed")
    signup_api.lists.delete_list_member_permanent(DEFAULT_LIST_ID, subscriber_hash(email))
    signup_api.configure(SIGNUP_HOSTED_FORM_URL="https://eepurl.com/abc123")
    # When it signs up here
    answer = signup_api.post_json({"email": email})
    # Then it is told to use the hosted form, and where it is
    assert answer.status == 422
    assert answer.body["type"] == "urn:chimpbridge:problem:signup-forgotten"
    assert answer.body["signup_url"] == "https://eepurl.com/abc123"


def test_fake_looking_address_gets_its_own_422(signup_api, new_email):
    answer = signup_api.post_json({"email": new_email(domain="example.com")})
    assert answer.status == 422
    assert answer.body["type"] == "urn:chimpbridge:problem:signup-email-looks-fake"


def test_too_many_recent_signups_gets_its_own_422(signup_api, new_email):
    answer = signup_api.post_json({"email": new_email("too-many")})
    assert answer.status == 422
    assert answer.body["type"] == "urn:chimpbridge:problem:signup-too-many-signups"
    assert "try again" in answer.body["detail"]


# ---------------------------------------------------------------- invalid input
def test_invalid_email_is_a_field_error(signup_api):
    answer = signup_api.post_json({"email": "jane.example.org"})
    assert answer.status == 422
    assert answer.body["errors"] == [
        {"field": "email", "message": "Enter a valid email address, like name@example.org."}
    ]


def test_missing_email_in_a_form_names_the_form_field(signup_api):
    answer = signup_api.post_form({"EMAIL": "", "FNAME": "Ann"})
    assert answer.status == 422
    assert answer.body["errors"] == [{"field": "EMAIL", "message": "Enter your email address."}]


def test_required_merge_field_missing_is_a_field_error_in_the_persons_terms(signup_api, new_email):
    # Given an audience whose COMPANY field is required
    signup_api.lists.add_list_merge_field(
        DEFAULT_LIST_ID, {"tag": "COMPANY", "name": "Company", "type": "text", "required": True}
    )
    # When a JSON signup leaves it out
    answer = signup_api.post_json({"email": new_email(), "company": ""})
    # Then the answer names the person's field that Mailchimp missed
    assert answer.status == 422
    assert answer.body["errors"] == [{"field": "company", "message": "Please fill in this field."}]


def test_wrong_json_types_are_field_errors(signup_api, new_email):
    answer = signup_api.post_json({"email": new_email(), "tags": "newsletter"})
    assert answer.status == 422
    assert answer.body["errors"][0]["field"] == "tags"


def test_body_that_is_not_json_is_invalid(signup_api):
    answer = signup_api.post("{not json", "application/json")
    assert answer.status == 422
    assert answer.body["detail"] == "The body is not valid JSON."


def test_oversized_body_is_413(signup_api, new_email):
    answer = signup_api.post_json({"email": new_email(), "first_name": "x" * 20_000})
    assert answer.status == 413
    assert answer.body["type"] == "urn:chimpbridge:problem:payload-too-large"


def test_other_content_types_are_415(signup_api):
    answer = signup_api.post("email=a@example.org", "text/plain")
    assert answer.status == 415
    assert answer.body["type"] == "urn:chimpbridge:problem:unsupported-media-type"


def test_too_long_merge_value_is_a_field_error(signup_api, new_email):
    answer = signup_api.post_form({"EMAIL": new_email(), "FNAME": "x" * 300})
    assert answer.status == 422
    assert answer.body["errors"] == [{"field": "FNAME", "message": "Keep this under 255 characters."}]


# ---------------------------------------------------------------- what a form may set
def test_disallowed_tag_is_not_applied(signup_api, new_email):
    email = new_email()
    signup_api.post_json({"email": email, "tags": ["blog", "vip-discount"]})
    assert [tag["name"] for tag in signup_api.member(email)["tags"]] == ["blog"]


def test_disallowed_interest_is_not_applied(signup_api, new_email):
    email = new_email()
    signup_api.post_form({"EMAIL": email, "group[99999][1]": "1", "group[21469][2]": "2"})
    assert signup_api.member(email)["interests"] == {"a5b2c3d4e5": True}


def test_default_tags_apply_to_every_signup(signup_api, new_email):
    signup_api.configure(SIGNUP_FIELD_MAP=json.dumps({"default_tags": ["website"]}))
    email = new_email()
    signup_api.post_json({"email": email})
    assert [tag["name"] for tag in signup_api.member(email)["tags"]] == ["website"]


def test_the_form_cannot_choose_another_audience(signup_api, new_email):
    email = new_email()
    signup_api.post_form({"EMAIL": email, "id": "zzzzzzzzzz", "list_id": "zzzzzzzzzz"})
    assert signup_api.member(email)["list_id"] == DEFAULT_LIST_ID


# ---------------------------------------------------------------- bots
def test_honeypot_post_gets_the_usual_answer_and_writes_nothing(signup_api, new_email):
    # Given a bot that fills Mailchimp's hidden b_ field
    email = new_email()
    before = signup_api.member_count()
    # When it posts the form
    answer = signup_api.post_form({"EMAIL": email, "b_0123456789abcdef_ffffffffff": "http://spam.example"})
    # Then it is answered like a person, and nothing is written
    assert (answer.status, answer.body["status"]) == (200, "pending")
    assert signup_api.member(email) is None
    assert signup_api.member_count() == before


def test_crawler_user_agent_writes_nothing(signup_api, new_email):
    email = new_email()
    answer = signup_api.post_json({"email": email}, headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"})
    assert answer.body["status"] == "pending"
    assert signup_api.member(email) is None


def test_form_posted_too_soon_after_loading_writes_nothing(signup_api, new_email):
    # Given a form token issued just now
    token = signup_api.call(api_event("GET", "/subscribe/token", None)).body["form_token"]
    email = new_email()
    # When the form comes back within 2 seconds
    answer = signup_api.post_form({"EMAIL": email, "_form_token": token})
    # Then it was a bot: usual answer, nothing written
    assert answer.body["status"] == "pending"
    assert signup_api.member(email) is None


def test_form_token_older_than_two_seconds_is_accepted(signup_api, new_email):
    token = signup_guard.issue_token(signup_api.env["SIGNUP_FORM_SECRET_ARN"], now=time.time() - 60)
    email = new_email()
    signup_api.post_form({"EMAIL": email, "_form_token": token})
    assert signup_api.member(email)["status"] == "pending"


@pytest.mark.parametrize("token", ["1700000000.forgedsignatureforgedsig", "not-a-token"])
def test_forged_or_expired_form_token_writes_nothing(signup_api, new_email, token):
    email = new_email()
    assert signup_api.post_form({"EMAIL": email, "_form_token": token}).status == 200
    assert signup_api.member(email) is None


# ---------------------------------------------------------------- zero loss
def test_mailchimp_outage_queues_the_signup_and_answers_202(signup_api, new_email):
    # Given Mailchimp answering 503 to everything
    email = new_email()
    signup_api.sandbox.faults(error_rate=1.0, statuses=[503])
    # When someone signs up
    answer = signup_api.post_json({"email": email, "first_name": "Queued", "tags": ["blog"]})
    # Then they hear "queued" and the whole signup waits on the signup queue
    assert answer.status == 202
    assert answer.body["status"] == "queued"
    [message] = signup_api.queued()
    assert message["signup"]["email"] == email
    assert message["signup"]["merge_fields"] == {"FNAME": "Queued"}
    assert message["signup"]["tags"] == ["blog"]
    assert message["reason"] == "mailchimp-503"


def test_throttled_signup_is_queued(signup_api, new_email, virtual_clock):
    signup_api.sandbox.faults(error_rate=1.0, statuses=[429])
    assert signup_api.post_json({"email": new_email()}).status == 202
    assert len(signup_api.queued()) == 1


def test_unreachable_mailchimp_queues_the_signup(signup_api, new_email, virtual_clock):
    signup_api.configure(MAILCHIMP_API_URL="http://127.0.0.1:9/3.0")
    assert signup_api.post_json({"email": new_email()}).status == 202
    assert signup_api.queued()[0]["reason"] == "mailchimp-unreachable"


def test_a_revoked_key_queues_the_signup_for_the_operator_to_fix(signup_api, new_email):
    signup_api.sandbox.set_keys(marketing=["another-key-us21"])
    assert signup_api.post_json({"email": new_email()}).status == 202
    assert signup_api.queued()[0]["reason"] == "mailchimp-401"


def test_a_400_about_our_configuration_queues_the_signup(signup_api, new_email):
    # Given Mailchimp refusing the request over a setting of ours (an interest id in the field map)
    with ScriptedServer(INVALID_INTEREST) as mailchimp:
        signup_api.configure(MAILCHIMP_API_URL=mailchimp.url + "/3.0")
        # When someone signs up
        answer = signup_api.post_json({"email": new_email(), "first_name": "Kept"})
    # Then nothing is lost: they hear "queued" and the signup waits for the worker (and its DLQ)
    assert (answer.status, answer.body["status"]) == (202, "queued")
    [message] = signup_api.queued()
    assert (message["reason"], message["signup"]["merge_fields"]) == ("mailchimp-400", {"FNAME": "Kept"})


def test_a_400_about_our_configuration_is_logged_with_mailchimps_reason(signup_api, new_email, logged):
    with ScriptedServer(INVALID_INTEREST) as mailchimp:
        signup_api.configure(MAILCHIMP_API_URL=mailchimp.url + "/3.0")
        signup_api.post_json({"email": new_email()})
    [refused] = [line for line in logged() if line["level"] == "ERROR"]
    assert "Invalid interest ID" in refused["detail"]


def test_a_required_field_the_form_does_not_collect_queues_the_signup(signup_api, new_email):
    # Given an audience that requires a field this form has no input for
    signup_api.lists.add_list_merge_field(
        DEFAULT_LIST_ID, {"tag": "PHONE", "name": "Phone", "type": "phone", "required": True}
    )
    # When someone signs up with what the form has
    answer = signup_api.post_json({"email": new_email(), "first_name": "Ann"})
    # Then they cannot fix it, so it is not theirs to hear: queued (the worker adds them)
    assert (answer.status, answer.body["status"]) == (202, "queued")


def test_an_unreadable_mailchimp_answer_queues_the_signup(signup_api, new_email, logged):
    # Given Mailchimp (or a proxy before it) answering 200 with a page instead of JSON
    page = Answer(200, b"<html>maintenance</html>", content_type="text/html")
    with ScriptedServer(page) as mailchimp:
        signup_api.configure(MAILCHIMP_API_URL=mailchimp.url + "/3.0")
        # When someone signs up
        answer = signup_api.post_json({"email": new_email()})
    # Then the signup waits on the queue, and the log says what went wrong
    assert (answer.status, answer.body["status"]) == (202, "queued")
    [message] = signup_api.queued()
    assert message["reason"] == "error-AttributeError"
    [failure] = [line for line in logged() if line["level"] == "ERROR"]
    assert (failure["error_type"], "exception" in failure) == ("AttributeError", True)


def test_when_mailchimp_and_the_queue_both_fail_the_person_is_asked_to_retry(signup_api, new_email):
    signup_api.sandbox.faults(error_rate=1.0, statuses=[503])
    signup_api.configure(SIGNUP_QUEUE_URL=signup_api.queue_url + "-missing")
    answer = signup_api.post_json({"email": new_email()})
    assert answer.status == 503
    assert answer.body["type"] == "urn:chimpbridge:problem:upstream-unavailable"


# ---------------------------------------------------------------- browsers
def test_browser_form_post_is_redirected_to_the_success_page(signup_api, new_email):
    signup_api.configure(SIGNUP_SUCCESS_REDIRECT_URL="https://example.org/thanks?from=form")
    answer = signup_api.post_form({"EMAIL": new_email()}, headers=FORM_HEADERS)
    assert answer.status == 303
    location = urlsplit(answer.location)
    assert location.path == "/thanks"
    assert parse_qs(location.query)["status"] == ["pending"]
    assert parse_qs(location.query)["from"] == ["form"]


def test_browser_form_post_with_an_error_is_redirected_to_the_error_page(signup_api, new_email):
    signup_api.configure(SIGNUP_ERROR_REDIRECT_URL="https://example.org/oops")
    answer = signup_api.post_form({"EMAIL": new_email(domain="example.com")}, headers=FORM_HEADERS)
    assert answer.status == 303
    query = parse_qs(urlsplit(answer.location).query)
    assert query["status"] == ["error"]
    assert query["type"] == ["signup-email-looks-fake"]


def test_scripts_posting_forms_get_json_even_with_redirects_configured(signup_api, new_email):
    signup_api.configure(SIGNUP_SUCCESS_REDIRECT_URL="https://example.org/thanks")
    answer = signup_api.post_form({"EMAIL": new_email()}, headers={"Accept": "*/*"})
    assert answer.status == 200
    assert answer.body["status"] == "pending"


def test_preflight_from_an_allowed_origin(signup_api):
    answer = signup_api.call(event("signup/preflight.json"))
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "https://example.org"


def test_answers_carry_cors_headers_for_allowed_origins(signup_api, new_email):
    answer = signup_api.post_json({"email": new_email()}, headers={"Origin": "https://shop.example.org"})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example.org"


# ---------------------------------------------------------------- sample events
@pytest.mark.parametrize("name", ["subscribe-json.json", "subscribe-embedded-form.json"])
def test_sample_events_sign_someone_up(signup_api, name):
    answer = signup_api.call(event(f"signup/{name}"))
    assert answer.status == 200
    assert answer.body["status"] in ("pending", "already_subscribed")


def test_sample_event_for_the_form_token(signup_api):
    result = signup_api.function.lambda_handler(event("signup/form-token.json"), LambdaContext())
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["form_token"]
