"""A throwaway CA and an ``api.telegram.org`` leaf, made with the ``openssl`` CLI at test time."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness.faketg import TELEGRAM_HOST


@dataclass(frozen=True)
class TestCA:
    ca_cert: Path     # give the gateway NODE_EXTRA_CA_CERTS=<this>
    leaf_cert: Path
    leaf_key: Path


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def make_test_ca(directory: Path, host: str = TELEGRAM_HOST) -> TestCA:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    leaf_key, leaf_csr, leaf_pem = directory / "leaf.key", directory / "leaf.csr", directory / "leaf.pem"
    ext = directory / "leaf.ext"
    ext.write_text(f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_pem), "-days", "2",
        "-subj", "/CN=moltir test CA (throwaway)",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", str(leaf_key), "-out", str(leaf_csr), "-subj", f"/CN={host}")
    run("x509", "-req", "-in", str(leaf_csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(leaf_pem), "-days", "2", "-extfile", str(ext))
    return TestCA(ca_cert=ca_pem, leaf_cert=leaf_pem, leaf_key=leaf_key)
