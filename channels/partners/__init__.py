"""Partner webhooks: the registry of partner systems and the channel that posts to them, signed."""

from __future__ import annotations

from channels.partners.registry import Partner, PartnerRegistry

__all__ = ["Partner", "PartnerRegistry"]
