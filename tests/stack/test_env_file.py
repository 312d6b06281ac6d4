"""local/sam-env.json (for `sam local invoke --env-vars`) is generated from template.yaml and kept in sync."""

import json

from sandbox.stack.env_file import REPO_ROOT, SAM_ENV_FILE, render
from sandbox.stack.template import SamTemplate

TEMPLATE = REPO_ROOT / "template.yaml"
REGENERATE = "python -m sandbox.stack env-file --write"


def test_the_committed_env_file_matches_the_template() -> None:
    assert SAM_ENV_FILE.exists(), f"{SAM_ENV_FILE} is missing; run `{REGENERATE}`"

    assert SAM_ENV_FILE.read_text(encoding="utf-8") == render(TEMPLATE), (
        f"{SAM_ENV_FILE.relative_to(REPO_ROOT)} is out of date with template.yaml; run `{REGENERATE}`"
    )


def test_every_function_is_pointed_at_the_sandbox_and_moto_on_the_docker_host() -> None:
    env_vars = json.loads(SAM_ENV_FILE.read_text(encoding="utf-8"))
    functions = SamTemplate.load(TEMPLATE).resources_of_type("AWS::Serverless::Function")

    assert set(env_vars) == {"Parameters", *functions}
    assert env_vars["Parameters"] == {
        "MAILCHIMP_API_URL": "http://host.docker.internal:4010/3.0",
        "MANDRILL_API_URL": "http://host.docker.internal:4010/api/1.3",
        "AWS_ENDPOINT_URL": "http://host.docker.internal:5000",
    }
