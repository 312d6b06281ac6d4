"""BASELINE FOR BENCHMARKS ONLY, NOT PART OF THE PRODUCT: a signup Lambda written the way the
tutorials do it, so bench/bench_signup_*.py can compare chimpbridge's POST /subscribe against it.

What makes it the tutorial way (each is a DESIGN.md "fact a naive implementation gets wrong"):
a boto3 Secrets Manager client at import, a new Marketing SDK client per call (a new TCP
connection each time), ``POST /lists/{id}/members`` (a second signup is "Member Exists"), and
no retry: a 429 or 503 from Mailchimp goes straight back to the person, and the signup is lost.
It honours MAILCHIMP_API_URL only so that it can talk to the local sandbox.
"""

import json
import os

import boto3
import mailchimp_marketing
from mailchimp_marketing.api_client import ApiClientError

secrets_manager = boto3.client("secretsmanager")
api_key = None


def lambda_handler(event, context):
    global api_key  # noqa: PLW0603 - cached across warm invocations, as tutorials do
    if api_key is None:
        secret = secrets_manager.get_secret_value(SecretId=os.environ["MAILCHIMP_SECRET_ARN"])
        api_key = json.loads(secret["SecretString"])["api_key"]

    body = json.loads(event.get("body") or "{}")
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key, "server": api_key.split("-")[-1]})
    if os.environ.get("MAILCHIMP_API_URL"):
        client.api_client.host = os.environ["MAILCHIMP_API_URL"]

    try:
        client.lists.add_list_member(
            os.environ["MAILCHIMP_LIST_ID"], {"email_address": body["email"], "status": "pending"}
        )
    except ApiClientError as error:
        return {"statusCode": error.status_code or 500, "body": json.dumps({"error": str(error.text)})}
    return {"statusCode": 200, "body": json.dumps({"status": "pending", "message": "Thanks for subscribing!"})}
