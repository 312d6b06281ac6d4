"""POST /subscribe and the signup worker for people already in the audience: an anonymous form
adds people and tags but leaves an existing member's details alone (unless the site opts in),
and privacy mode answers alike whether or not an address is on the list. The signup function as
Lambda loads it, against the Mailchimp sandbox (official SDK over HTTP) and moto."""

import json

import pytest

from chimpbridge.logic.signup_apply import subscriber_hash
from sandbox.mailchimp import DEFAULT_LIST_ID
from tests.support.functions import LambdaContext, load_function
from tests.support.signup import api_event

pytestmark = pytest.mark.xdist_group("signup")

FORM_HEADERS = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": "fr-FR,fr;q=0.9"}
STRANGER = {"first_name": "Mallory", "last_name": "Stranger", "company": "Evil Corp"}
PERMISSION = [{"marketing_permission_id": "mp1", "enabled": True}]


def known_member(signup_api, email, status):
    signup_api.put_member(
        email,
        status,
        merge_fields={"FNAME": "Ann", "LNAME": "Lee"},
        language="en",
        ip_signup="198.51.100.1",
    )


def details(member):
    fields = member["merge_fields"]
    return (fields["FNAME"], fields["LNAME"], member["language"], member["ip_signup"])


ANNS = ("Ann", "Lee", "en", "198.51.100.1")


# ---------------------------------------------------------------- by default: add, never overwrite
@pytest.mark.parametrize("status", ["subscribed", "pending"])
def test_a_stranger_cannot_change_an_existing_members_details(signup_api, new_email, status):
    # Given a member with their own name, company, language and signup IP
    email = new_email()
    known_member(signup_api, email, status)
    # When anyone posts the address with other details, from another IP and language
    answer = signup_api.post_json({"email": email, **STRANGER}, headers={"Accept-Language": "fr-FR"})
    # Then the member keeps every detail and their status; only the answer acknowledges them
    assert answer.status == 200
    member = signup_api.member(email)
    assert (member["status"], details(member)) == (status, ANNS)
    assert "updated your details" not in answer.body["message"]


def test_an_embedded_form_cannot_change_an_existing_members_details(signup_api, new_email):
    email = new_email()
    known_member(signup_api, email, "subscribed")
    answer = signup_api.post_form({"EMAIL": email, "FNAME": "Mallory", "LNAME": "X"}, headers=FORM_HEADERS)
    assert answer.status == 200
    assert details(signup_api.member(email)) == ANNS


def test_an_existing_member_still_gets_the_forms_tags(signup_api, new_email):
    email = new_email()
    known_member(signup_api, email, "subscribed")
    signup_api.post_json({"email": email, "tags": ["blog"], **STRANGER})
    member = signup_api.member(email)
    assert ([tag["name"] for tag in member["tags"]], details(member)) == (["blog"], ANNS)


def test_an_unsubscribed_member_is_asked_to_confirm_again_without_their_details_changing(signup_api, new_email):
    # Given someone who unsubscribed
    email = new_email()
    known_member(signup_api, email, "unsubscribed")
    # When their address is signed up again with other details
    answer = signup_api.post_json({"email": email, **STRANGER})
    # Then they are pending again (they confirm by email) and nothing else changed
    assert answer.body["status"] == "pending"
    member = signup_api.member(email)
    assert (member["status"], details(member)) == ("pending", ANNS)


def test_a_transactional_contact_joins_without_their_details_changing(signup_api, new_email):
    # Given a contact known from purchases (transactional: never subscribed)
    email = new_email()
    known_member(signup_api, email, "transactional")
    # When their address is signed up
    answer = signup_api.post_json({"email": email, **STRANGER})
    # Then they join as a new person would (pending: they confirm), their details as they were
    assert answer.body["status"] == "pending"
    member = signup_api.member(email)
    assert (member["status"], details(member)) == ("pending", ANNS)


def test_an_archived_contact_is_added_again_like_a_new_person(signup_api, new_email):
    # Given a member the audience's owner archived (no longer in the audience)
    email = new_email()
    known_member(signup_api, email, "subscribed")
    signup_api.lists.delete_list_member(DEFAULT_LIST_ID, subscriber_hash(email))
    # When the address is signed up
    answer = signup_api.post_json({"email": email, **STRANGER})
    # Then the create adds them back, with this signup's details, to confirm by email
    assert answer.body["status"] == "pending"
    member = signup_api.member(email)
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("pending", "Mallory")


def test_a_new_person_gets_all_their_details_in_one_request(signup_api, new_email):
    # Given a person not on the list
    email = new_email()
    before = signup_api.sandbox.stats()["requests"]
    # When they sign up
    answer = signup_api.post_json({"email": email, **STRANGER, "tags": ["blog"]}, headers={"Accept-Language": "fr"})
    # Then one create sets their details, language, signup IP and tags
    assert signup_api.sandbox.stats()["requests"] - before == 1
    assert answer.body["status"] == "pending"
    member = signup_api.member(email)
    assert details(member) == ("Mallory", "Stranger", "fr", "203.0.113.7")
    assert [tag["name"] for tag in member["tags"]] == ["blog"]


# ---------------------------------------------------------------- sites that sign users in: opt in
def test_update_existing_lets_a_signed_in_site_update_details(signup_api, new_email):
    # Given a site whose users sign in before the form (SignupUpdateExisting=true)
    signup_api.configure(SIGNUP_UPDATE_EXISTING="true")
    email = new_email()
    known_member(signup_api, email, "subscribed")
    # When the member posts new details
    answer = signup_api.post_json({"email": email, "first_name": "Annie"})
    # Then they are updated, and the person is told so; the status is still never downgraded
    member = signup_api.member(email)
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("subscribed", "Annie")
    assert answer.body["status"] == "already_subscribed"
    assert "updated your details" in answer.body["message"]


# ---------------------------------------------------------------- the queued path follows the same rules
def queued_message(signup_api, email, **signup):
    document = {"list_id": "a1b2c3d4e5", "email": email, "status_if_new": "pending", **signup}
    body = json.dumps({"signup": document, "queued_at": "2026-01-01T00:00:00+00:00", "reason": "mailchimp-503"})
    signup_api.sqs.send_message(QueueUrl=signup_api.queue_url, MessageBody=body)
    received = signup_api.sqs.receive_message(QueueUrl=signup_api.queue_url, MaxNumberOfMessages=1)["Messages"][0]
    record = {
        "messageId": received["MessageId"],
        "receiptHandle": received["ReceiptHandle"],
        "body": received["Body"],
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": received["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:signups",
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}


def test_a_queued_signup_does_not_overwrite_an_existing_member(signup_api, new_email):
    # Given a member, and a signup of their address that waited on the queue
    email = new_email()
    known_member(signup_api, email, "subscribed")
    batch = queued_message(
        signup_api,
        email,
        merge_fields={"FNAME": "Mallory"},
        language="fr",
        ip_signup="203.0.113.66",
        marketing_permissions=PERMISSION,
    )
    # When the worker applies it
    result = load_function("signup_worker").lambda_handler(batch, LambdaContext())
    # Then it is done, and the member is as they were
    assert result["batchItemFailures"] == []
    member = signup_api.member(email)
    assert (member["status"], details(member)) == ("subscribed", ANNS)


def test_a_queued_signup_that_may_update_does(signup_api, new_email):
    email = new_email()
    known_member(signup_api, email, "subscribed")
    batch = queued_message(signup_api, email, merge_fields={"FNAME": "Annie"}, update_existing=True)
    load_function("signup_worker").lambda_handler(batch, LambdaContext())
    assert signup_api.member(email)["merge_fields"]["FNAME"] == "Annie"


# ---------------------------------------------------------------- privacy mode
def answer_of(signup_api, proxy_event):
    """The whole proxy answer: status, every header, body bytes."""
    return signup_api.function.lambda_handler(proxy_event, LambdaContext())


def json_signup(email):
    return api_event(
        "POST", "/subscribe", json.dumps({"email": email, "first_name": "Ann"}), {"Content-Type": "application/json"}
    )


def form_signup(email):
    body = f"EMAIL={email.replace('@', '%40')}&FNAME=Ann"
    return api_event("POST", "/subscribe", body, {"Content-Type": "application/x-www-form-urlencoded", **FORM_HEADERS})


@pytest.mark.parametrize("signup", [json_signup, form_signup], ids=["json", "browser-form"])
def test_privacy_mode_answers_alike_for_new_pending_and_subscribed_addresses(signup_api, new_email, signup):
    # Given privacy mode (with a success page for browser forms), and three addresses: one new,
    # one pending, one subscribed
    signup_api.configure(SIGNUP_PRIVACY_MODE="true", SIGNUP_SUCCESS_REDIRECT_URL="https://example.org/thanks")
    new, pending, subscribed = new_email(), new_email(), new_email()
    known_member(signup_api, pending, "pending")
    known_member(signup_api, subscribed, "subscribed")
    # When each is signed up
    answers = [answer_of(signup_api, signup(email)) for email in (new, pending, subscribed)]
    # Then the three answers are identical, byte for byte: status, headers (redirect included), body
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["statusCode"] in (202, 303)


def test_privacy_mode_applies_signups_through_the_worker_with_the_same_rules(signup_api, new_email):
    # Given privacy mode, a new address and a subscribed member
    signup_api.configure(SIGNUP_PRIVACY_MODE="true")
    new, subscribed = new_email(), new_email()
    known_member(signup_api, subscribed, "subscribed")
    # When both are signed up, and the worker takes the queue
    for email in (new, subscribed):
        assert signup_api.post_json({"email": email, **STRANGER}).status == 202
    messages = signup_api.sqs.receive_message(QueueUrl=signup_api.queue_url, MaxNumberOfMessages=10)["Messages"]
    records = [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:signups",
        }
        for message in messages
    ]
    result = load_function("signup_worker").lambda_handler({"Records": records}, LambdaContext())
    # Then the new person is pending with their details, and the member is untouched
    assert (len(records), result["batchItemFailures"]) == (2, [])
    assert signup_api.member(new)["status"] == "pending"
    member = signup_api.member(subscribed)
    assert (member["status"], details(member)) == ("subscribed", ANNS)
