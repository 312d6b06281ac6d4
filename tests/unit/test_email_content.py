"""Building the Mandrill call for a queued email, per the hook's configured flow."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from chimpbridge.batch import RetryBackoff
from chimpbridge.logic import email_content
from chimpbridge.models.email import EmailMessage, Recipient, idempotency_key
from chimpbridge.models.hooks import PersonName
from chimpbridge.settings import EmailFlow, EmailSettings, parse

SENDER = parse(
    EmailSettings,
    {"EMAIL_FROM_ADDRESS": "hello@example.org", "EMAIL_FROM_NAME": "Acme", "EMAIL_REPLY_TO": "help@example.org"},
)
WELCOME = EmailFlow(template="welcome", subject="Welcome to {{product_name}}")


def message(locale: str | None = "en-GB", **name: str) -> EmailMessage:
    identity_id = uuid.uuid4()
    flow_id = str(uuid.uuid4())
    return EmailMessage(
        idempotency_key=idempotency_key("registration", identity_id, flow_id),
        hook="registration",
        identity_id=identity_id,
        flow_id=flow_id,
        recipient=Recipient(
            email=f"p-{identity_id.hex[:8]}@example.com", name=PersonName(**(name or {"first": "Ada"})), locale=locale
        ),
        queued_at=datetime.now(UTC),
    )


def variables(entries):
    return {entry["name"]: entry["content"] for entry in entries}


def test_a_bundle_template_is_sent_as_html_and_text_with_handlebars():
    queued = message(first="Ada", last="Lovelace")

    send = email_content.build(queued, WELCOME, SENDER)

    assert send.api_call == "messages/send" and send.template_name is None
    body = send.body()
    sent = body["message"]
    assert sent["merge_language"] == "handlebars"
    assert "{{#if first_name}}" in sent["html"] and "{{{first_name}}}" in sent["text"]
    assert sent["subject"] == "Welcome to {{product_name}}"
    assert sent["to"] == [{"email": queued.recipient.email, "name": "Ada Lovelace", "type": "to"}]
    assert sent["from_email"] == "hello@example.org" and sent["from_name"] == "Acme"
    assert sent["headers"] == {"Reply-To": "help@example.org"}
    assert sent["tags"] == ["registration"]
    assert sent["metadata"] == {
        "identity_id": str(queued.identity_id),
        "hook": "registration",
        "idempotency_key": queued.idempotency_key,
    }
    assert variables(sent["global_merge_vars"]) == {"product_name": "Acme"}
    (recipient_vars,) = sent["merge_vars"]
    assert recipient_vars["rcpt"] == queued.recipient.email
    assert variables(recipient_vars["vars"])["first_name"] == "Ada"
    assert variables(recipient_vars["vars"])["name"] == "Ada Lovelace"
    assert "key" not in body


def test_a_mandrill_template_goes_through_send_template():
    flow = EmailFlow(mandrill_template="acme-welcome", merge_language="mailchimp", tags=["onboarding"])

    send = email_content.build(message(), flow, SENDER)

    body = send.body()
    assert send.api_call == "messages/send-template"
    assert body["template_name"] == "acme-welcome" and body["template_content"] == []
    assert body["message"]["merge_language"] == "mailchimp"
    assert "subject" not in body["message"] and "html" not in body["message"]
    assert body["message"]["tags"] == ["registration", "onboarding"]


def test_every_body_is_a_fresh_dict():
    # Given a built send whose first body was changed (the SDK writes the API key into it)
    send = email_content.build(message(), WELCOME, SENDER)
    first = send.body()
    first["key"] = "md-secret"
    first["message"]["merge_vars"][0]["vars"].append({"name": "x", "content": "y"})

    # When the body is built again (a retry)
    second = send.body()

    # Then nothing of the first leaked into it
    assert "key" not in second
    assert "x" not in variables(second["message"]["merge_vars"][0]["vars"])


def test_a_full_name_gives_the_first_name():
    send = email_content.build(message(full="Grace Brewster Hopper"), WELCOME, SENDER)

    person = variables(send.body()["message"]["merge_vars"][0]["vars"])
    assert person["first_name"] == "Grace" and person["name"] == "Grace Brewster Hopper"


def test_a_language_specific_template_is_preferred(tmp_path, monkeypatch):
    # Given welcome.de.html/.txt next to welcome.html/.txt
    for name, text in {
        "welcome.html": "en",
        "welcome.txt": "en",
        "welcome.de.html": "de",
        "welcome.de.txt": "de",
    }.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(email_content, "TEMPLATES_DIR", tmp_path)
    email_content.bundle_template.cache_clear()

    german = email_content.build(message(locale="de-AT"), WELCOME, SENDER).body()["message"]
    french = email_content.build(message(locale="fr-FR"), WELCOME, SENDER).body()["message"]
    email_content.bundle_template.cache_clear()

    assert german["html"] == "de" and french["html"] == "en"


def test_the_shipped_templates_are_in_the_layer_package():
    template = email_content.bundle_template("welcome")

    assert "{{product_name}}" in template.html and "{{{product_name}}}" in template.text


def test_the_idempotency_key_depends_on_hook_identity_and_flow():
    identity, flow = uuid.uuid4(), str(uuid.uuid4())

    assert idempotency_key("registration", identity, flow) == idempotency_key("registration", identity, flow)
    assert idempotency_key("registration", identity, flow) != idempotency_key("verification", identity, flow)
    assert idempotency_key("registration", identity, flow) != idempotency_key("registration", identity, "other")


@pytest.mark.parametrize(("receives", "ceiling"), [(1, 10), (2, 20), (4, 80), (8, 900), (20, 900)])
def test_retry_delays_grow_and_stay_capped(receives, ceiling):
    backoff = RetryBackoff("https://sqs.example/queue", base_seconds=10, max_seconds=900)
    delays = {backoff.delay(receives) for _ in range(50)}

    assert all(ceiling / 2 - 1 <= delay <= ceiling for delay in delays)


def test_the_queued_message_round_trips_as_json():
    queued = message(first="Ada")

    assert EmailMessage.model_validate_json(queued.model_dump_json()) == queued
    assert json.loads(queued.model_dump_json())["recipient"]["name"]["first"] == "Ada"


MARKUP = '<a href="https://evil.example">x</a>'
ESCAPED = "&lt;a href=&quot;https://evil.example&quot;&gt;x&lt;/a&gt;"


def test_mailchimp_merge_values_are_html_escaped():
    # Given a mailchimp-language flow (Mandrill inserts *|NAME|* as it is) and a name with markup
    flow = EmailFlow(mandrill_template="acme-welcome", merge_language="mailchimp", payload_keys=["plan"])
    queued = message(full=MARKUP).model_copy(update={"transient_payload": {"plan": "<b>pro</b>"}})

    # When the call is built
    sent = email_content.build(queued, flow, SENDER).body()["message"]

    # Then every value the person controls is escaped for HTML
    person = variables(sent["merge_vars"][0]["vars"])
    assert person["name"] == ESCAPED
    assert person["first_name"] == "&lt;a"
    assert person["transient_payload"] == {"plan": "&lt;b&gt;pro&lt;/b&gt;"}
    # (the recipient's display name is a header, not HTML: left as it is)
    assert sent["to"][0]["name"] == MARKUP


def test_handlebars_merge_values_are_left_for_mandrill_to_escape():
    sent = email_content.build(message(full=MARKUP), WELCOME, SENDER).body()["message"]

    assert variables(sent["merge_vars"][0]["vars"])["name"] == MARKUP


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("pt_BR", "pt"),
        ("zh-Hant-TW", "zh"),
        ("es-419", "es"),
        ("FIL", "fil"),
        (None, None),
        ("", None),
        ("english", None),
        ("x/../../leak", None),
        ("de/../../etc", None),
        ("de-AT/..", None),
        ("de.x", None),
    ],
)
def test_only_a_well_formed_locale_picks_a_language(locale, language):
    assert email_content.template_language(locale) == language


def test_a_locale_never_names_a_file_outside_the_templates(tmp_path, monkeypatch):
    # Given the templates folder, a welcome.x folder in it, and template-named files outside it
    templates = tmp_path / "templates"
    (templates / "welcome.x").mkdir(parents=True)
    for name in ("welcome.html", "welcome.txt"):
        (templates / name).write_text("default")
    for name in ("leak.html", "leak.txt"):
        (tmp_path / name).write_text("leaked")
    monkeypatch.setattr(email_content, "TEMPLATES_DIR", templates)
    email_content.bundle_template.cache_clear()

    # When a person's locale is a path
    sent = email_content.build(message(locale="x/../../leak"), WELCOME, SENDER).body()["message"]
    email_content.bundle_template.cache_clear()

    # Then the default template is used
    assert sent["html"] == "default"


def test_the_template_cache_stays_small_whatever_the_locales():
    # Given many people with different (well-formed) languages that have no template
    email_content.bundle_template.cache_clear()
    letters = "abcdefghij"
    locales = [f"{a}{b}{c}" for a in letters for b in letters for c in letters][:300]

    # When an email is built for each
    for locale in locales:
        email_content.build(message(locale=locale), WELCOME, SENDER)

    # Then the template cache holds a bounded number of entries
    assert email_content.bundle_template.cache_info().currsize <= 64
    email_content.bundle_template.cache_clear()
