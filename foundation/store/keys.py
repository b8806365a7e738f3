"""Every Redis key name, in one place.

Keys that change together share a hash tag (`{warnings}`, `{audit}`, ...) so that each
transaction stays in one slot and the store runs on Redis Cluster unchanged. Warnings are few
(about a hundred a day), so one slot for all of them is plenty and lets a workflow step update
a message and its indexes atomically.

How long keys live (`warncast admin stats` shows what each family holds):
- kept: the warnings and their threads (`warning`, `thread`, WARNINGS_INDEX) and the audit log are
  the public record, with no end (PRODUCT.md sets none); so are subscribers (a STOP is honoured
  forever), accounts and API tokens, areas, policy, screens, partners, and the citizen reports,
  incidents and photos (the case record; REPORTS_INDEX, REPORTS_BY_TRACKING). The city's record
  keeps its compact summaries as long: `warning_summaries` per year, `delivery_record` per plan
  (when each channel first and last delivered, receipts), `report_record` per year (counts and
  triage times), `audit_by_target`.
- a warning's delivery records (`plan`, `delivery_stats`, `delivery_state`, `thread_recipients`)
  expire WARNCAST_DELIVERY_RETENTION_DAYS after the warning ends (publisher/dispatch/retention.py,
  checked by tests/publisher/test_retention.py); the dispatch dead letters, the outboxes and the
  entries of MONITORING_QUEUE and REPORT_NOTIFICATIONS are dropped once older than that.
- a short TTL: identifier sequences, sessions, login throttles, rate buckets and counters, report
  idempotency keys, Telegram flows, worker heartbeats, the ready probe, REPORT_NOTIFY_SENT.
- bounded: queue and retry entries leave when done; WARNINGS_EVENTS and BOARD_EVENTS are capped;
  WARNINGS_EXPIRY, WARNINGS_SCHEDULE, BOARD_INDEX and `open_incidents` lose a member when it ends.
"""

from __future__ import annotations

PREFIX = "wc"

# The deployment: the fingerprint of WARNCAST_SECRET_KEY (an HMAC of a constant, never the key), so
# that a process started with another key refuses to start.
SECRET_FINGERPRINT = f"{PREFIX}:{{deployment}}:secret-fingerprint"


def durable_mark(near: str) -> str:
    """foundation.store.durable writes this (with a short expiry) and WAITs: a key in the hash slot of
    `near`, so on a cluster it travels the replication stream of the primary that holds `near`."""
    return f"{PREFIX}:{{{_tag(near)}}}:durable-mark"


def _tag(key: str) -> str:
    """The part of `key` Redis Cluster hashes: between its first braces, else the whole key."""
    return key[key.index("{") + 1 : key.index("}")] if "{" in key and "}" in key else key


# Area registry: one hash code -> JSON, plus a version counter bumped on every load.
AREAS = f"{PREFIX}:{{areas}}:by-code"
AREAS_VERSION = f"{PREFIX}:{{areas}}:version"

# Warnings (CAP messages). `msg` holds one message as JSON; the sorted sets index them.
WARNINGS_INDEX = f"{PREFIX}:{{warnings}}:index"  # id -> created (epoch s)


# Every unit id that has messages in its own index (a set), so the release centre can answer for the
# messages of units since deleted; and the mark that messages from before units existed are indexed.
UNITS_INDEXED = f"{PREFIX}:{{warnings}}:by-unit:ids"
UNITS_BACKFILLED = f"{PREFIX}:{{warnings}}:by-unit:backfilled"


def unit_warnings(unit: str) -> str:
    """A unit's messages, by creation time (sorted set): what it issued, in the warnings' slot so a
    new message and its entries are written in one transaction."""
    return f"{PREFIX}:{{warnings}}:by-unit:{unit}"


WARNINGS_SCHEDULE = f"{PREFIX}:{{warnings}}:scheduled"  # id -> effective (epoch s)
WARNINGS_EXPIRY = f"{PREFIX}:{{warnings}}:expiry"  # thread id -> expires (epoch s)
WARNINGS_EVENTS = f"{PREFIX}:{{warnings}}:events"  # stream of lifecycle events
APPROVAL_RULES = f"{PREFIX}:{{warnings}}:approval-rules"  # JSON document
WARNING_TEMPLATES = f"{PREFIX}:{{warnings}}:templates"  # JSON: the warning templates (publisher/warning_templates.py)


def warning_source(source: str) -> str:
    """The message a machine source drafted (a threshold plan in one sensor episode): written in the
    message's own transaction, so a source that is retried after a crash finds its draft."""
    return f"{PREFIX}:{{warnings}}:source:{source}"


# Messages waiting for approval, scored by when they were submitted (publisher/approval_pages.py).
APPROVALS_WAITING = f"{PREFIX}:{{approvals}}:waiting"


def warning(message_id: str) -> str:
    return f"{PREFIX}:{{warnings}}:msg:{message_id}"


def warning_summaries(year: int) -> str:
    """Hash of the year's published messages (by creation) -> the few fields the city's record
    counts (publisher/record.py): derived from the kept messages, which never change once published,
    so it is kept with them and could be rebuilt from them."""
    return f"{PREFIX}:{{warnings}}:record:{year}"


def thread(thread_id: str) -> str:
    """Hash of a warning's thread: the current published message and the lifecycle state."""
    return f"{PREFIX}:{{warnings}}:thread:{thread_id}"


def identifier_sequence(second: str) -> str:
    return f"{PREFIX}:{{warnings}}:idseq:{second}"


# People and access.
def user(name: str) -> str:
    return f"{PREFIX}:{{users}}:user:{name}"


USERS = f"{PREFIX}:{{users}}:names"


def token(token_hash: str) -> str:
    return f"{PREFIX}:{{tokens}}:{token_hash}"


def session(session_id_hash: str) -> str:
    return f"{PREFIX}:{{sessions}}:{session_id_hash}"


def login_failures(subject: str) -> str:
    return f"{PREFIX}:{{ratelimit}}:login:{subject}"


# Tamper-evident audit log: a list of entries and the head (last seq and hash).
AUDIT_LOG = f"{PREFIX}:{{audit}}:log"
AUDIT_HEAD = f"{PREFIX}:{{audit}}:head"


def audit_by_target(target: str) -> str:
    """The sequence numbers of the audit entries about one target (a warning, an incident), in the
    log's slot so an entry and its index are written together."""
    return f"{PREFIX}:{{audit}}:target:{target}"


# Subscribers. One hash per subscriber (its own slot); per-area index sets split by minimum grade so
# planning reads only the sets a grade needs. Index sets are a hint: the subscriber hash is checked
# again at send time, so a STOP is honoured even for work already queued.
def subscriber(channel: str, address: str) -> str:
    return f"{PREFIX}:{{sub:{channel}:{address}}}"


def area_subscribers(area: str, channel: str, min_grade: str) -> str:
    return f"{PREFIX}:{{area:{area}}}:subs:{channel}:{min_grade}"


def area_drill_subscribers(area: str, channel: str) -> str:
    return f"{PREFIX}:{{area:{area}}}:drill:{channel}"


CHANNEL_POLICY = f"{PREFIX}:{{policy}}:channels"  # JSON document

# Dispatch: one stream of work segments consumed by every worker through one consumer group.
DISPATCH_QUEUE = f"{PREFIX}:{{dispatch}}:queue"
DISPATCH_RETRY = f"{PREFIX}:{{dispatch}}:retry"  # sorted set: JSON job -> due (epoch s)
DISPATCH_DEAD = f"{PREFIX}:{{dispatch}}:dead"  # list of JSON dead letters
PLANNER_GROUP = "planner"
DISPATCH_GROUP = "dispatch"


def worker_heartbeat(worker_id: str) -> str:
    return f"{PREFIX}:{{workers}}:{worker_id}"


# /readyz SETs this (with a short PX) to prove Redis takes writes: a replica answers PING, not SET.
READY_PROBE = f"{PREFIX}:{{ready}}:probe"


def plan(message_id: str) -> str:
    return f"{PREFIX}:{{plan:{message_id}}}"


def delivery_state(message_id: str, channel: str, shard: int) -> str:
    """Per-recipient state of one warning version, sharded so a million recipients spread out."""
    return f"{PREFIX}:{{deliv:{message_id}:{channel}:{shard}}}"


def delivery_stats(message_id: str) -> str:
    return f"{PREFIX}:{{stats:{message_id}}}"


def delivery_record(plan_id: str) -> str:
    """The city's record of one plan's delivery (publisher/record.py): a few fields per channel, kept
    with the warnings when `delivery_stats` expires; in the stats' slot, so a worker's write-back of
    both goes to one node."""
    return f"{PREFIX}:{{stats:{plan_id}}}:record"


def counted_batches(counts_key: str, run: str) -> str:
    """The count batches of one segment run already added to `counts_key` (`delivery_count.lua`): in
    that key's hash slot, so the script that adds a batch once touches one slot."""
    return f"{PREFIX}:{{{_tag(counts_key)}}}:counted:{run}"


def thread_recipients(thread_id: str, channel: str, shard: int) -> str:
    """Everyone who received some version of a warning: updates and cancellations go to them."""
    return f"{PREFIX}:{{recv:{thread_id}:{channel}:{shard}}}"


def rate_bucket(name: str) -> str:
    return f"{PREFIX}:{{rate:{name}}}"


def outbox(channel: str) -> str:
    return f"{PREFIX}:{{outbox}}:{channel}"


DELIVERY_TOTALS = f"{PREFIX}:{{metrics}}:deliveries"  # hash channel.outcome -> count, all workers
# ---------------------------------------------------------------------------------------------
# Display screens (registry and heartbeats). Feeds keep no keys of their own: their renderings
# are cached per process and keyed by the last id of WARNINGS_EVENTS.
SCREENS = f"{PREFIX}:{{screens}}:by-id"  # hash screen id -> JSON record
SCREENS_SEEN = f"{PREFIX}:{{screens}}:seen"  # hash screen id -> JSON {at, via}
# Citizen reports and the monitoring queue. One slot (`{reports}`) so that an intake writes the
# report, its idempotency key, the queue item and the reporter's notification in one atomic script,
# and a triage action updates an incident and its reports together. Photos are large and written
# before the report, so they live under their own tag.
REPORT_SEQUENCE = f"{PREFIX}:{{reports}}:seq"
REPORTS_INDEX = f"{PREFIX}:{{reports}}:index"  # report id -> created (epoch s)
REPORTS_BY_TRACKING = f"{PREFIX}:{{reports}}:by-tracking"  # tracking code -> report id
MONITORING_QUEUE = f"{PREFIX}:{{reports}}:queue"  # stream: report | breach | alert items
MONITORING_GROUP = "ops-centre"  # the consumer group that turns items into board entries
MONITORING_LEASE = f"{PREFIX}:{{reports}}:queue-lease"  # the group's consumer at work (name, with a TTL)
BOARD_INDEX = f"{PREFIX}:{{reports}}:board"  # incident id -> last change (epoch s)
BOARD_EVENTS = f"{PREFIX}:{{reports}}:board-events"  # capped stream the live board listens to
REPORT_NOTIFICATIONS = f"{PREFIX}:{{reports}}:notifications"  # outbox to reporters (SMS/Telegram/web)
ROUTING = f"{PREFIX}:{{reports}}:routing"  # JSON: departments and category x area rules
THRESHOLDS = f"{PREFIX}:{{reports}}:thresholds"  # JSON: reading type -> yellow/red limits
SENSOR_COLOURS = f"{PREFIX}:{{reports}}:sensor-colour"  # sensor id -> green | yellow | red
THRESHOLD_PLANS = f"{PREFIX}:{{reports}}:plans"  # JSON: reading type x colour x area -> warning template


def sensor_episode(sensor: str) -> str:
    """A sensor's current episode away from green (warncast/threshold_plans.py): when it began, the
    warnings its plans drafted, and when it returned to green."""
    return f"{PREFIX}:{{reports}}:episode:{sensor}"


def report(report_id: str) -> str:
    return f"{PREFIX}:{{reports}}:report:{report_id}"


def report_record(year: int) -> str:
    """The city's record of one year of reports (citizen_report/record.py): counts by category, area
    and hour, and triage-time histograms; written in the intake's and triage's transactions."""
    return f"{PREFIX}:{{reports}}:record:{year}"


def report_idempotency(scope_hash: str) -> str:
    return f"{PREFIX}:{{reports}}:idem:{scope_hash}"


def incident(incident_id: str) -> str:
    return f"{PREFIX}:{{reports}}:incident:{incident_id}"


def open_incidents(category: str) -> str:
    """Geo set of the open incidents of one category, for corroboration by distance."""
    return f"{PREFIX}:{{reports}}:incidents-geo:{category}"


def report_photo(photo_id: str) -> str:
    return f"{PREFIX}:{{photos}}:{photo_id}"


def report_rate(kind: str, subject: str, window: int) -> str:
    """In the reports slot, so intake counts, checks and allocates an id in one pipeline."""
    return f"{PREFIX}:{{reports}}:rate:{kind}:{subject}:{window}"


# ---------------------------------------------------------------------------------------------
# Issuing units (foundation.access.units): one hash unit id -> JSON record, read whole.
UNITS = f"{PREFIX}:{{units}}:by-id"
# Duty-group robots of the units (channels.duty_groups): records apart from their webhook
# credentials, one slot so a record and its credentials change together.
DUTY_GROUPS = f"{PREFIX}:{{dutygroups}}:by-id"  # hash group id -> JSON record (no credentials)
DUTY_GROUP_CREDENTIALS = f"{PREFIX}:{{dutygroups}}:credentials"  # hash group id -> JSON token, secret


def duty_page(subject: str) -> str:
    """Set once when a unit's duty groups were paged about `subject` (an incident and its unit, a
    message waiting for approval), so every process may follow the events without paging twice."""
    return f"{PREFIX}:{{dutygroups}}:paged:{subject}"


# ---------------------------------------------------------------------------------------------
# Partner webhooks (channels.partners): registered partner systems that receive each published
# message. Records and secrets are kept apart so listing partners never loads a secret; one slot
# (`{partners}`) so a record and its secret change together.
PARTNERS = f"{PREFIX}:{{partners}}:by-id"  # hash partner id -> JSON record (no secret)
PARTNER_SECRETS = f"{PREFIX}:{{partners}}:secrets"  # hash partner id -> signing secret

# The closed loop to reporters: a consumer group over REPORT_NOTIFICATIONS delivers SMS and Telegram
# messages. Retries wait in a sorted set (entry id -> due); ids sent but not yet acknowledged sit in
# a small set so a consumer that takes over from a dead one does not send them again.
REPORT_NOTIFY_GROUP = "reporter-notify"
REPORT_NOTIFY_RETRY = f"{PREFIX}:{{reports}}:notify-retry"
REPORT_NOTIFY_SENT = f"{PREFIX}:{{reports}}:notify-sent"


def telegram_flow(chat_id: str) -> str:
    """One chat's /report conversation in progress (JSON, with a TTL)."""
    return f"{PREFIX}:{{tgflow:{chat_id}}}"
