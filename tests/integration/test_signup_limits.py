"""POST /subscribe: one address triggers at most SIGNUP_MAX_PER_ADDRESS_PER_DAY signups (so
confirmation emails) a day, whatever the IP, counted in the state table. The signup function as
Lambda loads it, against the Mailchimp sandbox (official SDK over HTTP) and moto (DynamoDB, SQS)."""

import functools
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from chimpbridge.dal import signup_limits
from chimpbridge.logic import signup_guard
from tests.support.aws import REGION
from tests.support.functions import LambdaContext
from tests.support.signup import api_event

pytestmark = pytest.mark.xdist_group("signup")

LIMIT = 2
DAY = 86_400


@pytest.fixture
def limited(signup_api, aws_env):
    """The signup function with a per-address limit of LIMIT and its own state table."""
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env, region_name=REGION)
    table = f"state-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    signup_api.configure(STATE_TABLE=table, SIGNUP_MAX_PER_ADDRESS_PER_DAY=str(LIMIT))
    signup_api.dynamodb, signup_api.table = dynamodb, table
    return signup_api


def from_ip(email, ip, **headers):
    proxy = api_event(
        "POST", "/subscribe", json.dumps({"email": email}), {"Content-Type": "application/json", **headers}
    )
    proxy["requestContext"]["identity"]["sourceIp"] = ip
    return proxy


def sign_up(api, email, ip="203.0.113.7", **headers):
    result = api.function.lambda_handler(from_ip(email, ip, **headers), LambdaContext())
    headers = {name: values[-1] for name, values in result["multiValueHeaders"].items()}
    body = json.loads(result["body"]) if result["body"] else None
    return result, headers, body


def test_an_address_triggers_at_most_the_limit_of_confirmation_emails_whatever_the_ip(limited, new_email):
    # Given an address that unsubscribes after every signup, so that each signup from a new IP
    # would make Mailchimp send it a confirmation email again
    email = new_email()
    for attempt in range(LIMIT):
        result, _, body = sign_up(limited, email, ip=f"198.51.100.{attempt + 1}")
        assert (result["statusCode"], body["status"], limited.member(email)["status"]) == (200, "pending", "pending")
        limited.put_member(email, "unsubscribed")
    requests_before = limited.sandbox.stats()["requests"]
    # When it is signed up once more, from yet another IP
    result, headers, body = sign_up(limited, email, ip="192.0.2.99")
    # Then that is a 429 problem with Retry-After, Mailchimp was not asked, and no email went out
    assert result["statusCode"] == 429
    assert headers["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:chimpbridge:problem:signup-too-many-for-address"
    assert 0 < int(headers["Retry-After"]) <= DAY
    assert limited.sandbox.stats()["requests"] == requests_before
    assert limited.member(email)["status"] == "unsubscribed"


def test_the_limit_is_per_address(limited, new_email):
    email = new_email()
    for _ in range(LIMIT + 1):
        sign_up(limited, email)
    result, _, body = sign_up(limited, new_email())
    assert (result["statusCode"], body["status"]) == (200, "pending")


def test_the_address_is_counted_by_a_hash_that_expires(limited, new_email):
    # Given an address signed up once
    email = new_email()
    sign_up(limited, email)
    # Then the state table holds one item for it: no address, a TTL a day ahead
    [item] = limited.dynamodb.scan(TableName=limited.table)["Items"]
    assert email.split("@")[0] not in json.dumps(item)
    assert item["pk"]["S"].startswith("signup-limit#")
    assert len(item["sends"]["L"]) == 1
    assert int(item["expires_at"]["N"]) - int(item["sends"]["L"][0]["N"]) == DAY


def test_a_browser_form_over_the_limit_goes_to_the_error_page(limited, new_email):
    limited.configure(SIGNUP_ERROR_REDIRECT_URL="https://example.org/oops")
    email = new_email()
    for _ in range(LIMIT):
        sign_up(limited, email)
    form = api_event(
        "POST",
        "/subscribe",
        f"EMAIL={email.replace('@', '%40')}",
        {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )
    result = limited.function.lambda_handler(form, LambdaContext())
    assert result["statusCode"] == 303
    query = parse_qs(urlsplit(result["multiValueHeaders"]["Location"][0]).query)
    assert query["type"] == ["signup-too-many-for-address"]


def test_in_privacy_mode_an_address_over_the_limit_is_answered_like_any_other(limited, new_email):
    # Given privacy mode: a 429 would tell a stranger that the address was signed up today
    limited.configure(SIGNUP_PRIVACY_MODE="true")
    email, other = new_email(), new_email()
    for _ in range(LIMIT):
        sign_up(limited, email)
    queued_before = len(limited.queued())
    # When the address goes over its limit, and another address signs up
    over, _, _ = sign_up(limited, email)
    usual, _, _ = sign_up(limited, other)
    # Then both hear the same answer, but only the other address was queued
    assert over == usual
    assert over["statusCode"] == 202
    queued = [message["signup"]["email"] for message in limited.queued()]
    assert len(queued) == queued_before + 1
    assert queued.count(email) == LIMIT


def test_a_required_form_token_turns_token_less_scripts_away(signup_api, new_email):
    # Given SignupRequireFormToken: every form fetches the token
    signup_api.configure(SIGNUP_REQUIRE_FORM_TOKEN="true")
    script, person = new_email(), new_email()
    token = signup_guard.issue_token(signup_api.env["SIGNUP_FORM_SECRET_ARN"], now=time.time() - 10)
    # When a script posts without the token, and a person's page with it
    skipped = signup_api.post_json({"email": script})
    signed = signup_api.post_json({"email": person, "_form_token": token})
    # Then both hear the usual answer, but only the person is added
    assert (skipped.status, skipped.body) == (signed.status, signed.body)
    assert signup_api.member(script) is None
    assert signup_api.member(person)["status"] == "pending"


def test_the_window_slides_so_no_24_hours_hold_more_than_the_limit(limited):
    # Given an address signed up at 0 s and 50,000 s (LIMIT = 2)
    take = functools.partial(signup_limits.take, limited.table, "someone@example.org", limit=LIMIT)
    assert (take(now=1_000_000), take(now=1_050_000)) == (0, 0)
    # Then a third one within a day of the first waits until the first leaves the window
    assert take(now=1_080_000) == 1_000_000 + DAY - 1_080_000
    # And once it has, one more fits, but not two (the second still counts)
    assert take(now=1_000_000 + DAY + 1) == 0
    assert take(now=1_000_000 + DAY + 2) == 1_050_000 + DAY - (1_000_000 + DAY + 2)


def test_aliases_of_one_mailbox_share_its_limit(limited):
    # Given a Gmail mailbox signed up through two of its aliases (LIMIT = 2)
    name = f"ann{uuid.uuid4().hex[:8]}"
    for alias in (f"{name}+news@gmail.com", f"{name[:2]}.{name[2:]}@googlemail.com"):
        assert sign_up(limited, alias)[0]["statusCode"] == 200
    # When a third alias is tried
    result, _, body = sign_up(limited, f"{name.upper()}+x@gmail.com")
    # Then it is over the mailbox's limit, and Mailchimp never heard of it
    assert (result["statusCode"], body["type"]) == (429, "urn:chimpbridge:problem:signup-too-many-for-address")
    assert limited.member(f"{name.upper()}+x@gmail.com") is None
