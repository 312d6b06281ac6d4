"""The example signup pages in a real browser (headless Chromium), served from their own
origin, posting to the API of the local stack: the plain HTML form (303 to the done page) and
the JSON/fetch variant (CORS preflight, answer shown in the page)."""

import uuid
from urllib.parse import urlencode

import pytest
import requests

from chimpbridge.logic.signup_apply import subscriber_hash
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY

pytestmark = [pytest.mark.xdist_group("signup-stack"), pytest.mark.browser, pytest.mark.slow]

# The pages fetch a signed "form loaded at" token; a form sent back within 2 s of it is a bot's.
HUMAN_PAUSE_MS = 2_200


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def member_status(sandbox_url, email):
    response = requests.get(
        f"{sandbox_url}/3.0/lists/{DEFAULT_LIST_ID}/members/{subscriber_hash(email)}",
        auth=("user", MARKETING_API_KEY),
        timeout=10,
    )
    return response.json()["status"] if response.status_code == 200 else None


def submit_fetch_form(page, pages_url, email, query=""):
    """Fill in the JSON/fetch example as a person would (waiting out the bot screen) and submit."""
    page.goto(f"{pages_url}/signup-form-fetch.html{query}")
    page.fill("#email", email)
    page.locator("#signup[data-token-checked]").wait_for(state="attached")
    page.wait_for_timeout(HUMAN_PAUSE_MS)  # sooner, it would be answered like a bot: as a success
    page.click("#submit")


def test_plain_html_form_from_another_origin_lands_on_the_success_page(page, signup_stack, signup_pages):
    # Given the example form on its own site, pointed at the API
    email = f"browser-form-{uuid.uuid4().hex[:8]}@example.org"
    page.goto(f"{signup_pages.url}/signup-form.html")
    page.fill("#mce-EMAIL", email)
    page.fill("#mce-FNAME", "Brook")
    page.wait_for_function("document.getElementById('form-token').value !== ''")
    page.wait_for_timeout(HUMAN_PAUSE_MS)
    # When the person submits it
    with page.expect_navigation(url=f"{signup_pages.done_page}*"):
        page.click("button[type=submit]")
    # Then the browser followed the 303 to the done page, which shows the success state
    assert page.locator("#outcome").get_attribute("data-status") == "pending"
    assert "confirm your subscription" in page.locator("#outcome").inner_text()
    assert member_status(signup_stack.sandbox_url, email) == "pending"


def test_fetch_variant_shows_the_answer_in_the_page(page, signup_stack, signup_pages):
    # Given the JSON/fetch example on its own site (a cross-origin API: CORS and preflight)
    email = f"browser-fetch-{uuid.uuid4().hex[:8]}@example.org"
    # When the person fills it in and submits it
    submit_fetch_form(page, signup_pages.url, email)
    # Then the page shows the success state
    outcome = page.locator("#outcome[data-status=pending]")
    outcome.wait_for()
    assert "confirm your subscription" in outcome.inner_text()
    assert member_status(signup_stack.sandbox_url, email) == "pending"


def test_fetch_variant_shows_a_field_error(page, signup_stack, signup_pages):
    submit_fetch_form(page, signup_pages.url, "not-an-address")
    page.locator("#outcome[data-status=error]").wait_for()
    assert page.locator("#email-error").inner_text() == "Enter a valid email address, like name@example.org."


# ---------------------------------------------------------------- crafted links
@pytest.mark.parametrize("name", ["signup-form.html", "signup-form-fetch.html"])
def test_a_crafted_link_cannot_point_the_form_elsewhere(page, signup_stack, signup_pages, name):
    # When someone opens the form through a link naming another API
    page.goto(f"{signup_pages.url}/{name}?api=https://collector.example.net")
    page.wait_for_load_state("load")
    # Then the form still posts to the API its page names
    assert page.locator("#signup").evaluate("form => form.action") == f"{signup_stack.api_url}/subscribe"


def test_the_fetch_variant_posts_to_its_own_api_whatever_the_link_says(page, signup_stack, signup_pages):
    email = f"browser-crafted-{uuid.uuid4().hex[:8]}@example.org"
    submit_fetch_form(page, signup_pages.url, email, query="?api=http://127.0.0.1:9")
    page.locator("#outcome[data-status=pending]").wait_for()
    assert member_status(signup_stack.sandbox_url, email) == "pending"


def test_the_done_page_shows_only_its_own_words_and_links(page, signup_stack, signup_pages):
    # Given a crafted link to the done page with a message and a link of someone else's
    crafted = "Your account is locked: confirm your password at https://phish.example.net"
    query = urlencode(
        {"status": "error", "type": "signup-forgotten", "message": crafted, "signup_url": "https://phish.example.net"}
    )
    # When it is opened
    page.goto(f"{signup_pages.done_page}?{query}")
    # Then the page says what it says for that outcome, and links only the hosted form it was set up with
    assert "removed from our list" in page.locator("#outcome").inner_text()
    assert "password" not in page.locator("main").inner_text()
    assert page.locator("a[href*=phish]").count() == 0
    assert page.locator("#hosted-form").get_attribute("href") == signup_pages.hosted_form_url


def test_the_done_page_ignores_an_unknown_status_and_its_message(page, signup_pages):
    page.goto(f"{signup_pages.done_page}?status=hacked&message=Call+555-0100+to+claim+a+prize")
    assert page.locator("#outcome").inner_text() == "Thank you!"
    assert page.locator("#hosted-form").is_hidden()


def test_the_done_page_tells_a_pending_person_who_signed_up_before(page, signup_pages):
    page.goto(f"{signup_pages.done_page}?status=pending&type=already-pending&message=x")
    assert "already signed up" in page.locator("#outcome").inner_text()
