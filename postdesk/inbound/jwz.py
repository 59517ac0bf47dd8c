"""Email threading: Message-ID / In-Reply-To / References, base subjects and ticket numbers in subjects.

Two consumers:

* ``thread_references`` / ``thread_orderedsubject`` build RFC 5256 thread trees (REFERENCES is Jamie Zawinski's
  algorithm: out-of-order arrival, missing parents as dummy containers, reference loops, duplicate Message-IDs, then
  subject gathering). ``format_thread`` prints them in the IMAP ``(3 2)(1)`` syntax. The result depends only on the set
  of messages, never on the order of the input list: messages are processed in the order of their ``key`` (the
  mailbox sequence number or the database id, i.e. the RFC's "order in the mailbox").
* the live system, where emails arrive one at a time in any order: ``thread_keys`` gives the ids a message links by
  and ``ThreadGrouper`` is the in-memory reference of the grouping that ``emails.MessageIdIndex`` mirrors (union-find
  over Message-IDs: any arrival order gives the same groups; a late parent merges two groups into the older one).

Subject helpers: ``base_subject`` is RFC 5256 section 2.1 exactly; ``base_subject_localized`` also strips localised
reply/forward prefixes (AW:, SV:, Odp:, ...) for the live system. ``find_ticket_numbers`` finds
``<project key>-<YYYYMMDD>-<6 digits>`` in a subject; whether to trust it (the sender already takes part in that
ticket) is the caller's decision.

Headers are given as already-decoded strings (RFC 2047 decoded, unfolded or not). Standard library only.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

__all__ = [
    "MAX_MESSAGE_ID_LENGTH",
    "MAX_REFERENCES",
    "ThreadGrouper",
    "ThreadInput",
    "ThreadNode",
    "base_subject",
    "base_subject_localized",
    "find_ticket_numbers",
    "format_thread",
    "is_reply_or_forward",
    "normalize_message_id",
    "parse_references",
    "subject_key",
    "thread_keys",
    "thread_orderedsubject",
    "thread_references",
]

MAX_MESSAGE_ID_LENGTH = 998  # RFC 5322 line limit; also emails.Email.message_id's max_length
MAX_REFERENCES = 100  # ids kept from one header: the last ones, i.e. the nearest ancestors
_MAX_HEADER_CHARS = 100_000  # a References header longer than this is garbage: only its end is read

# ----------------------------------------------------------------------------------------------------------------------
# Message-IDs

_WS = " \t\r\n"
_WS_RE = re.compile(r"[ \t\r\n]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN_SPLIT_RE = re.compile(r"[\s,;]+")
_TOKEN_STRIP = "<>\"'()[]{}.,;:"


def _clean_id(inner: str) -> str | None:
    """'<' + inner + '>' if inner is a usable id: whitespace removed (bad folding), one '@' with text on both sides,
    no control characters, not overlong. The domain part is lower-cased (it is case-insensitive)."""
    inner = _WS_RE.sub("", inner)
    if not inner or len(inner) + 2 > MAX_MESSAGE_ID_LENGTH or _CONTROL_RE.search(inner):
        return None
    if "<" in inner or ">" in inner:
        return None
    left, at, right = inner.rpartition("@")
    if not at or not left or not right:
        return None
    return f"<{left}@{right.lower()}>"


def _skip_comment(text: str, start: int) -> int:
    """Index just after the (nested) comment that opens at text[start] == '(', or start + 1 if it is never closed."""
    depth, i, n = 0, start, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return start + 1


def _skip_quoted(text: str, start: int) -> int:
    """Index just after the quoted string that opens at text[start] == '"', or start + 1 if it is never closed."""
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    return start + 1


def _scan_ids(text: str) -> list[str]:
    """All usable ids of one header value in order (duplicates kept). Bracketed ids win; bare local@domain tokens
    count only when the header has no usable bracketed id at all. Comments and quoted phrases are skipped."""
    bracketed: list[str] = []
    loose: list[str] = []
    i, n = 0, len(text)
    plain_start = 0

    def flush_plain(end: int) -> None:
        for token in _TOKEN_SPLIT_RE.split(text[plain_start:end]):
            token = token.strip(_TOKEN_STRIP)
            if "@" in token:
                found = _clean_id(token)
                if found:
                    loose.append(found)

    close = reopen = -1
    comments = quotes = True  # off after an unclosed one: a later one cannot close either (keeps it linear)
    while i < n:
        ch = text[i]
        if ch == "(" and comments:
            flush_plain(i)
            after = _skip_comment(text, i)
            comments = after != i + 1
            i = plain_start = after
        elif ch == '"' and quotes:
            flush_plain(i)
            after = _skip_quoted(text, i)
            quotes = after != i + 1
            i = plain_start = after
        elif ch == "<":
            flush_plain(i)
            if close <= i:  # cached searches: each bracket is looked for once (linear on '<<<<...')
                close = text.find(">", i + 1)
                close = n if close == -1 else close
            if reopen <= i:
                reopen = text.find("<", i + 1)
                reopen = n if reopen == -1 else reopen
            if close < reopen:
                found = _clean_id(text[i + 1 : close])
                i = close + 1
            else:
                # no closing bracket before the next id: take the unclosed id up to the next whitespace
                end = i + 1
                while end < n and text[end] not in _WS and text[end] != "<":
                    end += 1
                found = _clean_id(text[i + 1 : end])
                i = end
            if found:
                bracketed.append(found)
            plain_start = i
        else:
            i += 1
    flush_plain(n)
    return bracketed or loose


def normalize_message_id(value: str | None) -> str | None:
    """The one Message-ID in a header value as '<local@domain>', or None if there is nothing usable.

    Tolerant: surrounding junk, comments, whitespace and line folding inside the id, a missing '<' or '>'. An id must
    contain '@' with text on both sides (RFC 5322 msg-id; Dovecot ignores ids without '@' too)."""
    if not value:
        return None
    ids = _scan_ids(str(value)[:_MAX_HEADER_CHARS])
    return ids[0] if ids else None


def _scan_header(value: str | Iterable[str] | None) -> list[str]:
    """The ids of one header value (or of a list of values) in order, duplicates kept."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value
        if len(text) > _MAX_HEADER_CHARS:
            # keep the end (nearest ancestors); drop the id cut in half at the start of the window
            text = text[-_MAX_HEADER_CHARS:]
            cut = min((p for p in (text.find("<"), text.find(" ")) if p != -1), default=len(text))
            text = text[cut:]
        return _scan_ids(text)
    found: list[str] = []
    for item in value:
        if item:
            found.extend(_scan_header(str(item)))
    return found


def parse_references(value: str | Iterable[str] | None) -> list[str]:
    """The ids of a References (or In-Reply-To) header in header order, deduplicated (first occurrence kept).

    Robust to garbage, commas, comments, quoted phrases, unbracketed ids and overlong headers: at most
    MAX_REFERENCES ids are kept, the last ones (the nearest ancestors). A list of values is read value by value."""
    seen: set[str] = set()
    ids: list[str] = []
    for mid in _scan_header(value):
        if mid not in seen:
            seen.add(mid)
            ids.append(mid)
    return ids[-MAX_REFERENCES:]


def _first_id(value: str | Iterable[str] | None) -> list[str]:
    ids = parse_references(value) if value is not None else []
    return ids[:1]


def thread_keys(
    message_id: str | None,
    in_reply_to: str | Iterable[str] | None = None,
    references: str | Iterable[str] | None = None,
) -> list[str]:
    """The normalised ids a new message links by: its own Message-ID first, then its ancestors nearest first.

    Ancestors are the References ids, plus the first In-Reply-To id when References lacks it (it is then the direct
    parent, as in JWZ's description). The message's own id is removed from its ancestors (self-reference loops),
    garbage is dropped, duplicates are removed and the count is capped (MAX_REFERENCES nearest ancestors).
    When the message has no usable Message-ID the list holds only its ancestors (give it a unique id if needed)."""
    own = normalize_message_id(message_id)
    ancestors = parse_references(references)
    for parent in _first_id(in_reply_to):
        if parent not in ancestors:
            ancestors.append(parent)
    ancestors = [mid for mid in ancestors if mid != own][-MAX_REFERENCES:]
    ancestors.reverse()
    return ([own] if own else []) + ancestors


# ----------------------------------------------------------------------------------------------------------------------
# Subjects (RFC 5256 section 2.1)

_BLOB = (
    r"\[[^\[\]]*\][ \t]*"  # subj-blob; any character but brackets (as Dovecot: tags with non-ASCII text too)
)
_RFC_LEADER_RE = re.compile(rf"(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:", re.IGNORECASE)
_BLOB_RE = re.compile(_BLOB)
_CONTINUATION_RE = re.compile(r"\r\n|\r|\n|\t")
_SPACES_RE = re.compile(r" {2,}")

# Localised reply/forward prefixes seen from common mail clients (Outlook, Thunderbird, Apple Mail, Gmail, ...).
# Italian Outlook's forward 'I:' is left out on purpose: a single letter is too likely to be real subject text.
_LOCAL_PREFIXES = (
    # reply
    "re",
    "res",
    "aw",
    "antw",
    "antwort",
    "sv",
    "svar",
    "vs",
    "vast",
    "odp",
    "odg",
    "vá",
    "r",
    "rif",
    "ynt",
    "atb",
    "ats",
    "bls",
    "απ",
    "σχετ",
    "отв",
    "ответ",
    "відп",
    "одг",
    "השב",
    "回复",
    "回覆",
    "答复",
    "答覆",
    "返信",
    "회신",
    "답장",
    # forward
    "fw",
    "fwd",
    "wg",
    "tr",
    "trs",
    "rv",
    "enc",
    "vl",
    "vb",
    "pd",
    "doorst",
    "továbbítás",
    "fs",
    "pārs",
    "pers",
    "yml",
    "ilt",
    "i̇lt",
    "πρθ",
    "пересл",
    "הועבר",
    "转发",
    "轉寄",
    "轉發",
    "転送",
    "전달",
)
_LOCAL_WORDS = "|".join(sorted((re.escape(p) for p in _LOCAL_PREFIXES), key=len, reverse=True))
_COUNTER = r"(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4}|\*\d{1,4})?"
_LOCAL_LEADER_RE = re.compile(
    rf"(?:{_BLOB})*(?:{_LOCAL_WORDS}){_COUNTER}[ \t]*(?:{_BLOB})?[:：]", re.IGNORECASE
)
_UNICODE_SPACES_RE = re.compile(r"[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]")


def _extract(subject: str | None, leader_re: re.Pattern[str]) -> tuple[str, bool]:
    """(base subject, is reply or forward) by the steps of RFC 5256 section 2.1 with the given subj-leader.

    Works on indexes into the text (no copying), so absurd subjects ('Re: ' x 100000) stay linear."""
    s = _CONTINUATION_RE.sub(" ", subject or "")  # (1) tabs and continuations to space, runs of spaces to one
    s = _SPACES_RE.sub(" ", s)
    start, end = 0, len(s)
    reply = False
    while True:
        while end > start:  # (2) trailers: WSP and "(fwd)"
            if s[end - 1] == " ":
                end -= 1
            elif end - start >= 5 and s[end - 5 : end].lower() == "(fwd)":
                end -= 5
                reply = True
            else:
                break
        while True:  # (5) repeat (3) and (4) until nothing changes
            changed = False
            while start < end:  # (3) leaders: WSP or *subj-blob subj-refwd
                if s[start] == " ":
                    start += 1
                    changed = True
                    continue
                match = leader_re.match(s, start, end)
                if not match:
                    break
                start = match.end()
                reply = changed = True
            # (4) a leading subj-blob, if a non-empty subject remains. (3) cannot match again before the blobs
            # that follow (its pattern already tried every run of leading blobs), so take them all at once.
            while True:
                match = _BLOB_RE.match(s, start, end)
                if not match or match.end() >= end:
                    break
                start = match.end()
                changed = True
            if not changed:
                break
        # (6) subj-fwd-hdr ... subj-fwd-trl: remove both and go again from (2)
        if end - start >= 6 and s[start : start + 5].lower() == "[fwd:" and s[end - 1] == "]":
            start += 5
            end -= 1
            reply = True
            continue
        return s[start:end], reply  # (7)


def base_subject(subject: str | None) -> str:
    """The RFC 5256 base subject (exactly section 2.1): 'Re:', 'Fwd:', '[tags]', '(fwd)' trailers, '[fwd: ...]' and
    extra whitespace removed. Case is kept; compare base subjects with subject_key()."""
    return _extract(subject, _RFC_LEADER_RE)[0]


def is_reply_or_forward(subject: str | None) -> bool:
    """RFC 5256: extracting the base subject removed a subj-refwd, a '(fwd)' trailer or a '[fwd: ...]' wrapper."""
    return _extract(subject, _RFC_LEADER_RE)[1]


def base_subject_localized(subject: str | None) -> str:
    """base_subject() for the live system: also strips localised prefixes (AW:, WG:, SV:, VS:, Odp:, Vá:, R:, Antw:,
    RV:, TR:, 回复:, ...), counters (Re[2]:, Re(2):, Re^2:), a space before the colon, full-width colons and
    Unicode spaces. Not for RFC 5256 results, which must stay exact."""
    text = unicodedata.normalize("NFC", subject or "")
    text = _UNICODE_SPACES_RE.sub(" ", text)
    return _extract(text, _LOCAL_LEADER_RE)[0]


def subject_key(base: str) -> str:
    """The form base subjects are compared in: case-insensitive (close to i;unicode-casemap)."""
    return unicodedata.normalize("NFKD", base).casefold()


# ----------------------------------------------------------------------------------------------------------------------
# RFC 5256 threads


@dataclass(frozen=True)
class ThreadInput:
    """One message for thread_references / thread_orderedsubject.

    key: unique and sortable (IMAP sequence number, database id): it is the mailbox order the algorithm processes
    messages in and breaks ties between equal dates; the list order itself does not matter.
    message_id / in_reply_to / references: header values (raw or normalised; references may be a list of ids).
    date: the sent date (Date header), or the received date when that is missing; a datetime (naive = UTC), a
    POSIX timestamp, an RFC 5322 date string, or None (sorts first)."""

    key: object
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | Sequence[str] | None = None
    subject: str | None = None
    date: dt.datetime | float | str | None = None


@dataclass
class ThreadNode:
    """A node of a thread tree: key of the message, or None for a dummy (a missing parent kept to hold siblings)."""

    key: object | None
    children: list[ThreadNode] = field(default_factory=list)


def _timestamp(value: object) -> float:
    if value is None:
        return -math.inf
    if isinstance(value, str):
        try:
            value = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return -math.inf
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        try:
            return value.timestamp()
        except (OverflowError, OSError, ValueError):
            return -math.inf
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return -math.inf


def _processing_order(messages: Sequence[ThreadInput]) -> list[ThreadInput]:
    """Messages in key order (the mailbox order); input order only if keys cannot be compared."""
    try:
        return sorted(messages, key=lambda m: m.key)
    except TypeError:
        return list(messages)


class _Container:
    __slots__ = ("children", "msg", "parent")

    def __init__(self) -> None:
        self.msg: int | None = None
        self.parent: _Container | None = None
        self.children: list[_Container] = []


def _would_loop(parent: _Container, child: _Container) -> bool:
    """Linking child under parent would make a loop: child is parent or one of its ancestors."""
    node: _Container | None = parent
    while node is not None:
        if node is child:
            return True
        node = node.parent
    return False


def _link(parent: _Container, child: _Container) -> None:
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
        child.parent = None


class _Node:
    """Output tree node while sorting: seq of the message (index in processing order) or None for a dummy."""

    __slots__ = ("children", "seq")

    def __init__(self, seq: int | None, children: list[_Node] | None = None) -> None:
        self.seq = seq
        self.children: list[_Node] = children if children is not None else []


def _message_references(message: ThreadInput) -> list[str]:
    """RFC 5256: the References ids (as they are: a repeated id is linked as written, like Dovecot does; only the
    last MAX_REFERENCES); if there are none, the first valid In-Reply-To id."""
    refs = _scan_header(message.references)[-MAX_REFERENCES:]
    return refs if refs else _first_id(message.in_reply_to)


def _link_messages(ordered: Sequence[ThreadInput]) -> list[_Container]:
    """Step (1): containers linked by the references of each message, in mailbox order."""
    table: dict[str, _Container] = {}
    containers: list[_Container] = []

    def container_for(mid: str) -> _Container:
        found = table.get(mid)
        if found is None:
            found = table[mid] = _Container()
            containers.append(found)
        return found

    for seq, message in enumerate(ordered):
        mid = normalize_message_id(message.message_id)
        own = container_for(mid) if mid else None
        if own is None or own.msg is not None:  # no usable id, or a duplicate: a unique id of its own
            own = _Container()
            containers.append(own)
        own.msg = seq

        previous: _Container | None = None
        for ref in _message_references(message):
            if ref == mid:
                continue  # a message never references itself
            current = container_for(ref)
            # (1A) link each reference to the next, unless it already has a parent or this would loop
            if previous is not None and current.parent is None and not _would_loop(previous, current):
                _link(previous, current)
            previous = current
        # (1B) the last reference is the parent (a truncated References may have linked it elsewhere: re-link),
        # unless that makes a loop; no references means no parent
        if own.parent is not previous:
            _unlink(own)
            if previous is not None and not _would_loop(previous, own):
                _link(previous, own)
    return containers


def _prune(root: _Container) -> list[_Node]:
    """Step (3) for one root: the nodes standing for it, dummies below the root replaced by their children."""
    done: dict[int, list[_Node]] = {}
    stack: list[tuple[_Container, bool]] = [(root, False)]
    while stack:
        container, expanded = stack.pop()
        if not expanded:
            stack.append((container, True))
            stack.extend((child, False) for child in container.children)
            continue
        kids: list[_Node] = []
        for child in container.children:
            kids.extend(done.pop(id(child)))
        done[id(container)] = [_Node(container.msg, kids)] if container.msg is not None else kids
    nodes = done[id(root)]
    if root.msg is not None or len(nodes) <= 1:
        return nodes
    return [_Node(None, nodes)]  # a dummy root keeps siblings together


class _Sorter:
    def __init__(self, stamps: list[float]) -> None:
        self.stamps = stamps

    def key(self, node: _Node) -> tuple[float, int]:
        while node.seq is None:  # a dummy sorts as its first child (children sorted first)
            node = node.children[0]
        return self.stamps[node.seq], node.seq

    def sort_tree(self, roots: list[_Node]) -> None:
        order: list[_Node] = []
        stack = list(roots)
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(node.children)
        for node in reversed(order):  # children before parents
            if len(node.children) > 1:
                node.children.sort(key=self.key)
        roots.sort(key=self.key)


def _gather_subjects(roots: list[_Node], ordered: Sequence[ThreadInput]) -> list[_Node]:
    """Step (5): merge root threads whose thread subject (base subject) is the same."""

    def thread_subject(node: _Node) -> tuple[str, bool, bool]:
        first = node if node.seq is not None else node.children[0]
        base, reply = _extract(ordered[first.seq].subject, _RFC_LEADER_RE)  # type: ignore[index]
        return subject_key(base), reply, node.seq is None

    info = {id(node): thread_subject(node) for node in roots}
    table: dict[str, _Node] = {}
    for node in roots:  # (5B)
        subject, reply, dummy = info[id(node)]
        if not subject:
            continue
        held = table.get(subject)
        if held is None:
            table[subject] = node
            continue
        _, held_reply, held_dummy = info[id(held)]
        if not held_dummy and (dummy or (held_reply and not reply)):
            table[subject] = node

    result: list[_Node | None] = list(roots)
    position = {id(node): i for i, node in enumerate(roots)}
    for i, node in enumerate(roots):  # (5C)
        subject, reply, dummy = info[id(node)]
        if not subject:
            continue
        held = table[subject]
        if held is node:
            continue
        _, held_reply, held_dummy = info[id(held)]
        if dummy and held_dummy:
            held.children.extend(node.children)
        elif held_dummy or (reply and not held_reply):
            held.children.append(node)
        elif dummy:  # cannot happen (a dummy always wins the table), kept total
            node.children.append(held)
            result[position[id(held)]] = node
            position[id(node)] = position[id(held)]
            table[subject] = node
        else:
            merged = _Node(None, [held, node])
            info[id(merged)] = (subject, False, True)
            result[position[id(held)]] = merged
            position[id(merged)] = position[id(held)]
            table[subject] = merged
        result[i] = None
    return [node for node in result if node is not None]


def _to_public(roots: list[_Node], ordered: Sequence[ThreadInput]) -> list[ThreadNode]:
    def convert(node: _Node) -> ThreadNode:
        return ThreadNode(None if node.seq is None else ordered[node.seq].key, [])

    out = [convert(node) for node in roots]
    stack = list(zip(roots, out, strict=True))
    while stack:
        node, public = stack.pop()
        for child in node.children:
            converted = convert(child)
            public.children.append(converted)
            stack.append((child, converted))
    return out


def thread_references(messages: Sequence[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 THREAD=REFERENCES: threads of the messages, sorted by sent date then mailbox order (key).

    Step 1 links containers by References (or the first In-Reply-To id), creating dummies for missing parents,
    refusing links that would make a loop, re-linking a message whose parent a truncated References got wrong;
    duplicate or missing Message-IDs get a unique id. Dummies are pruned (kept only at the root to hold several
    children), roots with the same base subject are gathered, and every level is sorted by date (a dummy by its first
    child), equal dates by key."""
    ordered = _processing_order(messages)
    stamps = [_timestamp(m.date) for m in ordered]
    sorter = _Sorter(stamps)

    containers = _link_messages(ordered)  # (1)
    roots: list[_Node] = []
    for container in containers:  # (2) root set, (3) prune dummies
        if container.parent is None:
            roots.extend(_prune(container))
    sorter.sort_tree(roots)  # (4) sort roots (and, as step 6 does anyway, children)
    roots = _gather_subjects(roots, ordered)  # (5)
    for node in roots:  # (6) levels changed by (5) are the roots and their children
        node.children.sort(key=sorter.key)
    roots.sort(key=sorter.key)
    return _to_public(roots, ordered)


def thread_orderedsubject(messages: Sequence[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 THREAD=ORDEREDSUBJECT: messages grouped by base subject (empty subjects form one group too), each
    group sorted by sent date then key; its first message is the root and the others are its children. Threads are
    sorted by the date of their first message."""
    ordered = _processing_order(messages)
    stamps = [_timestamp(m.date) for m in ordered]
    groups: dict[str, list[int]] = {}
    for seq, message in enumerate(ordered):
        groups.setdefault(subject_key(base_subject(message.subject)), []).append(seq)
    threads = []
    for seqs in groups.values():
        seqs.sort(key=lambda s: (stamps[s], s))
        threads.append(seqs)
    threads.sort(key=lambda seqs: (stamps[seqs[0]], seqs[0]))
    return [
        ThreadNode(ordered[seqs[0]].key, [ThreadNode(ordered[s].key, []) for s in seqs[1:]])
        for seqs in threads
    ]


def format_thread(nodes: Sequence[ThreadNode]) -> str:
    """The IMAP THREAD response syntax (RFC 5256): '(3 2)(1)', '(1 (2 4)(3))', '((1)(2))' for a dummy root."""
    out: list[str] = []
    # work items: a string to emit, or a node to write as thread members
    stack: list[str | ThreadNode] = []
    for node in reversed(nodes):
        stack.extend((")", node, "("))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        kids = item.children
        if item.key is not None:
            out.append(str(item.key))
            if kids:
                out.append(" ")
        if len(kids) == 1:
            stack.append(kids[0])
        else:
            for child in reversed(kids):
                stack.extend((")", child, "("))
    return "".join(out)


# ----------------------------------------------------------------------------------------------------------------------
# Live grouping


class ThreadGrouper:
    """In-memory reference of live threading: union-find over message ids, the model of emails.MessageIdIndex.

    add() links a message (by key) with every id of thread_keys(): its own Message-ID and its ancestors, known or
    not yet (a missing parent is an index row without an email, so that its other children join it). A message that
    links existing groups merges them into the oldest (smallest group id); one that links nothing starts a new
    group. The grouping is the connected components of the message-id graph, so any arrival order gives the same
    groups; only the numbers of the groups depend on the order."""

    def __init__(self) -> None:
        self._parent: dict[object, object] = {}
        self._size: dict[object, int] = {}
        self._label: dict[object, int] = {}
        self._keys: list[object] = []
        self._next_label = 1

    @staticmethod
    def _key_node(key: object) -> tuple[str, object]:
        return ("key", key)  # never equal to a message id (those are strings)

    def _find(self, node: object) -> object:
        root = node
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[node] != root:  # path compression
            self._parent[node], node = root, self._parent[node]
        return root

    def _union(self, a: object, b: object) -> object:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return ra
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]
        self._label[ra] = min(self._label[ra], self._label.pop(rb))
        return ra

    def add(
        self,
        key: object,
        message_id: str | None = None,
        in_reply_to: str | Iterable[str] | None = None,
        references: str | Iterable[str] | None = None,
    ) -> int:
        """Add one message (key: hashable, unique) and return the id of its group now."""
        node = self._key_node(key)
        ids = thread_keys(message_id, in_reply_to, references)
        nodes = [node, *ids]
        existing = {self._find(n) for n in nodes if n in self._parent}
        label = min((self._label[r] for r in existing), default=None)
        if label is None:
            label = self._next_label
            self._next_label += 1
        if node not in self._parent:
            self._keys.append(key)
        for n in nodes:
            if n not in self._parent:
                self._parent[n] = n
                self._size[n] = 1
                self._label[n] = label
        root = node
        for n in ids:
            root = self._union(node, n)
        root = self._find(node)
        self._label[root] = label
        return label

    def group_of(self, key: object) -> int | None:
        """The group id of a message added before, or None."""
        node = self._key_node(key)
        return self._label[self._find(node)] if node in self._parent else None

    def lookup(self, message_id: str | None) -> int | None:
        """The group id a Message-ID (seen as a message or as a reference) belongs to, or None."""
        mid = normalize_message_id(message_id)
        return self._label[self._find(mid)] if mid is not None and mid in self._parent else None

    def groups(self) -> list[set[object]]:
        """The groups as sets of message keys, oldest group first."""
        by_root: dict[object, set[object]] = {}
        for key in self._keys:
            by_root.setdefault(self._find(self._key_node(key)), set()).add(key)
        return [by_root[root] for root in sorted(by_root, key=lambda r: self._label[r])]


# ----------------------------------------------------------------------------------------------------------------------
# Ticket numbers in subjects

_TICKET_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z0-9]{1,20})-([0-9]{8})-([0-9]{6,})(?![A-Za-z0-9])")


def find_ticket_numbers(subject: str | None) -> list[str]:
    """Ticket numbers '<project key>-<YYYYMMDD>-<6 digits>' in a subject, in order, without duplicates, e.g.
    'Re: [101-20261126-000001] Refund' -> ['101-20261126-000001']. The key is 1-20 ASCII letters or digits, the day
    must be a real date; more than 6 digits is accepted (tickets.numbers goes on after 999999 a day).
    Only a candidate: trust it only if the sender already takes part in that ticket (the caller checks)."""
    found: list[str] = []
    for match in _TICKET_RE.finditer(subject or ""):
        try:
            dt.date(int(match.group(2)[:4]), int(match.group(2)[4:6]), int(match.group(2)[6:]))
        except ValueError:
            continue
        number = match.group(0)
        if number not in found:
            found.append(number)
    return found
