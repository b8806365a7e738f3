"""The key CAP messages are signed with: configured (`WARNCAST_CAP_SIGNING_KEY` and
`WARNCAST_CAP_SIGNING_CERT`, shared by every host), or generated into the data dir on first start
and rotated with `warncast admin rotate-cap-key`. Every certificate a message may have been signed
with stays published (`/cap/certificates.pem`)."""

from __future__ import annotations

from pathlib import Path

from foundation.settings import Settings, SettingsError
from foundation.xml_signature import KeyStore, Signer, SigningKey, SigningKeyError, load_key


def key_store(settings: Settings) -> KeyStore:
    return KeyStore(settings.data_dir / "cap-signing")


def cap_signer(settings: Settings) -> Signer:
    """The signer of this deployment's CAP. Configured files are read now: SettingsError (the process
    does not start) when they cannot be used. A generated key is made or read when first needed."""
    if not (settings.cap_signing_key or settings.cap_signing_cert):
        store = key_store(settings)
        return Signer(
            lambda: (store.load_or_create(settings.sender, settings.sender_name), store.retired_certificates())
        )
    try:
        if not (settings.cap_signing_key and settings.cap_signing_cert):
            raise SigningKeyError("set both WARNCAST_CAP_SIGNING_KEY and WARNCAST_CAP_SIGNING_CERT, or neither")
        key, older = load_key(Path(settings.cap_signing_key), Path(settings.cap_signing_cert))
    except SigningKeyError as exc:
        raise SettingsError(f"CAP signing key: {exc}") from None
    return Signer.of(key, older)


def rotate(settings: Settings) -> tuple[SigningKey, SigningKey | None]:
    """A new generated key (the old certificate stays published); a configured key is rotated by
    replacing its files."""
    if settings.cap_signing_key or settings.cap_signing_cert:
        raise SettingsError(
            "the CAP signing key is configured (WARNCAST_CAP_SIGNING_KEY): replace its files to rotate it, "
            "with the old certificate after the new one in WARNCAST_CAP_SIGNING_CERT"
        )
    return key_store(settings).rotate(settings.sender, settings.sender_name)
