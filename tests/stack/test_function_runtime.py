"""Functions run as Lambda runs them: own module root, layer on the path, own environment, warm reuse."""

import json

import pytest
import requests

from sandbox.stack.pytest_plugin import RunningStack
from sandbox.stack.workers import FunctionError, InvocationResult
from tests.stack.support import FIXTURE_SECRET_VALUE, FIXTURES

pytestmark = pytest.mark.xdist_group("local-stack-fixture")


def test_two_functions_with_app_py_never_share_a_module_or_an_environment(fixture_stack: RunningStack) -> None:
    # Given EchoFunction and OtherFunction, both handled by app.lambda_handler
    # When both are called, interleaved
    echo_first = requests.get(f"{fixture_stack.api_url}/items/1", timeout=30).json()
    other = json.loads(requests.get(f"{fixture_stack.api_url}/other", timeout=30).text)
    echo_second = requests.get(f"{fixture_stack.api_url}/items/2", timeout=30).json()

    # Then each ran its own app.py with its own FUNCTION_ROLE, globals merged underneath
    assert echo_first["module_file"] == str(FIXTURES / "functions" / "echo" / "app.py")
    assert echo_second["function_role"] == "echo"
    assert other["marker"] == "other-app-module"
    assert other["module_file"] == str(FIXTURES / "functions" / "other" / "app.py")
    assert other["environment"] == {
        "FUNCTION_ROLE": "other",
        "GREETING": "hello",
        "AWS_LAMBDA_FUNCTION_NAME": fixture_stack.resource("OtherFunction").name,
    }
    assert other["cwd"] == str(FIXTURES / "functions" / "other")


def test_the_layer_is_importable_and_the_context_is_lambda_like(fixture_stack: RunningStack) -> None:
    body = requests.get(f"{fixture_stack.api_url}/items/ctx", timeout=30).json()

    assert body["layer"] == "fixture-layer"
    context = body["context"]
    assert context["function_name"] == fixture_stack.resource("EchoFunction").name
    assert context["memory_limit_in_mb"] == "256"  # a string, as in Lambda's Python runtime
    assert context["invoked_function_arn"] == fixture_stack.resource("EchoFunction").arn
    assert 0 < context["remaining_ms"] <= 5000
    assert context["aws_request_id"]


def test_an_execution_environment_is_reused_warm(fixture_stack: RunningStack) -> None:
    # Given one invocation of a function (cold or not)
    first = fixture_stack.invoke_result("EchoFunction", {"case": "warm"})

    # When it is invoked again right after
    second = fixture_stack.invoke_result("EchoFunction", {"case": "warm"})

    # Then the same worker answered, module state intact
    def count(result: InvocationResult) -> int:
        return int(json.loads(result.payload["body"])["warm_invocations"])

    assert count(second) == count(first) + 1
    assert not second.cold_start


def test_each_function_environment_points_at_the_local_resources(fixture_stack: RunningStack) -> None:
    environment = fixture_stack.function_environment("EchoFunction")

    assert environment["AWS_ENDPOINT_URL"] == fixture_stack.moto_url
    assert environment["WORK_QUEUE_URL"] == fixture_stack.resource("WorkQueue").url
    assert environment["STATE_TABLE"] == fixture_stack.resource("StateTable").name
    assert environment["EXPORT_BUCKET"] == fixture_stack.resource("ExportBucket").name
    assert environment["SHARED_SECRET_ARN"] == fixture_stack.resource("FixtureSecret").arn
    assert environment["STACK_LABEL"] == "chimpbridge-local/us-east-1/123456789012/aws"
    assert environment["AWS_ACCESS_KEY_ID"] == "testing"
    assert environment["LAMBDA_TASK_ROOT"] == str(FIXTURES / "functions" / "echo")
    assert environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "5"


def test_a_function_past_its_timeout_is_stopped_and_the_next_call_gets_a_fresh_environment(
    fixture_stack: RunningStack,
) -> None:
    with pytest.raises(FunctionError, match=r"Task timed out after 1\.00 seconds"):
        fixture_stack.invoke("SlowFunction", {"sleep_seconds": 3})

    assert fixture_stack.invoke("SlowFunction", {"sleep_seconds": 0})["remaining_ms"] > 0


def test_resources_exist_on_moto_as_the_template_declares(fixture_stack: RunningStack) -> None:
    sqs = fixture_stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=fixture_stack.resource("WorkQueue").url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["VisibilityTimeout"] == "3"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": fixture_stack.resource("WorkDlq").arn,
        "maxReceiveCount": 2,
    }
    fifo = fixture_stack.resource("OrderedQueue")
    assert fifo.name.endswith(".fifo")
    assert (
        sqs.get_queue_attributes(QueueUrl=fifo.url, AttributeNames=["FifoQueue"])["Attributes"]["FifoQueue"] == "true"
    )
    queue_urls = sqs.list_queues()["QueueUrls"]
    assert not any("NeverCreatedQueue" in url for url in queue_urls)

    dynamodb = fixture_stack.client("dynamodb")
    table_name = fixture_stack.resource("StateTable").name
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    assert [key["AttributeName"] for key in table["KeySchema"]] == ["pk", "sk"]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by-kind"
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}

    assert fixture_stack.client("s3").head_bucket(Bucket=fixture_stack.resource("ExportBucket").name)
    secret = fixture_stack.client("secretsmanager").get_secret_value(
        SecretId=fixture_stack.resource("FixtureSecret").arn
    )
    assert json.loads(secret["SecretString"]) == FIXTURE_SECRET_VALUE
