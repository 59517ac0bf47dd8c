"""Recognising and reading bounces from their human-readable text, for MTAs that send no (usable) RFC 3464 part.

The approach is structural rather than per-vendor:

* the *notice* is the bounce text before the returned original message (cut at the usual "copy of the message"
  markers, or where a pasted header block starts), so addresses and codes of the original do not leak in;
* recipients come from ``X-Failed-Recipients``, else from the places MTAs put them (``<addr>:`` lines, lists after
  "the following address(es)/recipients", ``RCPT TO:<addr>``, "delivering your mail to <addr>", ...), else from any
  address left in the notice once the sender-side ones (the bounce's own addressee, ``MAIL FROM``, envelope-from,
  the original's From) are set aside;
* each recipient's status comes from the text that follows it (enhanced status code, else SMTP reply code), else
  from the whole notice, else from wording (temporary / delayed vs permanent / giving up).
"""

from __future__ import annotations

import re

from .mime import ADDRESS_RE
from .model import ReportRecipient, find_enhanced_status, find_reply_code, permanence_of, trim_diagnostic

MAX_NOTICE = 60_000
MAX_SEGMENT = 3000

# --- bounce signals -------------------------------------------------------------------------------------------

_DAEMON_LOCALS = {
    "mailerdaemon",
    "mailerdeamon",
    "maildaemon",
    "postmaster",
    "poostmaster",
    "maildeliverysystem",
    "maildeliverysubsystem",
    "mailadmin",
    "postoffice",
    "mmdf",
    "bounce",
    "bounces",
    "bouncer",
    "ndr",
    "nondelivery",
    "mailsystem",
    "deliverystatus",
}
_WEAK_LOCALS = {"noreply", "donotreply", "nobody", "sysadmin", "administrator", "admin", "system", "mailer"}
_DAEMON_NAME_RE = re.compile(
    r"mail(?:er)?[\s_.-]?daemon|post[\s_-]?master|mail[\s_-]?deliver|delivery[\s_-]?(?:system|subsystem|status|service)"
    r"|\bndr\b|mail[\s_-]?system|system administrator|content[\s_-]?filter|interscan|e-mail interconnect",
    re.IGNORECASE,
)

_SUBJECT_RE = re.compile(
    r"undeliver(?:ed|able)|returned mail|returning message|returned to sender|mail delivery (?:fail|subsystem|system)"
    r"|delivery (?:status notification|status|failure|failed|has failed|has been delayed|report|notification|problem|error)"
    r"|failure (?:notice|delivery)|failed delivery|non-?delivery|nondeliverable|could(?: not|n't) be delivered"
    r"|not (?:be )?delivered|mail system error|could not send|delayed mail|message delayed|delayed \d+ hours"
    r"|mail (?:failed|failure)|message (?:you sent )?blocked|unsolicited bulk|loop (?:alert|detected)"
    r"|error sending your mail|see transcript|errors from|delivery notification|mail error|error notification"
    r"|unzustellbar|nicht zugestellt|zustellung fehlgeschlagen|non recapitabile|non remis|non distribu"
    r"|échec de (?:la )?(?:remise|distribution)|no se (?:pudo|puede) entregar|onbestelbaar|niet bezorgd"
    r"|не доставлен|недоставлен|ошибка доставки|配信エラー|送信エラー|配送エラー|メールエラー|エラー通知|未達|不達|退信"
    r"|投递失败|無法傳遞|배달 ?실패",
    re.IGNORECASE,
)

_BODY_RE = re.compile(
    r"could(?: not|n't)\s+be\s+delivered|was\s+not\s+delivered|wasn't\s+delivered|has\s+not\s+(?:yet\s+)?been\s+delivered"
    r"|not\s+(?:be\s+)?delivered\s+to|undeliverable|delivery\s+(?:has\s+)?failed|failed\s+permanently"
    r"|permanent\s+(?:fatal\s+)?error|fatal\s+errors?|unable\s+to\s+deliver|(?:was|were)n't\s+able\s+to\s+deliver"
    r"|were\s+unable\s+to\s+deliver|did\s+not\s+reach\s+the\s+following|following\s+address(?:es|\(es\))?\s+(?:had|failed)"
    r"|could\s+not\s+deliver|error\s+(?:has\s+)?occurred\s+while\s+(?:trying|attempting)\s+to\s+deliver"
    r"|delivery\s+to\s+the\s+following\s+recipients?|transcript\s+of\s+session|mail\s+delivery\s+software"
    r"|not\s+going\s+to\s+try\s+again|error\s+delivering\s+your\s+mail|delivery\s+has\s+been\s+delayed"
    r"|has\s+been\s+delayed|message\s+(?:could\s+not|cannot)\s+be\s+(?:sent|delivered)|cannot\s+be\s+delivered"
    r"|rejected\s+(?:by|your\s+message)|trouble\s+delivering|returned\s+mail|non-?delivery\s+report"
    r"|following\s+recipients?\s+(?:failed|returned|was\s+rejected|did\s+not)|delivery\s+status\s+notification"
    r"|送信できませんでした|配信できませんでした|届きませんでした|送信に失敗|配送できません|不達"
    r"|не\s+может\s+быть\s+доставлен|не\s+доставлен|konnte\s+nicht\s+zugestellt|nicht\s+zugestellt\s+werden"
    r"|n'a\s+pas\s+pu\s+être\s+(?:remis|distribué)|no\s+se\s+(?:pudo|ha\s+podido)\s+entregar|non\s+è\s+riuscito",
    re.IGNORECASE,
)
# The usual failure reasons, as remote servers word them: evidence, but not enough on their own.
_REASON_RE = re.compile(
    r"no\s+such\s+(?:user|mailbox|recipient)|user\s+unknown|unknown\s+user|invalid\s+(?:user|recipient|mailbox)(?:\s+address)?"
    r"|mailbox\s+(?:is\s+)?(?:full|unavailable|not\s+found|disabled)|over\s+quota|quota\s+exceeded"
    r"|requested\s+action\s+not\s+taken|recipient\s+address\s+rejected|relay(?:ing)?\s+(?:access\s+)?denied"
    r"|account\s+(?:is\s+|has\s+been\s+)?(?:disabled|suspended|deactivated|closed)|host\s+(?:or\s+domain\s+name\s+)?not\s+found"
    r"|not\s+listed\s+in|unknown\s+(?:recipient|address|mailbox)|(?:address|recipient)\s+(?:rejected|not\s+found|unknown)"
    r"|name\s+is\s+not\s+recognized|no\s+mailbox|user\s+not\s+found|does\s+not\s+exist|message\s+size\s+exceeds"
    r"|message\s+(?:is\s+)?too\s+large|blocked\s+by|rejected\s+for\s+policy\s+reasons|spam\s+detected",
    re.IGNORECASE,
)

# --- where the returned original starts ----------------------------------------------------------------------

_MARKER_RE = re.compile(
    r"^[ \t|>*=_-]*(?:"
    r"(?:this\s+is\s+a|below\s+this\s+line\s+is\s+a|enclosed\s+is\s+a|included\s+is\s+a|here\s+is\s+a)\s+copy\s+of"
    r"|original[ \t]+(?:message|mail)(?:[ \t]+(?:follows|headers?|text|as[ \t]+follows|info"
    r"|is[ \t]+(?:attached|included|below|following)))?[ \t:.=*-]*$"
    r"|unsent\s+message\s+follows|message\s+headers\s+follow|(?:the\s+)?header\s+of\s+the\s+original\s+message"
    r"|returned[ \t]+message[ \t:=*-]*$|message\s+text\s+follows|below\s+is\s+a\s+copy\s+of\s+the\s+original"
    r"|headers?\s+of\s+the\s+(?:original|returned)\s+message|the\s+text\s+you\s+sent\s+follows"
    r"|undelivered[ \t]+message(?:[ \t]+headers)?[ \t:=*-]*$"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_START_RE = re.compile(
    r"^(?:Received|Return-Path|Message-I[Dd]|DKIM-Signature|X-Received|ARC-Seal|Delivered-To|Authentication-Results"
    r"|X-Google-DKIM-Signature|X-Google-Smtp-Source|MIME-Version|Content-Type|Date|From|To|Subject|Reply-To|X-Mailer"
    r"|User-Agent|X-Originating-IP|X-YMail-OSG)[ \t]*:",
    re.IGNORECASE,
)
_HEADERISH_RE = re.compile(r"^(?:[!-9;-~]{1,60}[ \t]*:|[ \t]+\S)")


def notice_of(body: str) -> tuple[str, str]:
    """Split the bounce body into (notice, returned-original text)."""
    body = body[:MAX_NOTICE]
    cut = len(body)
    marker = _MARKER_RE.search(body)
    if marker:
        cut = marker.start()
    # Without a marker: where a block of at least three header lines starts (a pasted original).
    offset = 0
    lines = body[:cut].splitlines(keepends=True)
    for index, line in enumerate(lines):
        if _HEADER_START_RE.match(line) and all(
            index + step < len(lines) and _HEADERISH_RE.match(lines[index + step]) for step in (1, 2)
        ):
            cut = offset
            break
        offset += len(line)
    return body[:cut], body[cut:]


# --- recipients ----------------------------------------------------------------------------------------------

_A = ADDRESS_RE.pattern
_LINE_PATTERNS = [
    # Postfix, qmail, Yahoo, and most "<addr>: reason" styles.
    re.compile(rf"^[ \t]*<{_A}>[ \t]*(?:\(expanded from[^)\n]{{0,300}}\)[ \t]*)?:", re.MULTILINE),
    # "addr: 550 ..." (OpenSMTPD), "addr:" alone (Exim, GMX), "<addr>... reason" (sendmail transcripts).
    re.compile(rf"^[ \t]*\"?{_A}\"?[ \t]*:(?:[ \t]|$)", re.MULTILINE),
    re.compile(rf"^[ \t]*(?:[45]\d\d[ \t-]+)?<?{_A}>?\.\.\.[ \t]", re.MULTILINE),
    re.compile(rf"^[ \t]*(?:>>>|->|\*)[ \t]*<?{_A}", re.MULTILINE),
    re.compile(rf"RCPT[ \t]+TO:?[ \t]*<{_A}>", re.IGNORECASE),
    re.compile(
        rf"(?:recipient[ \t]+address|final-recipient|original-recipient|addressed[ \t]+to|unknown[ \t]+user"
        rf"|invalid[ \t]+final[ \t]+delivery[ \t]+userid|could[ \t]+not[ \t]+be[ \t]+delivered[ \t]+to"
        rf"|unable[ \t]+to[ \t]+deliver[ \t]+(?:message[ \t]+)?to|delivering[ \t]+your[ \t]+mail[ \t]+to"
        rf"|(?:wasn't|was[ \t]+not|couldn't[ \t]+be|could[ \t]+not[ \t]+be)[ \t]+delivered[ \t]+to|your[ \t]+message[ \t]+to"
        rf"|recipient|returned[ \t]+permanent[ \t]+errors"
        rf"|rejected[ \t]+your[ \t]+message[ \t]+to[ \t]+the[ \t]+following[ \t]+email[ \t]+addresses)"
        rf"[ \t:]*(?:rfc822;[ \t]*)?(?:\n[ \t]*)?<?{_A}",
        re.IGNORECASE,
    ),
]
_SECTION_RE = re.compile(
    r"(?:following|these)\s+(?:[\w()'-]+\s+){0,3}?(?:address(?:es|\(es\))?|recipients?(?:\(s\))?|destinations?|users?)\b",
    re.IGNORECASE,
)
_SENDER_CONTEXT_RE = re.compile(
    rf"(?:mail\s+from:?|envelope-from|envelope-sender|sender\s+address|sent\s+by|message\s+from|from:|generated\s+from"
    rf"|x-postfix-sender:|return-path:|reply-to:|sender:|message-id:|in-reply-to:|references:)[ \t]*(?:rfc822;[ \t]*)?"
    rf"(?:\n[ \t]*)?(?:[^<>\n]{{0,80}}<)?{_A}",
    re.IGNORECASE,
)
_BOILERPLATE_RE = re.compile(
    r"contact|assistance|send\s+mail\s+to|questions?|support|help|visit|abuse|unsubscribe", re.IGNORECASE
)


def _found(pattern: re.Pattern, notice: str) -> list[tuple[int, str]]:
    hits = []
    for match in pattern.finditer(notice):
        hits.append((match.start(1), match.group(1).strip(".").lower()))
        if len(hits) > 200:
            break
    return hits


def _section_addresses(notice: str) -> list[tuple[int, str]]:
    hits: list[tuple[int, str]] = []
    for count, section in enumerate(_SECTION_RE.finditer(notice)):
        if count >= 50:
            break
        start = section.end()
        window = notice[start : start + 1500]
        lines = window.splitlines()[:16]
        seen_any = False
        offset = start
        for line in lines:
            if seen_any and not line.strip():
                break
            for match in ADDRESS_RE.finditer(line):
                hits.append((offset + match.start(1), match.group(1).strip(".").lower()))
                seen_any = True
            offset += len(line) + 1
        if len(hits) > 200:
            break
    return hits


def _sender_side(notice: str) -> set[str]:
    found = set()
    for match in _SENDER_CONTEXT_RE.finditer(notice):
        found.add(match.group(1).strip(".").lower())
    return found


def find_recipient_positions(notice: str, excluded: set[str], preferred: list[str]) -> list[tuple[int, str]]:
    """(position, address) of the failed recipients named in the notice, in order of appearance."""
    lowered = notice.lower()
    if preferred:
        # Named elsewhere (X-Failed-Recipients, DSN): place each where the text mentions it, else after the list
        # heading ("the following address(es) failed:"), where the MTA put what it had to say.
        sections = list(_SECTION_RE.finditer(notice[:MAX_NOTICE]))
        fallback = sections[-1].end() if sections else 0
        placed = []
        for address in preferred:
            position = lowered.find(address) if address else -1
            placed.append((position if position >= 0 else fallback, address))
        return placed
    sender_side = _sender_side(notice)
    hard_excluded = {a for a in excluded if _is_daemon_address(a)} | sender_side

    def keep(address: str, exclude: set[str]) -> bool:
        return "@" in address and address not in exclude and not _is_daemon_address(address)

    candidates: list[tuple[int, str]] = []
    for pattern in _LINE_PATTERNS:
        candidates.extend(_found(pattern, notice))
    candidates.extend(_section_addresses(notice))
    chosen = [c for c in candidates if keep(c[1], excluded | sender_side)]
    if not chosen and candidates:
        chosen = [c for c in candidates if keep(c[1], hard_excluded)]
    if not chosen:
        for line_match in re.finditer(r"[^\n]*", notice):
            line = line_match.group(0)
            if not line or _BOILERPLATE_RE.search(line) or "://" in line:
                continue
            for match in ADDRESS_RE.finditer(line):
                address = match.group(1).strip(".").lower()
                if keep(address, excluded | sender_side):
                    chosen.append((line_match.start() + match.start(1), address))
    chosen.sort()
    result: list[tuple[int, str]] = []
    for position, address in chosen:
        if address not in [a for _, a in result]:
            result.append((position, address))
    return result[:100]


def _is_daemon_address(address: str) -> bool:
    local = address.split("@", 1)[0]
    return re.sub(r"[^a-z]", "", local) in ("mailerdaemon", "maildaemon")


# --- permanence from wording ---------------------------------------------------------------------------------

_TEMPORARY_RE = re.compile(
    r"temporar(?:y|ily)|try(?:ing)?\s+again\s+later|will\s+(?:be\s+)?(?:retried|retry)|will\s+(?:continue|keep)\s+trying"
    r"|not\s+yet\s+been\s+delivered|has\s+been\s+delayed|is\s+delayed|still\s+(?:being\s+retried|undelivered)"
    r"|warning\s+message\s+only|this\s+is\s+a\s+warning|retry\s+time(?:out)?\s+(?:exceeded|reached)|greylist"
    r"|delivery\s+attempts\s+will\s+continue"
    # network trouble is transient by nature (RFC 3463 4.4.x), whatever the bounce calls it
    r"|connection\s+(?:timed\s+out|refused|reset)|timed\s+out|\bdeferred\b|lookup\s+failure"
    r"|host\s+(?:is\s+)?(?:unreachable|not\s+reachable)|too\s+many\s+connections|rate\s+limit",
    re.IGNORECASE,
)
_PERMANENT_RE = re.compile(
    r"permanent(?:ly)?|fatal|not\s+going\s+to\s+try\s+again|will\s+not\s+(?:continue|retry|try)|given\s+up|giving\s+up"
    r"|unrecoverable|no\s+further\s+delivery\s+attempts|will\s+not\s+try\s+to\s+redeliver",
    re.IGNORECASE,
)
DELAY_RE = re.compile(
    r"\bdelay(?:ed)?\b|warning\s+message\s+only|this\s+is\s+a\s+warning|not\s+yet\s+been\s+delivered"
    r"|will\s+be\s+retried|will\s+(?:continue|keep)\s+trying|still\s+being\s+retried|still\s+undelivered"
    r"|delivery\s+attempts\s+will\s+continue",
    re.IGNORECASE,
)


def wording_permanence(text: str) -> bool | None:
    temporary = _TEMPORARY_RE.search(text)
    permanent = _PERMANENT_RE.search(text)
    if temporary and not permanent:
        return False
    if permanent and not temporary:
        return True
    return None


def _codes(text: str) -> tuple[str | None, str | None]:
    """Failure codes only: a transcript's "250 2.1.5 Ok" lines say nothing about the failure."""
    return find_enhanced_status(text, "45"), find_reply_code(text)


def _diagnostic_of(segment: str, address: str) -> str | None:
    """The most telling line(s) of a recipient's segment: the one with a code, else the first non-empty ones."""
    lines = [line.strip() for line in segment.splitlines() if line.strip()]
    if not lines:
        return None
    for index, line in enumerate(lines[:40]):
        if find_enhanced_status(line, "45") or find_reply_code(line):
            return trim_diagnostic(" ".join(lines[index : index + 3]))
    first = lines[0]
    if address and first.lower().startswith(("<" + address, address)) and len(lines) > 1:
        first = " ".join(lines[:3])
    return trim_diagnostic(" ".join(lines[:3]) if len(first) < 40 else first)


def recipients_from_text(
    notice: str, subject: str, excluded: set[str], preferred: list[str]
) -> list[ReportRecipient]:
    positions = find_recipient_positions(notice, excluded, preferred)
    global_status, global_reply = _codes(notice)
    delayed = bool(DELAY_RE.search(subject) or DELAY_RE.search(notice[:3000]))
    global_wording = wording_permanence(notice)
    recipients = []
    entries = positions or [(0, None)]
    for index, (position, address) in enumerate(entries):
        end = (
            entries[index + 1][0]
            if index + 1 < len(entries) and entries[index + 1][0] > position
            else len(notice)
        )
        segment = notice[position : min(end, position + MAX_SEGMENT)] if position < len(notice) else ""
        status, reply = _codes(segment)
        if not status and not reply and (len(entries) == 1 or not segment):
            status, reply = global_status, global_reply
        permanent = permanence_of(status, reply)
        if permanent is None:
            permanent = wording_permanence(segment)
        if permanent is None:
            permanent = False if delayed else global_wording
        if permanent is None:
            permanent = True
        action = "delayed" if permanent is False and delayed else "failed"
        recipients.append(
            ReportRecipient(
                address=address,
                status=status,
                action=action,
                permanent=permanent,
                diagnostic=_diagnostic_of(segment or notice, address or ""),
            )
        )
    return recipients


# --- the bounce gate -----------------------------------------------------------------------------------------


def sender_kind(from_header: str, from_address: str | None) -> str:
    """'daemon' for MAILER-DAEMON / postmaster / empty senders, 'weak' for no-reply style ones, else 'person'."""
    if not from_address:
        return "daemon"
    local = re.sub(r"[^a-z]", "", from_address.split("@", 1)[0])
    if local in _DAEMON_LOCALS:
        return "daemon"
    name = from_header.split("<", 1)[0] if "<" in from_header else from_header
    if _DAEMON_NAME_RE.search(name) or _DAEMON_NAME_RE.search(from_header.split("@")[0]):
        return "daemon"
    if local in _WEAK_LOCALS or local.startswith(("noreply", "donotreply")):
        return "weak"
    raw_local = from_address.split("@", 1)[0].lower()
    if raw_local.startswith("owner-") or raw_local.endswith(
        ("-admin", "-owner", "-request", "-bounces", "-errors")
    ):
        return "weak"  # mailing-list managers' error notices
    return "person"


def subject_says_bounce(subject: str) -> bool:
    return bool(_SUBJECT_RE.search(subject[:500]))


def body_says_bounce(notice: str) -> bool:
    """Bounce wording ("could not be delivered", "permanent error", ...) in the notice."""
    return bool(_BODY_RE.search(notice[:20000]))


def body_gives_reason(notice: str) -> bool:
    """A failure reason ("user unknown", "mailbox full", ...) in the notice."""
    return bool(_REASON_RE.search(notice[:20000]))
