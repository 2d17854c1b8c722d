"""URLs written in inputs (state backends, secrets providers, the registry of environments), each
checked in the shape its scheme's consumer reads: `https://` a host (no credentials, no fragment),
`file://` an absolute path, `s3://`, `gs://` and `azblob://` a bucket, the KMS schemes a key."""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import AfterValidator

from citykit.input.names import LABEL_CHARS
from citykit.input.names import SUBDOMAIN_MAX
from citykit.input.names import checked
from citykit.input.names import domain_fault
from citykit.input.names import short

URL_MAX = 2048
# RFC 3986 unreserved, reserved and '%': anything else must be percent-encoded.
_URL_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


def _host_fault(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return domain_fault(host.lower(), max_length=SUBDOMAIN_MAX, chars=LABEL_CHARS)


def _https(value: str) -> str | None:
    parts = urlsplit(value)
    if "@" in parts.netloc:
        return "credentials in the URL"
    if parts.fragment:
        return "a fragment ('#…')"
    host = parts.hostname or ""
    if not host:
        return "no host"
    fault = _host_fault(host)
    if fault is not None:
        return f"{fault} in the host"
    if parts.port == 0:  # parts.port raises ValueError beyond 65535
        return "port 0"
    return None


def _file(value: str) -> str | None:
    path = value.removeprefix("file://")
    if not path.startswith("/"):
        # The engine creates this directory; a relative path would depend on where citykit runs.
        return "no absolute path (file:///absolute/path)"
    if "?" in path or "#" in path:
        return "a query or fragment"
    return None


def _bucket(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.fragment:
        return "a fragment ('#…')"
    if not _BUCKET.fullmatch(parts.netloc):
        bucket = short(parts.netloc)
        return f"the bucket {bucket} (3 or more lower-case letters, digits, '.', '-', '_')"
    return None


def _key(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.fragment:
        return "a fragment ('#…')"
    if not (parts.netloc + parts.path).strip("/"):
        return "no key"
    if "@" in parts.netloc:
        return "credentials in the URL"
    return None


def _vault(value: str) -> str | None:
    fault = _key(value)
    if fault is None:
        fault = _host_fault(urlsplit(value).hostname or "")
        fault = f"{fault} in the vault host" if fault else None
    return fault


_SCHEMES: dict[str, Callable[[str], str | None]] = {
    "https": _https,
    "file": _file,
    "s3": _bucket,
    "gs": _bucket,
    "azblob": _bucket,
    "awskms": _key,
    "gcpkms": _key,
    "hashivault": _key,
    "azurekeyvault": _vault,
}


def url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """A URL with one of `schemes`, in the shape that scheme's consumer reads."""
    usable = ", ".join(f"{s}://" for s in schemes)
    if len(value) > URL_MAX:
        return f"{short(value)} has {len(value)} characters; a URL has at most {URL_MAX}"
    bad = next((ch for ch in value if ch not in _URL_CHARS), None)
    if bad is not None:
        return f"{short(value)} is not a URL: it has the character {bad!r} (percent-encode it)"
    scheme, sep, _ = value.partition("://")
    if not sep:
        return f"{short(value)} is not a URL (expected {usable})"
    if scheme not in schemes:
        return f"{short(value)} has the scheme {scheme}://, which is not usable here ({usable})"
    try:
        fault = _SCHEMES[scheme](value)
    except ValueError as error:  # urlsplit: bad IPv6 brackets, a port out of range
        fault = f"an unreadable part ({str(error).lower()})"
    return f"{short(value)} is not a usable {scheme}:// URL: it has {fault}" if fault else None


def url(*schemes: str, hint: str) -> AfterValidator:
    """A validator for a URL field limited to `schemes`."""
    return checked(lambda value: url_problem(value, schemes), hint)
