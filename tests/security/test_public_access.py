"""Nothing in infra/ can make a function (or a bucket) callable by the public.

Proven elsewhere and not repeated: no ``allUsers``/``allAuthenticatedUsers`` appears in any
resource or data source, and IAM is only ever additive ``*_iam_member`` grants
(tests/infra/test_iam.py::test_no_public_principal_anywhere,
test_iam_is_only_additive_members); each function's invoker is exactly its caller
(test_each_function_is_invoked_only_by_its_caller); on_upload and cook take internal traffic
only (tests/infra/test_functions.py::test_functions_accept_internal_traffic_only_but_the_dashboard).

What remains is the one door a deployer opens: a grant whose member comes from a variable
(the dashboard's viewers, the landing bucket's writers). Each such variable must refuse the
public principals, and ``terraform console`` proves its validation really does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.infra.conftest import terraform_binary
from tests.infra.terraform_model import INFRA, Infra, load_infra, parse_file, references, strings

PUBLIC = ("allUsers", "allAuthenticatedUsers")
CANDIDATES = [
    ["allUsers"],
    ["group:a@example.com", "allAuthenticatedUsers"],
    ["user:b@example.com"],
]
"""Member lists a deployer might pass; only the last is acceptable."""


def variables_granted_to(infra: Infra) -> dict[str, list[str]]:
    """Resource addresses of each variable that names the members of an IAM grant."""
    fed: dict[str, list[str]] = {}
    for address, body in infra.resources.items():
        if address.split(".")[0].endswith("_iam_member"):
            for text in strings({k: body.get(k) for k in ("member", "for_each")}):
                for root, name, _ in references(text):
                    if root == "var":
                        fed.setdefault(name, []).append(address)
    return fed


def accepts(condition: str, variable: str, members: list[list[str]], workdir: Path) -> list[bool]:
    """What a variable's validation ``condition`` says of each member list (terraform console)."""
    binary = terraform_binary()
    expression = condition.removeprefix("${").removesuffix("}").replace(f"var.{variable}", "xs")
    result = subprocess.run(
        [binary, "console"],
        input=f"jsonencode([for xs in {json.dumps(members)} : {expression}])\n",
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=60,
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout))


def test_every_variable_granted_iam_refuses_public_principals(tmp_path: Path) -> None:
    infra = load_infra()
    fed = variables_granted_to(infra)

    assert "dashboard_viewers" in fed  # the only invoker a deployer names
    for variable in fed:
        conditions = [v["condition"] for v in infra.variables[variable].get("validation", [])]
        verdicts = [accepts(c, variable, CANDIDATES, tmp_path) for c in conditions]
        assert verdicts, f"var.{variable} feeds {fed[variable]} with no validation"
        assert [all(column) for column in zip(*verdicts, strict=True)] == [False, False, True]


def test_example_variables_name_no_public_principal() -> None:
    example = INFRA / "terraform.tfvars.example"

    values = list(strings(parse_file(example)))
    text = example.read_text(encoding="utf-8")

    assert values  # the example parses
    assert not any(principal in text for principal in PUBLIC)
