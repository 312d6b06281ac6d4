"""Writing the Mandrill webhook keys secret (reads go through chimpbridge/secrets.py)."""

from __future__ import annotations

import json

from chimpbridge import secrets
from chimpbridge.dal import aws


def store_current_key(secret_arn: str, key: str) -> None:
    """Make ``key`` the first of ``webhook_keys``, keeping the one before it (a rotation)."""
    current = secrets.get_secret(secret_arn, secrets.MandrillWebhookKeys, force=True).accepted_keys
    keys = [key, *[k for k in current if k != key]][:2]
    if keys != current:
        aws.secretsmanager().put_secret_value(SecretId=secret_arn, SecretString=json.dumps({"webhook_keys": keys}))
        secrets.clear_cache()
