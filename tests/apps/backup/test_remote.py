"""Remote copies of backups (core/apps/backup/remote.py) against real servers: Debian's
OpenSSH sshd on a free port with a configuration of its own (never the machine's), and
moto's S3 server in this process. Copies, listing, pruning and fetching back on each; the
host key that is not the configured one, the refused key, the wrong bucket or secret, each
a one-line RemoteError without the secret in it.

Without /usr/sbin/sshd the SFTP tests are skipped, saying what to install; in CI (which
installs it) they fail instead (tests/needs.py). No database: they run once (conftest.py's
DATABASE_INDEPENDENT)."""
from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from core.apps.backup import remote as remotes
from core.apps.backup.remote import Remote, RemoteError
from tests.needs import missing

SSHD = Path("/usr/sbin/sshd")
MISSING = ("/usr/sbin/sshd is missing: the SFTP tests run a real OpenSSH server. "
           "Install it with: apt-get install openssh-server")
ACCESS_KEY, SECRET_KEY = "AKIDTESTING0000000001", "s3cr3t/Of+The/Tests/0123456789abcdefghij"
NAMES = ["crbm-backup-20261205-010203-000001.zip", "crbm-backup-20261206-010203-000001.zip.age",
         "crbm-backup-20261207-010203-000001.zip"]  # oldest first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen within {timeout} s:\n{log.read_text()}")


def keygen(path: Path, kind: str = "ed25519") -> tuple[str, str]:
    """A new key pair at ``path``: (private key text, public key line)."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)],
                   check=True, capture_output=True)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/client_key.pub
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """One sshd for the module: {port, host_key (its public line), private_key, log}."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@contextlib.contextmanager
def running_sshd(folder: Path):
    """An sshd of its own on a free port, its keys and log in ``folder``."""
    if not os.access(SSHD, os.X_OK):  # skipped here, a failure in CI (which installs it)
        missing(MISSING)
    _, host_key = keygen(folder / "host_key")
    private_key, _ = keygen(folder / "client_key")
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, folder=folder))
    if os.geteuid() == 0:  # as root, sshd drops privileges into this empty folder
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    with log.open("wb") as out:  # -D: in the foreground, ours to stop; -e: log to stderr
        process = subprocess.Popen([str(SSHD), "-f", str(config), "-D", "-e"],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, log)
        yield {"port": port, "host_key": host_key, "private_key": private_key, "log": log}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def sftp_remote(sshd, tmp_path):
    directory = tmp_path / "remote"
    directory.mkdir()
    return Remote.from_settings(sftp_settings(sshd, directory=str(directory)))


def sftp_settings(sshd, **changes) -> dict:
    return {"kind": "sftp", "host": "127.0.0.1", "port": str(sshd["port"]),
            "username": getpass.getuser(), "private_key": sshd["private_key"],
            "directory": "/nonexistent", "host_key": sshd["host_key"], **changes}


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free port: its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=access_key, aws_secret_access_key=secret_key)


@pytest.fixture
def s3_remote(s3_server):
    bucket = f"crbm-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    return Remote.from_settings(s3_settings(s3_server, bucket=bucket))


def s3_settings(endpoint: str, **changes) -> dict:
    return {"kind": "s3", "endpoint_url": endpoint, "bucket": "crbm", "prefix": "site1/",
            "region": "", "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, **changes}


@pytest.fixture(params=["sftp", "s3"])
def remote(request):
    return request.getfixturevalue(f"{request.param}_remote")


def stored(remote: Remote) -> list[str]:
    """What the remote holds, read behind remote.py's back: every file or object there."""
    if remote.kind == "sftp":
        return sorted(os.listdir(remote.directory))
    found = s3_client(remote.endpoint_url).list_objects_v2(Bucket=remote.bucket)
    return sorted(item["Key"] for item in found.get("Contents", []))


def fake_backups(folder: Path) -> dict[str, bytes]:
    """Three backup files; the newest past 8 MB, so S3 takes it in a multipart upload."""
    contents = {name: os.urandom(1000 + i) for i, name in enumerate(NAMES)}
    contents[NAMES[-1]] = os.urandom(9 * 2**20)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return contents


def remote_names(remote: Remote, names: list[str]) -> list[str]:
    prefix = remote.prefix if remote.kind == "s3" else ""
    return sorted(prefix + name for name in names)


# -- copies, listing, pruning, fetching back -----------------------------------------------------

def test_upload_list_prune_download(remote, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    contents = fake_backups(local)
    for name in [NAMES[1], NAMES[0], NAMES[2]]:  # the order they arrive in does not matter
        assert remotes.upload(remote, local / name) == name
    # whole files only: no .partial left behind
    assert stored(remote) == remote_names(remote, NAMES)
    if remote.kind == "s3":  # the 9 MB one went up in two parts, as its ETag says
        head = s3_client(remote.endpoint_url).head_object(Bucket=remote.bucket,
                                                          Key=remote.prefix + NAMES[-1])
        assert head["ETag"].endswith('-2"')
    assert remotes.listing(remote) == NAMES[::-1]

    assert remotes.prune(remote, 2) == [NAMES[0]]
    assert remotes.listing(remote) == NAMES[:0:-1]
    assert stored(remote) == remote_names(remote, NAMES[1:])
    assert remotes.prune(remote, 2) == []

    for name in NAMES[1:]:
        target = tmp_path / "fetched" / name
        target.parent.mkdir(exist_ok=True)
        remotes.download(remote, name, target)
        assert target.read_bytes() == contents[name]
    assert sorted(os.listdir(tmp_path / "fetched")) == sorted(NAMES[1:])


def test_listing_takes_only_finished_backups(remote, tmp_path):
    for name in ["notes.txt", "crbm-backup-20261208-010203-000001.zip.partial", NAMES[0]]:
        (tmp_path / name).write_bytes(b"x")
        remotes.upload(remote, tmp_path / name)
    assert remotes.listing(remote) == [NAMES[0]]
    assert remotes.prune(remote, 1) == []
    assert len(stored(remote)) == 3  # pruning leaves what is not a backup alone


def test_an_upload_replaces_a_copy_already_there(remote, tmp_path):
    path = tmp_path / NAMES[0]
    path.write_bytes(b"first")
    remotes.upload(remote, path)
    path.write_bytes(b"second, after a retry")
    remotes.upload(remote, path)
    remotes.download(remote, NAMES[0], tmp_path / "back.zip")
    assert (tmp_path / "back.zip").read_bytes() == b"second, after a retry"


def test_what_is_refused_before_any_connection(remote, tmp_path):
    with pytest.raises(RemoteError, match="keep must be at least 1"):
        remotes.prune(remote, 0)
    with pytest.raises(RemoteError, match="is not the name of a backup"):
        remotes.download(remote, "../../etc/passwd", tmp_path / "x")
    with pytest.raises(RemoteError, match="is not a file"):
        remotes.upload(remote, tmp_path / NAMES[0])


def test_a_missing_backup_is_a_remote_error(remote, tmp_path):
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    with pytest.raises(RemoteError) as caught:
        remotes.download(remote, NAMES[0], fetched / "back.zip")
    assert f"download of {NAMES[0]} failed" in str(caught.value)
    assert os.listdir(fetched) == []  # no partial file left


# -- SFTP: the host key, the client key, the server --------------------------------------------

def test_sftp_accepts_the_host_key_as_ssh_keyscan_prints_it(sshd, tmp_path):
    scanned = subprocess.run(["ssh-keyscan", "-p", str(sshd["port"]), "-t", "ed25519",
                              "127.0.0.1"], check=True, capture_output=True, text=True).stdout
    line = next(x for x in scanned.splitlines() if not x.startswith("#"))
    assert line.startswith(f"[127.0.0.1]:{sshd['port']} ssh-ed25519 ")
    remote = Remote.from_settings(sftp_settings(sshd, directory=str(tmp_path), host_key=line))
    assert remotes.listing(remote) == []


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])  # the same type; one the server lacks
def test_sftp_refuses_a_server_without_the_configured_host_key(sshd, tmp_path, kind):
    _, other = keygen(tmp_path / "other_host_key", kind)
    path = tmp_path / NAMES[0]
    path.write_bytes(b"backup")
    remote = Remote.from_settings(sftp_settings(sshd, directory=str(tmp_path),
                                                host_key=other))
    with pytest.raises(RemoteError) as caught:
        remotes.upload(remote, path)
    message = str(caught.value)
    assert "host key" in message and "refused" in message and "\n" not in message
    assert message.startswith(f"sftp://{getpass.getuser()}@127.0.0.1:{sshd['port']}/")
    assert sorted(os.listdir(tmp_path)) == [path.name, "other_host_key", "other_host_key.pub"]


def test_sftp_refused_key_names_the_user_not_the_key(sshd, tmp_path):
    stranger, _ = keygen(tmp_path / "stranger")
    remote = Remote.from_settings(sftp_settings(sshd, directory=str(tmp_path),
                                                private_key=stranger))
    with pytest.raises(RemoteError) as caught:
        remotes.listing(remote)
    message = str(caught.value)
    assert f"refused the private_key for user {getpass.getuser()}" in message
    for text in (message, repr(remote), str(remote)):
        assert not any(line in text for line in stranger.splitlines()[1:-1])


def test_sftp_unreachable_or_missing_directory(sshd, tmp_path):
    closed = Remote.from_settings(sftp_settings(sshd, port=str(free_port())))
    with pytest.raises(RemoteError, match=r"listing failed: cannot connect to port \d+: Connection refused$"):
        remotes.listing(closed)
    nowhere = Remote.from_settings(sftp_settings(sshd, directory=str(tmp_path / "absent")))
    path = tmp_path / NAMES[0]
    path.write_bytes(b"backup")
    with pytest.raises(RemoteError, match=f"upload of {NAMES[0]} failed: No such file"):
        remotes.upload(nowhere, path)


# -- S3: the bucket, the keys -------------------------------------------------------------------

def test_s3_wrong_bucket(s3_server, tmp_path):
    remote = Remote.from_settings(s3_settings(s3_server, bucket="no-such-bucket"))
    path = tmp_path / NAMES[0]
    path.write_bytes(b"backup")
    for call in (lambda: remotes.listing(remote), lambda: remotes.upload(remote, path)):
        with pytest.raises(RemoteError) as caught:
            call()
        message = str(caught.value)
        assert "there is no bucket no-such-bucket" in message
        assert SECRET_KEY not in message and "\n" not in message


def test_s3_wrong_secret_key(s3_server, tmp_path):
    """With moto checking signatures against its IAM users, as a real server does."""
    iam = boto3.client("iam", endpoint_url=s3_server, region_name="us-east-1",
                       aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    user = f"crbm-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    bucket = f"crbm-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    good = Remote.from_settings(s3_settings(
        s3_server, bucket=bucket, access_key=key["AccessKeyId"],
        secret_key=key["SecretAccessKey"]))
    wrong = Remote.from_settings(s3_settings(
        s3_server, bucket=bucket, access_key=key["AccessKeyId"], secret_key=SECRET_KEY))
    previous = httpx.post(f"{s3_server}/moto-api/reset-auth", content=b"0").json()
    try:
        assert remotes.listing(good) == []
        with pytest.raises(RemoteError) as caught:
            remotes.listing(wrong)
    finally:
        httpx.post(f"{s3_server}/moto-api/reset-auth",
                   content=previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"].encode())
    message = str(caught.value)
    assert "access refused (SignatureDoesNotMatch): check access_key and secret_key" in message
    assert SECRET_KEY not in message and key["SecretAccessKey"] not in message
    assert SECRET_KEY not in repr(wrong)


def test_s3_unreachable(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    remote = Remote.from_settings(s3_settings(endpoint))
    with pytest.raises(RemoteError) as caught:
        remotes.listing(remote)
    assert str(caught.value) == (f"s3://crbm/site1/ at {endpoint}: listing failed: cannot "
                                 f"connect to {endpoint}")


# -- settings -----------------------------------------------------------------------------------

SFTP = {"kind": "sftp", "host": "backup.example.org", "username": "crbm",
        "directory": "/srv/backups", "host_key": "", "private_key": ""}
S3 = {"kind": "s3", "bucket": "backups", "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    private_key, _ = keygen(folder / "client")
    _, host_key = keygen(folder / "host")
    return {"private_key": private_key, "host_key": host_key}


@pytest.mark.parametrize("settings, name", [
    *((SFTP, name) for name in ("host", "username", "directory", "host_key", "private_key")),
    *((S3, name) for name in ("bucket", "access_key", "secret_key"))])
def test_from_settings_names_a_missing_setting(keys, settings, name):
    given = {**settings, **keys} if settings is SFTP else dict(settings)
    Remote.from_settings(given)
    given[name] = " "
    with pytest.raises(RemoteError, match=f"^{name} is missing"):
        Remote.from_settings(given)
    del given[name]
    with pytest.raises(RemoteError, match=f"^{name} is missing"):
        Remote.from_settings(given)


def test_from_settings_defaults_and_mistakes(keys):
    sftp = Remote.from_settings({**SFTP, **keys, "port": ""})
    assert sftp.port == 22 and sftp.location == "sftp://crbm@backup.example.org:22/srv/backups"
    s3 = Remote.from_settings(S3)
    assert (s3.region, s3.endpoint_url, s3.prefix) == ("us-east-1", "", "")
    for settings, message in [
        ({}, "kind is missing"), ({"kind": "ftp"}, "kind must be one of sftp, s3, not 'ftp'"),
        ({**S3, "passwrd": "x"}, "unknown remote setting: passwrd"),
        ({**S3, "endpoint_url": "minio:9000"}, "endpoint_url must be a URL such as https://"),
        ({**S3, "endpoint_url": "http://"}, "endpoint_url must be a URL"),
        ({**S3, "endpoint_url": "http://bad host:9000"}, "endpoint_url must be a URL"),
        ({**S3, "endpoint_url": "https://[::1"}, "endpoint_url must be a URL"),
        ({**S3, "endpoint_url": "https://minio:port"}, "endpoint_url must be a URL"),
        ({**SFTP, **keys, "port": "ssh"}, "port must be a number from 1 to 65535"),
        ({**SFTP, **keys, "port": "70000"}, "port must be a number from 1 to 65535"),
        ({**SFTP, **keys, "host_key": "AAAAC3NzaC1lZDI1NTE5"}, "host_key is not a public key"),
        ({**SFTP, **keys, "host_key": "ssh-ed25519 not-base64!"}, "host_key is not a public key"),
        ({**SFTP, **keys, "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                         "-----END OPENSSH PRIVATE KEY-----"},
         "private_key is not an OpenSSH or PEM private key")]:
        with pytest.raises(RemoteError, match=message):
            Remote.from_settings(settings)


def test_a_key_with_a_passphrase_is_refused_without_showing_it(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase", "-f",
                    str(tmp_path / "locked")], check=True, capture_output=True)
    locked = (tmp_path / "locked").read_text()
    with pytest.raises(RemoteError, match="private_key has a passphrase") as caught:
        Remote.from_settings({**SFTP, "host_key": "ssh-ed25519 AAAA", "private_key": locked})
    assert locked.splitlines()[1] not in str(caught.value)


def test_secrets_never_in_repr(keys):
    for remote in (Remote.from_settings({**SFTP, **keys}), Remote.from_settings(S3)):
        shown = repr(remote)
        assert remote.kind in shown and "private_key" not in shown and "secret_key" not in shown
        assert SECRET_KEY not in shown and keys["private_key"].splitlines()[1] not in shown
