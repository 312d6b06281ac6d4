"""The local AWS WAF (sandbox/stack/waf.py) reading the repository template's web ACL: the
signup rate rule per IP as the parameters set it, with a clock of the test's own."""

from pathlib import Path

from sandbox.stack.apigw_events import HttpRequest
from sandbox.stack.intrinsics import IntrinsicResolver, PseudoParameters, resolve_parameters
from sandbox.stack.template import SamTemplate
from sandbox.stack.waf import web_acls

TEMPLATE = SamTemplate.load(Path(__file__).resolve().parents[2] / "template.yaml")


class NoResources:
    def ref(self, logical_id):
        return f"local-{logical_id}"

    def get_att(self, logical_id, attribute):
        return f"arn:aws:local:{logical_id}/{attribute}"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def acls(clock=None, **parameters):
    values = resolve_parameters(TEMPLATE.document, {"MailchimpListId": "a1b2c3d4e5", **parameters})
    resolver = IntrinsicResolver(TEMPLATE.document, values, PseudoParameters(stack_name="test"), NoResources())
    notes = []
    found = web_acls(TEMPLATE, resolver, notes, clock or Clock())
    assert notes == []
    return found


def request(path="/subscribe", ip="198.51.100.7", method="POST"):
    return HttpRequest(method=method, raw_path=path, raw_query="", headers=[], body=b"", source_ip=ip)


def test_no_web_acl_unless_the_parameter_sets_a_limit():
    assert acls() == {}


def test_the_rule_blocks_an_ip_past_its_limit_with_a_429_and_retry_after():
    # Given the web ACL with a limit of 10 per 300 s
    [acl] = acls(WafRateLimitPerIp="10").values()
    # When one IP makes 11 signup requests
    answers = [acl.check(request()) for _ in range(11)]
    # Then the first 10 pass and the 11th gets the rule's problem answer
    assert answers[:10] == [None] * 10
    blocked = answers[10]
    assert (blocked.status, dict(blocked.headers)["Retry-After"]) == (429, "300")
    assert b"urn:chimpbridge:problem:rate-limited" in blocked.body


def test_the_limit_is_per_ip_and_per_window():
    clock = Clock()
    [acl] = acls(clock, WafRateLimitPerIp="10", WafRateLimitWindowSeconds="60").values()
    for _ in range(10):
        acl.check(request())
    assert acl.check(request(ip="203.0.113.9")) is None
    assert acl.check(request()) is not None
    clock.now += 61
    assert acl.check(request()) is None


def test_only_the_signup_paths_count_however_they_are_spelled():
    [acl] = acls(WafRateLimitPerIp="10").values()
    for _ in range(20):
        assert acl.check(request("/hooks/registration")) is None
        assert acl.check(request("/webhooks/mandrill")) is None
    for path in ["/subscribe/token"] * 5 + ["/v1/%73ubscribe"] * 5:
        assert acl.check(request(path, method="GET")) is None
    assert acl.check(request("/SUBSCRIBE")) is not None
