"""What the signup worker logs about a person while Mailchimp fails and refuses: their address
masked completely, whatever characters it holds, and never Mailchimp's subscriber hash (the MD5
of the address, which anyone can compute for an address they know)."""

import hashlib
import json

import pytest

from tests.support.functions import LambdaContext, load_function
from tests.support.scripted_http import Answer, ScriptedServer
from tests.support.signup_queue import failed_ids, queue_signups, queued

pytestmark = pytest.mark.xdist_group("signup")

# Local parts with the characters the old mask let through, and one in another script.
LOCAL_PARTS = ("o'brien&co/x!y%z", "jürgen.müller", "zoë+news")
PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"


@pytest.fixture
def worker(signup_api):
    # Two attempts per call, and budget enough that the second one always happens
    signup_api.configure(
        SIGNUP_WORKER_CONCURRENCY="1",
        SIGNUP_RETRY_BASE_DELAY_SECONDS="30",
        MAILCHIMP_MAX_ATTEMPTS="2",
        MAILCHIMP_RETRY_BUDGET_SECONDS="10",
    )
    return load_function("signup_worker")


@pytest.mark.parametrize("local", LOCAL_PARTS)
def test_a_failing_signup_retry_logs_no_hash_and_no_local_part(signup_api, worker, new_email, logged, local):
    # Given an address with odd characters, refused for good once (the refusal names it)...
    refused = f"{local}@example.com"  # the sandbox refuses example.com addresses as fake
    worker.lambda_handler(queue_signups(signup_api, queued(refused)), LambdaContext())
    # ...and, while Mailchimp answers 429 to every call, queued again under another domain
    retried = f"{local}-{new_email().split('@')[0][-8:]}@example.org"
    signup_api.sandbox.faults(error_rate=1.0, statuses=[429])
    batch = queue_signups(signup_api, queued(retried))

    # When the worker tries it (the client retries, then the record goes back to the queue)
    result = worker.lambda_handler(batch, LambdaContext())

    # Then every address field holds the whole mask (nothing of the local part but its first
    # character), no line holds more of the local part, and none a subscriber hash...
    records = logged()
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    assert {record["email"] for record in records if "email" in record} == {
        f"{local[0]}***@e***.com",
        f"{local[0]}***@e***.org",
    }
    hashes = [hashlib.md5(address.lower().encode()).hexdigest() for address in (refused, retried)]
    assert [line for line in lines if local[:3] in line or any(h in line for h in hashes)] == []
    # ...though the retries happened and were logged, with the member path they called
    assert failed_ids(result) == [batch["Records"][0]["messageId"]]
    retries = [line for line in lines if "retrying upstream call" in line]
    assert retries and all("/members" in line for line in retries)


def test_a_retry_on_an_existing_members_path_logs_no_hash(signup_api, worker, new_email, logged):
    # Given a queued signup of someone already on the list, and Mailchimp then busy: the member is
    # read by its subscriber hash, and that read is retried
    email = new_email()
    member_exists = Answer(
        400,
        {"type": PROBLEM_TYPE, "title": "Member Exists", "status": 400, "detail": f"{email} is already a member."},
        content_type="application/problem+json",
    )
    busy = Answer(429, {"type": PROBLEM_TYPE, "title": "Too Many Requests", "status": 429, "detail": "Slow down."})
    batch = queue_signups(signup_api, queued(email))
    with ScriptedServer(member_exists, busy) as mailchimp:
        signup_api.configure(MAILCHIMP_API_URL=mailchimp.url + "/3.0")
        worker = load_function("signup_worker")

        # When the worker applies it
        result = worker.lambda_handler(batch, LambdaContext())
        member_paths = [seen.path for seen in mailchimp.requests if "/members/" in seen.path]

    # Then the retried call was on the member's path, and the log shows the path without the hash
    assert failed_ids(result) == [batch["Records"][0]["messageId"]]
    member_hash = hashlib.md5(email.lower().encode()).hexdigest()
    assert any(member_hash in path for path in member_paths)
    lines = [json.dumps(record) for record in logged()]
    assert any("members/{subscriber_hash}" in line for line in lines)
    assert [line for line in lines if member_hash in line] == []
