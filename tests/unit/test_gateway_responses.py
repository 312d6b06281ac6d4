"""The answers API Gateway gives itself (an unknown route, a body over 10 MB, throttling, a
function that failed) are problem JSON like the functions' own: template.yaml's
GatewayResponses, rendered the way API Gateway renders them."""

import pytest

from tests.support.gateway_responses import RESPONSE_TYPES, gateway_responses, render


def test_every_response_type_api_gateway_has_is_worded_by_the_template():
    assert sorted(gateway_responses()) == sorted(RESPONSE_TYPES)


@pytest.mark.parametrize("response_type", RESPONSE_TYPES)
def test_each_gateway_answer_is_problem_json_with_a_numeric_status(response_type):
    # When API Gateway renders the template's response for this type
    status, headers, body = render(response_type, message='Missing "Authentication" Token', request_id="req-1")

    # Then it is RFC 7807 problem JSON whose status is the number the answer carries
    assert headers["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:chimpbridge:problem:gateway"
    assert isinstance(body["status"], int) and body["status"] == status
    assert 400 <= status <= 599
    assert body["title"] and body["detail"]
    assert body["correlation_id"] == "req-1"
    # and a browser page may read it, as it reads the functions' own errors
    assert headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("response_type", "status"),
    [
        ("MISSING_AUTHENTICATION_TOKEN", 403),
        ("REQUEST_TOO_LARGE", 413),
        ("THROTTLED", 429),
        ("INTEGRATION_TIMEOUT", 504),
    ],
)
def test_the_statuses_are_api_gateways_own(response_type, status):
    assert render(response_type, message="m", request_id="r")[0] == status


def test_the_catch_all_4xx_carries_api_gateways_message_as_its_detail():
    _, _, body = render("DEFAULT_4XX", message='a "quoted" message', request_id="r")

    assert body["detail"] == 'a "quoted" message'
