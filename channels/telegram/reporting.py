"""/report in the Telegram bot: the hazard-report conversation, with its state in Redis.

`citizen_report.chat.TelegramReportFlow` holds the steps (category buttons → shared location or a
typed place → optional photo → description); this module feeds it updates and keeps each chat's
progress under `keys.telegram_flow(chat)` with a TTL, so a conversation survives a restart and any
process may take the next message. /cancel (or the Cancel button) aborts. The finished report goes
through `submit_report` with the update id as idempotency key: Telegram redelivering the update
files nothing new.

Its handler runs in group -1, before the subscription bot: it takes an update only while the chat
has a report in progress (or for /report itself) and then stops further handling, so a location
shared for a report never subscribes the chat to that area.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes, TypeHandler

from channels.telegram.bot import SubscriptionBot
from citizen_report.chat import CANCELLED, DESCRIPTION, PHOTO, Prompt, TelegramReportFlow
from citizen_report.intake import submit_report
from citizen_report.model import Photo
from citizen_report.notify import render_notification
from foundation.errors import Conflict, TooManyRequests, ValidationFailed
from foundation.i18n import N_
from foundation.store import keys

log = logging.getLogger(__name__)
FLOW_TTL = 3600  # seconds an unfinished report waits for its next step
CANCEL = N_("Cancel")
SHARE_LOCATION = N_("Use my location")
START_AGAIN = N_("Send /report to start a new report.")
PHOTO_FAILED = N_("The photo could not be received. Send it again, or skip.")


class ReportConversation:
    def __init__(self, bot: SubscriptionBot) -> None:
        self.bot = bot
        self.ctx = bot.ctx

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(TypeHandler(Update, self.route), group=-1)

    # -- routing -------------------------------------------------------------------------------

    async def route(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, message, query = update.effective_chat, update.message, update.callback_query
        if chat is None or (message is None and query is None):
            return  # edits (a live location moving) and other update kinds are not ours
        chat_id = str(chat.id)
        command = _command(message)
        if command == "report":
            await self._start(update, context, chat_id)
            raise ApplicationHandlerStop
        flow = await self._load(chat_id)
        if query is not None:
            data = query.data or ""
            if flow is None:
                if data.startswith("cat:") or data in ("skip", "cancel"):  # a button of a finished report
                    locale = await self.bot._locale(update)
                    await query.answer(self.bot._t(locale, START_AGAIN), show_alert=True)
                    raise ApplicationHandlerStop
                return
            await query.answer()
            await self._advance(update, context, flow, flow.choose(data))
            raise ApplicationHandlerStop
        assert message is not None
        if flow is None or (command and command != "cancel"):
            return  # no report in progress, or another command (/help...): the subscription bot's
        if message.location is not None:
            prompt = flow.location(message.location.latitude, message.location.longitude)
        elif message.photo and flow.state == PHOTO:
            photo = await self._download_photo(message, context)
            if photo is None:
                prompt = Prompt(flow._(PHOTO_FAILED), [("skip", flow._("Skip"))])
            else:
                prompt = flow.photo(photo)
        elif message.text:
            prompt = flow.text(message.text)
        else:
            prompt = flow.choose("")  # anything else: the current question again
        await self._advance(update, context, flow, prompt)
        raise ApplicationHandlerStop

    async def _start(self, update: Update, context: ContextTypes.DEFAULT_TYPE, chat_id: str) -> None:
        locale = await self.bot._locale(update)
        flow = TelegramReportFlow(chat_id, locale, self.ctx.catalogs, self.ctx.registry)
        await self._advance(update, context, flow, flow.start())

    async def _advance(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE, flow: TelegramReportFlow, prompt: Prompt
    ) -> None:
        chat_id = flow.chat_id
        if flow.state == CANCELLED:
            await self.ctx.redis.delete(keys.telegram_flow(chat_id))
            await self._send(context, chat_id, prompt.text, ReplyKeyboardRemove())
            return
        if prompt.finished is not None:
            await self._submit(update, context, flow)
            return
        await self._save(flow)
        markup: InlineKeyboardMarkup | ReplyKeyboardMarkup
        if prompt.request_location:
            button = KeyboardButton(flow._(SHARE_LOCATION), request_location=True)
            markup = ReplyKeyboardMarkup([[button]], one_time_keyboard=True, resize_keyboard=True)
        else:
            buttons = [InlineKeyboardButton(label, callback_data=data) for data, label in prompt.buttons]
            rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
            rows.append([InlineKeyboardButton(flow._(CANCEL), callback_data="cancel")])
            markup = InlineKeyboardMarkup(rows)
        await self._send(context, chat_id, prompt.text, markup)

    async def _submit(self, update: Update, context: ContextTypes.DEFAULT_TYPE, flow: TelegramReportFlow) -> None:
        chat_id, key = flow.chat_id, keys.telegram_flow(flow.chat_id)
        desk = self.ctx.reports
        try:
            submitted = await submit_report(desk, flow.draft, idempotency_key=f"update:{update.update_id}")
        except ValidationFailed as exc:
            problems = "\n".join(flow._(e.message, **e.params) for e in exc.errors)
            if all(e.field == "description" for e in exc.errors):
                flow.state = DESCRIPTION  # only the words were wrong: ask for them again
                await self._save(flow)
                await self._send(context, chat_id, problems, None)
            else:
                await self.ctx.redis.delete(key)
                await self._send(context, chat_id, f"{problems}\n{flow._(START_AGAIN)}", ReplyKeyboardRemove())
            return
        except (TooManyRequests, Conflict) as exc:
            await self.ctx.redis.delete(key)
            await self._send(context, chat_id, flow._(exc.message, **exc.params), ReplyKeyboardRemove())
            return
        # Deleted after the report is stored: a redelivered update replays the same report.
        await self.ctx.redis.delete(key)
        note = render_notification(desk.text_env, desk.catalogs, submitted.report, desk.settings.public_url)
        await self._send(context, chat_id, note["text"], ReplyKeyboardRemove())

    async def _download_photo(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> bytes | None:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        try:
            file = await context.bot.get_file(largest.file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.warning("telegram photo download failed: %s", exc)
            return None

    async def _send(self, context: ContextTypes.DEFAULT_TYPE, chat_id: str, text: str, markup: Any) -> None:
        await context.bot.send_message(chat_id=int(chat_id), text=text, reply_markup=markup)

    # -- state in Redis ------------------------------------------------------------------------

    async def _save(self, flow: TelegramReportFlow) -> None:
        draft = flow.draft
        state = {
            "state": flow.state,
            "locale": flow.locale,
            "category": draft.category,
            "lat": draft.lat,
            "lon": draft.lon,
            "area": draft.area,
            "photos": [base64.b64encode(p.data).decode() for p in draft.photos],
        }
        await self.ctx.redis.set(keys.telegram_flow(flow.chat_id), json.dumps(state), ex=FLOW_TTL)

    async def _load(self, chat_id: str) -> TelegramReportFlow | None:
        raw = await self.ctx.redis.get(keys.telegram_flow(chat_id))
        if raw is None:
            return None
        state = json.loads(raw)
        flow = TelegramReportFlow(chat_id, state["locale"], self.ctx.catalogs, self.ctx.registry)
        flow.start()  # the draft's fixed fields: channel, reply address, locale
        flow.state = state["state"]
        draft = flow.draft
        draft.category, draft.lat, draft.lon, draft.area = state["category"], state["lat"], state["lon"], state["area"]
        draft.photos = [Photo(base64.b64decode(p)) for p in state["photos"]]
        return flow


def _command(message: Message | None) -> str:
    """The bot command a message starts with ("report" for "/report@warncast_bot x"), else ""."""
    text = (message.text or "") if message is not None else ""
    if not text.startswith("/"):
        return ""
    return text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if len(text) > 1 else ""
