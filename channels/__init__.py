"""Delivery channels (SMS, Telegram, feeds, screens): one adapter per channel.

The registry lives here once the first channel lands (see the fan-out issue).
"""
