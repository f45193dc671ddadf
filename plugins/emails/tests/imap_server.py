"""A private Dovecot (IMAP and POP3) for the fetching tests and bench/mail.py.

Debian's ``dovecot-imapd`` and ``dovecot-pop3d`` (installed by .ci/run), started with a
configuration of its own under a temporary folder: it listens on 127.0.0.1 only, on free
ports — IMAP (with STARTTLS), IMAPS, POP3 (with STLS) and POP3S — with a self-signed
certificate made here by ``openssl``, users from a passwd-file, mail as maildir under the
folder, owned by whoever runs the tests. Nothing of the system's Dovecot is used.

``Dovecot.start()`` returns the running server (``stop()`` ends it);
``server.client()`` is an imapclient session of the test user, to put messages in
(APPEND), move them or delete folders as a real mail client would.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core.testing import free_port

HOST = "127.0.0.1"
USER = "ann@example.org"
PASSWORD = "imap secret 42"
BINARY = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = crbm-test-{imap}
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
protocols = imap pop3
listen = {host}
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
first_valid_gid = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
mail_location = maildir:{dir}/mail/%u
pop3_uidl_format = %08Xu%08Xv
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {pop3}
  }}
  inet_listener pop3s {{
    address = {host}
    port = {pop3s}
    ssl = yes
  }}
}}
"""


@dataclass
class Dovecot:
    folder: Path
    process: subprocess.Popen
    imap: int
    imaps: int
    pop3: int
    pop3s: int

    @property
    def cert(self) -> Path:
        return self.folder / "cert.pem"

    @classmethod
    def start(cls) -> Dovecot:
        """A running server in a new temporary folder (removed by ``stop``)."""
        # /tmp itself: the mail processes of an unprivileged user must reach the folder
        # (pytest's own temporary folders are root's alone when root runs the tests)
        folder = Path(tempfile.mkdtemp(prefix="crbm-dovecot-"))
        folder.chmod(0o755)
        for sub in ("run", "state", "mail"):
            (folder / sub).mkdir(exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        (folder / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        uid, gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(uid).pw_name
        login_user, internal_user = me, me
        if uid == 0:
            # Dovecot refuses mail access as root: as root, the mail belongs to "nobody",
            # and Dovecot's own unprivileged users run its login and internal processes
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chown(folder / "mail", uid, gid)
            login_user, internal_user = "dovenull", "dovecot"
        (folder / "dovecot.conf").write_text(CONFIG.format(
            dir=folder, host=HOST, uid=uid, gid=gid, login_user=login_user,
            internal_user=internal_user, **ports))
        process = subprocess.Popen([BINARY, "-F", "-c", str(folder / "dovecot.conf")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        server = cls(folder, process, **ports)
        server._wait()
        return server

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("dovecot did not start: "
                                   + self.process.stdout.read().decode(errors="replace")
                                   + self._log())
            try:
                with socket.create_connection((HOST, self.imap), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)  # polling for a process to listen, not a test timing
        self.stop()
        raise RuntimeError("dovecot did not listen: " + self._log())

    def _log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def ssl_context(self) -> ssl.SSLContext:
        """A context trusting this server's certificate (for the tests' own client)."""
        context = ssl.create_default_context(cafile=str(self.cert))
        return context

    def client(self):
        """An imapclient session of the test user (plain IMAP on 127.0.0.1)."""
        import imapclient
        client = imapclient.IMAPClient(HOST, port=self.imap, ssl=False, timeout=30)
        client.login(USER, PASSWORD)
        return client

    def reset(self) -> None:
        """Every folder of the test user gone, the inbox emptied: a test's clean start."""
        with self.client() as imap:
            for _flags, _sep, name in imap.list_folders():
                if name.upper() != "INBOX":
                    imap.delete_folder(name)
            imap.select_folder("INBOX")
            found = imap.search("ALL")
            if found:
                imap.delete_messages(found)
                imap.expunge()
