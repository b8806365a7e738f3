"""The subscription bot: residents manage their Telegram subscription themselves.

Commands: /start, /subscribe (an inline area picker, `/subscribe <area name or code>`, or a shared
location resolved to its community), /lang, /level, /stop, /help; /report and /cancel run the
hazard-report conversation (channels/telegram/reporting.py). A chat that asks is a confirmed
opt-in. Replies are plain text (nothing user-controlled is ever parsed as markup), in the chat's
language: the stored subscriber language, else the Telegram user's language.

Updates arrive through our own aiohttp webhook (channels/telegram/webhook.py), so the PTB
Application runs without an Updater; `process_update` handles one update to the end, replies
included, before the webhook answers.

Callback data (at most 64 bytes; checked on arrival, since a modified client can send anything):
`nav:<area code>` opens an area in the picker, `sub:<code>` subscribes, `lang:<locale>`,
`level:<grade>`.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from channels.context import ChannelContext
from channels.telegram.errors import classify
from foundation.areas.registry import Area
from foundation.i18n import N_, join_list, tag_for
from publisher.dispatch.channel import PermanentError
from publisher.subscribers import LANGS, Subscriber, find_area
from publisher.taxonomy import GRADE_NAMES, GRADES

log = logging.getLogger(__name__)
CHANNEL = "telegram"
LANG_LABELS = {"en": "English", "zh_Hans": "中文"}  # endonyms: never translated

WELCOME = N_(
    "Hello! This bot sends you the city's official warnings for the areas you choose, "
    "in your language.\n\nSend /subscribe to choose your area, or share your location."
)
STATUS = N_("You receive warnings for: %(areas)s (%(grade)s and above).")
STATUS_STOPPED = N_("You have stopped all warnings. Send /subscribe to receive them again.")
HELP = N_(
    "Commands:\n"
    "/subscribe – choose your area (or share your location, or send /subscribe and a name)\n"
    "/lang – choose your language\n"
    "/level – choose the lowest grade you want to receive\n"
    "/stop – stop all warnings\n"
    "/help – this message\n\n"
    "Orange and red warnings always reach everyone subscribed in the area."
)
PICK_TOP = N_("Choose your area:")
PICK_IN = N_("Choose an area in %(area)s, or take all of it:")
ALL_OF = N_("All of %(area)s")
BACK = N_("« Back")
SUBSCRIBED = N_("Subscribed: you will receive warnings for %(area)s. Send /stop to stop them.")
OFFER = N_("Subscribe to warnings for %(area)s?")
SUBSCRIBE_BUTTON = N_("Subscribe")
NO_SUCH_AREA = N_("No area is called “%(query)s”. Send /subscribe to choose from a list.")
OUTSIDE = N_("That place is outside the areas this service covers. Send /subscribe to choose from a list.")
LANG_PROMPT = N_("Choose your language:")
LANG_SET = N_("Language: %(language)s.")
LEVEL_PROMPT = N_(
    "Choose the lowest grade you want to receive. Orange and red warnings always reach everyone subscribed in the area."
)
LEVEL_BUTTON = N_("%(grade)s and above")
LEVEL_SET = N_("You will receive %(grade)s warnings and above.")
STOPPED = N_("You will receive no more warnings. Send /subscribe to start again.")
INVALID_CHOICE = N_("That choice is not available. Send /subscribe to start again.")
NOT_UNDERSTOOD = N_("Sorry, I did not understand that. Send /help to see what I can do.")


class SubscriptionBot:
    """The handlers, bound to the channel context (subscribers, registry, catalogs)."""

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        new = filters.UpdateType.MESSAGE  # not edits: a live location would re-subscribe every few seconds
        for name, callback in (
            ("start", self.on_start),
            ("subscribe", self.on_subscribe),
            ("lang", self.on_lang),
            ("level", self.on_level),
            ("stop", self.on_stop),
            ("help", self.on_help),
        ):
            app.add_handler(CommandHandler(name, callback, filters=new))
        app.add_handler(CallbackQueryHandler(self.on_callback))
        app.add_handler(MessageHandler(new & filters.LOCATION, self.on_location))
        app.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(new & filters.COMMAND, self.on_help))  # unknown commands
        app.add_error_handler(self.on_error)

    # -- language and text ---------------------------------------------------------------------

    async def _subscriber(self, update: Update) -> Subscriber | None:
        assert update.effective_chat is not None
        return await self.ctx.subscribers.get(CHANNEL, str(update.effective_chat.id))

    async def _locale(self, update: Update, sub: Subscriber | None = None) -> str:
        sub = sub or await self._subscriber(update)
        if sub is not None and sub.lang in LANGS:
            return sub.lang
        user = update.effective_user
        code = (user.language_code or "") if user else ""
        return "zh_Hans" if code.lower().startswith("zh") else "en"

    def _t(self, locale: str, msgid: str, **params: object) -> str:
        return self.ctx.catalogs.text(locale, msgid, **params)

    def _name(self, area: Area, locale: str) -> str:
        return area.name_in(tag_for(locale))

    def _grade(self, grade: str, locale: str) -> str:
        return self._t(locale, GRADE_NAMES[grade])

    async def _ensure_record(self, chat_id: str, locale: str) -> None:
        """A chat's first preference creates its record in the language it is talking in."""
        if await self.ctx.subscribers.get(CHANNEL, chat_id) is None:
            await self.ctx.subscribers.update(CHANNEL, chat_id, lang=locale, source=CHANNEL)

    # -- commands ------------------------------------------------------------------------------

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        sub = await self._subscriber(update)
        locale = await self._locale(update, sub)
        text = self._t(locale, WELCOME)
        if sub is not None and sub.status == "stopped":
            text += "\n\n" + self._t(locale, STATUS_STOPPED)
        elif sub is not None and sub.active:
            text += "\n\n" + self._status(sub, locale)
        await self._reply(update, text)

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        sub = await self._subscriber(update)
        locale = await self._locale(update, sub)
        text = self._t(locale, HELP)
        if sub is not None and sub.active:
            text += "\n\n" + self._status(sub, locale)
        await self._reply(update, text)

    async def on_subscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        locale = await self._locale(update)
        query = " ".join(context.args or []).strip()
        if not query:
            text, markup = self._picker(locale, None)
            await self._reply(update, text, markup)
            return
        area = find_area(self.ctx.registry, query)
        if area is None:
            await self._reply(update, self._t(locale, NO_SUCH_AREA, query=query[:60]))
            return
        await self._reply(update, await self._subscribe(update, area, locale))

    async def on_lang(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        locale = await self._locale(update)
        buttons = [[InlineKeyboardButton(label, callback_data=f"lang:{code}") for code, label in LANG_LABELS.items()]]
        await self._reply(update, self._t(locale, LANG_PROMPT), InlineKeyboardMarkup(buttons))

    async def on_level(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        locale = await self._locale(update)
        buttons = [
            [
                InlineKeyboardButton(
                    self._t(locale, LEVEL_BUTTON, grade=self._grade(g, locale)), callback_data=f"level:{g}"
                )
            ]
            for g in GRADES
        ]
        await self._reply(update, self._t(locale, LEVEL_PROMPT), InlineKeyboardMarkup(buttons))

    async def on_stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        locale = await self._locale(update)
        chat_id = str(update.effective_chat.id)
        await self._ensure_record(chat_id, locale)
        await self.ctx.subscribers.stop(CHANNEL, chat_id)
        await self._reply(update, self._t(locale, STOPPED))

    async def on_location(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.location is not None
        locale = await self._locale(update)
        where = update.effective_message.location
        areas = self.ctx.registry.containing(where.latitude, where.longitude)
        if not areas:
            await self._reply(update, self._t(locale, OUTSIDE))
            return
        await self._reply(update, await self._subscribe(update, areas[-1], locale))  # the most specific

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A plain message naming an area gets an offer to subscribe to it."""
        assert update.effective_message is not None
        locale = await self._locale(update)
        area = find_area(self.ctx.registry, update.effective_message.text or "")
        if area is None:
            await self._reply(update, self._t(locale, NOT_UNDERSTOOD))
            return
        button = InlineKeyboardButton(self._t(locale, SUBSCRIBE_BUTTON), callback_data=f"sub:{area.code}")
        await self._reply(
            update, self._t(locale, OFFER, area=self._name(area, locale)), InlineKeyboardMarkup([[button]])
        )

    # -- buttons -------------------------------------------------------------------------------

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        locale = await self._locale(update) if update.effective_chat else "en"
        kind, _, value = (query.data or "").partition(":")
        registry = self.ctx.registry
        valid = update.effective_chat is not None and (
            (kind in ("nav", "sub") and registry.get(value) is not None)
            or (kind == "lang" and value in LANGS)
            or (kind == "level" and value in GRADES)
        )
        if not valid:  # forged, stale or from a message we can no longer edit: change nothing
            await query.answer(self._t(locale, INVALID_CHOICE), show_alert=True)
            return
        assert update.effective_chat is not None
        chat_id = str(update.effective_chat.id)
        if kind == "nav":
            text, markup = self._picker(locale, value)
            await query.answer()
            await query.edit_message_text(text, reply_markup=markup)
        elif kind == "sub":
            text = await self._subscribe(update, registry.get(value), locale)  # type: ignore[arg-type]  # the callback data was checked against the registry above
            await query.answer(text)
            await query.edit_message_text(text)
        elif kind == "lang":
            await self._ensure_record(chat_id, value)
            await self.ctx.subscribers.update(CHANNEL, chat_id, lang=value)
            text = self._t(value, LANG_SET, language=LANG_LABELS[value])
            await query.answer(text)
            await query.edit_message_text(text)
        else:
            await self._ensure_record(chat_id, locale)
            await self.ctx.subscribers.update(CHANNEL, chat_id, min_grade=value)
            text = self._t(locale, LEVEL_SET, grade=self._grade(value, locale))
            await query.answer(text)
            await query.edit_message_text(text)

    def _picker(self, locale: str, code: str | None) -> tuple[str, InlineKeyboardMarkup]:
        """The area picker at `code` (None: the top): take the whole area or go one level down."""
        registry = self.ctx.registry
        tops = [a for a in registry.areas if not a.parent]
        if code is None and len(tops) == 1:
            code = tops[0].code  # one city: start inside it, at its districts
        rows: list[list[InlineKeyboardButton]] = []
        if code is None:
            children, text = tops, self._t(locale, PICK_TOP)
        else:
            area = registry.get(code)
            assert area is not None
            children = [registry.get(c) for c in registry.children.get(code, [])]  # type: ignore[misc]  # children of a known area are known areas
            text = self._t(locale, PICK_IN, area=self._name(area, locale))
            rows.append(
                [
                    InlineKeyboardButton(
                        self._t(locale, ALL_OF, area=self._name(area, locale)), callback_data=f"sub:{code}"
                    )
                ]
            )
        buttons = [
            InlineKeyboardButton(
                self._name(child, locale),
                callback_data=f"{'nav' if registry.children.get(child.code) else 'sub'}:{child.code}",
            )
            for child in children
        ]
        rows.extend(buttons[i : i + 2] for i in range(0, len(buttons), 2))
        if code is not None and (parent := registry.get(code)) is not None and parent.parent:
            rows.append([InlineKeyboardButton(self._t(locale, BACK), callback_data=f"nav:{parent.parent}")])
        return text, InlineKeyboardMarkup(rows)

    # -- shared --------------------------------------------------------------------------------

    async def _subscribe(self, update: Update, area: Area, locale: str) -> str:
        assert update.effective_chat is not None
        chat_id = str(update.effective_chat.id)
        await self._ensure_record(chat_id, locale)
        await self.ctx.subscribers.subscribe(CHANNEL, chat_id, area.code, lang=locale, source=CHANNEL)
        return self._t(locale, SUBSCRIBED, area=self._name(area, locale))

    def _status(self, sub: Subscriber, locale: str) -> str:
        names = [self._name(a, locale) for c in sub.areas if (a := self.ctx.registry.get(c)) is not None]
        return self._t(locale, STATUS, areas=join_list(names, locale), grade=self._grade(sub.min_grade, locale))

    async def _reply(self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(text, reply_markup=markup)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        if isinstance(error, BadRequest) and "not modified" in str(error).lower():
            return  # a double tap on the same button: the message already shows what was asked
        chat = update.effective_chat if isinstance(update, Update) else None
        if isinstance(error, TelegramError) and chat is not None:
            failure = classify(error)
            if isinstance(failure, PermanentError) and failure.unsubscribe:
                # The chat blocked the bot (or is gone): stop sending it warnings, as dispatch would.
                await self.ctx.subscribers.stop(CHANNEL, str(chat.id))
                log.info("telegram chat %s unreachable while replying (%s): stopped", chat.id, error)
                return
        log.error("telegram update failed", exc_info=error)
