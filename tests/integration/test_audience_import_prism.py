"""Every request the audience import sends is a valid Mailchimp request: checked by Prism against
the Marketing API specification (../shared/reference/mailchimp), as the signup path's are.

The import runs against the sandbox through the signup test's recording proxy, over every kind
of call it makes (the merge fields, PUT with status_if_new for new and existing members, the
tags endpoint, a forgotten address's refusal); each recorded request is then sent to a Prism
mock server built from the spec, which answers 422 to a request that breaks it.

Skipped when the specifications or Prism (``npm ci``) are absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.server import SandboxServer
from tests.support.audience_import import ImportWorld, csv_bytes
from tests.support.audience_world import member_hash
from tests.support.prism import RecordingProxy, violations


@pytest.fixture
def recorded_world(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ImportWorld, list[Any]]]:
    with SandboxServer(host="127.0.0.1", port=0) as server:
        sandbox = SandboxClient(server.url)
        world = ImportWorld(aws_env, sandbox, monkeypatch)
        proxy = RecordingProxy(server.url)
        world.configure(MAILCHIMP_API_URL=f"{proxy.url}/3.0")
        yield world, proxy.requests
        proxy.close()
        sandbox.close()


def test_every_request_of_the_import_passes_prism_validation(
    recorded_world: tuple[ImportWorld, list[Any]], prism_url: str
) -> None:
    # Given an audience with a subscribed member and a forgotten address, and a file that names
    # both, a newcomer with tags and language, and one with nothing but an address
    world, recorded = recorded_world
    list_id = world.new_audience()
    lists = world.sandbox.marketing_sdk().lists
    for email in ("kept@example.org", "gone@example.org"):
        lists.set_list_member(list_id, member_hash(email), {"email_address": email, "status_if_new": "subscribed"})
    lists.delete_list_member_permanent(list_id, member_hash("gone@example.org"))
    header = ["Email Address", "First Name", "Tags", "language", "consent"]
    rows = [
        ["kept@example.org", "Kept", "vip", "", ""],
        ["gone@example.org", "Gone", "", "", ""],
        ["new@example.org", "New", '"a","b"', "fr", "yes"],
        ["bare@example.org", "", "", "", ""],
    ]
    world.configure(IMPORT_TRUST_CONSENT="true")

    # When it is imported through the recording proxy
    world.run(world.upload(list_id, "prism.csv", csv_bytes(header, rows)))
    kinds = {(request["method"], request["path"].split("?")[0].rsplit("/", 1)[-1]) for request in recorded}
    assert {("GET", "merge-fields"), ("POST", "tags")} <= kinds
    puts = [json.loads(request["body"]) for request in recorded if request["method"] == "PUT"]
    assert len(puts) == 4 and all("status" not in body and "status_if_new" in body for body in puts)

    # Then no request breaks the Marketing API specification
    found = [violations(prism_url, request) for request in recorded]
    assert [item for item in found if item] == []
