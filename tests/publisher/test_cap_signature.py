"""Signed CAP: every published message carries an enveloped XML signature that two independent
verifiers accept (signxml, and Debian's xmlsec1 as a third party would run it) and that a one-byte
change breaks; the message stays valid against the OASIS XSD. Keys are generated, rotated (old
certificates stay published) or configured. Upstream CAP is told apart as validly signed, badly
signed or not signed, and a policy can refuse all but the first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from signxml import XMLVerifier

from citizen_report.queue import drain
from foundation.settings import SettingsError
from foundation.xml_signature import DSIG_NS, Signer, generate_key, split_certificates
from publisher.cap_signing import cap_signer, rotate
from tests.citizen_report.test_triage import CAP, incidents
from tests.publisher.test_cap import SCHEMA
from tests.publisher.test_workflow import published
from tests.warncast.test_console import login

UPSTREAM = generate_key("met@province.example", "Provincial Meteorological Service")  # a trusted sender
STRANGER = generate_key("met@province.example", "Someone else")  # claims the same name, not trusted


@pytest.fixture
def require_signed() -> bool:
    return False


@pytest.fixture
def settings(settings: Any, tmp_path: Path, require_signed: bool) -> Any:
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(UPSTREAM.cert_pem)
    return settings.with_(cap_trusted_certs=str(trusted), cap_require_signed=require_signed)


async def published_cap(client: Any, staff: Any, clock: Any) -> bytes:
    message = await published(client, staff, clock, grade="orange")
    resp = await client.get(f"/cap/{message['id']}.xml")
    assert resp.status == 200
    return await resp.read()


async def certificates(client: Any) -> list[bytes]:
    resp = await client.get("/cap/certificates.pem")
    assert resp.status == 200 and resp.content_type == "application/x-pem-file"
    return split_certificates(await resp.read())


def xmlsec1(document: bytes, cert: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("xmlsec1")
    assert binary, "xmlsec1 is installed by `make browser` (Debian's xmlsec1)"
    (tmp_path / "message.xml").write_bytes(document)
    (tmp_path / "cert.pem").write_bytes(cert)
    return subprocess.run(
        [binary, "--verify", "--pubkey-cert-pem", str(tmp_path / "cert.pem"), str(tmp_path / "message.xml")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def one_byte_changed(document: bytes) -> bytes:
    at = document.index(b"<headline>") + len(b"<headline>")
    return document[:at] + bytes([document[at] ^ 1]) + document[at + 1 :]


async def test_published_cap_is_signed_valid_and_verified_by_two_verifiers(client, services, staff, clock, tmp_path):
    document = await published_cap(client, staff, clock)
    root = etree.fromstring(document)
    assert SCHEMA.validate(root), SCHEMA.error_log.last_error
    assert etree.QName(root[-1]).namespace == DSIG_NS and etree.QName(root[-1]).localname == "Signature"
    [cert] = await certificates(client)

    XMLVerifier().verify(document, x509_cert=cert.decode(), expect_references=1)  # raises when not valid
    verified = xmlsec1(document, cert, tmp_path)
    assert verified.returncode == 0, verified.stderr

    changed = one_byte_changed(document)
    with pytest.raises(Exception, match="(?i)signature|digest"):
        XMLVerifier().verify(changed, x509_cert=cert.decode(), expect_references=1)
    refused = xmlsec1(changed, cert, tmp_path)
    assert refused.returncode != 0 and "FAIL" in refused.stdout + refused.stderr


async def test_the_cap_index_links_the_certificates(client, services, staff, clock):
    await published_cap(client, staff, clock)
    feed = etree.fromstring(await (await client.get("/feeds/cap.atom")).read())
    links = feed.findall("{http://www.w3.org/2005/Atom}link")
    assert any(link.get("href", "").endswith("/cap/certificates.pem") for link in links)


def test_a_rotated_key_signs_anew_and_the_old_certificate_stays_published(settings):
    before = cap_signer(settings)
    document = before.sign(CAP.encode())
    assert cap_signer(settings).key == before.key, "the generated key is kept across restarts"
    new, old = rotate(settings)
    assert old is not None and old.cert_pem == before.key.cert_pem
    after = cap_signer(settings)
    assert after.key == new and after.certificates[0] == new.cert_pem
    assert before.key.cert_pem in after.certificates, "the old certificate is still published"
    XMLVerifier().verify(document, x509_cert=after.certificates[1].decode(), expect_references=1)


def test_a_configured_key_is_used_and_a_wrong_pair_is_refused(settings, tmp_path):
    ours, older = generate_key("warncast@city.example", "City"), generate_key("warncast@city.example", "City")
    (tmp_path / "key.pem").write_bytes(ours.key_pem)
    (tmp_path / "cert.pem").write_bytes(ours.cert_pem + older.cert_pem)
    configured = settings.with_(cap_signing_key=str(tmp_path / "key.pem"), cap_signing_cert=str(tmp_path / "cert.pem"))
    signer = cap_signer(configured)
    assert signer.key.cert_pem == ours.cert_pem and signer.certificates == [ours.cert_pem, older.cert_pem]
    with pytest.raises(SettingsError, match="replace its files"):
        rotate(configured)

    (tmp_path / "other.pem").write_bytes(older.cert_pem)
    with pytest.raises(SettingsError, match="other.pem"):
        cap_signer(configured.with_(cap_signing_cert=str(tmp_path / "other.pem")))
    with pytest.raises(SettingsError, match="WARNCAST_CAP_SIGNING_CERT"):
        cap_signer(settings.with_(cap_signing_key=str(tmp_path / "key.pem")))


def upstream_alerts() -> dict[str, bytes]:
    signed = Signer.of(UPSTREAM).sign(CAP.encode())
    return {
        "valid": signed,
        "stranger": Signer.of(STRANGER).sign(CAP.replace("UP-2025-0001", "UP-2025-0002").encode()),
        "altered": signed.replace(b"UP-2025-0001", b"UP-2025-0003"),
        "unsigned": CAP.replace("UP-2025-0001", "UP-2025-0004").encode(),
    }


async def test_upstream_signatures_are_told_apart_on_the_incident(client, services, staff):
    headers = {**staff["sensor"], "Content-Type": "application/cap+xml"}
    for name, document in upstream_alerts().items():
        resp = await client.post("/api/v1/monitoring/alerts", data=document, headers=headers)
        assert resp.status == 202, (name, await resp.text())
        expected = {"valid": "valid", "unsigned": "unsigned"}.get(name, "invalid")
        assert (await resp.json())["signature"] == expected, name
    await drain(services.reports)
    found = {
        i["details"]["identifier"]: i["details"]["signature"] for i in await incidents(client, staff, "kind=alert")
    }
    assert found == {
        "UP-2025-0001": "valid",
        "UP-2025-0002": "invalid",
        "UP-2025-0003": "invalid",
        "UP-2025-0004": "unsigned",
    }


@pytest.mark.parametrize("require_signed", [True])
async def test_a_policy_refuses_alerts_not_validly_signed(client, services, staff, require_signed):
    headers = {**staff["sensor"], "Content-Type": "application/cap+xml"}
    alerts = upstream_alerts()
    for name, code in (("unsigned", "unsigned"), ("stranger", "bad_signature"), ("altered", "bad_signature")):
        resp = await client.post("/api/v1/monitoring/alerts?lang=en", data=alerts[name], headers=headers)
        assert resp.status == 422, name
        [error] = (await resp.json())["error"]["fields"]
        assert error["code"] == code, name
    zh = await client.post("/api/v1/monitoring/alerts?lang=zh", data=alerts["unsigned"], headers=headers)
    assert "签名" in (await zh.json())["error"]["fields"][0]["message"]
    assert (await client.post("/api/v1/monitoring/alerts", data=alerts["valid"], headers=headers)).status == 202
    await drain(services.reports)
    assert [i["details"]["identifier"] for i in await incidents(client, staff, "kind=alert")] == ["UP-2025-0001"]


async def test_the_triage_board_says_how_an_alert_was_signed(client, services, staff, users):
    headers = {**staff["sensor"], "Content-Type": "application/cap+xml"}
    alerts = upstream_alerts()
    for name in ("valid", "altered", "unsigned"):
        assert (await client.post("/api/v1/monitoring/alerts", data=alerts[name], headers=headers)).status == 202
    await drain(services.reports)
    await login(client, "chief", users["chief"])
    page = await (await client.get("/console/triage?status=all&lang=zh")).text()
    assert page.count("签名有效") == 1 and page.count("签名无效") == 1 and page.count("未签名") == 1
