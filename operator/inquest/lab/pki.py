"""Certificates and keys for one lab instance, made with the openssl command line."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from inquest.lab.errors import LabError

SERVING_NAMES = (
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP:127.0.0.1",
    "IP:10.0.0.1",
)


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_public_key: Path


def _openssl(arguments: list[str], directory: Path) -> None:
    completed = subprocess.run(["openssl", *arguments], cwd=directory, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise LabError("pki", f"openssl {' '.join(arguments)}", completed.stderr[-2000:])


def create(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        service_account_public_key=directory / "sa.pub",
    )
    _openssl(
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "365",
            "-subj",
            "/CN=inquest-lab-ca",
            "-keyout",
            pki.ca_key.name,
            "-out",
            pki.ca_cert.name,
        ],
        directory,
    )
    (directory / "serving.ext").write_text(
        f"subjectAltName={','.join(SERVING_NAMES)}\nextendedKeyUsage=serverAuth\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl(
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=kube-apiserver",
            "-keyout",
            pki.serving_key.name,
            "-out",
            "apiserver.csr",
        ],
        directory,
    )
    _openssl(
        [
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            pki.ca_cert.name,
            "-CAkey",
            pki.ca_key.name,
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            "serving.ext",
            "-out",
            pki.serving_cert.name,
        ],
        directory,
    )
    _openssl(["genrsa", "-out", pki.service_account_key.name, "2048"], directory)
    _openssl(
        ["rsa", "-in", pki.service_account_key.name, "-pubout", "-out", pki.service_account_public_key.name], directory
    )
    return pki
