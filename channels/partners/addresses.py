"""Where a partner webhook may post: public internet addresses only, unless an admin allow-lists a
network (WARNCAST_PARTNER_ALLOW_NETWORKS, e.g. a partner on the city's private network).

Otherwise anyone who may register a partner could make this server post to itself or its
neighbours: loopback (`localhost:6379` is Redis), link-local (169.254.169.254 is a cloud's
metadata service), private and other non-global ranges. A name is checked after it is resolved,
at registration and again at every send: `PublicOnlyResolver` is the send's resolver, so the
connection goes only to an address that passed (a name re-pointed at 127.0.0.1 after its
registration, DNS rebinding, is refused as well).
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Networks = tuple[IPv4Network | IPv6Network, ...]
RESOLVE_SECONDS = 3.0  # a registration does not wait longer for DNS; a name not found is checked when sent


class RefusedDestination(OSError):
    """A partner URL's host is (or resolves to) an address partners may not be posted to."""


def refused(address: str, allowed: Networks) -> bool:
    """True for an address that is not on the public internet and not in `allowed`."""
    try:
        found: IPv4Address | IPv6Address = ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        return True
    if isinstance(found, IPv6Address) and (found.ipv4_mapped or found.sixtofour):
        found = found.ipv4_mapped or found.sixtofour or found
    if any(found in network for network in allowed):
        return False
    return not found.is_global or found.is_multicast


def literal_host(url: str) -> str | None:
    """The URL's host when it is an IP address (no name to resolve), else None."""
    host = urlsplit(url).hostname or ""
    try:
        ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return host


async def refused_url(url: str, allowed: Networks) -> str | None:
    """At registration: the first address of `url`'s host that is refused, or None. A name that does
    not resolve now is let through: it is checked again, resolved, at every send."""
    host = urlsplit(url).hostname or ""
    if literal_host(url) is not None:
        return host if refused(host, allowed) else None
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_SECONDS
        )
    except (OSError, TimeoutError, UnicodeError):
        return "localhost" if host == "localhost" or host.endswith(".localhost") else None
    for info in infos:
        address = str(info[4][0])
        if refused(address, allowed):
            return address
    return None


class PublicOnlyResolver(AbstractResolver):
    """The partner session's resolver: the system's answers, refused when any of them is."""

    def __init__(self, allowed: Networks) -> None:
        self.allowed = allowed
        self.resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        results = await self.resolver.resolve(host, port, family)
        bad = [r["host"] for r in results if refused(r["host"], self.allowed)]
        if bad:
            raise RefusedDestination(f"{host} resolves to {bad[0]}, which partners may not be posted to")
        return results

    async def close(self) -> None:
        await self.resolver.close()
