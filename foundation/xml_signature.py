"""Enveloped XML signatures (XML-DSig, RSA-SHA256, exclusive canonicalisation) with signxml: what CAP
1.2 §3.3.2.1 allows and the IPAWS profile requires. Signing keys live in the data dir unless the
deployment configures its own; retired certificates stay published so old messages still verify."""

from __future__ import annotations

import datetime as dt
import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier
from signxml.exceptions import InvalidInput, InvalidSignature

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
Verdict = Literal["valid", "invalid", "unsigned"]


class SigningKeyError(Exception):
    """The configured key or certificate cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SigningKey:
    key_pem: bytes
    cert_pem: bytes

    @property
    def fingerprint(self) -> str:
        """The certificate's SHA-256 fingerprint, hex: how operators and partners name it."""
        return x509.load_pem_x509_certificate(self.cert_pem).fingerprint(hashes.SHA256()).hex()


def generate_key(common_name: str, organisation: str, years: int = 3) -> SigningKey:
    """A new RSA-2048 key with a self-signed certificate (partners pin it, or trust it by fingerprint)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(key_pem, cert.public_bytes(serialization.Encoding.PEM))


def load_key(key_path: Path, cert_path: Path) -> tuple[SigningKey, list[bytes]]:
    """A configured key, and its certificate file: the key's certificate first, then any older ones
    to keep published. SigningKeyError names the file that is wrong."""
    try:
        key_pem, bundle = key_path.read_bytes(), cert_path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{key_path} is not an unencrypted PEM private key ({exc})") from None
    try:
        certs = split_certificates(bundle)
    except ValueError as exc:
        raise SigningKeyError(f"{cert_path} is not a PEM certificate ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningKeyError(f"{key_path} is not an RSA key")
    if x509.load_pem_x509_certificate(certs[0]).public_key() != key.public_key():
        raise SigningKeyError(f"the first certificate in {cert_path} is not the certificate of the key in {key_path}")
    return SigningKey(key_pem, certs[0]), certs[1:]


class KeyStore:
    """The generated signing key in `folder`: `current.pem` (key and certificate in one file, so that
    processes starting together agree on one), `retired/<fingerprint>.pem` (certificates only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.current = folder / "current.pem"
        self.retired = folder / "retired"

    def load_or_create(self, common_name: str, organisation: str) -> SigningKey:
        if not self.current.exists():
            self._publish(generate_key(common_name, organisation), replace=False)
        return _split(self.current.read_bytes(), self.current)

    def rotate(self, common_name: str, organisation: str) -> tuple[SigningKey, SigningKey | None]:
        """A new current key; the old certificate is retired (kept published). Returns (new, old)."""
        old = _split(self.current.read_bytes(), self.current) if self.current.exists() else None
        if old is not None:
            self.retired.mkdir(parents=True, exist_ok=True)
            (self.retired / f"{old.fingerprint}.pem").write_bytes(old.cert_pem)
        new = generate_key(common_name, organisation)
        self._publish(new, replace=True)
        return new, old

    def retired_certificates(self) -> list[bytes]:
        return [path.read_bytes() for path in sorted(self.retired.glob("*.pem"))] if self.retired.exists() else []

    def _publish(self, key: SigningKey, *, replace: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".new-", suffix=".pem")  # mode 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.key_pem + key.cert_pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if replace:
                os.replace(tmp, self.current)
            else:
                try:
                    os.link(tmp, self.current)  # only if absent: a process that lost the race reads the winner's
                except FileExistsError:
                    pass
        finally:
            Path(tmp).unlink(missing_ok=True)


def _split(pem: bytes, path: Path) -> SigningKey:
    marker = b"-----BEGIN CERTIFICATE-----"
    if marker not in pem:
        raise SigningKeyError(f"{path} holds no certificate")
    at = pem.index(marker)
    return SigningKey(pem[:at], pem[at:])


class Signer:
    """Signs whole documents with one key; the signature goes last in the root element, with the
    certificate in its KeyInfo. The key comes from `source` on first use (a process that never
    renders CAP never makes or reads one): the key and the older certificates to keep published."""

    def __init__(self, source: Callable[[], tuple[SigningKey, list[bytes]]]) -> None:
        self._source = source
        self._signer = XMLSigner(
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=EXC_C14N,
        )
        self._signer.namespaces = {"ds": DSIG_NS}

    @classmethod
    def of(cls, key: SigningKey, published: list[bytes] | None = None) -> Signer:
        return cls(lambda: (key, list(published or [])))

    @functools.cached_property
    def _loaded(self) -> tuple[SigningKey, list[bytes], rsa.RSAPrivateKey, list[x509.Certificate]]:
        key, published = self._source()
        # Parsed once, without the RSA consistency check (some 40 ms): the key was generated here, or
        # checked by `load_key`.
        parsed = serialization.load_pem_private_key(key.key_pem, password=None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(parsed, rsa.RSAPrivateKey):
            raise SigningKeyError("the CAP signing key must be an RSA key")
        return key, published, parsed, [x509.load_pem_x509_certificate(key.cert_pem)]

    @property
    def key(self) -> SigningKey:
        return self._loaded[0]

    @property
    def certificates(self) -> list[bytes]:
        """Every certificate to publish, the current one first."""
        return [self._loaded[0].cert_pem, *self._loaded[1]]

    def sign(self, document: bytes) -> bytes:
        """`document` with its signature; whitespace is kept as it is (it is signed too)."""
        _, _, key, chain = self._loaded
        root = etree.fromstring(document, etree.XMLParser(remove_blank_text=False, resolve_entities=False))
        signed = self._signer.sign(root, key=key, cert=chain)
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify(root: etree._Element, trusted: list[bytes]) -> Verdict:
    """Whether `root` carries an enveloped signature by one of the `trusted` certificates (PEM)."""
    if root.find(f"{{{DSIG_NS}}}Signature") is None:
        return "unsigned"
    for cert in trusted:
        try:
            XMLVerifier().verify(root, x509_cert=cert.decode(), expect_references=1)
            return "valid"
        except (InvalidSignature, InvalidInput, ValueError):
            continue
    return "invalid"


def split_certificates(bundle: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, each as its own PEM."""
    return [cert.public_bytes(serialization.Encoding.PEM) for cert in x509.load_pem_x509_certificates(bundle)]
