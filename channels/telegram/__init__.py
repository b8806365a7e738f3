"""Telegram through python-telegram-bot: warnings to chats, and the subscription bot."""
