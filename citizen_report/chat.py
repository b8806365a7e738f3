"""Report intake for the SMS and Telegram channels, as pure code the webhooks call.

- `parse_sms_report(body, ...)`: `REPORT <text>` / `上报 <text>` into a ReportInput (area by code
  or name when the text names one; category by keyword, else "other"); None when the SMS is not a
  report, so the webhook can try its other keywords.
- `TelegramReportFlow`: the /report conversation (category → location → optional photo →
  description) as a state machine that takes events and returns the next prompt; when it returns a
  `ReportInput`, the bot calls `submit_report(desk, flow.result, idempotency_key=...)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from citizen_report.model import CATEGORIES, Photo, ReportInput
from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs

SMS_KEYWORD = re.compile(r"^\s*(?:REPORT|上报|举报)[\s:：,，]*(?P<text>.*)$", re.IGNORECASE | re.DOTALL)
AREA_CODE = re.compile(r"(?<!\d)(99\d{4}(?:\d{3}){0,2})(?!\d)")


def parse_sms_report(body: str, registry: AreaRegistry, *, phone: str, locale: str = "zh_Hans") -> ReportInput | None:
    match = SMS_KEYWORD.match(body or "")
    if not match:
        return None
    text = match.group("text").strip()
    area = _area_in(text, registry)
    return ReportInput(
        category=category_in(text),
        description=text,
        area=area,
        address="" if area else text[:200],  # the place, if any, is somewhere in the text
        channel="sms",
        address_for_replies=phone,
        phone=phone,
        locale=locale,
    )


def category_in(text: str) -> str:
    lowered = text.lower()
    for category in CATEGORIES.values():
        if any(word in lowered for word in category.keywords):
            return category.code
    return "other"


def _area_in(text: str, registry: AreaRegistry) -> str | None:
    for code in AREA_CODE.findall(text):
        if registry.get(code):
            return code
    # The longest name found wins, so "江湾街道" beats a district whose name it contains.
    best: tuple[int, str] | None = None
    lowered = text.lower()
    for area in registry.areas:
        for name in area.name.values():
            if len(name) >= 2 and name.lower() in lowered and (best is None or len(name) > best[0]):
                best = (len(name), area.code)
    return best[1] if best else None


# States of the conversation.
CATEGORY, LOCATION, PHOTO, DESCRIPTION, DONE, CANCELLED = (
    "category",
    "location",
    "photo",
    "description",
    "done",
    "cancelled",
)


@dataclass
class Prompt:
    text: str  # already in the reporter's language
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (callback data, label)
    request_location: bool = False  # show Telegram's "share location" keyboard button
    finished: ReportInput | None = None


@dataclass
class TelegramReportFlow:
    """One chat's /report conversation. Feed it `start()`, then `choose(data)` for button presses,
    `location(lat, lon)`, `photo(bytes)`, `text(message)`; each returns the next Prompt."""

    chat_id: str
    locale: str
    catalogs: Catalogs
    registry: AreaRegistry
    state: str = CATEGORY
    draft: ReportInput = field(default_factory=ReportInput)

    def _(self, message: str, **params: object) -> str:
        return self.catalogs.text(self.locale, message, **params)

    def start(self) -> Prompt:
        self.state = CATEGORY
        self.draft = ReportInput(
            channel="telegram", address_for_replies=self.chat_id, locale=self.locale, reply_channel="telegram"
        )
        buttons = [(f"cat:{c.code}", self._(c.name)) for c in CATEGORIES.values()]
        return Prompt(self._("What kind of hazard are you reporting?"), buttons)

    def choose(self, data: str) -> Prompt:
        if data == "cancel":
            self.state = CANCELLED
            return Prompt(self._("Report cancelled."))
        if self.state == CATEGORY and data.startswith("cat:") and data[4:] in CATEGORIES:
            self.draft.category = data[4:]
            self.state = LOCATION
            return self._location_prompt()
        if self.state == PHOTO and data == "skip":
            self.state = DESCRIPTION
            return Prompt(self._("Describe what you see, in a few words."))
        return self._again()

    def location(self, lat: float, lon: float) -> Prompt:
        if self.state != LOCATION:
            return self._again()
        self.draft.lat, self.draft.lon = lat, lon
        self.state = PHOTO
        return Prompt(self._("Send a photo if you can, or skip."), [("skip", self._("Skip"))])

    def photo(self, data: bytes) -> Prompt:
        if self.state != PHOTO:
            return self._again()
        self.draft.photos.append(Photo(data))
        self.state = DESCRIPTION
        return Prompt(self._("Describe what you see, in a few words."))

    def text(self, message: str) -> Prompt:
        message = message.strip()
        if message.lower() in ("/cancel", "cancel", "取消"):
            return self.choose("cancel")
        if self.state == LOCATION:  # no location shared: accept an area name or code instead
            area = _area_in(message, self.registry)
            if area is None:
                return Prompt(self._("I could not find that place. Share your location or type a street name."))
            self.draft.area = area
            self.state = PHOTO
            return Prompt(self._("Send a photo if you can, or skip."), [("skip", self._("Skip"))])
        if self.state == DESCRIPTION:
            self.draft.description = message
            self.state = DONE
            return Prompt(self._("Thank you. Sending your report…"), finished=self.draft)
        return self._again()

    def _location_prompt(self) -> Prompt:
        category = CATEGORIES[self.draft.category]
        text = self._("Where is it? Share your location, or type the street or community name.")
        if category.life_safety:
            urgent = self._("If anyone is in danger, call %(number)s now.", number=category.emergency_number)
            text = f"{urgent}\n{text}"
        return Prompt(text, request_location=True)

    def _again(self) -> Prompt:
        """An event that does not fit the current step: repeat the step's question."""
        if self.state == CATEGORY:
            return self.start()
        if self.state == LOCATION:
            return self._location_prompt()
        if self.state == PHOTO:
            return Prompt(self._("Send a photo if you can, or skip."), [("skip", self._("Skip"))])
        if self.state == DESCRIPTION:
            return Prompt(self._("Describe what you see, in a few words."))
        return Prompt(self._("Send /report to start a new report."))
