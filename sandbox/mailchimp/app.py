"""Routes a request to the Marketing, Transactional or control API, the OAuth 2 endpoints of
login.mailchimp.com (``/oauth2/...``) or the web page, and puts
the fault machinery (cap, latency, errors, timeouts) in front of the two Mailchimp APIs."""

from __future__ import annotations

import logging
import threading

from sandbox.mailchimp.control import ControlApi
from sandbox.mailchimp.http_types import Request, Response, json_response
from sandbox.mailchimp.marketing import MarketingApi
from sandbox.mailchimp.problems import (
    MandrillError,
    MarketingError,
    mandrill_error_response,
    mandrill_fault_error,
    problem_response,
)
from sandbox.mailchimp.state import SandboxState
from sandbox.mailchimp.traffic import ConnectionInfo, FaultDecision, Traffic
from sandbox.mailchimp.transactional import TransactionalApi
from sandbox.mailchimp.web import render_page

logger = logging.getLogger(__name__)


def _api_of(path: str) -> str | None:
    if path == "/3.0" or path.startswith("/3.0/"):
        return "marketing"
    if path.startswith("/api/"):
        return "transactional"
    return None


def _error_response(api: str, status: int) -> Response:
    if api == "marketing":
        return problem_response(MarketingError(status))
    return mandrill_error_response(mandrill_fault_error(status))


def _over_limit_response(api: str) -> Response:
    if api == "marketing":
        return problem_response(MarketingError(429))
    return mandrill_error_response(
        MandrillError(429, "RequestLimitExceeded", "Too many simultaneous requests; slow down and retry")
    )


class SandboxApp:
    def __init__(self, base_url: str, stopping: threading.Event, owns_process: bool = False) -> None:
        self.state = SandboxState(base_url)
        self.traffic = Traffic()
        self.marketing = MarketingApi(self.state)
        self.transactional = TransactionalApi(self.state)
        self.control = ControlApi(self.state, self.traffic, owns_process)
        self._stopping = stopping

    def stop(self) -> None:
        """Wake every request that latency or the timeout fault is holding."""
        self._stopping.set()
        self.traffic.release_held_requests()
        self.state.deliveries.stop()

    def handle(self, request: Request, connection: ConnectionInfo) -> Response:
        api = _api_of(request.path)
        try:
            if api is not None:
                return self._handle_api(api, request, connection)
            if request.path.startswith("/oauth2/"):
                return self.state.oauth.handle(request)
            if request.path == "/_sandbox/oauth" or request.path.startswith("/_sandbox/oauth/"):
                return self.state.oauth.control(request)
            if request.path == "/_sandbox" or request.path.startswith("/_sandbox/"):
                return self.control.handle(request)
            if request.path in ("/", "/index.html") and request.method in ("GET", "HEAD"):
                return render_page(self.state, self.traffic)
            return json_response({"error": f"nothing at {request.path}"}, 404)
        except Exception:  # a sandbox bug must answer 500, not kill the connection
            logger.exception("sandbox failed on %s %s", request.method, request.path)
            if api is None:
                return json_response({"error": "sandbox internal error"}, 500)
            return _error_response(api, 500)

    def _handle_api(self, api: str, request: Request, connection: ConnectionInfo) -> Response:
        faulty = self.traffic.applies_to(api)
        if not self.traffic.admit(connection, capped=faulty):
            response = _over_limit_response(api)
        else:
            try:
                response = self._serve(api, request, faulty)
            finally:
                self.traffic.release()
        self.traffic.record_response(0 if response.drop_connection else response.status)
        return response

    def _serve(self, api: str, request: Request, faulty: bool) -> Response:
        decision = FaultDecision()
        if faulty:
            faults = self.traffic.faults
            if faults.latency_ms:
                self._stopping.wait(faults.latency_ms / 1000)
            decision = self.traffic.draw_fault()
        if decision.hang_seconds is not None:
            self.traffic.hold(decision.hang_seconds)
            return Response(status=504, drop_connection=True)
        if decision.status is not None:
            return _error_response(api, decision.status)
        if api == "marketing":
            return self.marketing.handle(request)
        return self.transactional.handle(request)
