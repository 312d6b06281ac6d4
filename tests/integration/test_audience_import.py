"""The audience import against the Mailchimp sandbox (official SDK over HTTP) and moto: the
function as Lambda runs it, driven as the state machine drives it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from chimpbridge.errors import ImportBusy, ImportFailed
from tests.support.audience_import import ImportWorld, audience_members, csv_bytes
from tests.support.audience_world import member_hash

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "events" / "audience-import-finished.schema.json"


def people(count: int, *, start: int = 0, domain: str = "example.org") -> list[list[str]]:
    return [[f"person{index}@{domain}", f"First{index}", f"Last{index}", ""] for index in range(start, start + count)]


HEADER = ["Email Address", "First Name", "Last Name", "TAGS"]


def test_new_people_join_as_pending_with_their_merge_fields_and_tags(import_world: ImportWorld) -> None:
    # Given a CSV of three people, one with tags, for an empty audience
    list_id = import_world.new_audience()
    rows = people(3)
    rows[0][3] = '"vip","fair 2024"'
    event = import_world.upload(list_id, "people.csv", csv_bytes(HEADER, rows))

    # When the upload's event is run to the end
    job = import_world.run(event)

    # Then every row created a pending member with its fields and tags, and the report says so
    assert job["result"]["outcome"] == "imported"
    members = audience_members(import_world.sandbox, list_id)
    assert members["person0@example.org"] == {
        "status": "pending",
        "merge_fields": {"FNAME": "First0", "LNAME": "Last0"},
        "tags": ["fair 2024", "vip"],
        "language": "",
    }
    assert {member["status"] for member in members.values()} == {"pending"}
    key = event["detail"]["object"]["key"]
    assert [(row["row"], row["outcome"]) for row in import_world.results(key)] == [
        ("1", "created"),
        ("2", "created"),
        ("3", "created"),
    ]
    summary = import_world.summary(key)
    assert summary["outcome"] == "imported"
    assert summary["counts"] == {
        "rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "skipped_by_reason": {},
    }


def test_one_percent_bad_rows_are_reported_and_only_they(import_world: ImportWorld) -> None:
    # Given 500 rows of which 5 break the signup path's rules or Mailchimp's
    list_id = import_world.new_audience()
    rows = people(500)
    bad = {
        37: ("not-an-address", "First", "Last", ""),
        111: ("bad.name@example.org", "Line\nbreak", "Last", ""),
        222: ("long.name@example.org", "x" * 300, "Last", ""),
        333: ("control@example.org", "Nul\x01", "Last", ""),
        444: ("someone@example.com", "Fake", "Domain", ""),  # Mailchimp: looks fake
    }
    for number, row in bad.items():
        rows[number - 1] = list(row)
    event = import_world.upload(list_id, "bad.csv", csv_bytes(HEADER, rows))

    # When it is imported
    import_world.run(event)

    # Then exactly those rows are skipped, with their reasons, and the counts add up
    results = {int(row["row"]): row for row in import_world.results(event["detail"]["object"]["key"])}
    skipped = {number: row["reason"] for number, row in results.items() if row["outcome"] == "skipped"}
    assert skipped == {
        37: "invalid-email",
        111: "invalid-field",
        222: "invalid-field",
        333: "invalid-field",
        444: "looks-fake",
    }
    assert len(results) == 500
    summary = import_world.summary(event["detail"]["object"]["key"])["counts"]
    assert summary["created"] == 495 and summary["skipped"] == 5 and summary["rows"] == 500
    assert len(audience_members(import_world.sandbox, list_id)) == 495


def test_existing_subscribed_member_keeps_its_status_and_gains_the_rows_tags(import_world: ImportWorld) -> None:
    # Given a subscribed member with a tag of its own
    list_id = import_world.new_audience()
    lists = import_world.sandbox.marketing_sdk().lists
    lists.set_list_member(
        list_id,
        member_hash("ada@example.org"),
        {"email_address": "ada@example.org", "status_if_new": "subscribed", "tags": ["customer"]},
    )
    rows = [["ada@example.org", "Ada", "Lovelace", "vip"], ["new@example.org", "New", "Person", ""]]
    event = import_world.upload(list_id, "mixed.csv", csv_bytes(HEADER, rows))

    # When a file that names her (no consent column) is imported
    import_world.run(event)

    # Then she is still subscribed, her fields are updated, her tags are both; the newcomer is pending
    members = audience_members(import_world.sandbox, list_id)
    assert members["ada@example.org"]["status"] == "subscribed"
    assert members["ada@example.org"]["merge_fields"] == {"FNAME": "Ada", "LNAME": "Lovelace"}
    assert members["ada@example.org"]["tags"] == ["customer", "vip"]
    assert members["new@example.org"]["status"] == "pending"
    outcomes = [row["outcome"] for row in import_world.results(event["detail"]["object"]["key"])]
    assert outcomes == ["updated", "created"]


def test_consent_makes_subscribed_only_when_the_run_trusts_it(import_world: ImportWorld) -> None:
    # Given rows with a consent column
    header = ["email", "FNAME", "consent"]
    rows = [["yes@example.org", "Yes", "yes"], ["no@example.org", "No", "no"]]
    untrusted, trusted = import_world.new_audience(), import_world.new_audience()

    # When the same rows are imported into one audience untrusted, into another trusted
    import_world.run(import_world.upload(untrusted, "consent.csv", csv_bytes(header, rows)))
    import_world.configure(IMPORT_TRUST_CONSENT="true")
    import_world.run(import_world.upload(trusted, "consent.csv", csv_bytes(header, rows)))

    # Then only the trusted run subscribes, and only the row that consented
    assert {e: m["status"] for e, m in audience_members(import_world.sandbox, untrusted).items()} == {
        "yes@example.org": "pending",
        "no@example.org": "pending",
    }
    assert {e: m["status"] for e, m in audience_members(import_world.sandbox, trusted).items()} == {
        "yes@example.org": "subscribed",
        "no@example.org": "pending",
    }


def test_the_same_file_uploaded_twice_does_nothing_the_second_time(import_world: ImportWorld) -> None:
    # Given a file imported once
    list_id = import_world.new_audience()
    body = csv_bytes(HEADER, people(20))
    first = import_world.run(import_world.upload(list_id, "twice.csv", body))
    requests_before = import_world.sandbox.stats()["requests"]

    # When the same content is uploaded again (same ETag), under another name too
    again = import_world.run(import_world.upload(list_id, "twice.csv", body))
    renamed = import_world.run(import_world.upload(list_id, "copy-of-twice.csv", body))

    # Then both runs are the first one: no call reached Mailchimp, no report was written
    assert again["result"]["outcome"] == renamed["result"]["outcome"] == "already-imported"
    assert again["result"]["results_key"] == first["result"]["results_key"]
    assert import_world.sandbox.stats()["requests"] == requests_before
    assert import_world.keys(f"imports/{list_id}/copy-of-twice.csv.") == []


def test_a_forgotten_address_is_reported_not_retried(import_world: ImportWorld) -> None:
    # Given an address deleted permanently from the audience
    list_id = import_world.new_audience()
    lists = import_world.sandbox.marketing_sdk().lists
    lists.set_list_member(
        list_id, member_hash("gone@example.org"), {"email_address": "gone@example.org", "status_if_new": "subscribed"}
    )
    lists.delete_list_member_permanent(list_id, member_hash("gone@example.org"))
    event = import_world.upload(list_id, "forgotten.csv", csv_bytes(HEADER, [["gone@example.org", "Gone", "", ""]]))

    # When a file naming it is imported
    job = import_world.run(event)

    # Then the row is skipped as forgotten and the run still finishes
    assert job["result"]["outcome"] == "imported"
    (row,) = import_world.results(event["detail"]["object"]["key"])
    assert (row["outcome"], row["reason"]) == ("skipped", "forgotten")


def test_the_finish_event_follows_its_schema_and_the_report_masks_addresses(import_world: ImportWorld) -> None:
    # Given a small import
    list_id = import_world.new_audience()
    event = import_world.upload(list_id, "event.csv.gz", csv_bytes(HEADER, people(2), gzipped=True))
    import_world.published()

    # When it runs
    import_world.run(event)

    # Then one Audience Import Finished event is on the bus, valid against its schema
    (published,) = [item for item in import_world.published() if item["source"] == "chimpbridge.import"]
    assert published["detail-type"] == "Audience Import Finished"
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(published["detail"])
    assert published["detail"]["created"] == 2 and published["detail"]["list_id"] == list_id
    # and the report does not hold the addresses in full
    emails = [row["email"] for row in import_world.results(event["detail"]["object"]["key"])]
    assert emails and all("person" not in email for email in emails)


def test_reports_and_objects_outside_imports_are_not_imported(import_world: ImportWorld) -> None:
    # Given the report of an earlier run and a file outside imports/<audience>/
    list_id = import_world.new_audience()
    report = import_world.upload(list_id, "people.csv.results.csv.gz", b"row,email\n")
    stray = import_world.upload(list_id, "x.csv", b"email\n")
    stray["detail"]["object"]["key"] = "elsewhere/x.csv"

    # When their events arrive
    outcomes = [import_world.run(event)["result"] for event in (report, stray)]

    # Then nothing is imported
    assert [outcome["outcome"] for outcome in outcomes] == ["ignored", "ignored"]


def test_a_run_that_cannot_finish_is_aborted_with_a_report_and_leaves_nothing_behind(import_world: ImportWorld) -> None:
    # Given a file for an audience that does not exist
    missing = "0123456789"
    event = import_world.upload(missing, "nowhere.csv", csv_bytes(HEADER, people(3)))
    import_world.published()
    execution = "abort-test"

    # When the run fails and the state machine's catch calls with action abort
    with pytest.raises(ImportFailed) as failure:
        import_world.invoke(event, execution=execution)
    cause = json.dumps({"errorType": "ImportFailed", "errorMessage": str(failure.value)})
    aborted = import_world.invoke(
        {**event, "action": "abort", "error": {"Error": "ImportFailed", "Cause": cause}}, execution=execution
    )

    # Then the summary and the event say aborted and why, and nothing of the run is left to block another
    assert aborted["done"] is True and aborted["result"]["outcome"] == "aborted"
    summary = import_world.summary(event["detail"]["object"]["key"])
    assert summary["outcome"] == "aborted" and "was not found" in summary["error"]
    (published,) = [item for item in import_world.published() if item["source"] == "chimpbridge.import"]
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(published["detail"])
    assert published["detail"]["outcome"] == "aborted"
    assert import_world.state_items(missing) == {}


def test_a_second_file_for_the_same_audience_waits_for_the_first(import_world: ImportWorld) -> None:
    # Given a run that has taken the audience and is not done
    list_id = import_world.new_audience()
    import_world.configure(IMPORT_MAX_ROWS_PER_INVOCATION="50")
    first = import_world.upload(list_id, "first.csv", csv_bytes(HEADER, people(120)))
    second = import_world.upload(list_id, "second.csv", csv_bytes(HEADER, people(10, start=500)))
    progress = import_world.invoke(first, execution="first")
    assert progress["done"] is False

    # When the second file's run starts, then after the first is done
    with pytest.raises(ImportBusy):
        import_world.invoke(second, execution="second")
    import_world.run(progress, execution="first")
    done = import_world.run(second, execution="second")

    # Then it waited, then ran
    assert done["result"]["outcome"] == "imported" and done["result"]["counts"]["created"] == 10
    assert len(audience_members(import_world.sandbox, list_id)) == 130


def test_a_row_mailchimp_refuses_for_a_field_is_reported_with_the_field(import_world: ImportWorld) -> None:
    # Given an audience whose COMPANY merge field is required, and a row without it
    list_id = import_world.new_audience()
    import_world.sandbox.marketing_sdk().lists.add_list_merge_field(
        list_id, {"tag": "COMPANY", "name": "Company", "type": "text", "required": True}
    )
    rows = [["one@example.org", "One", "", "", "Acme"], ["two@example.org", "Two", "", "", ""]]
    event = import_world.upload(list_id, "required.csv", csv_bytes([*HEADER, "Company"], rows))

    # When it is imported
    import_world.run(event)

    # Then the row is skipped, its reason and detail naming the field (never the address)
    first, second = import_world.results(event["detail"]["object"]["key"])
    assert first["outcome"] == "created"
    assert (second["outcome"], second["reason"]) == ("skipped", "invalid-field")
    assert second["detail"].endswith(": COMPANY") and "two@" not in second["detail"]
