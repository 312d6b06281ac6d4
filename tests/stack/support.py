"""Paths and values the local-stack tests share."""

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_TEMPLATE = FIXTURES / "template.yaml"
SAM_REFERENCE_EVENT = FIXTURES / "sam-aws-proxy-event.json"  # `sam local generate-event apigateway aws-proxy`
FIXTURE_SECRET_VALUE = {"api_key": "fixture-seeded-key"}
