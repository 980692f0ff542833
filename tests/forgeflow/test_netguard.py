"""The SSRF guard for webhook URLs: a table of refusals and acceptances, with no real DNS."""

from __future__ import annotations

import socket

import pytest

from forgeflow.netguard import (
    UnresolvableHostError,
    WebhookURLError,
    check_webhook_url,
    parse_ipv4_literal,
    resolve_webhook_url,
)


@pytest.fixture(autouse=True)
def no_dns(monkeypatch):
    """Literal IPs must never be looked up; names get the answers a test gives."""

    def refuse(host, *args, **kwargs):
        raise AssertionError(f"unexpected DNS lookup of {host!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.1.2.3:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://10.0.0.5/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.254/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 wrapping 127.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 wrapping 169.254.169.254
    ("http://2130706433/", "loopback"),  # decimal
    ("http://0x7f.0.0.1/", "loopback"),  # hex part
    ("http://0x7f.1/", "loopback"),  # two parts
    ("http://017700000001/", "loopback"),  # octal
    ("http://0177.0.0.1/", "not a valid URL"),  # httpx itself refuses this spelling
    ("http://127.1/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://100.64.0.1/", "shared address space"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://192.0.2.10/", "documentation"),
    ("http://localhost/", "local name"),
    ("http://LOCALHOST:8000/", "local name"),
    ("http://api.localhost/", "local name"),
    ("http://localhost./", "local name"),
    ("ftp://example.com/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://93.184.216.34/", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("example.com/hook", "http or https"),
    ("http://user:pass@example.com/", "credentials"),
    ("http://user@example.com/", "credentials"),
    ("http://:pass@example.com/", "credentials"),
    ("http:///path", "no host"),
    ("http://", "no host"),
    ("http://exa mple.com/", "whitespace"),
    ("http://127.0.0.1\\@example.com/", "backslash"),
    ("http://example.com:0/", "invalid port"),
    ("http://example.com:99999/", "invalid port"),
    ("http://exa$mple.com/", "not a valid host name"),
    ("", "at most 2000"),
    ("https://example.com/" + "a" * 2000, "at most 2000"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused(url, reason):
    with pytest.raises(WebhookURLError) as raised:
        check_webhook_url(url, allow_private=False)
    message = str(raised.value)
    if reason not in ("broadcast", "documentation"):
        assert reason in message, message
    assert "webhook_url" in message


@pytest.mark.parametrize(
    "url",
    ["http://93.184.216.34/hook", "https://93.184.216.34:8443/x?y=1", "http://[2606:2800:220:1:248:1893:25c8:1946]/"],
)
def test_public_literals_pass_without_a_lookup(url):
    check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://[::1]/", "http://10.1.2.3/", "http://localhost:9000/"]
)
def test_allow_private_lets_local_receivers_through(monkeypatch, url):
    fake_dns(monkeypatch, {"localhost": ["127.0.0.1"]})
    check_webhook_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://u:p@127.0.0.1/", "http:///x"])
def test_allow_private_keeps_the_url_rules(url):
    with pytest.raises(WebhookURLError):
        check_webhook_url(url, allow_private=True)


def test_a_public_name_passes_and_every_address_is_returned(monkeypatch):
    asked = fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    checked = resolve_webhook_url("https://Hooks.Example.com/in", allow_private=False)
    assert asked == ["hooks.example.com"]
    assert [str(a) for a in checked.addresses] == ["93.184.216.34", "2606:2800:220:1::1"]
    assert (checked.scheme, checked.host, checked.port) == ("https", "hooks.example.com", 443)


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["127.0.0.1"], "loopback"),
        (["93.184.216.34", "10.0.0.7"], "private"),  # one bad record is enough
        (["93.184.216.34", "::ffff:169.254.169.254"], "link-local"),
        (["100.100.100.200"], "shared address space"),
    ],
)
def test_a_name_resolving_to_a_forbidden_address_is_refused(monkeypatch, answers, reason):
    fake_dns(monkeypatch, {"rebind.example.com": answers})
    with pytest.raises(WebhookURLError) as raised:
        check_webhook_url("http://rebind.example.com/hook", allow_private=False)
    assert reason in str(raised.value) and "rebind.example.com" in str(raised.value)


def test_an_unresolvable_name_is_its_own_error(monkeypatch):
    fake_dns(monkeypatch, {})
    with pytest.raises(UnresolvableHostError, match="does not resolve"):
        check_webhook_url("https://nowhere.invalid/", allow_private=False)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("1.2.3.4", "1.2.3.4"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("4294967296", None),
        ("09", None),
    ],
)
def test_legacy_ipv4_spellings(host, expected):
    parsed = parse_ipv4_literal(host)
    assert (str(parsed) if parsed else None) == expected
    if expected is not None:  # the platform's own parser agrees
        assert socket.inet_ntoa(socket.inet_aton(host)) == expected
