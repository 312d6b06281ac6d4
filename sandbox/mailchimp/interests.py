"""Interest categories and their interests ("groups" in Mailchimp's app) under
``/lists/{list_id}/interest-categories``: create and read. They name what a member's
``interests`` ids mean, and make the INTERESTS and GROUPINGS of webhook payloads.

Member writes still accept any interest id (the bundle's tests use ids of audiences that only
exist in Mailchimp); an id that no category knows simply appears in no grouping."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.member_api import DEFAULT_PAGE_SIZE, int_parameter
from sandbox.mailchimp.problems import MarketingError, invalid_field

CATEGORY_TYPES = ("checkboxes", "dropdown", "radio", "hidden")
# Mailchimp's older numeric grouping ids (what webhooks send as GROUPINGS[n][id]) start here.
_FIRST_GROUPING_ID = 5_001


def _links(url: str, parent: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": url, "method": "GET"}, {"rel": "parent", "href": parent, "method": "GET"}]


def _category(audience: Audience, category_id: str) -> dict[str, Any]:
    for category in audience.interest_categories:
        if category["id"] == category_id:
            return category
    raise MarketingError(404)


def _categories_url(audience: Audience) -> str:
    return f"{audience.base_url}/3.0/lists/{audience.id}/interest-categories"


def category_document(audience: Audience, category: dict[str, Any]) -> dict[str, Any]:
    collection = _categories_url(audience)
    return {
        "list_id": audience.id,
        "id": category["id"],
        "title": category["title"],
        "display_order": category["display_order"],
        "type": category["type"],
        "_links": _links(f"{collection}/{category['id']}", collection),
    }


def interest_document(audience: Audience, category: dict[str, Any], interest: dict[str, Any]) -> dict[str, Any]:
    collection = f"{_categories_url(audience)}/{category['id']}/interests"
    subscribers = sum(
        1 for document in audience.members.written_documents() if document["interests"].get(interest["id"])
    )
    return {
        "category_id": category["id"],
        "list_id": audience.id,
        "id": interest["id"],
        "name": interest["name"],
        "subscriber_count": str(subscribers),
        "display_order": interest["display_order"],
        "_links": _links(f"{collection}/{interest['id']}", collection),
    }


def _page(query: Mapping[str, str], items: list[Any]) -> list[Any]:
    count = int_parameter(query, "count", DEFAULT_PAGE_SIZE, 1000)
    offset = int_parameter(query, "offset", 0)
    return items[offset : offset + count]


def list_categories(audience: Audience, query: Mapping[str, str]) -> dict[str, Any]:
    categories = audience.interest_categories
    return {
        "list_id": audience.id,
        "categories": [category_document(audience, category) for category in _page(query, categories)],
        "total_items": len(categories),
        "_links": _links(_categories_url(audience), f"{audience.base_url}/3.0/lists/{audience.id}"),
    }


def get_category(audience: Audience, category_id: str) -> dict[str, Any]:
    return category_document(audience, _category(audience, category_id))


def _name(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise invalid_field(field, "This value should not be blank.")
    return value.strip()


def add_category(audience: Audience, body: dict[str, Any]) -> dict[str, Any]:
    title = _name(body, "title")
    if body.get("type") not in CATEGORY_TYPES:
        raise invalid_field("type", f"Value must be one of: {', '.join(CATEGORY_TYPES)}")
    if any(category["title"] == title for category in audience.interest_categories):
        raise MarketingError(400, detail=f'Cannot add "{title}" because it already exists on the list.')
    category = {
        "id": secrets.token_hex(5),
        "grouping_id": _FIRST_GROUPING_ID + len(audience.interest_categories),
        "title": title,
        "display_order": int(body.get("display_order") or 0),
        "type": body["type"],
        "interests": [],
    }
    audience.interest_categories.append(category)
    return category_document(audience, category)


def list_interests(audience: Audience, category_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    category = _category(audience, category_id)
    interests = category["interests"]
    category_url = f"{_categories_url(audience)}/{category_id}"
    return {
        "interests": [interest_document(audience, category, interest) for interest in _page(query, interests)],
        "list_id": audience.id,
        "category_id": category_id,
        "total_items": len(interests),
        "_links": _links(f"{category_url}/interests", category_url),
    }


def get_interest(audience: Audience, category_id: str, interest_id: str) -> dict[str, Any]:
    category = _category(audience, category_id)
    for interest in category["interests"]:
        if interest["id"] == interest_id:
            return interest_document(audience, category, interest)
    raise MarketingError(404)


def add_interest(audience: Audience, category_id: str, body: dict[str, Any]) -> dict[str, Any]:
    category = _category(audience, category_id)
    name = _name(body, "name")
    if any(interest["name"] == name for interest in category["interests"]):
        raise MarketingError(400, detail=f'Cannot add "{name}" because it already exists on the list.')
    interest = {"id": secrets.token_hex(5), "name": name, "display_order": int(body.get("display_order") or 0)}
    category["interests"].append(interest)
    return interest_document(audience, category, interest)
