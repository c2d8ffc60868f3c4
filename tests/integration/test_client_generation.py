"""A client generated from the merged OpenAPI by a generator no one here wrote (openapi-python-client,
as a mobile or partner developer would run it) comes out whole, with no warning, and works.

The generator lives in .venv/clientgen (`make clientgen`, run by `make test`; it caps httpx below our
pin) and runs offline.
Its one setting: file answers (PDF, images) read as bytes, the generator's `content_type_overrides`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from scripts.demo_data import USERS
from scripts.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

GENERATOR = ROOT / ".venv" / "clientgen" / "bin" / "openapi-python-client"
CONFIG = """\
package_name_override: motcua_client
content_type_overrides:
  application/pdf: application/octet-stream
  image/jpeg: application/octet-stream
  image/png: application/octet-stream
"""


@pytest.fixture(scope="module")
def generated(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: `make clientgen` (run by `make test`) installs it there")
    work = tmp_path_factory.mktemp("client")
    spec = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=30).json()
    (work / "openapi.json").write_text(json.dumps(spec))
    (work / "config.yaml").write_text(CONFIG)
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--config", "config.yaml", "--meta", "none",
         "--output-path", "motcua_client"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "warning" not in output.lower() and "unable" not in output.lower(), output
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module("motcua_client"), stack.gateway_url
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == "motcua_client" or m.startswith("motcua_client.")]:
            del sys.modules[name]


def api(name: str) -> Any:
    return importlib.import_module(f"motcua_client.api.{name}")


def test_the_generated_client_has_every_operation_and_model(generated: tuple[ModuleType, str]) -> None:
    client_pkg, gateway = generated
    spec = httpx.get(f"{gateway}/openapi.json", timeout=30).json()
    modules = {p.stem for p in Path(client_pkg.__file__).parent.glob("api/*/*.py") if p.stem != "__init__"}
    operation_ids = {op["operationId"] for item in spec["paths"].values() for op in item.values()
                     if isinstance(op, dict) and "operationId" in op}
    assert {re.sub(r"_+", "_", op_id.lower()) for op_id in operation_ids} - modules == set()
    assert len(modules) == len(operation_ids)
    models = importlib.import_module("motcua_client.models")
    # the names that clashed across services, and the model a clash once dropped from the client
    for name in ("IntakeAddressIn", "PostalAddressIn", "IntakeDossierOut", "WorkflowDossierOut", "FailedJob",
                 "Problem", "ShipmentIn"):
        assert hasattr(models, name), name
    titles = {schema.get("title") for schema in spec["components"]["schemas"].values()}
    assert {"IntakeAddressIn", "PostalAddressIn", "ShipmentIn"} <= titles


def test_a_few_calls_through_the_generated_client(generated: tuple[ModuleType, str]) -> None:
    client_pkg, gateway = generated
    models = importlib.import_module("motcua_client.models")
    public = client_pkg.Client(base_url=gateway, raise_on_unexpected_status=True)

    procedures = api("catalog.list_procedures_v1_procedures_get").sync(client=public, q="khai sinh")
    assert isinstance(procedures, list) and procedures
    assert all(isinstance(p, models.ProcedureOut) for p in procedures)

    officer = next(u for u in USERS if u.username == "canbo.phuong")
    token_op = api("auth.token_api_auth_v1_token_post")
    answer = token_op.sync(client=public, body=models.TokenApiAuthV1TokenPostBody.from_dict(
        {"grant_type": "password", "username": officer.username, "password": officer.password}))
    assert isinstance(answer, models.TokenOut) and answer.token_type == "Bearer" and answer.role == "officer"
    token = answer.access_token

    wrong = token_op.sync_detailed(client=public, body=models.TokenApiAuthV1TokenPostBody.from_dict(
        {"grant_type": "password", "username": officer.username, "password": "not-the-password"}))
    assert wrong.status_code in (400, 401) and isinstance(wrong.parsed, models.Problem)
    assert wrong.parsed.code and wrong.parsed.detail

    authed = client_pkg.AuthenticatedClient(base_url=gateway, token=token, raise_on_unexpected_status=True)
    for service in ("intake", "workflow", "postal", "queue"):
        pong = api(f"health.{service}_ping_v1_ping_get").sync(client=authed)
        assert pong["subject"] == officer.subject and pong["role"] == "officer"

    nobody = api("health.intake_ping_v1_ping_get").sync_detailed(client=public)
    assert nobody.status_code == 401 and isinstance(nobody.parsed, models.Problem)
