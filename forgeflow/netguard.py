"""The SSRF guard for webhook URLs: only http(s), no credentials, and a host whose every
address is public. Literal IPs in any spelling a resolver accepts (``2130706433``,
``0x7f.1``, ``017700000001``, ``::ffff:127.0.0.1``) are decoded here, without a lookup;
names are resolved and every A/AAAA record must pass.

The API checks at create time; the delivery activity checks again at send time (DNS can
change) and connects to the address it checked, so a rebinding name cannot slip past."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class WebhookURLError(ValueError):
    """The webhook URL is refused; ``str(exc)`` says why, fit to show the client."""


class UnresolvableHostError(WebhookURLError):
    """The host name has no address (now): refused at create time, retried at send time."""


@dataclass(frozen=True)
class CheckedURL:
    url: str
    scheme: str
    host: str  # lower-case, without brackets
    port: int
    addresses: tuple[IPAddress, ...]  # every one of them passed the check


def _ipv4_part(part: str) -> int | None:
    """One dotted part as inet_aton reads it: decimal, 0x hex or 0-prefixed octal."""
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any legacy spelling (1 to 4 parts, the last filling the rest)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is allowed
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone id is dropped
    except ValueError:
        return parse_ipv4_literal(host)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address must not be reached from the worker, or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"{inner} (embedded in {address})" if inner else None
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in SHARED_ADDRESS_SPACE, "shared address space"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not globally routable"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _split(url: str) -> tuple[str, str, int]:
    """Scheme, host and port exactly as httpx (the delivery client) reads them."""
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise WebhookURLError("webhook_url must be a URL of at most 2000 characters")
    if any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        raise WebhookURLError("webhook_url must not contain whitespace, control characters or backslashes")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise WebhookURLError(f"webhook_url is not a valid URL: {exc}") from exc
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise WebhookURLError(f"webhook_url must use http or https, not {scheme or 'no scheme'!r}")
    if parsed.userinfo or "@" in re.split(r"[/?#]", url.split("://", 1)[-1], maxsplit=1)[0]:
        raise WebhookURLError("webhook_url must not carry credentials (user:password@)")
    host = host.removesuffix(".")
    if not host:
        raise WebhookURLError("webhook_url has no host")
    if parse_ip_literal(host) is None and not HOST_NAME.fullmatch(host):
        raise WebhookURLError(f"webhook_url host {host!r} is not a valid host name")
    port = parsed.port if parsed.port is not None else (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise WebhookURLError("webhook_url has an invalid port")
    return scheme, host, port


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(f"webhook_url host {host!r} does not resolve") from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnresolvableHostError(f"webhook_url host {host!r} has no address")
    return tuple(found)


def resolve_webhook_url(url: str, *, allow_private: bool) -> CheckedURL:
    """Check ``url`` as ``check_webhook_url`` does and return the addresses it checked,
    so the caller connects to one of those and not to a fresh lookup's answer."""
    scheme, host, port = _split(url)
    literal = parse_ip_literal(host)
    if literal is None and not allow_private and (host in LOCAL_NAMES or host.endswith(".localhost")):
        raise WebhookURLError(f"webhook_url host {host!r} is a local name")
    addresses = (literal,) if literal is not None else _resolve(host, port)
    if not allow_private:
        for address in addresses:
            reason = refusal_reason(address)
            if reason:
                raise WebhookURLError(f"webhook_url host {host!r} is {address}, a {reason} address")
    return CheckedURL(url=url, scheme=scheme, host=host, port=port, addresses=addresses)


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL the worker must not call (SSRF guard).

    Raises ``WebhookURLError`` (a ``ValueError``) with a message fit for the client — catch
    that one. Its subclass ``UnresolvableHostError`` means the name has no address right now.
    Checks: the scheme is http or https; no ``user:password@``; a host is present; the host
    is not a local name; and every address it is (a literal IP, in any spelling) or resolves
    to (all A/AAAA records) is public — not loopback, private, link-local (cloud metadata),
    unspecified, multicast, reserved or shared (100.64/10), IPv4-mapped or embedded included.
    ``allow_private=True`` (``FORGEFLOW_WEBHOOK_ALLOW_PRIVATE``) lifts the address rules only.
    """
    resolve_webhook_url(url, allow_private=allow_private)
