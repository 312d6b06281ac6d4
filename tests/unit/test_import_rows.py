"""Reading an import file and its rows, without AWS or Mailchimp: formats, columns, tags, the
field map, statuses and consent, and the signup path's checks on each row."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from chimpbridge.errors import ImportFailed
from chimpbridge.logic.audience_import.columns import Columns, tag_names
from chimpbridge.logic.audience_import.members import Planned, RowChecker, RowResult
from chimpbridge.logic.audience_import.rows import file_format, read_rows
from chimpbridge.models.audience_import import ImportJob, is_report, list_id_of
from chimpbridge.models.import_field_map import ImportFieldMap

MERGE_FIELDS = {"FNAME": "First Name", "LNAME": "Last Name", "COMPANY": "Company"}


def checker(field_map: ImportFieldMap | None = None, *, trust: bool = False) -> RowChecker:
    field_map = field_map or ImportFieldMap()
    return RowChecker("a1b2c3d4e5", Columns(field_map, MERGE_FIELDS), field_map, trust_consent=trust)


def stream(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_csv_is_read_row_by_row_numbered_after_its_header(gzipped: bool) -> None:
    data = '\ufeffEmail Address,First Name\r\na@example.org,Ann\r\n\r\n"b@example.org","B, Jr"\r\n'.encode()
    header, rows = read_rows(stream(gzip.compress(data) if gzipped else data), "csv")
    assert header == ["Email Address", "First Name"]
    assert [(row.number, row.values) for row in rows] == [
        (1, {"Email Address": "a@example.org", "First Name": "Ann"}),
        (2, {"Email Address": "b@example.org", "First Name": "B, Jr"}),
    ]


def test_json_lines_rows_are_objects_and_anything_else_is_a_bad_row() -> None:
    data = b'{"email_address": "a@example.org", "merge_fields": {"FNAME": "Ann"}}\n[1, 2]\nnot json\n'
    header, rows = read_rows(stream(data), "jsonl")
    assert header is None
    assert [(row.number, row.problem) for row in rows] == [
        (1, None),
        (2, "the line is not a JSON object"),
        (3, "the line is not valid JSON"),
    ]


def test_json_lines_with_values_that_are_not_data_are_bad_rows_naming_where() -> None:
    # Given lines that are valid JSON to Python but hold NaN, a 4,000-digit number, a NUL, or nest deep
    data = (
        b'{"email_address": "a@example.org", "merge_fields": {"AGE": NaN}}\n'
        b'{"email_address": "b@example.org", "merge_fields": {"AGE": 1' + b"0" * 4_000 + b"}}\n"
        b'{"email_address": "c@example.org\\u0000"}\n'
        b'{"email_address": "d@example.org", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}\n"
    )
    _, rows = read_rows(stream(data), "jsonl")
    assert [(row.number, row.problem) for row in rows] == [
        (1, "not valid data at merge_fields.AGE"),
        (2, "not valid data at merge_fields.AGE"),
        (3, "not valid data at email_address"),
        (4, "the line is not valid JSON"),
    ]


def test_a_csv_without_a_header_or_with_a_column_twice_is_refused() -> None:
    with pytest.raises(ImportFailed):
        read_rows(stream(b""), "csv")
    with pytest.raises(ImportFailed):
        read_rows(stream(b"email,email\n"), "csv")


def test_the_format_comes_from_the_name_and_gzip_from_the_bytes() -> None:
    assert [file_format(key) for key in ("a.csv", "a.csv.gz", "a.jsonl.gz", "a.ndjson", "a.txt")] == [
        "csv",
        "csv",
        "jsonl",
        "jsonl",
        "csv",
    ]


def test_columns_are_found_by_tag_by_name_and_by_the_field_map() -> None:
    columns = Columns(ImportFieldMap(merge_fields={"Employer": "COMPANY"}), MERGE_FIELDS)
    assert columns("Email Address").meaning == "email"
    assert columns("first name").tag == "FNAME"
    assert columns("LNAME").tag == "LNAME"
    assert columns("Employer").tag == "COMPANY"
    assert columns("MEMBER_RATING").meaning == "ignored"
    assert columns("TAGS").meaning == "tags" and columns("STATUS").meaning == "status"


def test_a_field_map_without_any_merge_tag_takes_only_the_columns_it_names() -> None:
    columns = Columns(ImportFieldMap(merge_fields={"Employer": "COMPANY"}, any_merge_tag=False), MERGE_FIELDS)
    assert columns("FNAME").meaning == "ignored" and columns("Employer").tag == "COMPANY"


@pytest.mark.parametrize(
    ("cell", "names"),
    [
        ('"vip","fair 2024"', ["vip", "fair 2024"]),
        ("vip, fair 2024", ["vip", "fair 2024"]),
        ("", []),
        ([{"id": 1, "name": "vip"}, "fair"], ["vip", "fair"]),
    ],
)
def test_tags_are_read_as_exports_and_people_write_them(cell: object, names: list[str]) -> None:
    assert tag_names(cell) == names


def test_a_row_becomes_a_put_with_status_if_new_and_never_a_status() -> None:
    planned = checker().plan(1, {"Email Address": " Ada@Example.ORG ", "First Name": "Ada", "Tags": "vip"})
    assert isinstance(planned, Planned)
    assert planned.body == {
        "email_address": "Ada@example.org",
        "status_if_new": "pending",
        "merge_fields": {"FNAME": "Ada"},
        "tags": ["vip"],
    }


@pytest.mark.parametrize(
    ("values", "trust", "status_if_new"),
    [
        ({"consent": "yes"}, False, "pending"),
        ({"consent": "yes"}, True, "subscribed"),
        ({"consent": "no"}, True, "pending"),
        ({"status": "subscribed"}, True, "subscribed"),
        ({"status": "subscribed", "consent": "no"}, True, "pending"),
        ({"status": "unsubscribed"}, True, "unsubscribed"),
        ({"status": "transactional"}, False, "transactional"),
    ],
)
def test_consent_and_status_decide_the_status_of_new_members_only(
    values: dict[str, str], trust: bool, status_if_new: str
) -> None:
    planned = checker(trust=trust).plan(1, {"email": "ada@example.org", **values})
    assert isinstance(planned, Planned) and planned.body["status_if_new"] == status_if_new
    assert "status" not in planned.body


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"email": "ada at example.org"}, "invalid-email"),
        ({"email": ""}, "invalid-email"),
        ({"email": "ada@example.org", "FNAME": "A\u202eda"}, "invalid-field"),
        ({"email": "ada@example.org", "FNAME": "x" * 256}, "invalid-field"),
        ({"email": "ada@example.org", "status": "cleaned"}, "status-cleaned"),
        ({"email": "ada@example.org", "status": "gone"}, "invalid-field"),
    ],
)
def test_rows_the_signup_path_would_refuse_are_skipped_before_any_call(values: dict[str, str], reason: str) -> None:
    result = checker().plan(7, values)
    assert isinstance(result, RowResult) and (result.outcome, result.reason) == ("skipped", reason)


def test_a_tag_list_in_the_field_map_is_an_allowlist_and_default_tags_are_added() -> None:
    field_map = ImportFieldMap.from_document({"tags": ["vip"], "default_tags": ["imported"]})
    planned = checker(field_map).plan(1, {"email": "ada@example.org", "tags": "VIP, other"})
    assert isinstance(planned, Planned) and planned.tags == ["imported", "vip"]


def test_the_field_map_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown member"):
        ImportFieldMap.from_document({"tag": ["vip"]})
    with pytest.raises(ValueError, match="any_tag"):
        ImportFieldMap.from_document({"any_tag": "yes"})


def test_the_upload_event_names_the_object_and_keys_say_which_audience() -> None:
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "bucket"}, "object": {"key": "imports/abc123/x.csv", "etag": "e", "size": 3}},
        "action": "abort",
        "execution": "run-1",
    }
    job = ImportJob.from_event(json.loads(json.dumps(event)))
    assert (job.object.key, job.action, job.execution) == ("imports/abc123/x.csv", "abort", "run-1")
    assert list_id_of("imports/abc123/x.csv") == "abc123"
    assert list_id_of("imports/x.csv") is None and list_id_of("other/abc123/x.csv") is None
    assert is_report("imports/abc123/x.csv.results.csv.gz") and is_report("imports/abc123/x.csv.summary.json")
