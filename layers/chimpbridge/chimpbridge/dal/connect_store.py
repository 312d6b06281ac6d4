"""What the connect flow keeps in AWS: used nonces (state table, single use) and the Mailchimp
secret's new versions. Only ``connect#<nonce>`` items, only the Mailchimp secret (template IAM)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chimpbridge.dal import aws


def claim_once(table: str, nonce: str, expires_at: int) -> bool:
    """Record ``nonce`` as used; False if it was used before (a replay). The item lives until
    the token's expiry (TTL), after which the token is refused for its age anyway."""
    try:
        aws.dynamodb().put_item(
            TableName=table,
            Item={
                "pk": {"S": f"connect#{nonce}"},
                "sk": {"S": "used"},
                "expires_at": {"N": str(expires_at + 3_600)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def put_secret(secret_arn: str, value: dict[str, Any], *, drop_previous: bool = False) -> None:
    """A new current version of the secret. Other containers see it once their cache expires;
    this one at once (its cache is dropped).

    ``drop_previous``: the value replaces a credential that must not stay readable. Secrets
    Manager keeps the replaced version as AWSPREVIOUS; putting the value twice moves that label
    to the first copy, so the credential's version keeps no label (Secrets Manager deprecates
    and removes such versions)."""
    from chimpbridge import secrets  # noqa: PLC0415

    text = json.dumps(value)
    client = aws.secretsmanager()
    client.put_secret_value(SecretId=secret_arn, SecretString=text)
    if drop_previous:
        client.put_secret_value(SecretId=secret_arn, SecretString=text)
    secrets.clear_cache()
