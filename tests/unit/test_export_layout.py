"""What an export file looks like: Mailchimp's CSV layout, JSON Lines without links, keys."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from chimpbridge.logic.export.layout import (
    csv_encoder,
    csv_header,
    data_key,
    jsonl_encoder,
    layout_for,
    manifest_key,
    object_base_name,
)
from chimpbridge.models.export import CsvColumn

MERGE_FIELDS = [
    CsvColumn(tag="FNAME", name="First Name"),
    CsvColumn(tag="LNAME", name="Last Name"),
    CsvColumn(tag="ADDRESS", name="Address", type="address"),
    CsvColumn(tag="COMPANY", name="Company, Inc."),
]


def member(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "5d41402abc4b2a76b9719d911017c592",
        "email_address": "ada@example.org",
        "unique_email_id": "a1b2c3d4e5",
        "web_id": 123456,
        "status": "subscribed",
        "merge_fields": {
            "FNAME": "Ada",
            "LNAME": 'Lovelace "The Countess"',
            "ADDRESS": {
                "addr1": "12 St James's Sq",
                "addr2": "",
                "city": "London",
                "state": "",
                "zip": "SW1Y 4JH",
                "country": "GB",
            },
            "COMPANY": "Analytical Engines, Ltd.",
        },
        "member_rating": 4,
        "timestamp_signup": "2024-03-14T09:12:31+00:00",
        "ip_signup": "203.0.113.7",
        "timestamp_opt": "2024-03-14T09:14:00+00:00",
        "ip_opt": "203.0.113.8",
        "location": {
            "latitude": 51.5,
            "longitude": -0.13,
            "gmtoff": 0,
            "dstoff": 1,
            "country_code": "GB",
            "timezone": "Europe/London",
            "region": "ENG",
        },
        "last_changed": "2024-05-01T10:00:00+00:00",
        "language": "en",
        "last_note": {"note": "met at\na conference"},
        "tags": [{"id": 1, "name": "vip"}, {"id": 2, "name": "newsletter"}],
        "_links": [{"rel": "self", "href": "https://us21.api.mailchimp.com/3.0/lists/x/members/y"}],
    }
    document.update(overrides)
    return document


def parsed_row(line: str) -> dict[str, str]:
    header = next(csv.reader(io.StringIO(csv_header(MERGE_FIELDS))))
    (row,) = list(csv.reader(io.StringIO(line)))
    return dict(zip(header, row, strict=True))


def test_the_csv_header_is_mailchimps_export_layout_then_status_and_language() -> None:
    # When the header is made for an audience's merge fields
    header = next(csv.reader(io.StringIO(csv_header(MERGE_FIELDS))))

    # Then it reads like Mailchimp's own export, merge fields by name, our two columns last
    assert header == [
        "Email Address", "First Name", "Last Name", "Address", "Company, Inc.",
        "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE",
        "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION", "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS",
        "STATUS", "LANGUAGE",
    ]  # fmt: skip


def test_a_member_becomes_one_csv_row_with_mailchimps_values() -> None:
    # When a member is encoded
    row = parsed_row(csv_encoder(MERGE_FIELDS)(member()).line)

    # Then each column holds what Mailchimp's export would
    assert row["Email Address"] == "ada@example.org"
    assert row["Last Name"] == 'Lovelace "The Countess"'
    assert row["Address"] == "12 St James's Sq    London    SW1Y 4JH  GB"
    assert row["Company, Inc."] == "Analytical Engines, Ltd."
    assert (row["OPTIN_TIME"], row["CONFIRM_TIME"]) == ("2024-03-14 09:12:31", "2024-03-14 09:14:00")
    assert (row["OPTIN_IP"], row["CONFIRM_IP"]) == ("203.0.113.7", "203.0.113.8")
    assert (row["LATITUDE"], row["LONGITUDE"], row["CC"], row["TIMEZONE"]) == ("51.5", "-0.13", "GB", "Europe/London")
    assert (row["LAST_CHANGED"], row["LEID"], row["EUID"]) == ("2024-05-01 10:00:00", "123456", "a1b2c3d4e5")
    assert row["NOTES"] == "met at\na conference"
    assert row["TAGS"] == '"vip","newsletter"'
    assert (row["MEMBER_RATING"], row["STATUS"], row["LANGUAGE"]) == ("4", "subscribed", "en")


def test_an_unknown_location_leaves_the_location_cells_empty() -> None:
    # Given a member Mailchimp has no location for (it reports zeros)
    unknown = {
        "latitude": 0,
        "longitude": 0,
        "gmtoff": 0,
        "dstoff": 0,
        "country_code": "",
        "timezone": "",
        "region": "",
    }

    # When it is encoded
    row = parsed_row(csv_encoder(MERGE_FIELDS)(member(location=unknown)).line)

    # Then the cells are empty, as in Mailchimp's export
    assert [row[name] for name in ("LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "CC")] == ["", "", "", "", ""]


def test_an_encoded_member_carries_its_last_change_and_status() -> None:
    encoded = csv_encoder(MERGE_FIELDS)(member(status="cleaned"))
    assert (encoded.last_changed, encoded.status) == (1714557600, "cleaned")


def test_a_json_line_is_the_member_object_without_links() -> None:
    # When a member is encoded as JSON Lines
    encoded = jsonl_encoder()(member())

    # Then the line is the API's object minus _links, one line
    assert encoded.line.endswith("\n") and encoded.line.count("\n") == 1
    expected = member()
    del expected["_links"]
    assert json.loads(encoded.line) == expected


def test_csv_pages_ask_mailchimp_only_for_the_fields_they_write() -> None:
    projection = layout_for("csv", MERGE_FIELDS).projection
    assert "members.email_address" in projection["fields"] and "total_items" in projection["fields"]
    assert not any("_links" in name or "stats" in name for name in projection["fields"])


def test_jsonl_pages_ask_mailchimp_for_everything_but_links() -> None:
    assert layout_for("jsonl", []).projection == {"exclude_fields": ["members._links", "_links"]}


def test_keys_are_hive_style_with_manifests_beside_the_data_folder() -> None:
    # Given a run whose window ended on 2025-01-06 at 02:00:00 UTC
    base = object_base_name("incremental", 1736128800, "0123456789abcdef0123")

    # Then its object and manifest keys are
    assert data_key("a1b2c3d4e5", "csv", 1736128800, base) == (
        "mailchimp/audiences/a1b2c3d4e5/dt=2025-01-06/format=csv/incremental-20250106T020000Z-0123456789ab.csv.gz"
    )
    assert manifest_key("a1b2c3d4e5", "csv", 1736128800, base) == (
        "mailchimp/audiences/a1b2c3d4e5/dt=2025-01-06/manifests/incremental-20250106T020000Z-0123456789ab.csv.json"
    )
