"""The abuse protections' wiring in template.yaml: the WAF web ACL and its association, reserved
concurrency on every function behind the API (and only there), the signup function's access to
its per-address counters. (cfn-lint checks the syntax; these check what docs/security.md says.)"""

from __future__ import annotations

from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]


def functions(*, behind_the_api: bool) -> dict[str, dict]:
    found = {}
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        events = (resource["Properties"].get("Events") or {}).values()
        if any(event["Type"] == "Api" for event in events) == behind_the_api:
            found[logical_id] = resource["Properties"]
    return found


def test_every_function_behind_the_api_has_the_reserved_concurrency_parameter() -> None:
    expected = {
        "Fn::If": ["ReservePublicConcurrency", {"Ref": "PublicFunctionReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    public = functions(behind_the_api=True)
    assert {"SignupFunction", "RegistrationHookFunction", "MailchimpWebhookFunction"} <= public.keys()
    assert {name: props.get("ReservedConcurrentExecutions") for name, props in public.items()} == {
        name: expected for name in public
    }


def test_queue_workers_keep_the_unreserved_pool() -> None:
    assert [
        name for name, props in functions(behind_the_api=False).items() if "ReservedConcurrentExecutions" in props
    ] == []


def test_no_reserved_concurrency_and_no_web_acl_by_default() -> None:
    assert (PARAMETERS["PublicFunctionReservedConcurrency"]["Default"], PARAMETERS["WafRateLimitPerIp"]["Default"]) == (
        0,
        "0",
    )
    assert RESOURCES["ApiWebAcl"]["Condition"] == RESOURCES["ApiWebAclAssociation"]["Condition"] == "UseWafRateLimit"


def test_the_web_acl_is_regional_on_the_api_stage_with_one_rate_rule_per_ip() -> None:
    acl = RESOURCES["ApiWebAcl"]["Properties"]
    assert (acl["Scope"], acl["DefaultAction"]) == ("REGIONAL", {"Allow": {}})
    [rule] = acl["Rules"]
    statement = rule["Statement"]["RateBasedStatement"]
    assert (statement["AggregateKeyType"], statement["Limit"]) == ("IP", {"Ref": "WafRateLimitPerIp"})
    assert statement["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"] == "/subscribe"
    block = rule["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 429
    assert [header["Name"] for header in block["ResponseHeaders"]] == ["Retry-After"]
    association = RESOURCES["ApiWebAclAssociation"]["Properties"]
    assert "/restapis/${Api}/stages/${Api.Stage}" in association["ResourceArn"]["Fn::Sub"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}


def test_the_signup_function_reads_and_writes_only_its_address_counters() -> None:
    statements = RESOURCES["SignupFunction"]["Properties"]["Policies"][0]["Statement"]

    def actions(statement: dict) -> list[str]:
        return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]

    dynamodb = [statement for statement in statements if any("dynamodb" in action for action in actions(statement))]
    assert dynamodb == [
        {
            "Sid": "CountSignupsPerAddress",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Resource": {"Fn::GetAtt": ["StateTable", "Arn"]},
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["signup-limit#*"]}},
        }
    ]
