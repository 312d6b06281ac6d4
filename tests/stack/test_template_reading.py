"""Reading templates: short tags, intrinsics, Conditions, Globals, and the runnable view."""

from pathlib import Path

import pytest

from sandbox.stack.cfn_yaml import TemplateError, load_template_text
from sandbox.stack.intrinsics import NO_VALUE, IntrinsicResolver, PseudoParameters, resolve_parameters
from sandbox.stack.resources import LocalResources
from sandbox.stack.template import SamTemplate, merge_globals
from tests.stack.support import FIXTURE_TEMPLATE

MOTO_URL = "http://127.0.0.1:5999"  # planning only: nothing is sent there


def _resolver(text: str, overrides: dict[str, str] | None = None) -> tuple[IntrinsicResolver, dict]:
    document = load_template_text(text)
    template = SamTemplate(Path("template.yaml"), document)
    parameters = resolve_parameters(document, overrides or {})
    resources = LocalResources(template, PseudoParameters(stack_name="unit"), parameters, MOTO_URL)
    return resources.resolver, document


def test_short_tags_become_long_form() -> None:
    document = load_template_text(
        """
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      A: !Ref X
      B: !GetAtt Dlq.Arn
      C: !Sub "${AWS::Region}-x"
      D: !If [Cond, !Join ["-", [a, b]], !Select [0, !Split [",", "x,y"]]]
      E: !FindInMap [M, k1, k2]
"""
    )
    properties = document["Resources"]["Q"]["Properties"]
    assert properties["A"] == {"Ref": "X"}
    assert properties["B"] == {"Fn::GetAtt": ["Dlq", "Arn"]}
    assert properties["C"] == {"Fn::Sub": "${AWS::Region}-x"}
    assert properties["D"]["Fn::If"][1] == {"Fn::Join": ["-", ["a", "b"]]}
    assert properties["E"] == {"Fn::FindInMap": ["M", "k1", "k2"]}


@pytest.mark.parametrize(
    "text",
    [
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      Url: !ImportValue shared-queue-url\n",
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      Url: {'Fn::ImportValue': x}\n",
    ],
)
def test_import_value_is_rejected_with_a_clear_message(text: str) -> None:
    with pytest.raises(TemplateError, match=r"ImportValue.*Parameter"):
        load_template_text(text)


def test_intrinsics_resolve_against_parameters_pseudo_parameters_and_resources() -> None:
    resolver, _ = _resolver(
        """
Parameters:
  Origins: {Type: CommaDelimitedList, Default: "https://a.example,https://b.example"}
  Env: {Type: String, Default: dev}
Mappings:
  Sizes: {dev: {memory: "256"}}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
  IsProd: !Not [!Condition IsDev]
  Both: !And [!Condition IsDev, !Or [!Condition IsProd, !Equals [a, a]]]
Resources:
  Work:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
"""
    )
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}/${AWS::Region}/${AWS::AccountId}"}) == (
        "unit/us-east-1/123456789012"
    )
    assert resolver.resolve({"Fn::Sub": "${!Literal}-${Env}"}) == "${Literal}-dev"
    assert resolver.resolve({"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Env"}}]}) == "dev-x"
    assert resolver.resolve({"Fn::Join": [",", {"Ref": "Origins"}]}) == "https://a.example,https://b.example"
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "Origins"}]}) == "https://b.example"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "memory"]}) == "256"
    assert resolver.condition("Both") is True
    assert resolver.resolve({"Fn::If": ["IsProd", "prod", {"Ref": "AWS::NoValue"}]}) is NO_VALUE
    assert resolver.resolve({"Keep": 1, "Drop": {"Ref": "AWS::NoValue"}}) == {"Keep": 1}
    assert resolver.resolve({"Ref": "Work"}) == f"{MOTO_URL}/123456789012/unit-Work"
    assert resolver.resolve({"Fn::GetAtt": ["Work", "Arn"]}) == "arn:aws:sqs:us-east-1:123456789012:unit-Work"
    assert resolver.resolve({"Fn::GetAtt": ["Work", "QueueName"]}) == "unit-Work"
    assert resolver.resolve({"Fn::Sub": "${Bucket.Arn}/*"}) == "arn:aws:s3:::unit-bucket/*"


def test_a_parameter_without_default_or_local_value_is_named_in_the_error() -> None:
    resolver, _ = _resolver("Parameters:\n  ListId: {Type: String}\nResources: {}\n")
    with pytest.raises(TemplateError, match="ListId"):
        resolver.resolve({"Ref": "ListId"})


def test_an_override_for_an_undeclared_parameter_is_refused() -> None:
    with pytest.raises(TemplateError, match="Typo"):
        _resolver("Parameters: {}\nResources: {}\n", {"Typo": "x"})


def test_globals_merge_like_sam() -> None:
    merged = merge_globals(
        {"Timeout": 3, "Layers": ["g"], "Environment": {"Variables": {"A": "g", "B": "g"}}},
        {"Timeout": 9, "Layers": ["f"], "Environment": {"Variables": {"B": "f"}}},
    )
    assert merged == {"Timeout": 9, "Layers": ["g", "f"], "Environment": {"Variables": {"A": "g", "B": "f"}}}
    assert merge_globals({"Value": {"Ref": "X"}}, {"Value": {"Fn::Sub": "y"}}) == {"Value": {"Fn::Sub": "y"}}


def test_the_fixture_template_becomes_functions_routes_and_queue_sources() -> None:
    template = SamTemplate.load(FIXTURE_TEMPLATE)
    document = template.document
    resources = LocalResources(
        template, PseudoParameters(stack_name="unit"), resolve_parameters(document, {}), MOTO_URL
    )
    application = template.application(resources.resolver, "unit")

    echo = application.functions["EchoFunction"]
    assert echo.code_dir == FIXTURE_TEMPLATE.parent / "functions" / "echo"
    assert echo.layer_dirs == (FIXTURE_TEMPLATE.parent / "layers" / "fixture_layer",)
    assert (echo.timeout_seconds, echo.memory_mb, echo.architecture) == (5, 256, "arm64")
    assert echo.environment["FUNCTION_ROLE"] == "echo"
    assert echo.environment["WORK_QUEUE_NAME"] == "unit-WorkQueue"
    assert echo.environment["DLQ_ARN"] == "arn:aws:sqs:us-east-1:123456789012:unit-WorkDlq"
    assert application.functions["SlowFunction"].timeout_seconds == 1

    routes = {(route.method, route.path): route.function_id for route in application.routes}
    assert routes[("GET", "/items/{item_id}")] == "EchoFunction"
    assert routes[("ANY", "/files/{proxy+}")] == "EchoFunction"
    assert routes[("GET", "/other")] == "OtherFunction"
    api = application.apis["Api"]
    assert api.stage_name == "v1"
    assert api.cors is not None
    assert api.cors.allow_origins == ("https://app.example.com", "https://www.example.com")
    assert api.binary_media_types == ("image/png", "application/octet-stream")

    (source,) = application.sqs_sources
    assert (source.function_id, source.queue_logical_id, source.batch_size) == ("ConsumerFunction", "WorkQueue", 5)
    assert source.report_batch_item_failures
    assert source.maximum_concurrency == 2
    assert any("ScheduleV2" in note for note in application.notes)


def test_resources_are_created_after_the_resources_they_refer_to() -> None:
    template = SamTemplate.load(FIXTURE_TEMPLATE)
    resources = LocalResources(
        template, PseudoParameters(stack_name="unit"), resolve_parameters(template.document, {}), MOTO_URL
    )
    order = resources.creatable_ids()
    assert order.index("WorkDlq") < order.index("WorkQueue")
    assert "NeverCreatedQueue" not in order
    assert "FixtureSecret" in order
