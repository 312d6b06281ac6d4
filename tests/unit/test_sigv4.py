from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chimpbridge.sigv4 import sign_json_request

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SERVICE, REGION, TARGET = "secretsmanager", "eu-west-1", "secretsmanager.GetSecretValue"


def ours(url, body, token, moment):
    """Our headers for a GetSecretValue call at ``moment``."""
    return sign_json_request(
        url=url,
        service=SERVICE,
        region=REGION,
        target=TARGET,
        body=body,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        session_token=token,
        now=moment,
    )


def botocore_authorization(url, body, token, moment):
    """What botocore itself signs for the same request at the same moment."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET},
    )
    request.context["timestamp"] = moment.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), SERVICE, REGION)
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    if token:
        request.headers["X-Amz-Security-Token"] = token
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    return signature, auth.signed_headers(auth.headers_to_sign(request))


def test_signature_matches_botocore_with_session_token():
    # Given a Secrets Manager call at a fixed moment
    moment = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)
    url, body = "https://secretsmanager.eu-west-1.amazonaws.com/", b'{"SecretId": "x"}'
    # When we sign it
    headers = ours(url, body, "token/with+chars", moment)
    # Then botocore computes the same signature over the same signed headers
    signature, signed = botocore_authorization(url, body, "token/with+chars", moment)
    assert f"SignedHeaders={signed}, Signature={signature}" in headers["authorization"]
    assert headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/eu-west-1/secretsmanager/"
    )


def test_signature_matches_botocore_for_endpoint_with_port():
    # Given a local endpoint with a port and no session token
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    url, body = "http://127.0.0.1:5000/", b"{}"
    headers = ours(url, body, None, moment)
    # Then the host header keeps the port and the signature still matches botocore's
    signature, _ = botocore_authorization(url, body, None, moment)
    assert headers["host"] == "127.0.0.1:5000"
    assert headers["authorization"].endswith(f"Signature={signature}")
    assert "x-amz-security-token" not in headers
