"""The audience export against the sandbox (official SDK over HTTP) and moto (S3, DynamoDB):
what lands in S3 is exactly the audience, full and incremental, CSV and JSON Lines."""

from __future__ import annotations

import gzip
import hashlib
import random
from collections import Counter

from sandbox.mailchimp.client import SandboxClient
from tests.support.audience_world import new_list_id
from tests.support.export import (
    AUDIENCE_SIZE,
    EMAIL_AND_STATUS,
    ExportWorld,
    change_members,
    job,
    sandbox_members,
    wait_for_next_second,
)

CHANGED = 300


def test_full_csv_export_holds_every_member_with_their_status(world: ExportWorld, audience: str) -> None:
    # Given an audience of 25,000 members in mixed statuses
    truth = sandbox_members(world.sandbox, audience, fields=EMAIL_AND_STATUS)
    assert len(set(member["status"] for member in truth.values())) >= 4

    # When it is exported in full as CSV
    result, _ = world.run(job(audience, mode="full", format="csv"))

    # Then the object has a header and one row per member, with the sandbox's email and status
    manifest = world.only_manifest(audience)
    header, rows = world.csv_rows(manifest["object"]["key"])
    assert header == manifest["columns"]
    assert header[:3] == ["Email Address", "First Name", "Last Name"]
    assert len(rows) == AUDIENCE_SIZE
    assert {row["Email Address"]: row["STATUS"] for row in rows} == {
        email: member["status"] for email, member in truth.items()
    }
    assert result["results"][0]["rows"] == AUDIENCE_SIZE


def test_full_export_manifest_counts_size_and_hash_match_the_object(world: ExportWorld, audience: str) -> None:
    # Given an audience exported in full
    world.run(job(audience, mode="full"))

    # When the manifest is read
    manifest = world.only_manifest(audience)

    # Then its counts, size and SHA-256 describe the object exactly
    body = world.body(manifest["object"]["key"])
    _, rows = world.csv_rows(manifest["object"]["key"])
    assert manifest["rows"] == AUDIENCE_SIZE
    assert manifest["counts_by_status"] == dict(Counter(row["STATUS"] for row in rows))
    assert manifest["object"]["bytes"] == len(body)
    assert manifest["object"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["object"]["uncompressed_bytes"] == len(gzip.decompress(body))
    assert manifest["mode"] == "full" and manifest["window"]["since_last_changed"] is None


def test_objects_use_hive_style_keys_with_the_manifest_outside_the_data_folder(
    world: ExportWorld, audience: str
) -> None:
    # When an audience is exported
    world.run(job(audience, mode="full"))

    # Then data and manifest sit under mailchimp/audiences/<list>/dt=<day>/, apart
    data, manifest = world.keys(f"mailchimp/audiences/{audience}/")
    day = world.only_manifest(audience)["watermark"][:10]
    assert data.startswith(f"mailchimp/audiences/{audience}/dt={day}/format=csv/full-") and data.endswith(".csv.gz")
    assert manifest.startswith(f"mailchimp/audiences/{audience}/dt={day}/manifests/full-")
    assert manifest.endswith(".csv.json")


def test_incremental_export_holds_exactly_the_members_changed_since_the_last_run(
    world: ExportWorld, audience: str
) -> None:
    # Given an audience exported once, then 300 of its members changed
    world.run(job(audience, mode="incremental"))
    emails = sorted(sandbox_members(world.sandbox, audience, fields=EMAIL_AND_STATUS))
    changed = random.Random(7).sample(emails, CHANGED)
    change_members(world.sandbox, audience, changed, note="Changed")
    wait_for_next_second()

    # When the next incremental export runs
    result, _ = world.run(job(audience, mode="incremental"))

    # Then it holds exactly those 300 members, with their new values
    manifest = world.manifest(result["results"][0]["manifest_key"])
    _, rows = world.csv_rows(manifest["object"]["key"])
    assert sorted(row["Email Address"] for row in rows) == sorted(changed)
    assert {row["Last Name"] for row in rows} == {"Changed"}
    assert manifest["rows"] == CHANGED
    assert manifest["window"]["since_last_changed"] == manifest["previous_watermark"] is not None


def test_first_incremental_export_without_a_watermark_exports_everyone(world: ExportWorld, audience: str) -> None:
    # Given an audience that was never exported
    # When an incremental export runs
    result, _ = world.run(job(audience, mode="incremental"))

    # Then it holds every member
    assert result["results"][0]["rows"] == AUDIENCE_SIZE


def test_incremental_after_a_full_export_continues_from_its_watermark(world: ExportWorld, audience: str) -> None:
    # Given a full export, then 3 members changed
    world.run(job(audience, mode="full"))
    emails = sorted(sandbox_members(world.sandbox, audience, fields=EMAIL_AND_STATUS))[:3]
    change_members(world.sandbox, audience, emails, note="After full")
    wait_for_next_second()

    # When an incremental export runs
    result, _ = world.run(job(audience, mode="incremental"))

    # Then it holds those 3 only
    _, rows = world.csv_rows(world.manifest(result["results"][0]["manifest_key"])["object"]["key"])
    assert sorted(row["Email Address"] for row in rows) == emails


def test_full_jsonl_export_holds_every_member_object_without_links(world: ExportWorld, audience: str) -> None:
    # Given an audience of 25,000 members
    truth = sandbox_members(world.sandbox, audience, exclude_fields=["members._links", "_links"])

    # When it is exported in full as JSON Lines
    world.run(job(audience, mode="full", format="jsonl"))

    # Then every line is one member object exactly as the API returns it, minus _links
    manifest = world.only_manifest(audience)
    members = world.jsonl_members(manifest["object"]["key"])
    assert len(members) == AUDIENCE_SIZE
    assert {member["email_address"]: member for member in members} == truth
    assert manifest["object"]["key"].endswith(".jsonl.gz") and "/format=jsonl/" in manifest["object"]["key"]
    assert manifest["counts_by_status"] == dict(Counter(member["status"] for member in members))


def test_incremental_jsonl_export_holds_exactly_the_changed_members(world: ExportWorld, audience: str) -> None:
    # Given a JSON Lines export, then 300 members changed
    world.run(job(audience, format="jsonl"))
    emails = sorted(sandbox_members(world.sandbox, audience, fields=EMAIL_AND_STATUS))
    changed = random.Random(11).sample(emails, CHANGED)
    change_members(world.sandbox, audience, changed, note="Changed")
    wait_for_next_second()

    # When the next incremental JSON Lines export runs
    result, _ = world.run(job(audience, format="jsonl"))

    # Then it holds exactly those members, with their new values
    members = world.jsonl_members(world.manifest(result["results"][0]["manifest_key"])["object"]["key"])
    assert sorted(member["email_address"] for member in members) == sorted(changed)
    assert {member["merge_fields"]["LNAME"] for member in members} == {"Changed"}


def test_csv_and_jsonl_streams_keep_separate_watermarks(world: ExportWorld, audience: str) -> None:
    # Given a CSV incremental export
    world.run(job(audience, format="csv"))

    # When the first JSON Lines incremental export runs
    result, _ = world.run(job(audience, format="jsonl"))

    # Then it is not limited by the CSV stream's watermark: it holds everyone
    assert result["results"][0]["rows"] == AUDIENCE_SIZE


def test_a_status_selection_exports_exactly_those_statuses(world: ExportWorld, audience: str) -> None:
    # Given an audience in mixed statuses
    truth = sandbox_members(world.sandbox, audience, fields=EMAIL_AND_STATUS)
    wanted = {email for email, member in truth.items() if member["status"] in {"unsubscribed", "cleaned"}}

    # When only unsubscribed and cleaned members are exported
    world.run(job(audience, mode="full", statuses=["unsubscribed", "cleaned"]))

    # Then the export holds exactly them
    _, rows = world.csv_rows(world.only_manifest(audience)["object"]["key"])
    assert sorted(row["Email Address"] for row in rows) == sorted(wanted)
    assert {row["STATUS"] for row in rows} == {"unsubscribed", "cleaned"}


def test_a_rerun_of_the_same_schedule_tick_is_a_no_op(world: ExportWorld, audience: str) -> None:
    # Given the 02:00 tick exported
    tick = job(audience, scheduled_time="2025-01-06T02:00:00Z")
    world.run(tick)
    keys = world.keys()

    # When the same tick is delivered again
    result, _ = world.run(tick)

    # Then nothing new is written
    assert result["results"][0]["outcome"] == "already-exported"
    assert world.keys() == keys


def test_one_job_exports_several_audiences(world: ExportWorld, audience: str) -> None:
    # Given two audiences
    other = new_list_id()
    world.sandbox.seed(other, 1500)

    # When one job names both
    result, _ = world.run({"audiences": [audience, other], "mode": "full"})

    # Then each has its export
    assert [(item["list_id"], item["rows"]) for item in result["results"]] == [
        (audience, AUDIENCE_SIZE),
        (other, 1500),
    ]


def test_an_empty_window_still_publishes_an_empty_export(world: ExportWorld, audience: str) -> None:
    # Given an audience exported, with nothing changed since
    world.run(job(audience))
    wait_for_next_second()

    # When the next incremental export runs
    result, _ = world.run(job(audience))

    # Then it publishes a header-only CSV and a manifest with zero rows
    manifest = world.manifest(result["results"][0]["manifest_key"])
    header, rows = world.csv_rows(manifest["object"]["key"])
    assert rows == [] and header[0] == "Email Address"
    assert manifest["rows"] == 0 and manifest["counts_by_status"] == {}


def test_an_export_over_mailchimps_connection_cap_backs_off_and_still_holds_everyone(
    world: ExportWorld, mailchimp: SandboxClient
) -> None:
    # Given Mailchimp accepting only 2 connections at a time (429 beyond), and an export
    # allowed 4 with the template's patience for retries
    list_id = new_list_id()
    mailchimp.seed(list_id, 6000)
    world.configure(EXPORT_CONCURRENCY="4", MAILCHIMP_MAX_ATTEMPTS="10", MAILCHIMP_RETRY_BUDGET_SECONDS="60")
    mailchimp.faults(max_connections=2, latency_ms=50)
    try:
        # When it exports the audience
        result, _ = world.run(job(list_id, mode="full"))
        stats = mailchimp.stats()
    finally:
        mailchimp.faults()

    # Then it was turned away, retried, and the export holds every member once
    manifest = world.manifest(result["results"][0]["manifest_key"])
    _, rows = world.csv_rows(manifest["object"]["key"])
    assert stats["rejected_over_limit"] > 0 and manifest["retries"] > 0
    assert len(rows) == 6000 == len({row["Email Address"] for row in rows})
