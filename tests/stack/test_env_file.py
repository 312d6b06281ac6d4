"""The env-vars file for `sam local invoke --env-vars` users, generated from template.yaml."""

import json
from pathlib import Path

from sandbox.stack.__main__ import main
from sandbox.stack.env_file import REPO_ROOT, sam_env_vars
from sandbox.stack.template import SamTemplate
from tests.stack.support import FIXTURE_TEMPLATE

TEMPLATE = REPO_ROOT / "template.yaml"


def test_every_function_of_the_template_is_pointed_at_the_stack_on_the_docker_host() -> None:
    # When the file is generated for the repository's template
    env_vars = sam_env_vars(TEMPLATE)

    # Then every function has its block and all of them share the sandbox and moto addresses
    functions = SamTemplate.load(TEMPLATE).resources_of_type("AWS::Serverless::Function")
    assert set(env_vars) == {"Parameters", *functions}
    assert env_vars["Parameters"] == {
        "MAILCHIMP_API_URL": "http://host.docker.internal:4010/3.0",
        "MANDRILL_API_URL": "http://host.docker.internal:4010/api/1.3",
        "AWS_ENDPOINT_URL": "http://host.docker.internal:5000",
    }


def test_template_references_become_the_names_make_dev_creates() -> None:
    env_vars = sam_env_vars(FIXTURE_TEMPLATE)

    echo = env_vars["EchoFunction"]
    assert echo["WORK_QUEUE_URL"] == "http://host.docker.internal:5000/123456789012/chimpbridge-local-WorkQueue"
    assert echo["STATE_TABLE"] == "chimpbridge-local-StateTable"
    assert echo["SHARED_SECRET_ARN"] == "chimpbridge-local/FixtureSecret"  # a secret name works as SecretId
    assert echo["FUNCTION_ROLE"] == "echo"


def test_the_cli_writes_the_file(tmp_path: Path) -> None:
    destination = tmp_path / "sam-env.json"

    assert main(["--template", str(FIXTURE_TEMPLATE), "env-file", "--write", str(destination)]) == 0

    assert json.loads(destination.read_text()) == sam_env_vars(FIXTURE_TEMPLATE)
