"""A real OpenLDAP server for the tests: Debian's ``slapd``, started in a temporary folder
on 127.0.0.1 and a free port, never the machine's own slapd service.

    with Slapd(tmp_dir) as server:
        server.add_entries(ENTRIES)      # as the root DN
        server.url                       # ldap://127.0.0.1:PORT
        server.stop()                    # e.g. to see what an outage looks like

``Slapd(tmp_dir, tls=True)`` also listens on ``server.ldaps_url`` with a self-signed
certificate made by the ``openssl`` command (which no client should trust).

The directory holds ``dc=example,dc=org``; ``cn=admin,dc=example,dc=org`` (``ROOT_PASSWORD``)
may do anything. Access rules like a real site's: anonymous clients may only bind (no
search), signed-in entries read everything but passwords.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from ldap3 import Connection, Server
from ldap3.core.exceptions import LDAPException

from tests.needs import missing

SLAPD = Path("/usr/sbin/slapd")
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root secret for tests"
MISSING = ("/usr/sbin/slapd is missing: the LDAP tests run a real OpenLDAP server. "
           "Install it with: apt-get install slapd ldap-utils")

CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
{modules}
{tls}

database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw "{root_password}"
directory {folder}/data

access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""


def slapd_installed() -> bool:
    return os.access(SLAPD, os.X_OK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    def __init__(self, folder: Path, tls: bool = False):
        if not slapd_installed():
            missing(MISSING)  # skipped on a machine without it, a failure in CI
        self.folder = Path(folder)
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.tls = tls
        self.ldaps_url = f"ldaps://127.0.0.1:{free_port()}" if tls else None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 15) -> None:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        back_mdb = MODULES / "back_mdb.so"
        modules = f"modulepath {MODULES}\nmoduleload back_mdb" if back_mdb.exists() else ""
        conf = self.folder / "slapd.conf"
        conf.write_text(CONFIG.format(schema=SCHEMA, folder=self.folder, modules=modules,
                                      tls=self._certificate() if self.tls else "",
                                      suffix=SUFFIX, root_dn=ROOT_DN, root_password=ROOT_PASSWORD))
        urls = f"{self.url}/" + (f" {self.ldaps_url}/" if self.tls else "")
        self.log = self.folder / "slapd.log"
        with self.log.open("wb") as log:
            # -d 0: stay in the foreground (no detaching), so we own the process
            self.process = subprocess.Popen(
                [str(SLAPD), "-f", str(conf), "-h", urls, "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"slapd did not answer within {timeout} s:\n"
                           f"{self.log.read_text(errors='replace')}")

    def _certificate(self) -> str:
        """A self-signed certificate for 127.0.0.1; the slapd.conf lines using it."""
        if shutil.which("openssl") is None:
            missing("the openssl command is missing: apt-get install openssl")
        key, cert = self.folder / "key.pem", self.folder / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        return f"TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}"

    def _answers(self) -> bool:
        try:
            connection = self.connect()
        except LDAPException:  # not listening yet
            return False
        connection.unbind()
        return True

    def connect(self) -> Connection:
        """A connection bound as the root DN."""
        server = Server("127.0.0.1", port=self.port, connect_timeout=1)
        return Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True, receive_timeout=2)

    def add_entries(self, entries: list[tuple[str, list[str], dict]]) -> None:
        """Add (dn, object classes, attributes) entries, parents first."""
        connection = self.connect()
        try:
            for dn, classes, attributes in entries:
                if not connection.add(dn, classes, attributes):
                    raise RuntimeError(f"cannot add {dn}: {connection.result}")
        finally:
            connection.unbind()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
