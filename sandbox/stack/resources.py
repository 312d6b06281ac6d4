"""Name the template's resources locally and create them on moto.

Physical names are deterministic (``<stack>-<LogicalId>`` unless the template names the
resource), so ``make invoke`` finds what ``make dev`` created and the SAM env file can name
them without a running stack. Creation is idempotent ("ensure"): running it against a moto
that already has the resources changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.stack.intrinsics import IntrinsicResolver, PseudoParameters, resolve_parameters
from sandbox.stack.local_config import TESTING_CREDENTIAL, local_parameter_values
from sandbox.stack.template import IMPLICIT_REST_API_ID, SamTemplate

LOG = logging.getLogger(__name__)

QUEUE = "AWS::SQS::Queue"
TABLE = "AWS::DynamoDB::Table"
SIMPLE_TABLE = "AWS::Serverless::SimpleTable"
BUCKET = "AWS::S3::Bucket"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type, not a password
EVENT_BUS = "AWS::Events::EventBus"
EVENT_RULE = "AWS::Events::Rule"
CREATED_ON_MOTO = (QUEUE, TABLE, SIMPLE_TABLE, BUCKET, SECRET, EVENT_BUS, EVENT_RULE)
# Locally, every event published on a bus is also copied to "<bus>-published" (kept an hour).
EVENT_TAP_SUFFIX = "-published"
EVENT_TAP_RULE = "local-every-event"
NOT_EMULATED = {
    "AWS::Scheduler::Schedule": "schedules do not fire locally; run the function with make invoke",
    "AWS::StepFunctions::StateMachine": "state machines do not run locally",
    "AWS::Serverless::StateMachine": (
        "state machines do not run locally, but for their EventBridge rules' events (sandbox/stack/state_machines.py)"
    ),
    "Custom::MailchimpWebhooks": (
        "custom resources do not run locally; register the webhook in the sandbox with "
        "make invoke FN=MailchimpWebhookRegistrarFunction EVENT=events/mailchimp_webhook_registrar/create.json"
    ),
}

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
_SIMPLE_TABLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}


@dataclass
class PhysicalResource:
    """What a template resource is called locally. ``ref`` is what ``!Ref`` returns."""

    logical_id: str
    resource_type: str
    name: str
    arn: str
    url: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        if self.resource_type == QUEUE and self.url:
            return self.url
        if self.resource_type in (SECRET, "AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return self.arn
        if "StateMachine" in self.resource_type or "Topic" in self.resource_type:
            return self.arn
        return self.name

    def get_att(self, attribute: str) -> str:
        known = {"Arn": self.arn, "Name": self.name, **self.attributes}
        if self.resource_type == QUEUE:
            known |= {"QueueName": self.name, "QueueUrl": self.url or ""}
        if self.resource_type == BUCKET:
            known |= {
                "DomainName": f"{self.name}.s3.amazonaws.com",
                "RegionalDomainName": f"{self.name}.s3.us-east-1.amazonaws.com",
            }
        # Attributes of resources nobody runs locally (alarm ARNs, role ids) only need to be
        # strings that look plausible, so unknown ones are derived rather than refused.
        return known.get(attribute, f"{self.arn}/{attribute}")


def _references_in(value: Any) -> set[str]:
    """Logical ids a property value refers to (Ref, GetAtt, Sub), for creation order."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(str(item[0] if isinstance(item, list) else item.split(".")[0]))
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", str(text)))
                found.update(_references_in(item))
            else:
                found.update(_references_in(item))
    elif isinstance(value, list):
        for item in value:
            found.update(_references_in(item))
    return found


class LocalResources:
    """Plans physical names for every resource and creates the ones moto can hold."""

    def __init__(
        self,
        template: SamTemplate,
        pseudo: PseudoParameters,
        parameters: Mapping[str, Any],
        moto_url: str,
    ) -> None:
        self.template = template
        self.pseudo = pseudo
        self.moto_url = moto_url
        self.resolver = IntrinsicResolver(template.document, parameters, pseudo, self)
        self._physical: dict[str, PhysicalResource] = {}
        self._planning: set[str] = set()
        self.notes: list[str] = []

    # -- ResourceReferences -------------------------------------------------------------------
    def ref(self, logical_id: str) -> str:
        return self.physical(logical_id).ref

    def get_att(self, logical_id: str, attribute: str) -> str:
        return self.physical(logical_id).get_att(attribute)

    # -- naming ---------------------------------------------------------------------------------
    def physical(self, logical_id: str) -> PhysicalResource:
        if logical_id not in self._physical:
            if logical_id in self._planning:
                raise ValueError(f"circular reference through {logical_id}")
            self._planning.add(logical_id)
            try:
                self._physical[logical_id] = self._plan(logical_id)
            finally:
                self._planning.discard(logical_id)
        return self._physical[logical_id]

    def _plan(self, logical_id: str) -> PhysicalResource:
        resource = self.template.resources.get(logical_id) or {}
        resource_type = str(resource.get("Type", "AWS::CloudFormation::Implicit"))
        properties = resource.get("Properties") or {}
        stack, region, account = self.pseudo.stack_name, self.pseudo.region, self.pseudo.account_id
        default_name = f"{stack}-{logical_id}"

        def named(property_name: str, fallback: str) -> str:
            value = properties.get(property_name)
            return str(self.resolver.resolve(value)) if value is not None else fallback

        if resource_type == QUEUE:
            is_fifo = str(self.resolver.resolve(properties.get("FifoQueue", False))).lower() == "true"
            name = named("QueueName", default_name + (".fifo" if is_fifo else ""))
            return PhysicalResource(
                logical_id,
                resource_type,
                name,
                arn=f"arn:aws:sqs:{region}:{account}:{name}",
                url=f"{self.moto_url}/{account}/{name}",
            )
        if resource_type in (TABLE, SIMPLE_TABLE):
            name = named("TableName", default_name)
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            return PhysicalResource(
                logical_id, resource_type, name, arn, attributes={"StreamArn": f"{arn}/stream/local"}
            )
        if resource_type == BUCKET:
            name = named("BucketName", default_name.lower())
            return PhysicalResource(logical_id, resource_type, name, arn=f"arn:aws:s3:::{name}")
        if resource_type == SECRET:
            name = named("Name", f"{stack}/{logical_id}")
            # moto appends a random suffix to a secret ARN; until created, the name serves as
            # SecretId just as well (GetSecretValue accepts either).
            return PhysicalResource(logical_id, resource_type, name, arn=name)
        if resource_type == EVENT_BUS:
            name = named("Name", default_name)
            return PhysicalResource(
                logical_id, resource_type, name, f"arn:aws:events:{region}:{account}:event-bus/{name}"
            )
        if resource_type == EVENT_RULE:
            name = named("Name", default_name)
            bus = properties.get("EventBusName")
            bus_name = str(self.resolver.resolve(bus)).rsplit("/", 1)[-1] if bus is not None else "default"
            rule_path = name if bus_name == "default" else f"{bus_name}/{name}"
            return PhysicalResource(
                logical_id, resource_type, name, f"arn:aws:events:{region}:{account}:rule/{rule_path}"
            )
        if resource_type == "AWS::Serverless::Function":
            name = named("FunctionName", default_name)
            return PhysicalResource(
                logical_id, resource_type, name, f"arn:aws:lambda:{region}:{account}:function:{name}"
            )
        if resource_type in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return PhysicalResource(
                logical_id, resource_type, default_name, f"arn:aws:lambda:{region}:{account}:layer:{default_name}:1"
            )
        if resource_type == "AWS::Serverless::Api" or logical_id == IMPLICIT_REST_API_ID:
            api_id = re.sub(r"[^a-z0-9]", "", logical_id.lower())[:10] or "localapi"
            return PhysicalResource(
                logical_id, resource_type, api_id, f"arn:aws:apigateway:{region}::/restapis/{api_id}"
            )
        service = resource_type.split("::")[1].lower() if resource_type.count("::") >= 2 else "cloudformation"
        return PhysicalResource(
            logical_id, resource_type, default_name, f"arn:aws:{service}:{region}:{account}:{default_name}"
        )

    # -- creation -------------------------------------------------------------------------------
    def creatable_ids(self) -> list[str]:
        """Resources moto holds, those that others refer to first (a DLQ before its queue)."""
        creatable = {
            logical_id
            for logical_id, resource in self.template.resources.items()
            if resource.get("Type") in CREATED_ON_MOTO and self.resolver.resource_is_created(logical_id)
        }
        graph = {
            logical_id: _references_in(self.template.resources[logical_id].get("Properties")) & creatable
            for logical_id in sorted(creatable)
        }
        return list(TopologicalSorter(graph).static_order())

    def ensure_created(self, secret_seeds: Mapping[str, Callable[[], dict[str, Any]]]) -> None:
        self.ensure(self.creatable_ids(), secret_seeds)
        for logical_id, resource in self.template.resources.items():
            why = NOT_EMULATED.get(str(resource.get("Type")))
            if why:
                self.notes.append(f"{logical_id}: {why}")

    def ensure(
        self, logical_ids: Iterable[str], secret_seeds: Mapping[str, Callable[[], dict[str, Any]]] | None = None
    ) -> None:
        """Create the named resources (in creation order); each must be one moto holds."""
        wanted = set(logical_ids)
        creatable = self.creatable_ids()
        unknown = wanted - set(creatable)
        if unknown:
            raise KeyError(f"not resources this template creates on moto: {', '.join(sorted(unknown))}")
        seeds = secret_seeds or {}
        creators: dict[str, Callable[[str], None]] = {
            QUEUE: self._ensure_queue,
            TABLE: self._ensure_table,
            SIMPLE_TABLE: self._ensure_simple_table,
            BUCKET: self._ensure_bucket,
            SECRET: lambda logical_id: self._ensure_secret(logical_id, seeds.get(logical_id)),
            EVENT_BUS: self._ensure_event_bus,
            EVENT_RULE: self._ensure_event_rule,
        }
        for logical_id in creatable:
            if logical_id in wanted:
                creators[self.template.resources[logical_id]["Type"]](logical_id)

    def client(self, service: str) -> Any:
        session: Any = boto3.session.Session()  # Any: the stubs type client() per literal service name
        return session.client(
            service,
            endpoint_url=self.moto_url,
            region_name=self.pseudo.region,
            aws_access_key_id=TESTING_CREDENTIAL,
            aws_secret_access_key=TESTING_CREDENTIAL,
            aws_session_token=TESTING_CREDENTIAL,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def _properties(self, logical_id: str) -> dict[str, Any]:
        resolved = self.resolver.resolve(self.template.resources[logical_id].get("Properties") or {})
        return dict(resolved)

    def _ensure_queue(self, logical_id: str) -> None:
        properties = self._properties(logical_id)
        attributes: dict[str, str] = {}
        for name in _QUEUE_ATTRIBUTES:
            if name not in properties:
                continue
            value = properties[name]
            if isinstance(value, dict):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            attributes[name] = str(value)
        physical = self.physical(logical_id)
        sqs = self.client("sqs")
        try:
            response = sqs.create_queue(QueueName=physical.name, Attributes=attributes)
        except ClientError as error:
            if "QueueAlreadyExists" not in str(error):
                raise
            response = sqs.get_queue_url(QueueName=physical.name)
            mutable = {key: value for key, value in attributes.items() if key not in ("FifoQueue",)}
            sqs.set_queue_attributes(QueueUrl=response["QueueUrl"], Attributes=mutable)
        physical.url = response["QueueUrl"]

    def _ensure_table(self, logical_id: str) -> None:
        properties = self._properties(logical_id)
        request: dict[str, Any] = {
            "TableName": self.physical(logical_id).name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        provisioned = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if request["BillingMode"] != "PAY_PER_REQUEST":
            request["ProvisionedThroughput"] = properties.get("ProvisionedThroughput", provisioned)
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if properties.get(index_kind):
                indexes = [dict(index) for index in properties[index_kind]]
                if index_kind == "GlobalSecondaryIndexes" and request["BillingMode"] != "PAY_PER_REQUEST":
                    for index in indexes:
                        index.setdefault("ProvisionedThroughput", provisioned)
                request[index_kind] = indexes
        stream = properties.get("StreamSpecification")
        if stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        self._create_table(request, properties.get("TimeToLiveSpecification"))

    def _ensure_simple_table(self, logical_id: str) -> None:
        properties = self._properties(logical_id)
        key = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        request: dict[str, Any] = {
            "TableName": self.physical(logical_id).name,
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": key["Name"], "AttributeType": _SIMPLE_TABLE_TYPES[key.get("Type", "String")]}
            ],
        }
        if properties.get("ProvisionedThroughput"):
            request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
        else:
            request["BillingMode"] = "PAY_PER_REQUEST"
        self._create_table(request, None)

    def _create_table(self, request: dict[str, Any], time_to_live: Mapping[str, Any] | None) -> None:
        dynamodb = self.client("dynamodb")
        try:
            dynamodb.create_table(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        if time_to_live and str(time_to_live.get("Enabled", False)).lower() == "true":
            dynamodb.update_time_to_live(
                TableName=request["TableName"],
                TimeToLiveSpecification={"AttributeName": time_to_live["AttributeName"], "Enabled": True},
            )

    def _ensure_bucket(self, logical_id: str) -> None:
        name = self.physical(logical_id).name
        s3 = self.client("s3")
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        # Versioning changes what a delete does (a delete marker unless the version is named).
        versioning = self._properties(logical_id).get("VersioningConfiguration") or {}
        if versioning.get("Status") in ("Enabled", "Suspended"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
        # Object events to EventBridge (moto then routes them through the default bus's rules).
        notifications = self._properties(logical_id).get("NotificationConfiguration") or {}
        eventbridge = notifications.get("EventBridgeConfiguration") or {}
        if str(eventbridge.get("EventBridgeEnabled", "false")).lower() == "true":
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _ensure_secret(self, logical_id: str, seed: Callable[[], dict[str, Any]] | None) -> None:
        properties = self._properties(logical_id)
        physical = self.physical(logical_id)
        seed_value = None
        if seed is not None:
            try:
                seed_value = seed()
            except ImportError as error:
                self.notes.append(f"{logical_id}: not seeded, the Mailchimp sandbox is unavailable ({error})")
        if seed_value is not None:
            secret_string = json.dumps(seed_value)
        elif "SecretString" in properties:
            secret_string = str(properties["SecretString"])
        else:
            secret_string = "{}"  # noqa: S105 - an empty JSON object
        secrets = self.client("secretsmanager")
        try:
            response = secrets.create_secret(Name=physical.name, SecretString=secret_string)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceExistsException":
                raise
            # Keep what is there: someone may have changed the local secret on purpose.
            response = secrets.describe_secret(SecretId=physical.name)
        physical.arn = response["ARN"]

    def _ensure_event_bus(self, logical_id: str) -> None:
        """The bus, and (local only) a tap: a rule that copies every event published on it to a
        queue of its own, so people and tests can see what was published."""
        physical = self.physical(logical_id)
        events = self.client("events")
        try:
            events.create_event_bus(Name=physical.name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        sqs = self.client("sqs")
        tap_name = f"{physical.name}{EVENT_TAP_SUFFIX}"
        tap_url = sqs.create_queue(QueueName=tap_name, Attributes={"MessageRetentionPeriod": "3600"})["QueueUrl"]
        every_event = {"account": [self.pseudo.account_id]}
        events.put_rule(Name=EVENT_TAP_RULE, EventBusName=physical.name, EventPattern=json.dumps(every_event))
        tap_arn = f"arn:aws:sqs:{self.pseudo.region}:{self.pseudo.account_id}:{tap_name}"
        events.put_targets(Rule=EVENT_TAP_RULE, EventBusName=physical.name, Targets=[{"Id": "tap", "Arn": tap_arn}])
        physical.attributes["TapQueueUrl"] = tap_url

    def _ensure_event_rule(self, logical_id: str) -> None:
        """The rule, routing to its queue targets as EventBridge would (moto delivers to SQS).
        A DISABLED rule gets no targets: moto would deliver through it anyway."""
        properties = self._properties(logical_id)
        bus_name = str(properties.get("EventBusName", "default")).rsplit("/", 1)[-1]
        rule = self.physical(logical_id).name
        state = str(properties.get("State", "ENABLED"))
        events = self.client("events")
        request: dict[str, Any] = {"Name": rule, "EventBusName": bus_name, "State": state}
        if "EventPattern" in properties:
            pattern = properties["EventPattern"]
            request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in properties:
            request["ScheduleExpression"] = properties["ScheduleExpression"]
        events.put_rule(**request)
        targets = []
        for target in properties.get("Targets") or []:
            arn = str(target.get("Arn", ""))
            if arn.startswith("arn:aws:sqs:"):
                targets.append({"Id": str(target["Id"]), "Arn": arn})
            else:
                self.notes.append(f"{logical_id}: target {target.get('Id')} is not emulated (only queues are)")
        if state != "ENABLED":
            self.notes.append(f"{logical_id}: {state}, routes nothing")
        elif targets:
            events.put_targets(Rule=rule, EventBusName=bus_name, Targets=targets)

    def all_physical(self, logical_ids: Iterable[str] | None = None) -> dict[str, PhysicalResource]:
        ids = logical_ids if logical_ids is not None else self.template.resources.keys()
        return {logical_id: self.physical(logical_id) for logical_id in ids}


def create_from_template(
    template_path: Path, moto_url: str, logical_ids: Iterable[str], *, stack_name: str
) -> dict[str, PhysicalResource]:
    """Some of a template's resources, created on moto exactly as the local stack creates them,
    named after ``stack_name`` (tests and benchmarks pass a unique one): a table or bucket made
    this way cannot drift from the template."""
    template = SamTemplate.load(template_path)
    declared = template.document.get("Parameters") or {}
    parameters = resolve_parameters(template.document, local_parameter_values(declared))
    resources = LocalResources(template, PseudoParameters(stack_name=stack_name), parameters, moto_url)
    ids = list(logical_ids)
    resources.ensure(ids)
    return resources.all_physical(ids)
