"""Everything the sandbox remembers between requests, behind one lock."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from typing import Any

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.constants import (
    DEFAULT_LIST_ID,
    DEFAULT_LIST_NAME,
    MARKETING_API_KEY,
    OAUTH_ACCESS_TOKEN,
    TRANSACTIONAL_API_KEY,
    VERIFIED_SENDING_DOMAINS,
)
from sandbox.mailchimp.mandrill_tracking import MandrillTracking
from sandbox.mailchimp.members import MemberChange
from sandbox.mailchimp.oauth import OAuthServer
from sandbox.mailchimp.webhook_delivery import WebhookDeliveries
from sandbox.mailchimp.webhook_payloads import ChangeDetails, fired_at, member_events

# The outbox keeps the newest messages only, so a long-running local stack stays small.
OUTBOX_LIMIT = 10_000
KEY_KINDS = ("marketing", "oauth", "transactional")


def default_keys() -> dict[str, set[str]]:
    return {
        "marketing": {MARKETING_API_KEY},
        "oauth": {OAUTH_ACCESS_TOKEN},
        "transactional": {TRANSACTIONAL_API_KEY},
    }


class SandboxState:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # Reentrant: a handler holding it may call helpers that take it again.
        self.lock = threading.RLock()
        self.audiences: dict[str, Audience] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.rejects: dict[str, dict[str, Any]] = {}
        self.outbox: deque[dict[str, Any]] = deque(maxlen=OUTBOX_LIMIT)
        self.keys = default_keys()
        # Marketing API requests by how they authenticated (basic, oauth, bearer, apikey).
        self.auth_schemes: Counter[str] = Counter()
        self.verified_domains = set(VERIFIED_SENDING_DOMAINS)
        self.rng = random.Random()
        self._next_web_id = 100_001
        # How ``since_last_changed`` bounds the member list: Mailchimp's reference says "changed
        # after" (exclusive); the sandbox includes the second itself unless told otherwise.
        self.since_last_changed_inclusive = True
        self.member_changes: list[MemberChange] = []
        self.deliveries = WebhookDeliveries(self.lock)
        # Mandrill's webhooks and the events of sent messages.
        self.mandrill = MandrillTracking(self)
        # login.mailchimp.com: OAuth apps, codes and the tokens it issued (into keys["oauth"]).
        self.oauth = OAuthServer(base_url, lambda: self.keys["oauth"])
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.audiences.clear()
            self.add_audience(DEFAULT_LIST_ID, DEFAULT_LIST_NAME)
            self.templates.clear()
            self.rejects.clear()
            self.outbox.clear()
            self.keys = default_keys()
            self.auth_schemes.clear()
            self.since_last_changed_inclusive = True
            self.member_changes.clear()
            self.deliveries.reset()
            self.mandrill.reset()
            self.oauth.reset()

    def add_audience(self, list_id: str, name: str) -> Audience:
        with self.lock:
            audience = Audience(
                id=list_id, name=name, base_url=self.base_url, web_id=self._next_web_id, journal=self.member_changes
            )
            self._next_web_id += 1
            self.audiences[list_id] = audience
            return audience

    def new_list_id(self) -> str:
        while True:
            candidate = f"{self.rng.getrandbits(40):010x}"
            if candidate not in self.audiences:
                return candidate

    def publish_member_changes(self, source: str, details: ChangeDetails | None = None) -> int:
        """Turn the member changes made since the last call into webhook deliveries from
        ``source`` (api, user or admin); returns how many were queued. Callers hold the lock."""
        with self.lock:
            changes = list(self.member_changes)
            self.member_changes.clear()
            at = fired_at(time.time())
            queued = 0
            for list_id, before, after in changes:
                audience = self.audiences.get(list_id)
                if audience is None or not any(webhook.enabled for webhook in audience.webhooks.values()):
                    continue
                events = member_events(audience, before, after, details or ChangeDetails(), at)
                queued += self.deliveries.publish(audience.webhooks.values(), events, source)
            return queued

    @staticmethod
    def now() -> int:
        return int(time.time())
