"""The official Transactional (Mandrill) SDK against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mailchimp_transactional
import pytest
import requests
from mailchimp_transactional.api_client import ApiClientError

from sandbox.mailchimp.client import SandboxClient, sdk_error_body

SENDER = "hello@example.org"


def message(to: list[str], **fields: Any) -> dict[str, Any]:
    return {"from_email": SENDER, "subject": "Hi", "to": [{"email": email} for email in to], **fields}


def test_users_ping_answers_pong(transactional: mailchimp_transactional.Client) -> None:
    # When
    answer = transactional.users.ping()

    # Then
    assert answer == "PONG!"


def test_messages_send_puts_the_rendered_message_in_the_outbox(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    to = unique_email("welcome")

    # When
    results = transactional.messages.send(
        {
            "message": message(
                [to],
                subject="Welcome *|FNAME|*",
                html="<p>Hello *|FNAME|*, your code is *|CODE|*</p>",
                text="Hello *|FNAME|*",
                global_merge_vars=[{"name": "FNAME", "content": "Ann"}, {"name": "CODE", "content": "1234"}],
                tags=["welcome"],
                metadata={"user_id": "u-1"},
            )
        }
    )

    # Then
    assert [(result["email"], result["status"]) for result in results] == [(to, "sent")]
    [sent] = sandbox.outbox(to=to)
    assert sent["subject"] == "Welcome Ann"
    assert sent["html"] == "<p>Hello Ann, your code is 1234</p>"
    assert sent["text"] == "Hello Ann"
    assert sent["from_email"] == SENDER
    assert sent["tags"] == ["welcome"]
    assert sent["metadata"] == {"user_id": "u-1"}
    assert sent["recipients"][0]["status"] == "sent"
    assert sent["recipients"][0]["_id"] == results[0]["_id"]


def test_per_recipient_merge_vars_override_global_ones(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    ann, bob = unique_email("ann"), unique_email("bob")

    # When
    transactional.messages.send(
        {
            "message": message(
                [ann, bob],
                html="Hi *|NAME|*",
                global_merge_vars=[{"name": "name", "content": "friend"}],
                merge_vars=[{"rcpt": bob, "vars": [{"name": "NAME", "content": "Bob"}]}],
            )
        }
    )

    # Then
    [sent] = sandbox.outbox(to=ann)
    assert [(r["email"], r["html"]) for r in sent["recipients"]] == [(ann, "Hi friend"), (bob, "Hi Bob")]


def test_handlebars_escapes_double_braces_and_keeps_triple_braces_raw(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    to = unique_email("hbs")

    # When
    transactional.messages.send(
        {
            "message": message(
                [to],
                merge_language="handlebars",
                html="{{name}} {{{link}}} {{#if vip}}VIP{{else}}regular{{/if}}",
                global_merge_vars=[
                    {"name": "name", "content": "<Ann>"},
                    {"name": "link", "content": '<a href="https://example.org">go</a>'},
                    {"name": "vip", "content": True},
                ],
            )
        }
    )

    # Then
    [sent] = sandbox.outbox(to=to)
    assert sent["html"] == '&lt;Ann&gt; <a href="https://example.org">go</a> VIP'


def test_a_rejected_address_gets_status_rejected(
    transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    blocked, fine = unique_email("blocked"), unique_email("fine")
    transactional.rejects.add({"email": blocked})

    # When
    results = transactional.messages.send({"message": message([blocked, fine], html="x")})

    # Then
    assert [(r["status"], r.get("reject_reason")) for r in results] == [("rejected", "custom"), ("sent", None)]


def test_an_unverified_sending_domain_is_rejected_as_unsigned(
    transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # When
    results = transactional.messages.send(
        {"message": message([unique_email("to")], html="x", from_email="me@unverified.example.net")}
    )

    # Then
    assert results[0]["status"] == "rejected"
    assert results[0]["reject_reason"] == "unsigned"


def test_a_malformed_recipient_is_invalid(transactional: mailchimp_transactional.Client) -> None:
    # When
    results = transactional.messages.send({"message": message(["not-an-address"], html="x")})

    # Then
    assert results[0]["status"] == "invalid"


def test_send_template_fills_editable_regions_and_template_defaults(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    to = unique_email("tpl")
    transactional.templates.add(
        {
            "name": "Welcome Email",
            "from_email": SENDER,
            "from_name": "Sandbox",
            "subject": "Welcome {{name}}",
            "code": '<h1>Hi {{name}}</h1><div mc:edit="body">default</div>',
        }
    )

    # When
    results = transactional.messages.send_template(
        {
            "template_name": "welcome-email",
            "template_content": [{"name": "body", "content": "<p>Thanks for joining</p>"}],
            "message": {
                "to": [{"email": to}],
                "merge_language": "handlebars",
                "merge_vars": [{"rcpt": to, "vars": [{"name": "name", "content": "Ann"}]}],
            },
        }
    )

    # Then
    assert results[0]["status"] == "sent"
    [sent] = sandbox.outbox(template="Welcome Email")
    assert sent["subject"] == "Welcome Ann"
    assert sent["html"] == '<h1>Hi Ann</h1><div mc:edit="body"><p>Thanks for joining</p></div>'
    assert sent["from_name"] == "Sandbox"


def test_templates_info_returns_the_added_template(transactional: mailchimp_transactional.Client) -> None:
    # Given
    transactional.templates.add({"name": "receipt", "code": "<p>r</p>", "subject": "Receipt"})

    # When
    info = transactional.templates.info({"name": "receipt"})

    # Then
    assert info["slug"] == "receipt"
    assert info["publish_code"] == "<p>r</p>"
    assert info["subject"] == "Receipt"


def test_send_template_with_an_unknown_template_gives_404_unknown_template(
    transactional: mailchimp_transactional.Client,
) -> None:
    # When
    with pytest.raises(ApiClientError) as raised:
        transactional.messages.send_template(
            {"template_name": "missing", "template_content": [], "message": message(["a@example.net"])}
        )

    # Then
    assert raised.value.status_code == 404
    assert sdk_error_body(raised.value) == {
        "status": "error",
        "code": 5,
        "name": "Unknown_Template",
        "message": 'No such template "missing"',
    }


def test_a_bad_key_gives_401_invalid_key(sandbox: SandboxClient) -> None:
    # Given
    client = sandbox.transactional_sdk(api_key="md-wrong")

    # When
    with pytest.raises(ApiClientError) as raised:
        client.users.ping()

    # Then
    assert raised.value.status_code == 401
    assert sdk_error_body(raised.value)["name"] == "Invalid_Key"


def test_a_message_without_recipients_list_is_a_validation_error(
    transactional: mailchimp_transactional.Client,
) -> None:
    # When
    with pytest.raises(ApiClientError) as raised:
        transactional.messages.send({"message": {"from_email": SENDER, "html": "x"}})

    # Then
    assert raised.value.status_code == 400
    assert sdk_error_body(raised.value)["name"] == "ValidationError"


@pytest.mark.parametrize("path", ["/api/1.0/users/ping.json", "/api/1.3/users/ping", "/api/1.3/users/ping.json"])
def test_both_api_versions_answer_with_and_without_the_json_suffix(sandbox: SandboxClient, path: str) -> None:
    # When
    response = requests.post(f"{sandbox.url}{path}", json={"key": sandbox.transactional_api_key}, timeout=10)

    # Then
    assert response.status_code == 200
    assert response.json() == "PONG!"
