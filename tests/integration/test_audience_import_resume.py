"""The audience import across invocations and failures, and back from the export: a run that is
interrupted or killed ends as an uninterrupted one does, and an exported audience imports back
into an empty one unchanged."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chimpbridge.dal.import_state import ImportState
from chimpbridge.errors import ImportInterrupted
from sandbox.mailchimp.client import SandboxClient
from tests.support.audience_import import ImportWorld, audience_members, csv_bytes
from tests.support.export import ExportWorld, job, wait_for_next_second
from tests.support.functions import load_function

HEADER = ["Email Address", "First Name", "Last Name", "TAGS"]
ROWS = 300


def a_file() -> bytes:
    rows = [
        [f"resume{index}@example.org", f"First{index}", f"Last{index}", '"a","b"' if index % 3 == 0 else ""]
        for index in range(ROWS)
    ]
    rows[41][0] = "not an address"
    return csv_bytes(HEADER, rows)


def report(import_world: ImportWorld, event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The results by row number (rows a run applied ahead of an interruption come earlier)."""
    rows = import_world.results(event["detail"]["object"]["key"])
    return sorted(((row["row"], row["outcome"], row["reason"]) for row in rows), key=lambda row: int(row[0]))


def test_an_interrupted_run_resumes_and_ends_as_an_uninterrupted_one(import_world: ImportWorld) -> None:
    # Given the same file for two empty audiences, one to be imported without trouble
    body = a_file()
    calm, troubled = import_world.new_audience(), import_world.new_audience()
    import_world.configure(IMPORT_MAX_ROWS_PER_INVOCATION="100")
    calm_event = import_world.upload(calm, "people.csv", body)
    calm_final = import_world.run(calm_event)
    event = import_world.upload(troubled, "people.csv", body)
    execution = uuid.uuid4().hex

    # When the other run's first invocation goes well, then Mailchimp fails half the calls
    # until an invocation is interrupted, then recovers and the state machine calls again
    current = import_world.invoke(event, execution=execution)
    assert current["done"] is False
    import_world.sandbox.faults(error_rate=0.5, statuses=[503])
    interrupted = 0
    for _ in range(20):
        try:
            current = import_world.invoke(current, execution=execution)
        except ImportInterrupted:
            interrupted += 1
            break
    import_world.sandbox.faults()
    final = import_world.run(current, execution=execution)

    # Then it was interrupted, and ended with the same members and the same report
    assert interrupted == 1
    assert final["result"]["counts"] == calm_final["result"]["counts"]
    members = audience_members(import_world.sandbox, troubled)
    assert members == audience_members(import_world.sandbox, calm) and len(members) == ROWS - 1
    assert report(import_world, event) == report(import_world, calm_event)
    summary = import_world.summary(event["detail"]["object"]["key"])
    assert summary["interruptions"] >= 1 and summary["counts"]["rows"] == ROWS


class Killed(BaseException):
    """The process dies: nothing of the invocation's own error handling runs."""


def test_a_run_killed_between_its_calls_and_its_checkpoint_resumes_with_the_same_members(
    import_world: ImportWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file for an empty audience, and a run that dies after its second chunk's calls,
    # before that chunk's checkpoint
    list_id, reference = import_world.new_audience(), import_world.new_audience()
    body = a_file()
    import_world.run(import_world.upload(reference, "people.csv", body))
    event = import_world.upload(list_id, "people.csv", body)
    save = ImportState.save_checkpoint
    saves: list[int] = []

    def dies_at_the_third_save(state: ImportState, checkpoint: Any) -> None:
        saves.append(1)
        if len(saves) == 3:  # the run's start, chunk 1, then chunk 2
            raise Killed
        save(state, checkpoint)

    monkeypatch.setattr(ImportState, "save_checkpoint", dies_at_the_third_save)
    execution = uuid.uuid4().hex
    with pytest.raises(Killed):
        import_world.invoke(event, execution=execution)
    monkeypatch.setattr(ImportState, "save_checkpoint", save)

    # When a new process runs the same execution to the end
    import_world.function = load_function("audience_import")
    final = import_world.run(event, execution=execution)

    # Then the members are those of an uninterrupted run, every row is reported once, and the
    # counts add up; the chunk applied twice reports what its second application saw (created
    # while the first application's change is recent enough to be the call's own, else unchanged)
    assert audience_members(import_world.sandbox, list_id) == audience_members(import_world.sandbox, reference)
    rows = report(import_world, event)
    assert [int(number) for number, _, _ in rows] == list(range(1, ROWS + 1))
    counts = final["result"]["counts"]
    assert counts["rows"] == ROWS and counts["skipped"] == 1
    assert counts["created"] + counts["unchanged"] == ROWS - 1
    second_chunk = {number: outcome for number, outcome, _ in rows if 51 <= int(number) <= 100}
    assert len(second_chunk) == 50 and set(second_chunk.values()) <= {"created", "unchanged"}


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_an_exported_audience_imports_back_into_an_empty_one_unchanged(
    aws_env: str, mailchimp: SandboxClient, monkeypatch: pytest.MonkeyPatch, export_format: str
) -> None:
    # Given an audience of 400 members in mixed statuses with tags, exported in full
    exporter = ExportWorld(aws_env, mailchimp, monkeypatch)
    source = uuid.uuid4().hex[:10]
    mailchimp.seed(source, 400)
    wait_for_next_second()
    result, _ = exporter.run(job(source, mode="full", format=export_format))
    manifest = exporter.manifest(result["results"][0]["manifest_key"])
    exported = exporter.body(manifest["object"]["key"])

    # When that file is imported into an empty audience by a run that trusts the file's statuses
    import_world = ImportWorld(aws_env, mailchimp, monkeypatch)
    import_world.configure(IMPORT_TRUST_CONSENT="true")
    target = import_world.new_audience()
    event = import_world.upload(target, f"export.{export_format}.gz", exported)
    import_world.run(event)

    # Then every member Mailchimp lets an API add is there with the same status, merge fields,
    # tags and language; the cleaned ones are reported, not imported
    before = audience_members(mailchimp, source)
    cleaned = {email for email, member in before.items() if member["status"] == "cleaned"}
    assert cleaned and len(before) == 400
    assert audience_members(mailchimp, target) == {e: m for e, m in before.items() if e not in cleaned}
    summary = import_world.summary(event["detail"]["object"]["key"])["counts"]
    assert summary["skipped_by_reason"] == {"status-cleaned": len(cleaned)}
    assert summary["created"] == 400 - len(cleaned) and summary["rows"] == 400


def test_an_invocation_stops_before_its_deadline_and_the_next_one_continues(import_world: ImportWorld) -> None:
    # Given invocations that must stop taking rows when less than all of their time is left
    list_id = import_world.new_audience()
    import_world.configure(IMPORT_STOP_BEFORE_DEADLINE_SECONDS="900")
    event = import_world.upload(list_id, "deadline.csv", a_file())

    # When the first invocation runs, then the state machine's loop
    first = import_world.invoke(event, execution="deadline")
    final = import_world.run(first, execution="deadline")

    # Then the first stopped after one chunk (50 rows) with its progress, and the rest followed
    assert first["done"] is False and first["progress"]["rows"] == 50
    assert final["result"]["counts"]["rows"] == ROWS
    assert import_world.summary(event["detail"]["object"]["key"])["invocations"] == ROWS // 50
