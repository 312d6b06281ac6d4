"""openapi.yaml, the contract front-end and Ory developers read, against what we serve: the same
routes as template.yaml's Api events (both ways), a valid OpenAPI 3.1 document, and examples that
match their own schemas (a wrong example teaches the wrong thing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

DOCUMENT = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
TEMPLATE = load_template(REPO_ROOT / "template.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def template_routes(template: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every API event of every function (SAM's Api and HttpApi events)."""
    routes = set()
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties") or {}).get("Events", {}).values():
            if event.get("Type") in ("Api", "HttpApi"):
                routes.add((str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"])))
    return routes


def document_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_every_route_of_the_template_is_documented_and_nothing_else():
    served, documented = template_routes(TEMPLATE), document_routes(DOCUMENT)

    assert sorted(served - documented) == [], "routes of template.yaml missing from openapi.yaml"
    assert sorted(documented - served) == [], "routes documented in openapi.yaml that template.yaml does not serve"


def test_the_route_comparison_sees_a_missing_route_and_an_extra_one():
    # Given the template with one more route, and the document with one the template lacks
    template = {
        "Resources": {
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"E": {"Type": "Api", "Properties": {"Path": "/new", "Method": "get"}}}},
            }
        }
    }
    document = {"paths": {"/old": {"post": {}, "parameters": []}}}

    # Then each side names what the other lacks (and path-level keys are not methods)
    assert template_routes(template) - document_routes(document) == {("GET", "/new")}
    assert document_routes(document) - template_routes(template) == {("POST", "/old")}


def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)  # openapi-spec-validator: the 3.1 meta-schema and references


def test_every_error_answer_is_problem_json_or_a_documented_page():
    # HTML pages for the operator's browser (connect) and HEAD (no body) are the exceptions
    for path, method, status, response in responses():
        content = response.get("content")
        if int(status) < 400 or content is None or method == "head":
            continue
        assert set(content) <= {"application/problem+json", "text/html"}, (method, path, status)
        if "text/html" in content:
            assert path.startswith("/connect/mailchimp"), (method, path, status)


def test_every_example_matches_its_schema():
    checked = 0
    for where, schema, example in examples():
        errors = [error.message for error in validator(schema).iter_errors(example)]
        assert errors == [], where
        checked += 1
    assert checked > 15


def responses() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method in set(item) & set(METHODS):
            for status, response in item[method]["responses"].items():
                yield path, method, status, resolve(response)


def examples() -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example of a request body or an answer."""
    for path, item in DOCUMENT["paths"].items():
        for method in set(item) & set(METHODS):
            operation = item[method]
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [(status, resolve(r).get("content", {})) for status, r in operation["responses"].items()]
            for status, content in bodies:
                for media_type, media in content.items():
                    where = f"{method.upper()} {path} {status} {media_type}"
                    if "example" in media:
                        yield where, media["schema"], media["example"]
                    for name, example in media.get("examples", {}).items():
                        yield f"{where} ({name})", media["schema"], example["value"]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = lookup(node["$ref"])
    return node


def lookup(reference: str) -> Any:
    node: Any = DOCUMENT
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


REGISTRY = Registry().with_resource("urn:openapi", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A 2020-12 validator (OpenAPI 3.1's dialect) whose #/components references resolve."""
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(_absolute(schema), registry=REGISTRY, format_checker=checker)


def _absolute(schema: Any) -> Any:
    """#/components/... references made absolute against the document."""
    if isinstance(schema, dict):
        return {
            key: ("urn:openapi" + value if key == "$ref" and value.startswith("#/components") else _absolute(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    return schema


@pytest.mark.parametrize("example", [{"status": "403"}, {"type": "about:blank", "title": "x", "status": 403}])
def test_the_problem_schema_refuses_a_string_status_and_foreign_types(example):
    problem = {"$ref": "#/components/schemas/Problem"}

    assert list(validator(problem).iter_errors(example))
