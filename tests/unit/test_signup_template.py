"""The signup worker's wiring in template.yaml: how long a queued signup outlives an outage
before the DLQ, and its share of Mailchimp's 10 connections per account.
(cfn-lint checks the syntax; these check the arithmetic docs/signup.md states.)"""

from __future__ import annotations

from chimpbridge.batch import RetryBackoff
from chimpbridge.settings import MAILCHIMP_CONNECTIONS_PER_ACCOUNT, SignupWorkerSettings, parse
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
WORKER = RESOURCES["SignupWorkerFunction"]["Properties"]
HOUR = 3600


def worker_settings() -> SignupWorkerSettings:
    variables = {name: str(value) for name, value in WORKER["Environment"]["Variables"].items()}
    return parse(SignupWorkerSettings, {**variables, "SIGNUP_QUEUE_URL": "https://queue"})


def hidden_before_dead_letter(jitter_floor: bool) -> float:
    """Seconds a record that fails every receive spends hidden before SQS dead-letters it: after
    each of its maxReceiveCount receives it is hidden for the backoff of that receive."""
    config = worker_settings()
    backoff = RetryBackoff(None, config.retry_base_seconds, config.retry_max_seconds)
    receives = RESOURCES["SignupQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    ceilings = [
        min(backoff.max_seconds, backoff.base_seconds * 2 ** (receive - 1)) for receive in range(1, receives + 1)
    ]
    return sum(ceilings) / (2 if jitter_floor else 1)  # each delay is drawn from [ceiling/2, ceiling]


def test_a_queued_signup_outlives_a_four_hour_outage_before_the_dlq() -> None:
    assert hidden_before_dead_letter(jitter_floor=True) >= 4 * HOUR


def test_the_backlog_alarm_fires_well_before_any_signup_reaches_the_dlq() -> None:
    threshold = RESOURCES["SignupBacklogAlarm"]["Properties"]["Threshold"]
    assert threshold * 2 <= hidden_before_dead_letter(jitter_floor=True)


def test_the_worker_and_an_export_together_stay_within_mailchimps_connections() -> None:
    # The worker's share: records applied at once per invocation x invocations at once.
    config = worker_settings()
    scaling = WORKER["Events"]["SignupQueue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    worker = config.concurrency * scaling
    export = TEMPLATE["Parameters"]["ExportConcurrency"]["Default"]
    assert int(WORKER["Environment"]["Variables"]["MAILCHIMP_MAX_CONNECTIONS"]) == config.concurrency
    assert worker + export <= MAILCHIMP_CONNECTIONS_PER_ACCOUNT


def test_outside_export_runs_the_direct_path_keeps_connections_while_a_backlog_drains() -> None:
    config = worker_settings()
    scaling = WORKER["Events"]["SignupQueue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    direct = int(RESOURCES["SignupFunction"]["Properties"]["Environment"]["Variables"]["MAILCHIMP_MAX_CONNECTIONS"])
    assert MAILCHIMP_CONNECTIONS_PER_ACCOUNT - config.concurrency * scaling >= 2 * direct
