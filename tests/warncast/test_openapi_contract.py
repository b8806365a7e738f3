"""The OpenAPI document is a contract: valid OpenAPI 3.1, and schemathesis, run against a real
`warncast serve` with every role's token (and none), finds no failure of any check: server errors,
undocumented statuses or content types, answers that break their schema, requests the schema allows
that are refused or requests it forbids that are accepted, 405 without Allow, ignored auth.

The run here is sized for CI: every role through the examples and fuzzing phases, and the coverage
phase (every constraint's edge values, the bulk of the cases) for the widest role (admin) and no
role. `make fuzz` runs every phase, stateful too, for every role with more examples
(WARNCAST_FUZZ_EXAMPLES, WARNCAST_FUZZ_PHASES). schemathesis.toml says which statuses a
schema-valid request may still get (a 422 for a rule JSON Schema cannot state) and why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from foundation.access.roles import ROLES
from foundation.settings import Settings
from tests.warncast.test_cli import free_port, run
from warncast.web.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLES = os.environ.get("WARNCAST_FUZZ_EXAMPLES", "3")
FULL_PHASES = os.environ.get("WARNCAST_FUZZ_PHASES")  # `make fuzz`: these for every role
WIDEST = ("admin", "anonymous")  # the coverage phase's roles in the CI-sized run


def phases(role: str) -> str:
    if FULL_PHASES:
        return FULL_PHASES
    return "examples,coverage,fuzzing" if role in WIDEST else "examples,fuzzing"


def test_the_document_is_valid_openapi_and_declares_every_path_parameter() -> None:
    doc = openapi_document(Settings(public_url="http://warncast.test"))
    validate(doc)  # refuses, among others, a {parameter} in a path that no operation declares
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"}
            assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}, (method, path)
            successes = [code for code in operation["responses"] if code.startswith("2")]
            assert successes and all(operation["responses"][c]["content"] for c in successes), (method, path)


def test_required_fields_and_bodies_are_in_the_schema() -> None:
    doc = openapi_document(Settings(public_url="http://warncast.test"))
    paths, schemas = doc["paths"], doc["components"]["schemas"]

    def body(path: str, method: str = "post", media: str = "application/json") -> dict:
        return paths[path][method]["requestBody"]["content"][media]["schema"]

    assert body("/api/v1/warnings/{id}/publish")["required"] == ["reason"]
    assert body("/api/v1/warnings/{id}/reject")["required"] == ["comment"]
    assert body("/api/v1/warnings/{id}/review")["required"] == ["comment"]
    assert not paths["/api/v1/warnings/{id}/approve"]["post"]["requestBody"]["required"]
    assert {"required": ["area"], "description": "an area code"} in schemas["ReportBody"]["anyOf"]
    assert "consent" in schemas["ReportBody"]["properties"]
    assert "multipart/form-data" in paths["/api/v1/reports"]["post"]["requestBody"]["content"]
    assert "application/cap+xml" in paths["/api/v1/monitoring/alerts"]["post"]["requestBody"]["content"]
    assert "201" in paths["/api/v1/warnings"]["post"]["responses"]
    assert "202" in paths["/api/v1/monitoring/readings"]["post"]["responses"]
    for name in ("ScreenBody", "PartnerBody"):
        assert schemas[name]["properties"]["name"]["pattern"], "an empty or blank name is refused"
    for name in ("ApprovalRules", "ChannelPolicy", "Routing"):
        assert schemas[name]["properties"], f"{name} is a concrete schema"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except OSError:
        return 0


@pytest.mark.timeout(3600 if FULL_PHASES else 600)
def test_schemathesis_finds_no_failure_with_any_role(tmp_path: Path) -> None:
    run(tmp_path, "admin", "load-demo")
    tokens: dict[str, str | None] = {"anonymous": None}
    for role in ROLES:
        created = run(tmp_path, "admin", "create-token", f"contract-{role}", "--role", role)
        tokens[role] = next(word for word in created.stdout.split() if word.startswith("wct_"))
    port = free_port()
    env = {**os.environ, "WARNCAST_DATA_DIR": str(tmp_path), "WARNCAST_PORT": str(port)}
    env |= {"WARNCAST_PUBLIC_URL": f"http://127.0.0.1:{port}", "WARNCAST_LOG_FORMAT": "text"}
    # Every role's run sends thousands of requests from one address, wrong tokens among them (the
    # ignored-auth check): the limits that would answer 429 to a real flood are set out of its way.
    env |= {
        "WARNCAST_AUTH_FAILURE_BURST": "1000000",
        "WARNCAST_PUBLIC_RATE": "100000",
        "WARNCAST_PUBLIC_BURST": "100000",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([str(BIN / "warncast"), "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _get(f"http://127.0.0.1:{port}/readyz") != 200:
            assert server.poll() is None and time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        schema = tmp_path / "openapi.json"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5) as resp:
            schema.write_bytes(resp.read())
        assert json.loads(schema.read_text())["paths"]
        runs = {}
        for role, token in tokens.items():  # one schemathesis per role, side by side
            command = [str(BIN / "schemathesis"), "--config-file", str(ROOT / "schemathesis.toml"), "run"]
            command += [str(schema), "--url", f"http://127.0.0.1:{port}", "--checks", "all"]
            command += ["--max-examples", EXAMPLES, "--phases", phases(role), "--seed", "1", "--workers", "1"]
            command += ["--no-color", "--generation-database", "none"]
            command += ["--header", f"Authorization: Bearer {token}"] if token else []
            log = (tmp_path / f"schemathesis-{role}.log").open("w")
            runs[role] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path), log)
        failed = {}
        for role, (proc, log) in runs.items():
            proc.wait(timeout=3500 if FULL_PHASES else 540)
            log.close()
            if proc.returncode != 0:
                failed[role] = (tmp_path / f"schemathesis-{role}.log").read_text()[-6000:]
        assert not failed, "\n\n".join(f"== {role}\n{text}" for role, text in failed.items())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
