"""Names and addresses written in inputs, checked by the rules of whatever consumes them.

Kubernetes object names are DNS-1123 labels (63 characters) or subdomains (253); a domain is a
DNS name an Ingress and a certificate accept; a registry mirror is the `host[:port][/path]` part
of an image reference (the distribution reference grammar); a URL has only the schemes its
consumer can use (urls.py). Each check returns None or what is wrong, so plain code (the
registry's catalog checks) and pydantic fields (the `Annotated` types below, whose errors
`problems.problems_from` turns into `file: path: message (hint)`) share one rule."""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable
from typing import Annotated
from typing import Any

from pydantic import AfterValidator
from pydantic import Field
from pydantic_core import PydanticCustomError

# City, district, department and environment slugs prefix derived names: `<city>-<layer>`
# namespaces (at most 20 + 1 + 12), `<city>-dept-<department>` tenants (20 + 6 + 20), stack names
# `<city>-<env>`. 20 characters keeps every one of them a DNS-1123 label (63);
# tests/unit/test_names.py checks the longest of each against the catalog.
SLUG_MAX = 20
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
# Endpoints are published at the domain and at `sso.<domain>`, which must stay a DNS name too.
DOMAIN_MAX = SUBDOMAIN_MAX - len("sso.")
# A mirror replaces the registry of every image; catalog paths are short (< 64 characters), so
# this keeps `<mirror>/<path>` within the reference grammar's 255 (tests/unit/test_names.py).
REGISTRY_MAX = 128

LABEL_CHARS = frozenset(string.ascii_lowercase + string.digits + "-")
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_CONTEXT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@/+=-]*")


def label_pattern(max_length: int) -> str:
    """A DNS-1123 label that starts with a letter, for names that are also prefixes."""
    return rf"^[a-z]([-a-z0-9]{{0,{max_length - 2}}}[a-z0-9])?$"


def short(value: object, limit: int = 60) -> str:
    """repr() of a value, cut so a hostile megabyte never floods the terminal."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _label_fault(label: str, chars: frozenset[str], max_length: int | None) -> str | None:
    if not label:
        return "an empty label (two dots in a row, or a dot at an end)"
    bad = next((ch for ch in label if ch not in chars), None)
    if bad is not None:
        kind = " (upper case)" if bad.isupper() and bad.lower() in chars else ""
        return f"the character {bad!r}{kind}"
    if label[0] == "-" or label[-1] == "-":
        return f"the label {short(label)} starting or ending with '-'"
    if max_length is not None and len(label) > max_length:
        return f"a label of {len(label)} characters (at most {max_length})"
    return None


def _dotted_fault(
    value: str, *, max_length: int, chars: frozenset[str], label_max: int | None
) -> str | None:
    if len(value) > max_length:
        return f"{len(value)} characters (at most {max_length})"
    for label in value.split("."):
        fault = _label_fault(label, chars, label_max)
        if fault is not None:
            return fault
    return None


def label_problem(value: str, max_length: int = LABEL_MAX) -> str | None:
    """A DNS-1123 label: what Kubernetes requires of namespaces, Services, volume names."""
    if len(value) > max_length:
        return (
            f"{short(value)} has {len(value)} characters; a DNS-1123 label has at most {max_length}"
        )
    fault = _label_fault(value, LABEL_CHARS, None)
    return f"{short(value)} is not a DNS-1123 label: it has {fault}" if fault else None


def city_slug_problem(value: str) -> str | None:
    """A city slug whose derived names Kubernetes accepts. The API server refuses PriorityClass
    names starting with `system-` but its own (kubernetes pkg/apis/scheduling/validation; the
    city's are `<city>-critical`, ...), and RBAC keeps the `system:` groups for Kubernetes (the
    city binds `<city>:system-admins`, ...). tests/e2e/test_parity.py keeps the case."""
    if value == "system" or value.startswith("system-"):
        return (
            f"{short(value)} would name PriorityClasses {value}-critical, {value}-standard and "
            f"{value}-batch, but names starting with 'system-' are the API server's own"
        )
    return None


def subdomain_problem(value: str) -> str | None:
    """A DNS-1123 subdomain, as Kubernetes checks most object names (StorageClass, Secret)."""
    fault = _dotted_fault(value, max_length=SUBDOMAIN_MAX, chars=LABEL_CHARS, label_max=None)
    return f"{short(value)} is not a Kubernetes object name: it has {fault}" if fault else None


def domain_fault(value: str, *, max_length: int, chars: frozenset[str]) -> str | None:
    fault = _dotted_fault(value, max_length=max_length, chars=chars, label_max=LABEL_MAX)
    if fault is None and value.rsplit(".", 1)[-1].isdigit():
        # Ingress hosts and certificate DNS names refuse IP addresses; no top-level domain is
        # numeric.
        fault = "a numeric last label (an IP address is not a domain)"
    return fault


def domain_problem(value: str) -> str | None:
    """A DNS name an Ingress host and a certificate accept (lower case, labels <= 63)."""
    fault = domain_fault(value, max_length=DOMAIN_MAX, chars=LABEL_CHARS)
    return f"{short(value)} is not a DNS domain: it has {fault}" if fault else None


def _port_fault(port: str) -> str | None:
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return f"the port {short(port)} (a number from 1 to 65535)"
    return None


def _registry_fault(value: str) -> str | None:
    host, slash, path = value.partition("/")
    if host.startswith("["):
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(.*))?", host)
        if match is None:
            return f"the host {short(host)}"
        try:
            ipaddress.IPv6Address(match.group(1))
        except ValueError:
            return f"the IPv6 address {short(match.group(1))}"
        port = match.group(2)
    else:
        name, colon, port_text = host.partition(":")
        port = port_text if colon else None
        fault = _dotted_fault(name, max_length=SUBDOMAIN_MAX, chars=_HOST_CHARS, label_max=None)
        if fault is not None:
            return f"{fault} in the host"
        if "." not in name and port is None and name != "localhost":
            # Without a dot or a port the first component reads as a Docker Hub namespace:
            # `mirror/emqx/emqx` would be pulled from docker.io/mirror/emqx/emqx.
            return f"no registry host ({short(name)} has no '.' or ':port' and is not localhost)"
    if port is not None:
        fault = _port_fault(port)
        if fault is not None:
            return fault
    for component in path.split("/") if slash else ():
        if not _PATH_COMPONENT.fullmatch(component):
            return (
                f"the path component {short(component)} (lower-case letters and digits joined "
                "by '.', '_', '__' or '-')"
            )
    return None


def registry_problem(value: str) -> str | None:
    """A registry mirror: `host[:port][/path]` of an image reference."""
    if len(value) > REGISTRY_MAX:
        return f"{short(value)} has {len(value)} characters; a mirror has at most {REGISTRY_MAX}"
    fault = _registry_fault(value)
    return f"{short(value)} is not a registry: it has {fault}" if fault else None


def image_reference_problem(value: str) -> str | None:
    """An image reference `[host[:port]/]path[:tag][@digest]` by the distribution grammar."""
    rest, at, digest = value.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return f"{short(value)} is not an image reference: it has an invalid digest"
    head, slash, last = rest.rpartition("/")
    repository, colon, tag = last.partition(":")
    name = f"{head}{slash}{repository}"
    if colon and not _TAG.fullmatch(tag):
        return f"{short(value)} is not an image reference: it has the tag {short(tag)}"
    if len(name) > 255:
        return f"{short(value)} has a name of {len(name)} characters (at most 255)"
    first, separator, _ = name.partition("/")
    if separator and ("." in first or ":" in first or first == "localhost"):
        fault = _registry_fault(name)
    else:
        bad = next((c for c in name.split("/") if not _PATH_COMPONENT.fullmatch(c)), None)
        fault = f"the path component {short(bad)}" if bad is not None else None
    return f"{short(value)} is not an image reference: it has {fault}" if fault else None


def email_problem(value: str) -> str | None:
    """A plausible e-mail address (dot-atom local part, a DNS domain with a dot)."""
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254:
        return f"{short(value)} is not an e-mail address (name@domain, at most 254 characters)"
    if not _ATEXT.fullmatch(local) or len(local) > 64:
        return f"{short(value)} is not an e-mail address: the part before '@' is not valid"
    fault = domain_fault(domain, max_length=SUBDOMAIN_MAX, chars=_HOST_CHARS)
    if fault is None and "." not in domain:
        fault = "a domain without a dot"
    return f"{short(value)} is not an e-mail address: it has {fault}" if fault else None


def context_problem(value: str) -> str | None:
    """A sane kubeconfig context name: as cloud tools write them (`gke_p_z_c`,
    `arn:aws:eks:…:cluster/c`, `user@cluster`), one line, not starting with '-'."""
    if len(value) > SUBDOMAIN_MAX:
        return f"{short(value)} has {len(value)} characters; at most {SUBDOMAIN_MAX}"
    if not _CONTEXT.fullmatch(value):
        return f"{short(value)} is not a kubeconfig context name"
    return None


# -- pydantic field types ----------------------------------------------------------------------


def checked(check: Callable[[str], str | None], hint: str) -> AfterValidator:
    """A pydantic validator running `check`; its failures carry `hint` to the problem."""

    def validate(value: str) -> str:
        fault = check(value)
        if fault is not None:
            raise PydanticCustomError("invalid", "{message}", {"message": fault, "hint": hint})
        return value

    return AfterValidator(validate)


def _schema(**extra: Any) -> Any:
    return Field(json_schema_extra=extra)


# Slugs are patterns (not `checked`) so the profile keeps its "'X' is not allowed here" message.
Slug = Annotated[
    str,
    Field(
        pattern=label_pattern(SLUG_MAX),
        description="Lower-case letters, digits and '-', starting with a letter, 1-20 chars.",
    ),
]
CitySlug = Annotated[
    Slug,
    checked(city_slug_problem, "choose another slug, e.g. the city's name in pinyin"),
]
ObjectName = Annotated[
    str,
    checked(
        subdomain_problem,
        "a Kubernetes object name: lower-case letters, digits, '-' and '.', each part starting "
        "and ending with a letter or digit, at most 253 characters",
    ),
    _schema(
        maxLength=SUBDOMAIN_MAX,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]
Domain = Annotated[
    str,
    checked(
        domain_problem,
        "a DNS name such as city.example: lower-case letters, digits and '-' in dot-separated "
        f"labels of 1-63 characters, at most {DOMAIN_MAX} in all",
    ),
    _schema(
        maxLength=DOMAIN_MAX,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$",
    ),
]
Registry = Annotated[
    str,
    checked(
        registry_problem,
        "host[:port][/path] of an image reference, e.g. registry.city.example/mirror or "
        "localhost:5000",
    ),
    _schema(maxLength=REGISTRY_MAX),
]
Email = Annotated[
    str,
    checked(email_problem, "an address such as platform@city.example"),
    _schema(maxLength=254),
]
KubeContext = Annotated[
    str,
    checked(
        context_problem,
        "a context of your kubeconfig (`kubectl config get-contexts -o name`): letters, digits "
        "and _ . : @ / + = -",
    ),
    _schema(maxLength=SUBDOMAIN_MAX),
]
