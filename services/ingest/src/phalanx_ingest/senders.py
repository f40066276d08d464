"""Who sent a webhook: the client address behind trusted proxies, and sender restrictions.

``X-Forwarded-For`` is honoured only when the TCP peer is a configured trusted proxy; then the
list is read from the right, skipping trusted proxies, and the first address that is not one is
the sender (the left part of the header is whatever the client chose to write). A strategy may be
limited to TradingView's published sender addresses (``not-trading-view``), to its own list of
addresses or networks (``invalid-ip-address``), or to the union of both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from fastapi import status

from phalanx_common.records import StrategyRecord
from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = ["IpMatcher", "check_sender", "client_ip", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDRs as networks.

    Raises:
        ValueError: naming the first value that is neither.
    """
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return tuple(networks)


class IpMatcher:
    """Membership of an address in a set of networks (cached per distinct list)."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self._networks = tuple(networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self._networks if net.version == address.version)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: str | None, trusted: IpMatcher) -> Address | None:
    """The sender's address: the TCP peer, or the right-most untrusted ``X-Forwarded-For`` hop.

    Args:
        peer: The TCP peer address.
        forwarded_for: The ``X-Forwarded-For`` header (all of them, comma-joined), if any.
        trusted: The trusted proxies.
    """
    address = _address(peer)
    if address is None or address not in trusted or not forwarded_for:
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # a malformed hop: the sender cannot be known
        address = hop_address
        if hop_address not in trusted:
            return hop_address
    return address


_matchers: dict[tuple[str, ...], IpMatcher] = {}


def _matcher(values: tuple[str, ...]) -> IpMatcher:
    matcher = _matchers.get(values)
    if matcher is None:
        try:
            networks = parse_networks(values)
        except ValueError:
            networks = ()
        matcher = IpMatcher(networks)
        if len(_matchers) > 10_000:
            _matchers.clear()
        _matchers[values] = matcher
    return matcher


def check_sender(
    strategy: StrategyRecord, sender: Address | None, tradingview_ips: tuple[str, ...]
) -> None:
    """Refuse a sender that the strategy's restrictions do not allow.

    Raises:
        WebhookRejectedError: 403 ``not-trading-view`` or ``invalid-ip-address``.
    """
    if not strategy.tradingview_only and not strategy.allowed_ips:
        return
    if strategy.allowed_ips and sender in _matcher(strategy.allowed_ips):
        return
    if strategy.tradingview_only:
        if sender in _matcher(tradingview_ips):
            return
        raise WebhookRejectedError(
            MessageCode.NOT_TRADING_VIEW,
            "This strategy only accepts signals from TradingView's webhook servers, and this "
            "request came from another address. Send it from a TradingView alert, or turn off "
            '"TradingView only" for the strategy.',
            status.HTTP_403_FORBIDDEN,
        )
    raise WebhookRejectedError(
        MessageCode.INVALID_IP_ADDRESS,
        f"The address {sender} is not in this strategy's allowed IP addresses. Add it to the "
        "strategy's allowed addresses, or send from an allowed one.",
        status.HTTP_403_FORBIDDEN,
    )
