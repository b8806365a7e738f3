"""Translations: the template is fresh, zh_Hans and en are complete, locale negotiation works."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from foundation.i18n import LOCALES_DIR, SUPPORTED, negotiate

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def test_committed_template_is_not_stale(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(["make", "-s", "pot", f"POT={fresh}"], cwd=ROOT, check=True)
    committed = (LOCALES_DIR / "messages.pot").read_text()
    assert fresh.read_text() == committed, "run `make translations` and translate the new strings"


@pytest.mark.parametrize("locale", sorted(SUPPORTED))
def test_catalog_is_complete(locale: str) -> None:
    with (LOCALES_DIR / "messages.pot").open("rb") as fh:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if all(strings):
            translated[key] = strings
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            for string in strings:
                assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(ids[-1])), key
    missing = sorted(template - set(translated))
    assert not missing, f"{locale}: {len(missing)} untranslated, e.g. {missing[:5]}"


def test_negotiation_order() -> None:
    assert negotiate("en", "zh", "zh-CN") == "en"
    assert negotiate(None, "en", "zh-CN") == "en"
    assert negotiate(None, None, "en-GB,en;q=0.9") == "en"
    assert negotiate(None, None, "fr-FR, zh-TW;q=0.8") == "zh_Hans"
    assert negotiate("xx", None, None) == "zh_Hans"


async def test_pages_in_both_languages(client, services) -> None:
    en = await (await client.get("/?lang=en")).text()
    # ?lang= is kept for the next clicks (a cookie): the browser's zh-CN no longer wins...
    kept = await (await client.get("/", headers={"Accept-Language": "zh-CN"})).text()
    assert '<html lang="en">' in kept
    client.session.cookie_jar.clear()  # ...until the reader's choice is forgotten
    zh = await (await client.get("/", headers={"Accept-Language": "zh-CN"})).text()
    assert "Warnings in force" in en and '<html lang="en">' in en
    assert "生效中的预警" in zh and '<html lang="zh-CN">' in zh
    resp = await client.get("/lang/en?next=/console/login", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    assert resp.cookies["wc_lang"].value == "en"
    evil = await client.get("/lang/en?next=//evil.example/", allow_redirects=False)
    assert evil.headers["Location"] == "/"
