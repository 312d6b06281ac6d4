"""examples/ory/registration-webhook.jsonnet, evaluated by the real Jsonnet engine on the ctx
Kratos gives a registration web_hook."""

import json

import pytest

from chimpbridge.models.hooks import HookRequest
from tests.support.registration import kratos_ctx, render_hook_body


def test_the_body_holds_what_the_email_needs():
    # Given a Kratos ctx for Jane, registering in a browser with a referral in the transient payload
    ctx = kratos_ctx(
        email="jane@example.com",
        traits={"name": {"first": "Jane", "last": "Doe"}, "newsletter": True},
        transient_payload={"referral": "spring"},
    )

    # When the shipped Jsonnet renders the hook body
    body = render_hook_body(ctx)

    # Then it carries the identity, email, name, locale, flow, transient payload and consents
    assert body == {
        "identity_id": ctx["identity"]["id"],
        "email": "jane@example.com",
        "name": {"first": "Jane", "last": "Doe"},
        "locale": "en-GB",
        "flow": {"id": ctx["flow"]["id"], "type": "browser"},
        "transient_payload": {"referral": "spring"},
        "consents": {"newsletter": True},
    }
    HookRequest.model_validate(body)


def test_the_body_never_holds_cookies_or_headers():
    ctx = kratos_ctx(email="jane@example.com")

    rendered = json.dumps(render_hook_body(ctx))

    for secret in (*ctx["request_cookies"].values(), "ory_kratos_session", "csrf_token", "Cookie", "User-Agent"):
        assert secret not in rendered


def test_the_first_verifiable_address_stands_in_for_a_missing_email_trait():
    ctx = kratos_ctx(email="ignored@example.com", verifiable=["first@example.com", "second@example.com"])
    del ctx["identity"]["traits"]["email"]

    assert render_hook_body(ctx)["email"] == "first@example.com"


def test_an_identity_without_an_email_cancels_the_hook():
    ctx = kratos_ctx(verifiable=[])
    ctx["identity"]["traits"] = {"phone": "+4915112345678"}

    with pytest.raises(RuntimeError, match="cancel"):
        render_hook_body(ctx)


def test_a_plain_string_name_is_sent_as_the_full_name():
    ctx = kratos_ctx(traits={"name": "Grace Hopper"})

    assert render_hook_body(ctx)["name"] == {"full": "Grace Hopper"}


def test_a_locale_trait_wins_over_the_browser_language():
    ctx = kratos_ctx(traits={"locale": "pt-BR"}, accept_language="de-DE,de;q=0.9")

    assert render_hook_body(ctx)["locale"] == "pt-BR"


def test_the_browser_language_is_used_without_a_locale_trait():
    ctx = kratos_ctx(accept_language="fr-CA,fr;q=0.8,en;q=0.5")

    assert render_hook_body(ctx)["locale"] == "fr-CA"


def test_nested_boolean_traits_become_dotted_consents():
    ctx = kratos_ctx(traits={"consent": {"newsletter": True, "terms": True, "version": "2"}})

    assert render_hook_body(ctx)["consents"] == {"consent.newsletter": True, "consent.terms": True}


def test_a_missing_transient_payload_is_an_empty_object():
    ctx = kratos_ctx()
    del ctx["flow"]["transient_payload"]

    assert render_hook_body(ctx)["transient_payload"] == {}
