"""Grades and the event taxonomy: the fixed vocabulary a warning is composed from."""

from __future__ import annotations

from dataclasses import dataclass

from foundation.i18n import N_

GRADES = ("blue", "yellow", "orange", "red")  # IV, III, II, I: ascending seriousness

# Grade -> CAP severity, the roman level used in Chinese practice, and display colours.
GRADE_SEVERITY = {"blue": "Minor", "yellow": "Moderate", "orange": "Severe", "red": "Extreme"}
GRADE_LEVEL = {"blue": "IV", "yellow": "III", "orange": "II", "red": "I"}
GRADE_COLOUR = {"blue": "#1f6fd1", "yellow": "#f2c200", "orange": "#f07f00", "red": "#d7191c"}
GRADE_TEXT_COLOUR = {"blue": "#ffffff", "yellow": "#1a1a1a", "orange": "#1a1a1a", "red": "#ffffff"}
GRADE_NAMES = {
    "blue": N_("Blue"),
    "yellow": N_("Yellow"),
    "orange": N_("Orange"),
    "red": N_("Red"),
}
GRADE_SERIOUSNESS = {
    "blue": N_("general"),
    "yellow": N_("serious"),
    "orange": N_("severe"),
    "red": N_("especially severe"),
}

CAP_CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
RESPONSE_TYPES = (
    "Shelter",
    "Evacuate",
    "Prepare",
    "Execute",
    "Avoid",
    "Monitor",
    "Assess",
    "AllClear",
    "None",
)
STATUSES = ("Actual", "Exercise", "Test")  # what may be published; Exercise and Test are drills


@dataclass(frozen=True)
class EventType:
    code: str
    category: str
    name: str  # msgid (English), translated per info language
    response: str = "Prepare"


EVENTS: dict[str, EventType] = {
    e.code: e
    for e in (
        EventType("rainstorm", "Met", N_("Rainstorm")),
        EventType("typhoon", "Met", N_("Typhoon"), "Shelter"),
        EventType("thunderstorm", "Met", N_("Thunderstorm and gale")),
        EventType("heat", "Met", N_("High temperature")),
        EventType("cold_wave", "Met", N_("Cold wave")),
        EventType("blizzard", "Met", N_("Blizzard")),
        EventType("fog", "Met", N_("Dense fog"), "Avoid"),
        EventType("haze", "Met", N_("Haze"), "Avoid"),
        EventType("flood", "Met", N_("Flood"), "Evacuate"),
        EventType("waterlogging", "Met", N_("Urban waterlogging"), "Avoid"),
        EventType("landslide", "Geo", N_("Landslide"), "Evacuate"),
        EventType("earthquake", "Geo", N_("Earthquake"), "Shelter"),
        EventType("fire", "Fire", N_("Fire"), "Evacuate"),
        EventType("hazmat", "CBRNE", N_("Hazardous chemical leak"), "Shelter"),
        EventType("gas_leak", "Safety", N_("Gas leak"), "Evacuate"),
        EventType("collapse", "Infra", N_("Building collapse"), "Avoid"),
        EventType("power_outage", "Infra", N_("Power outage")),
        EventType("water_outage", "Infra", N_("Water supply interruption")),
        EventType("air_pollution", "Env", N_("Heavy air pollution"), "Avoid"),
        EventType("epidemic", "Health", N_("Public health emergency"), "Monitor"),
        EventType("traffic", "Transport", N_("Major traffic disruption"), "Avoid"),
        EventType("public_security", "Security", N_("Public security incident"), "Avoid"),
    )
}

# CAP enumeration values as shown in the console, marked for translation.
VALUE_NAMES = {
    "Actual": N_("Actual"),
    "Exercise": N_("Exercise"),
    "Test": N_("Test"),
    "Immediate": N_("Immediate"),
    "Expected": N_("Expected"),
    "Future": N_("Future"),
    "Past": N_("Past"),
    "Unknown": N_("Unknown"),
    "Observed": N_("Observed"),
    "Likely": N_("Likely"),
    "Possible": N_("Possible"),
    "Unlikely": N_("Unlikely"),
}


def template_names() -> dict[str, dict[str, str]]:
    """What every page and message template may use to show a grade."""
    return {
        "grade_colour": GRADE_COLOUR,
        "grade_text_colour": GRADE_TEXT_COLOUR,
        "grade_level": GRADE_LEVEL,
        "grade_severity": GRADE_SEVERITY,
    }
