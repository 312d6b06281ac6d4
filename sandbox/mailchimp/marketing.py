"""The Marketing API under /3.0: authentication, routing, and the list-level endpoints.
Member endpoints live in member_api."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from sandbox.mailchimp import interests, member_api, webhook_api
from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.http_types import Request, Response, empty_response, json_response, parse_json_body
from sandbox.mailchimp.problems import MarketingError, invalid_field, problem_response
from sandbox.mailchimp.projection import parse_paths, project
from sandbox.mailchimp.state import SandboxState

PREFIX = "/3.0"
_LIST = r"(?P<list_id>[^/]+)"
_MEMBER = r"(?P<reference>[^/]+)"
_WEBHOOK = r"(?P<webhook_id>[^/]+)"
_CATEGORY = r"(?P<category_id>[^/]+)"

Handler = Callable[..., Any]


def _true(query_value: str | None) -> bool:
    return (query_value or "").lower() in ("true", "1")


class MarketingApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, re.compile(f"^{pattern}$"), handler)
            for method, pattern, handler in (
                ("GET", "", self._root),
                ("GET", "/ping", self._ping),
                ("GET", "/lists", self._lists),
                ("POST", "/lists", self._create_list),
                ("GET", f"/lists/{_LIST}", self._list),
                ("POST", f"/lists/{_LIST}", self._batch_subscribe),
                ("GET", f"/lists/{_LIST}/merge-fields", self._merge_fields),
                ("POST", f"/lists/{_LIST}/merge-fields", self._add_merge_field),
                ("GET", f"/lists/{_LIST}/merge-fields/(?P<merge_id>[0-9]+)", self._merge_field),
                ("GET", f"/lists/{_LIST}/members", self._members),
                ("POST", f"/lists/{_LIST}/members", self._create_member),
                ("GET", f"/lists/{_LIST}/members/{_MEMBER}", self._member),
                ("PUT", f"/lists/{_LIST}/members/{_MEMBER}", self._upsert_member),
                ("PATCH", f"/lists/{_LIST}/members/{_MEMBER}", self._patch_member),
                ("DELETE", f"/lists/{_LIST}/members/{_MEMBER}", self._archive_member),
                ("GET", f"/lists/{_LIST}/members/{_MEMBER}/tags", self._member_tags),
                ("POST", f"/lists/{_LIST}/members/{_MEMBER}/tags", self._update_member_tags),
                ("POST", f"/lists/{_LIST}/members/{_MEMBER}/actions/delete-permanent", self._delete_permanent),
                ("GET", f"/lists/{_LIST}/interest-categories", self._interest_categories),
                ("POST", f"/lists/{_LIST}/interest-categories", self._add_interest_category),
                ("GET", f"/lists/{_LIST}/interest-categories/{_CATEGORY}", self._interest_category),
                ("GET", f"/lists/{_LIST}/interest-categories/{_CATEGORY}/interests", self._interests),
                ("POST", f"/lists/{_LIST}/interest-categories/{_CATEGORY}/interests", self._add_interest),
                (
                    "GET",
                    f"/lists/{_LIST}/interest-categories/{_CATEGORY}/interests/(?P<interest_id>[^/]+)",
                    self._interest,
                ),
                ("GET", f"/lists/{_LIST}/webhooks", self._webhooks),
                ("POST", f"/lists/{_LIST}/webhooks", self._create_webhook),
                ("GET", f"/lists/{_LIST}/webhooks/{_WEBHOOK}", self._webhook),
                ("PATCH", f"/lists/{_LIST}/webhooks/{_WEBHOOK}", self._update_webhook),
                ("DELETE", f"/lists/{_LIST}/webhooks/{_WEBHOOK}", self._delete_webhook),
            )
        ]
        # These take the lock themselves: saving a webhook GETs its URL, which may be slow.
        self._self_locking: set[Handler] = {self._create_webhook, self._update_webhook}

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            handler, params = self._route(request)
            if handler in self._self_locking:
                return self._respond(request, handler(request, **params))
            # Serialise under the lock too: a result may be a stored document that a
            # concurrent write (a new merge field) changes in place.
            with self.state.lock:
                try:
                    return self._respond(request, handler(request, **params))
                finally:
                    # Member writes fire the audience's webhooks (source "api"), in the background.
                    self.state.publish_member_changes("api")
        except MarketingError as error:
            return problem_response(error)

    @staticmethod
    def _respond(request: Request, result: Any) -> Response:
        if result is None:
            return empty_response(204)
        if isinstance(result, Response):
            return result
        if request.method == "GET":
            fields = parse_paths(request.query.get("fields"))
            result = project(result, fields, parse_paths(request.query.get("exclude_fields")))
        return json_response(result)

    def _route(self, request: Request) -> tuple[Handler, dict[str, str]]:
        path = request.path[len(PREFIX) :].rstrip("/")
        allowed: list[str] = []
        for method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match:
                if method == request.method:
                    return handler, match.groupdict()
                allowed.append(method)
        raise MarketingError(405 if allowed else 404)

    def _authenticate(self, request: Request) -> None:
        authorization = request.header("Authorization").strip()
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if not credentials:
            raise MarketingError(401, "API Key Missing", "Your request did not include an API key.")
        if self._credentials_accepted(scheme.lower(), credentials):
            with self.state.lock:
                self.state.auth_schemes[scheme.lower()] += 1
            return
        raise MarketingError(
            401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter."
        )

    def _credentials_accepted(self, scheme: str, credentials: str) -> bool:
        """Basic auth with the key as password (any user name), an OAuth Bearer token, or the
        legacy ``apikey <key>`` scheme."""
        keys = self.state.keys
        if scheme == "basic":
            try:
                _, _, api_key = base64.b64decode(credentials).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return api_key in keys["marketing"]
        if scheme in ("bearer", "oauth"):
            return credentials in keys["oauth"]
        return scheme == "apikey" and credentials in keys["marketing"]

    # -- helpers ---------------------------------------------------------------------------
    def _audience(self, list_id: str) -> Audience:
        audience = self.state.audiences.get(list_id)
        if audience is None:
            raise MarketingError(404)
        return audience

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = parse_json_body(request.body)
        except ValueError:
            raise MarketingError(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.") from None
        if not isinstance(body, dict):
            raise MarketingError(400, "JSON Parse Error", "The request body must be a JSON object.")
        return body

    # -- account and lists -----------------------------------------------------------------
    def _root(self, request: Request) -> dict[str, Any]:
        return {
            "account_id": "sandbox",
            "login_id": "sandbox",
            "account_name": "Mailchimp Sandbox",
            "email": "owner@example.org",
            "role": "owner",
            "total_subscribers": sum(
                audience.members.counts_by_status()["subscribed"] for audience in self.state.audiences.values()
            ),
            "_links": [{"rel": "self", "href": f"{self.state.base_url}/3.0/", "method": "GET"}],
        }

    def _ping(self, request: Request) -> dict[str, Any]:
        return {"health_status": "Everything's Chimpy!"}

    def _lists(self, request: Request) -> dict[str, Any]:
        count = member_api.int_parameter(request.query, "count", member_api.DEFAULT_PAGE_SIZE, 1000)
        offset = member_api.int_parameter(request.query, "offset", 0)
        audiences = list(self.state.audiences.values())
        return {
            "lists": [audience.document() for audience in audiences[offset : offset + count]],
            "total_items": len(audiences),
            "constraints": {"may_create": True, "max_instances": 100, "current_total_instances": len(audiences)},
            "_links": [{"rel": "self", "href": f"{self.state.base_url}/3.0/lists", "method": "GET"}],
        }

    def _create_list(self, request: Request) -> dict[str, Any]:
        body = self._body(request)
        for required in ("name", "contact", "permission_reminder", "campaign_defaults", "email_type_option"):
            if required not in body:
                raise invalid_field(required, "This value should not be blank.")
        audience = self.state.add_audience(self.state.new_list_id(), str(body["name"]))
        audience.double_optin = bool(body.get("double_optin", False))
        return audience.document()

    def _list(self, request: Request, list_id: str) -> dict[str, Any]:
        return self._audience(list_id).document()

    def _merge_fields(self, request: Request, list_id: str) -> dict[str, Any]:
        audience = self._audience(list_id)
        count = member_api.int_parameter(request.query, "count", member_api.DEFAULT_PAGE_SIZE, 1000)
        offset = member_api.int_parameter(request.query, "offset", 0)
        selected = audience.merge_fields
        if request.query.get("required"):
            selected = [field for field in selected if field["required"] == _true(request.query["required"])]
        if request.query.get("type"):
            selected = [field for field in selected if field["type"] == request.query["type"]]
        return {
            "merge_fields": [audience.merge_field_document(field) for field in selected[offset : offset + count]],
            "list_id": audience.id,
            "total_items": len(selected),
            "_links": [
                {"rel": "self", "href": f"{self.state.base_url}/3.0/lists/{list_id}/merge-fields", "method": "GET"}
            ],
        }

    def _add_merge_field(self, request: Request, list_id: str) -> dict[str, Any]:
        audience = self._audience(list_id)
        return audience.merge_field_document(audience.add_merge_field(self._body(request)))

    def _merge_field(self, request: Request, list_id: str, merge_id: str) -> dict[str, Any]:
        audience = self._audience(list_id)
        return audience.merge_field_document(audience.merge_field(int(merge_id)))

    # -- members ---------------------------------------------------------------------------
    def _members(self, request: Request, list_id: str) -> Response:
        page = member_api.member_page(
            self._audience(list_id), request.query, since_inclusive=self.state.since_last_changed_inclusive
        )
        return Response(status=200, body=page.encode())

    def _create_member(self, request: Request, list_id: str) -> dict[str, Any]:
        skip = _true(request.query.get("skip_merge_validation"))
        return member_api.create_member(self._audience(list_id), self._body(request), self.state.now(), skip)

    def _member(self, request: Request, list_id: str, reference: str) -> dict[str, Any]:
        return member_api.get_member(self._audience(list_id), reference)

    def _upsert_member(self, request: Request, list_id: str, reference: str) -> dict[str, Any]:
        skip = _true(request.query.get("skip_merge_validation"))
        audience = self._audience(list_id)
        return member_api.upsert_member(audience, reference, self._body(request), self.state.now(), skip)

    def _patch_member(self, request: Request, list_id: str, reference: str) -> dict[str, Any]:
        skip = _true(request.query.get("skip_merge_validation"))
        audience = self._audience(list_id)
        return member_api.patch_member(audience, reference, self._body(request), self.state.now(), skip)

    def _archive_member(self, request: Request, list_id: str, reference: str) -> None:
        member_api.archive_member(self._audience(list_id), reference, self.state.now())

    def _member_tags(self, request: Request, list_id: str, reference: str) -> dict[str, Any]:
        return member_api.member_tags(self._audience(list_id), reference)

    def _update_member_tags(self, request: Request, list_id: str, reference: str) -> None:
        audience = self._audience(list_id)
        member_api.update_member_tags(audience, reference, self._body(request), self.state.now())

    def _delete_permanent(self, request: Request, list_id: str, reference: str) -> None:
        member_api.delete_member_permanently(self._audience(list_id), reference)

    def _batch_subscribe(self, request: Request, list_id: str) -> dict[str, Any]:
        return member_api.batch_subscribe(self._audience(list_id), self._body(request), self.state.now())

    # -- interest categories ---------------------------------------------------------------
    def _interest_categories(self, request: Request, list_id: str) -> dict[str, Any]:
        return interests.list_categories(self._audience(list_id), request.query)

    def _add_interest_category(self, request: Request, list_id: str) -> dict[str, Any]:
        return interests.add_category(self._audience(list_id), self._body(request))

    def _interest_category(self, request: Request, list_id: str, category_id: str) -> dict[str, Any]:
        return interests.get_category(self._audience(list_id), category_id)

    def _interests(self, request: Request, list_id: str, category_id: str) -> dict[str, Any]:
        return interests.list_interests(self._audience(list_id), category_id, request.query)

    def _add_interest(self, request: Request, list_id: str, category_id: str) -> dict[str, Any]:
        return interests.add_interest(self._audience(list_id), category_id, self._body(request))

    def _interest(self, request: Request, list_id: str, category_id: str, interest_id: str) -> dict[str, Any]:
        return interests.get_interest(self._audience(list_id), category_id, interest_id)

    # -- webhooks --------------------------------------------------------------------------
    def _webhooks(self, request: Request, list_id: str) -> dict[str, Any]:
        return webhook_api.list_webhooks(self.state, list_id)

    def _create_webhook(self, request: Request, list_id: str) -> dict[str, Any]:
        return webhook_api.create_webhook(self.state, list_id, self._body(request))

    def _webhook(self, request: Request, list_id: str, webhook_id: str) -> dict[str, Any]:
        return webhook_api.get_webhook(self.state, list_id, webhook_id)

    def _update_webhook(self, request: Request, list_id: str, webhook_id: str) -> dict[str, Any]:
        return webhook_api.update_webhook(self.state, list_id, webhook_id, self._body(request))

    def _delete_webhook(self, request: Request, list_id: str, webhook_id: str) -> None:
        webhook_api.delete_webhook(self.state, list_id, webhook_id)
