"""Remote copies of backups: an SFTP server or S3-compatible storage (1CRM's "Remote Backup
Type"), so that a lost server does not take its backups with it.

Contract:

- ``Remote.from_settings(d)`` checks a remote's settings (``kind`` "sftp" or "s3"); a bad
  or missing one is a ``RemoteError`` naming it. SFTP: ``host``, ``port`` (22),
  ``username``, ``private_key`` (the client key's OpenSSH or PEM text, no passphrase),
  ``directory``, ``host_key`` (the server's public key line, ``ssh-ed25519 AAAA...``). S3:
  ``bucket``, ``access_key``, ``secret_key``, and optionally ``endpoint_url`` (any
  S3-compatible server; none is AWS), ``prefix`` (put before each name: ``backups/``),
  ``region``.
- ``upload(remote, path) -> name``, ``listing(remote)`` (the backups there, newest first),
  ``prune(remote, keep) -> removed names``, ``download(remote, name, target)``. Files are
  streamed, never read whole into memory.
- The SFTP server must show the configured host key: an unknown or different one is
  refused, never accepted on first sight (whoever answers at that address would otherwise
  receive the backups, the site's keys with them).
- Nothing looks finished before it is whole: an SFTP upload is written as ``<name>.partial``
  and renamed; an S3 object appears only when its last part is in; a download is written
  beside its target and renamed.
- Every network, authentication or storage failure is a ``RemoteError``: one line saying
  where and what failed. ``private_key`` and ``secret_key`` appear in no message and in no
  ``repr`` (the settings are logged and shown).
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import posixpath
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from core.apps.backup.backup import PREFIX
from core.kernel.errors import CrbmError

KINDS = ("sftp", "s3")
REQUIRED = {"sftp": ("host", "username", "private_key", "directory", "host_key"),
            "s3": ("bucket", "access_key", "secret_key")}
OPTIONAL = {"sftp": ("port",), "s3": ("endpoint_url", "prefix", "region")}
SECRETS = ("private_key", "secret_key")
TIMEOUT = 30  # seconds: a server that stops answering fails the copy instead of hanging it
DEFAULT_REGION = "us-east-1"  # S3-compatible servers mostly ignore it; AWS's default


class RemoteError(CrbmError):
    """A remote that is misconfigured, unreachable or refused what was asked."""


@dataclass(frozen=True)
class Remote:
    kind: str
    host: str = ""
    port: int = 22
    username: str = ""
    private_key: str = field(default="", repr=False)
    directory: str = ""
    host_key: str = ""
    endpoint_url: str = ""
    bucket: str = ""
    prefix: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    region: str = ""

    @classmethod
    def from_settings(cls, d: dict) -> Remote:
        kind = str(d.get("kind") or "").strip().lower()
        if kind not in KINDS:
            raise RemoteError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}"
                              if kind else "kind is missing (sftp or s3)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RemoteError(f"unknown remote setting: {', '.join(unknown)}")
        values = {name: str(d.get(name) or "").strip()
                  for name in REQUIRED[kind] + OPTIONAL[kind]}
        for name in REQUIRED[kind]:
            if not values[name]:
                raise RemoteError(f"{name} is missing (an {kind.upper()} remote needs it)")
        if kind == "sftp":
            values["port"] = _port(values["port"])
            values["private_key"] = "\n".join(values["private_key"].splitlines()) + "\n"
            _client_key(values["private_key"])
            _host_key(values["host_key"])
        else:
            if values["endpoint_url"]:
                values["endpoint_url"] = _endpoint_url(values["endpoint_url"])
            values["region"] = values["region"] or DEFAULT_REGION
        return cls(kind=kind, **values)

    @property
    def location(self) -> str:
        """Where the copies go, for messages: no secret in it."""
        if self.kind == "sftp":
            return f"sftp://{self.username}@{self.host}:{self.port}/{self.directory.lstrip('/')}"
        server = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{server}"


def upload(remote: Remote, path: Path) -> str:
    """Copy the backup at ``path`` to the remote; its name there."""
    path = Path(path)
    if not path.is_file():
        raise RemoteError(f"{path} is not a file")
    with _storage(remote, f"upload of {path.name}") as storage:
        storage.put(path, path.name)
    return path.name


def listing(remote: Remote) -> list[str]:
    """The backups on the remote, newest first."""
    with _storage(remote, "listing") as storage:
        return _newest_first(storage.names())


def prune(remote: Remote, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest backups on the remote; returns what was removed."""
    if keep < 1:  # a slip would empty the remote: the copies that outlive the server
        raise RemoteError(f"keep must be at least 1, not {keep}")
    with _storage(remote, "pruning") as storage:
        removed = _newest_first(storage.names())[keep:]
        for name in removed:
            storage.remove(name)
    return removed


def download(remote: Remote, name: str, target: Path) -> None:
    """Fetch the backup ``name`` from the remote into ``target``."""
    if not is_backup_name(name):
        raise RemoteError(f"{name!r} is not the name of a backup")
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    try:
        with _storage(remote, f"download of {name}") as storage:
            storage.get(name, partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def is_backup_name(name: str) -> bool:
    """A backup's file name (``crbm-backup-….zip`` or ``.zip.age``), with no folder in it."""
    return name.startswith(PREFIX) and name.endswith((".zip", ".age")) and "/" not in name


def _newest_first(names) -> list[str]:
    return sorted((n for n in names if is_backup_name(n)), reverse=True)  # names sort by time


def _port(text: str) -> int:
    if not text:
        return 22
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise RemoteError(f"port must be a number from 1 to 65535, not {text[:20]!r}")
    return int(text)


def _endpoint_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and \
            parts.port != 0 and not any(c.isspace() for c in text)
    except ValueError:  # a port that is no number, a broken IPv6 address
        valid = False
    if not valid:
        raise RemoteError(f"endpoint_url must be a URL such as https://s3.example.org, not "
                          f"{text[:40]!r}")
    return text.rstrip("/")


def _storage(remote: Remote, doing: str):
    if remote.kind == "sftp":
        return _sftp(remote, doing)
    if remote.kind == "s3":
        return _s3(remote, doing)
    raise RemoteError(f"kind must be one of {', '.join(KINDS)}, not {remote.kind!r}")


def _failed(remote: Remote, doing: str, reason: str) -> RemoteError:
    """The one-line error, with any secret the reason might echo blotted out (one of fewer
    than 8 characters would blot out parts of words; real keys are much longer)."""
    for secret in (getattr(remote, name).strip() for name in SECRETS):
        if len(secret) >= 8:
            reason = reason.replace(secret, "***")
    reason = " ".join(reason.split()) or "no reason given"
    return RemoteError(f"{remote.location}: {doing} failed: {reason}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc) or type(exc).__name__


# -- SFTP --------------------------------------------------------------------------------------

def _client_key(text: str):
    import paramiko
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            raise RemoteError("private_key has a passphrase: give a key without one (it is "
                              "stored encrypted)") from None
        except (paramiko.SSHException, ValueError):
            continue
    raise RemoteError("private_key is not an OpenSSH or PEM private key (Ed25519, ECDSA or RSA)")


def _host_key(line: str):
    """The server's public key from its line, ``<type> <base64> [comment]``; the
    ``<host> <type> <base64>`` lines of ssh-keyscan and known_hosts are taken too."""
    import paramiko
    words = line.split()
    if len(words) >= 3 and not words[0].startswith(("ssh-", "ecdsa-")):
        words = words[1:]
    try:
        return paramiko.PKey.from_type_string(words[0], base64.b64decode(words[1],
                                                                         validate=True))
    except (IndexError, binascii.Error, ValueError, paramiko.SSHException,
            paramiko.UnknownKeyType):
        raise RemoteError(f"host_key is not a public key line such as 'ssh-ed25519 AAAA...' "
                          f"(the server's /etc/ssh/ssh_host_ed25519_key.pub): "
                          f"{line[:30]!r}") from None


def _fingerprint(key) -> str:
    return f"{key.get_name()} {key.fingerprint}"


@contextmanager
def _sftp(remote: Remote, doing: str) -> Iterator[_SftpStorage]:
    import paramiko

    class RefuseUnknownHostKey(paramiko.MissingHostKeyPolicy):
        """A server without the configured key (one of another type) is refused."""
        def missing_host_key(self, client, hostname, key):
            raise _failed(remote, doing, f"the server's host key ({_fingerprint(key)}) is "
                                         f"not the configured host_key; refused")

    expected = _host_key(remote.host_key)
    client = paramiko.SSHClient()  # no known_hosts file is read: host_key alone is trusted
    client.get_host_keys().add(remote.host if remote.port == 22 else
                               f"[{remote.host}]:{remote.port}", expected.get_name(), expected)
    client.set_missing_host_key_policy(RefuseUnknownHostKey())
    try:
        client.connect(remote.host, remote.port, remote.username,
                       pkey=_client_key(remote.private_key), look_for_keys=False,
                       allow_agent=False, timeout=TIMEOUT, banner_timeout=TIMEOUT,
                       auth_timeout=TIMEOUT, channel_timeout=TIMEOUT)
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(TIMEOUT)
        yield _SftpStorage(sftp, remote.directory)
    except RemoteError:
        raise
    except paramiko.BadHostKeyException as exc:
        raise _failed(remote, doing, f"the server's host key ({_fingerprint(exc.key)}) is "
                                     f"not the configured host_key "
                                     f"({_fingerprint(expected)}); refused") from None
    except paramiko.AuthenticationException:
        raise _failed(remote, doing, f"the server refused the private_key for user "
                                     f"{remote.username}") from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        why = "; ".join(sorted({_reason(e) for e in exc.errors.values()}))
        raise _failed(remote, doing, f"cannot connect to port {remote.port}: {why}") from None
    except socket.gaierror as exc:
        raise _failed(remote, doing, f"unknown host {remote.host} ({exc.strerror})") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise _failed(remote, doing, _reason(exc)) from None
    finally:
        client.close()


class _SftpStorage:
    def __init__(self, sftp, directory: str):
        self.sftp, self.directory = sftp, directory

    def put(self, path: Path, name: str) -> None:
        final = posixpath.join(self.directory, name)
        partial = final + ".partial"
        self.sftp.put(str(path), partial, confirm=True)  # confirm: the size there is checked
        try:
            self.sftp.posix_rename(partial, final)  # OpenSSH's: replaces a copy already there
        except OSError:
            self.sftp.rename(partial, final)  # a server without the extension

    def names(self) -> list[str]:
        return self.sftp.listdir(self.directory)

    def remove(self, name: str) -> None:
        self.sftp.remove(posixpath.join(self.directory, name))

    def get(self, name: str, target: Path) -> None:
        self.sftp.get(posixpath.join(self.directory, name), str(target))


# -- S3 ----------------------------------------------------------------------------------------

@contextmanager
def _s3(remote: Remote, doing: str) -> Iterator[_S3Storage]:
    import boto3
    from boto3.exceptions import Boto3Error
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(
        connect_timeout=TIMEOUT, read_timeout=TIMEOUT, retries={"max_attempts": 3},
        # other S3 servers mostly answer at one address for every bucket
        s3={"addressing_style": "path" if remote.endpoint_url else "auto"},
        # botocore's default checksums (since 1.36) are refused by some S3-compatible servers
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required")
    try:
        client = boto3.client("s3", endpoint_url=remote.endpoint_url or None,
                              aws_access_key_id=remote.access_key,
                              aws_secret_access_key=remote.secret_key,
                              region_name=remote.region or DEFAULT_REGION, config=config)
        # 8 MB parts, 4 in flight at most: memory stays near 32 MB whatever the archive's size
        transfers = TransferConfig(multipart_chunksize=8 * 2**20, max_concurrency=4)
        yield _S3Storage(client, remote.bucket, remote.prefix, transfers)
    except RemoteError:
        raise
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        # an upload's ClientError comes wrapped in S3UploadFailedError, which names local paths
        cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
        raise _failed(remote, doing, _s3_reason(remote, cause)) from None
    except OSError as exc:
        raise _failed(remote, doing, _reason(exc)) from None


def _s3_reason(remote: Remote, exc: Exception) -> str:
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError
    if isinstance(exc, EndpointConnectionError):  # its own message is the whole request URL
        timed_out = " (timed out)" if isinstance(exc, ConnectTimeoutError) else ""
        return f"cannot connect to {remote.endpoint_url or 'AWS'}{timed_out}"
    if not isinstance(exc, ClientError):
        return str(exc) or type(exc).__name__
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode", ""))
    if code == "NoSuchBucket":
        return f"there is no bucket {remote.bucket}"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AccessDenied"):
        return f"access refused ({code}): check access_key and secret_key"
    if code in ("404", "NoSuchKey"):
        return "no such backup there"
    return f"{code}: {error.get('Message') or 'no message'}"


class _S3Storage:
    def __init__(self, client, bucket: str, prefix: str, transfers):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.transfers = transfers

    def put(self, path: Path, name: str) -> None:
        self.client.upload_file(str(path), self.bucket, self.prefix + name,
                                Config=self.transfers)

    def names(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + PREFIX)
        return [item["Key"][len(self.prefix):]
                for page in pages for item in page.get("Contents", [])]

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def get(self, name: str, target: Path) -> None:
        self.client.download_file(self.bucket, self.prefix + name, str(target),
                                  Config=self.transfers)
