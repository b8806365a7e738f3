"""Delivery channels, one adapter each, implementing `publisher.dispatch.channel.Channel`.

A channel renders a warning version for one recipient's language, sends it through the real
provider client (or, without credentials, into an inspectable outbox) and classifies failures as
auth / temporary / permanent. Channels that receive (SMS keywords, Telegram updates) carry their
webhook routes with them; `warncast.channel_registry` registers them all.
"""
