"""Threading: RFC 5256 REFERENCES / ORDEREDSUBJECT against Dovecot's imaptest scripts, live grouping, helpers."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
from dataclasses import dataclass
from email import message_from_string
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.inbound.jwz import (
    MAX_REFERENCES,
    ThreadGrouper,
    ThreadInput,
    ThreadNode,
    base_subject,
    base_subject_localized,
    find_ticket_numbers,
    format_thread,
    is_reply_or_forward,
    normalize_message_id,
    parse_references,
    thread_keys,
    thread_orderedsubject,
    thread_references,
)
from postdesk.testing.corpora import corpus

CORPUS = "threading-imaptest"
SCRIPTS = [
    "thread",
    "thread2",
    "thread3",
    "thread4",
    "thread5",
    "thread6",
    "thread7",
    "thread8",
    "thread-orderedsubject",
    "thread-orderedsubject2",
]

# ----------------------------------------------------------------------------------------------------------------------
# A small reader of imaptest's mbox files and test scripts (test code only)

_FROM_LINE_RE = re.compile(
    r"^From \S+\s+(?P<date>\w{3} \w{3} +\d{1,2} \d{1,2}:\d{2}:\d{2} \d{4})(?: +(?P<tz>[+-]\d{4}))?\s*$"
)


@dataclass(frozen=True)
class MboxMessage:
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    subject: str | None
    date: dt.datetime  # the sent date: Date header, else the From_ line (imaptest's INTERNALDATE)


def _from_line_date(line: str) -> dt.datetime | None:
    match = _FROM_LINE_RE.match(line)
    if not match:
        return None
    when = dt.datetime.strptime(" ".join(match.group("date").split()), "%a %b %d %H:%M:%S %Y")
    tz = dt.UTC
    if match.group("tz"):
        sign = -1 if match.group("tz")[0] == "-" else 1
        hours, minutes = int(match.group("tz")[1:3]), int(match.group("tz")[3:])
        tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    return when.replace(tzinfo=tz)


def _decoded(value: str | None) -> str | None:
    if value is None:
        return None
    return str(make_header(decode_header(value)))


def parse_mbox(path: Path) -> list[MboxMessage]:
    """Messages start at a valid 'From ' line (as imaptest's mbox source reads them)."""
    chunks: list[tuple[dt.datetime, list[str]]] = []
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        when = _from_line_date(line) if line.startswith("From ") else None
        if when is not None:
            chunks.append((when, []))
        elif chunks:
            chunks[-1][1].append(line)
    messages = []
    for internal_date, lines in chunks:
        msg = message_from_string("\n".join(lines) + "\n")
        date = internal_date
        if msg["Date"]:
            try:
                date = parsedate_to_datetime(msg["Date"])
            except (TypeError, ValueError):
                date = internal_date
        messages.append(
            MboxMessage(
                message_id=msg["Message-ID"],
                in_reply_to=msg["In-Reply-To"],
                references=msg["References"],
                subject=_decoded(msg["Subject"]),
                date=date,
            )
        )
    return messages


@dataclass(frozen=True)
class Checkpoint:
    algorithm: str  # "references" or "orderedsubject"
    mailbox: tuple[MboxMessage, ...]  # sequence number n is mailbox[n - 1]
    expected: str
    line: int


def _sequence_set(text: str, count: int) -> set[int]:
    numbers: set[int] = set()
    for part in text.split(","):
        bounds = [count if b == "*" else int(b) for b in part.split(":")]
        numbers.update(range(min(bounds), max(bounds) + 1))
    return numbers


def run_script(name: str) -> list[Checkpoint]:
    """Replays one imaptest script: 'messages: all' starts with the whole mbox, 'state: created' with an empty
    mailbox; 'append' adds the next mbox message (wrapping around), 'store ... +flags \\deleted' and 'expunge'
    remove messages. Each 'thread' command yields a checkpoint with the expected '* THREAD' line."""
    folder = corpus(CORPUS)
    source = parse_mbox(folder / f"{name}.mbox")
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    mailbox: list[MboxMessage] = []
    deleted: set[int] = set()
    next_source = 0
    checkpoints: list[Checkpoint] = []
    pending: tuple[str, int] | None = None

    body_start = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    for line in lines[:body_start]:
        field, _, value = line.partition(":")
        if field.strip() == "messages":
            value = value.strip()
            count = len(source) if value == "all" else int(value)
            mailbox = [source[i % len(source)] for i in range(count)]
            next_source = count % len(source)

    for number, raw in enumerate(lines[body_start:], start=body_start + 1):
        line = raw.strip()
        if not line:
            continue
        words = line.split()
        if words[0].lower() == "*" and len(words) > 1 and words[1].lower() == "thread":
            assert pending is not None, f"{name}:{number}: THREAD reply without a command"
            expected = line.split(None, 2)[2] if len(words) > 2 else ""
            checkpoints.append(Checkpoint(pending[0], tuple(mailbox), expected, number))
            pending = None
            continue
        if words[0].lower() != "ok":
            continue
        command = words[1].lower()
        if command == "append":
            mailbox.append(source[next_source])
            next_source = (next_source + 1) % len(source)
        elif command == "store" and "\\deleted" in line.lower():
            deleted |= _sequence_set(words[2], len(mailbox))
        elif command == "expunge":
            mailbox = [m for seq, m in enumerate(mailbox, start=1) if seq not in deleted]
            deleted = set()
        elif command == "thread":
            pending = (words[2].lower(), number)
    return checkpoints


def inputs(mailbox: tuple[MboxMessage, ...]) -> list[ThreadInput]:
    return [
        ThreadInput(seq, m.message_id, m.in_reply_to, m.references, m.subject, m.date)
        for seq, m in enumerate(mailbox, start=1)
    ]


def thread(algorithm: str, messages: list[ThreadInput]) -> str:
    if algorithm == "references":
        return format_thread(thread_references(messages))
    assert algorithm == "orderedsubject"
    return format_thread(thread_orderedsubject(messages))


def same_ignoring_case(a: str, b: str) -> bool:
    return a.lower() == b.lower()


# ----------------------------------------------------------------------------------------------------------------------
# The corpus


@pytest.mark.corpus
@pytest.mark.parametrize("script", SCRIPTS)
def test_it_gives_the_thread_structures_the_imaptest_script_expects(script):
    checkpoints = run_script(script)
    assert checkpoints, f"{script} has no THREAD expectation"
    for checkpoint in checkpoints:
        got = thread(checkpoint.algorithm, inputs(checkpoint.mailbox))
        assert got == checkpoint.expected, f"{script} line {checkpoint.line}: {got} != {checkpoint.expected}"


@pytest.mark.corpus
@pytest.mark.parametrize("script", SCRIPTS)
def test_it_gives_the_same_threads_whatever_the_arrival_order(script):
    rng = random.Random(f"shuffle-{script}")
    for checkpoint in run_script(script):
        messages = inputs(checkpoint.mailbox)
        orders = (
            itertools.permutations(messages)
            if len(messages) <= 6
            else (rng.sample(messages, len(messages)) for _ in range(300))
        )
        for order in orders:
            assert thread(checkpoint.algorithm, list(order)) == checkpoint.expected


def _groups_as_frozensets(grouper: ThreadGrouper) -> set[frozenset]:
    return {frozenset(group) for group in grouper.groups()}


@pytest.mark.corpus
@pytest.mark.parametrize("script", SCRIPTS)
def test_it_groups_the_corpus_mbox_the_same_whatever_the_arrival_order(script):
    messages = parse_mbox(corpus(CORPUS) / f"{script}.mbox")
    numbered = list(enumerate(messages, start=1))
    reference = ThreadGrouper()
    for seq, m in numbered:
        reference.add(seq, m.message_id, m.in_reply_to, m.references)
    expected = _groups_as_frozensets(reference)
    rng = random.Random(f"group-{script}")
    for _ in range(200):
        grouper = ThreadGrouper()
        for seq, m in rng.sample(numbered, len(numbered)):
            grouper.add(seq, m.message_id, m.in_reply_to, m.references)
        assert _groups_as_frozensets(grouper) == expected


@pytest.mark.corpus
def test_it_groups_the_loop_of_the_first_script_into_one_thread():
    messages = parse_mbox(corpus(CORPUS) / "thread.mbox")
    grouper = ThreadGrouper()
    for seq, m in enumerate(messages, start=1):
        grouper.add(seq, m.message_id, m.in_reply_to, m.references)
    assert grouper.groups() == [{1, 2, 3}]


# ----------------------------------------------------------------------------------------------------------------------
# RFC 5256 REFERENCES, synthetic cases

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def msg(key, mid=None, refs=None, irt=None, subject=None, minute=None):
    date = T0 + dt.timedelta(minutes=key if minute is None else minute)
    return ThreadInput(key, mid, irt, refs, subject, date)


def test_it_threads_a_child_that_arrives_before_its_parent():
    messages = [msg(1, "<c@x>", "<p@x>"), msg(2, "<p@x>")]
    assert format_thread(thread_references(messages)) == "(2 1)"


def test_it_threads_a_grandchild_that_arrives_before_both_ancestors():
    messages = [msg(1, "<g@x>", "<r@x> <c@x>"), msg(2, "<c@x>", "<r@x>"), msg(3, "<r@x>")]
    assert format_thread(thread_references(messages)) == "(3 2 1)"


def test_it_keeps_siblings_of_a_missing_parent_under_a_dummy():
    roots = thread_references([msg(1, "<a@x>", "<gone@x>"), msg(2, "<b@x>", "<gone@x>")])
    assert roots == [ThreadNode(None, [ThreadNode(1), ThreadNode(2)])]
    assert format_thread(roots) == "((1)(2))"


def test_it_promotes_the_only_child_of_a_missing_parent():
    assert format_thread(thread_references([msg(1, "<a@x>", "<gone@x>")])) == "(1)"


def test_it_puts_children_of_a_missing_middle_message_under_the_grandparent():
    messages = [msg(1, "<r@x>"), msg(2, "<a@x>", "<r@x> <gone@x>"), msg(3, "<b@x>", "<r@x> <gone@x>")]
    assert format_thread(thread_references(messages)) == "(1 (2)(3))"


def test_it_survives_a_reference_loop():
    messages = [msg(1, "<a@x>", "<b@x>"), msg(2, "<b@x>", "<a@x>")]
    result = format_thread(thread_references(messages))
    assert result in {"(1 2)", "(2 1)"}


def test_it_ignores_a_message_that_references_itself():
    assert (
        format_thread(thread_references([msg(1, "<a@x>", "<a@x>"), msg(2, "<b@x>", "<a@x> <b@x>")]))
        == "(1 2)"
    )


def test_it_uses_in_reply_to_when_there_are_no_references():
    messages = [msg(1, "<a@x>"), msg(2, "<b@x>", irt="Your message <a@x> of yesterday")]
    assert format_thread(thread_references(messages)) == "(1 2)"


def test_it_prefers_references_to_in_reply_to():
    messages = [msg(1, "<a@x>"), msg(2, "<b@x>"), msg(3, "<c@x>", refs="<a@x>", irt="<b@x>")]
    assert format_thread(thread_references(messages)) == "(1 3)(2)"


def test_it_gives_duplicate_message_ids_their_own_threads():
    assert format_thread(thread_references([msg(1, "<a@x>"), msg(2, "<a@x>")])) == "(1)(2)"


def test_it_gives_messages_without_message_id_their_own_threads():
    assert format_thread(thread_references([msg(1), msg(2, "garbage"), msg(3, "<>")])) == "(1)(2)(3)"


def test_it_sorts_threads_and_children_by_date_then_key():
    messages = [
        msg(1, "<r@x>", minute=0),
        msg(2, "<a@x>", "<r@x>", minute=9),
        msg(3, "<b@x>", "<r@x>", minute=5),
    ]
    messages.append(msg(4, "<c@x>", "<r@x>", minute=5))
    assert format_thread(thread_references(messages)) == "(1 (3)(4)(2))"


def test_it_gathers_a_reply_without_references_under_the_original_subject():
    messages = [msg(1, "<a@x>", subject="Refund"), msg(2, "<b@x>", subject="Re: refund")]
    assert format_thread(thread_references(messages)) == "(1 2)"


def test_it_puts_two_non_replies_with_the_same_subject_under_a_dummy():
    messages = [msg(1, "<a@x>", subject="Hello"), msg(2, "<b@x>", subject="Hello")]
    assert format_thread(thread_references(messages)) == "((1)(2))"


def test_it_does_not_gather_empty_subjects():
    messages = [msg(1, "<a@x>", subject=""), msg(2, "<b@x>", subject="Re: ")]
    assert format_thread(thread_references(messages)) == "(1)(2)"


def test_it_accepts_references_as_a_list_and_dates_in_several_forms():
    messages = [
        ThreadInput(1, "<a@x>", date="Thu, 01 Jan 2026 12:00:00 +0000"),
        ThreadInput(2, "<b@x>", references=["<a@x>"], date=T0.replace(tzinfo=None) + dt.timedelta(hours=1)),
        ThreadInput(3, "<c@x>", references=("a@x", "<b@x>"), date=T0.timestamp() + 7200),
        ThreadInput(4, "<d@x>", date=None),
    ]
    assert format_thread(thread_references(messages)) == "(4)(1 2 3)"


def test_it_formats_nested_threads_in_imap_syntax():
    tree = [
        ThreadNode(1, [ThreadNode(2, [ThreadNode(4)]), ThreadNode(3)]),
        ThreadNode(None, [ThreadNode(5), ThreadNode(6, [ThreadNode(7)])]),
        ThreadNode(8),
    ]
    assert format_thread(tree) == "(1 (2 4)(3))((5)(6 7))(8)"
    assert format_thread([]) == ""


def test_it_handles_a_very_long_chain_without_recursion():
    count = 5000
    messages = [msg(1, "<m1@x>")]
    messages += [msg(i, f"<m{i}@x>", f"<m{i - 1}@x>") for i in range(2, count + 1)]
    result = format_thread(thread_references(messages))
    assert result == "(" + " ".join(str(i) for i in range(1, count + 1)) + ")"


def test_it_orders_subject_threads_by_base_subject_then_date():
    messages = [
        msg(1, subject="b", minute=3),
        msg(2, subject="Re: a", minute=2),
        msg(3, subject="A", minute=4),
        msg(4, subject="re: B", minute=1),
    ]
    assert format_thread(thread_orderedsubject(messages)) == "(4 1)(2 3)"


# Random consistent forests: the structure must not depend on the order messages arrive in.


@st.composite
def forests(draw):
    size = draw(st.integers(min_value=1, max_value=12))
    parents = [None] + [draw(st.one_of(st.none(), st.integers(0, i - 1))) for i in range(1, size)]
    present = [draw(st.booleans()) or i == size - 1 for i in range(size)]
    truncate = [draw(st.integers(min_value=1, max_value=4)) for _ in range(size)]
    use_irt = [draw(st.booleans()) for _ in range(size)]
    same_subject = draw(st.booleans())
    return parents, present, truncate, use_irt, same_subject


def _forest_messages(parents, present, truncate, use_irt, same_subject):
    messages = {}
    for i, parent in enumerate(parents):
        if not present[i]:
            continue
        chain = []
        p = parent
        while p is not None:
            chain.insert(0, f"<m{p}@x>")
            p = parents[p]
        refs = " ".join(chain[-truncate[i] :]) if chain and not use_irt[i] else None
        irt = chain[-1] if chain and use_irt[i] else None
        subject = (
            "Re: same" if same_subject and parent is not None else ("same" if same_subject else f"topic {i}")
        )
        messages[i] = (f"<m{i}@x>", irt, refs, subject, T0 + dt.timedelta(minutes=i))
    return messages


def _shape(nodes, names):
    return [(names.get(n.key), _shape(n.children, names)) for n in nodes]


@settings(max_examples=200, deadline=None)
@given(forests(), st.randoms(use_true_random=False))
def test_it_builds_the_same_structure_for_consistent_references_in_any_arrival_order(forest, rnd):
    messages = _forest_messages(*forest)
    names = list(messages)
    results = []
    for order in (names, rnd.sample(names, len(names))):
        inputs_ = [ThreadInput(seq, *messages[name]) for seq, name in enumerate(order)]
        by_key = dict(enumerate(order))
        results.append(_shape(thread_references(inputs_), by_key))
    assert results[0] == results[1]


# ----------------------------------------------------------------------------------------------------------------------
# Live grouping


def _group(messages, order):
    grouper = ThreadGrouper()
    for key in order:
        grouper.add(key, *messages[key])
    return _groups_as_frozensets(grouper)


SYNTHETIC = {
    "root": ("<r@x>", None, None),
    "child": ("<c@x>", "<r@x>", "<r@x>"),
    "grandchild": ("<g@x>", "<c@x>", "<r@x> <c@x>"),
    "loop-a": ("<la@x>", None, "<lb@x>"),
    "loop-b": ("<lb@x>", None, "<la@x>"),
    "other": ("<o@x>", None, None),
    "other-reply": ("<o2@x>", "<o@x>", None),
    "no-id": (None, None, "<o2@x>"),
    "orphan": ("<q@x>", None, "<missing@x>"),
    "orphan-sibling": ("<q2@x>", "<missing@x>", None),
}


def test_it_groups_children_that_arrive_before_their_parents():
    expected = {
        frozenset({"root", "child", "grandchild"}),
        frozenset({"loop-a", "loop-b"}),
        frozenset({"other", "other-reply", "no-id"}),
        frozenset({"orphan", "orphan-sibling"}),
    }
    for order in itertools.permutations(["grandchild", "child", "root"]):
        assert _group(SYNTHETIC, list(order)) == {frozenset({"root", "child", "grandchild"})}
    rng = random.Random("synthetic")
    for _ in range(300):
        assert _group(SYNTHETIC, rng.sample(list(SYNTHETIC), len(SYNTHETIC))) == expected


def test_it_merges_two_groups_into_the_older_when_a_late_parent_links_them():
    grouper = ThreadGrouper()
    first = grouper.add("a", "<a@x>", None, "<p@x>")
    second = grouper.add("b", "<b@x>", None, "<q@x>")
    assert first != second
    assert grouper.add("p", "<p@x>", None, "<q@x>") == first
    assert grouper.group_of("b") == first
    assert grouper.lookup("q@x") == first
    assert grouper.lookup("<unknown@x>") is None
    assert grouper.group_of("unknown") is None
    assert grouper.groups() == [{"a", "b", "p"}]


def test_it_groups_the_same_with_a_forged_reference_in_any_order():
    messages = dict(SYNTHETIC)
    rng = random.Random("forged")
    for _ in range(50):
        forged_target = rng.choice([m[0] for m in SYNTHETIC.values() if m[0]] + [f"<random{rng.random()}@x>"])
        messages["forged"] = ("<f@x>", None, f"<r@x> {forged_target}")
        keys = list(messages)
        expected = _group(messages, keys)
        for _ in range(20):
            assert _group(messages, rng.sample(keys, len(keys))) == expected
        thread_inputs = [ThreadInput(i, *messages[k], None, T0) for i, k in enumerate(keys)]
        rfc = format_thread(thread_references(thread_inputs))
        for _ in range(20):
            assert format_thread(thread_references(rng.sample(thread_inputs, len(thread_inputs)))) == rfc


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from([f"<m{i}@x>" for i in range(8)] + ["junk", "<>"])),
            st.lists(st.sampled_from([f"<m{i}@x>" for i in range(8)] + ["junk"]), max_size=4),
            st.one_of(st.none(), st.sampled_from([f"<m{i}@x>" for i in range(8)])),
        ),
        min_size=1,
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_it_groups_and_threads_the_same_in_every_arrival_order(rows, rnd):
    messages = {i: (mid, irt, " ".join(refs)) for i, (mid, refs, irt) in enumerate(rows)}
    keys = list(messages)
    shuffled = rnd.sample(keys, len(keys))
    assert _group(messages, keys) == _group(messages, shuffled)
    thread_inputs = [ThreadInput(k, *messages[k], "Re: x" if k % 2 else "x", T0) for k in keys]
    by_arrival = [thread_inputs[k] for k in shuffled]
    assert format_thread(thread_references(thread_inputs)) == format_thread(thread_references(by_arrival))


def test_it_gives_the_ids_a_message_links_by_own_first_then_nearest_ancestor():
    assert thread_keys("<c@x>", "<b@x>", "<a@x> <b@x>") == ["<c@x>", "<b@x>", "<a@x>"]
    assert thread_keys("<c@x>", "<p@x>", "<a@x> <b@x>") == ["<c@x>", "<p@x>", "<b@x>", "<a@x>"]
    assert thread_keys("<c@x>", None, "<a@x> <c@x> <b@x> <a@x>") == ["<c@x>", "<b@x>", "<a@x>"]
    assert thread_keys(None, "<p@x>", None) == ["<p@x>"]
    assert thread_keys("junk", "junk", "junk") == []
    many = " ".join(f"<m{i}@x>" for i in range(500))
    keys = thread_keys("<own@x>", None, many)
    assert keys[0] == "<own@x>" and keys[1] == "<m499@x>" and len(keys) == MAX_REFERENCES + 1


# ----------------------------------------------------------------------------------------------------------------------
# Message-IDs and References


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@b>", "<a@b>"),
        ("  <a@b>  ", "<a@b>"),
        ("a@b", "<a@b>"),
        ("<a@b", "<a@b>"),
        ("a@b>", "<a@b>"),
        ("<a@B.Example>", "<a@b.example>"),
        ("<Local.Part@x>", "<Local.Part@x>"),
        ("<a\r\n @b>", "<a@b>"),
        ("(comment) <a@b> (more)", "<a@b>"),
        ("Message-ID: <a@b>", "<a@b>"),
        ("<CAF=x+y/z@mail.gmail.com>", "<CAF=x+y/z@mail.gmail.com>"),
        ("<>", None),
        ("< >", None),
        ("<no-at-sign>", None),
        ("<@b>", None),
        ("<a@>", None),
        ("", None),
        (None, None),
        ("garbage", None),
        ("<a\x00b@c>", None),
        ("<" + "a" * 1000 + "@b>", None),
    ],
)
def test_it_normalizes_message_ids(value, expected):
    assert normalize_message_id(value) == expected


def test_it_parses_references_in_order_without_duplicates():
    value = '<a@x> <b@x>,<c@x>\r\n\t<a@x> (comment <z@x>) "<q@x>" junk <> <d@x'
    assert parse_references(value) == ["<a@x>", "<b@x>", "<c@x>", "<d@x>"]


def test_it_reads_unbracketed_references_only_when_there_are_no_bracketed_ones():
    assert parse_references("a@x, b@x") == ["<a@x>", "<b@x>"]
    assert parse_references("<a@x> from john@example.com") == ["<a@x>"]
    assert parse_references(None) == [] and parse_references("") == []
    assert parse_references(["<a@x> <b@x>", "c@x", None]) == ["<a@x>", "<b@x>", "<c@x>"]


def test_it_caps_overlong_references_keeping_the_nearest_ancestors():
    ids = [f"<id{i}@example.org>" for i in range(20000)]
    parsed = parse_references(" ".join(ids))
    assert len(parsed) == MAX_REFERENCES
    assert parsed == ids[-MAX_REFERENCES:]


def test_it_survives_unbalanced_comments_and_quotes():
    assert parse_references('(unclosed <a@x> "also <b@x>') == ["<a@x>", "<b@x>"]


# ----------------------------------------------------------------------------------------------------------------------
# Subjects


@pytest.mark.parametrize(
    ("subject", "expected", "reply"),
    [
        ("Refund", "Refund", False),
        ("Re: Refund", "Refund", True),
        ("RE: re: Fwd: Refund", "Refund", True),
        ("Re:Refund", "Refund", True),
        ("Re [2]: Refund", "Refund", True),
        ("[list] Re: [other] Refund", "Refund", True),
        ("[list] Refund", "Refund", False),
        ("[only tag]", "[only tag]", False),
        ("Refund (fwd)", "Refund", True),
        ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", True),
        ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", True),
        ("[Fwd: Refund]", "Refund", True),
        ("  Refund \t  now  ", "Refund now", False),
        ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", False),
        ("AW: Refund", "AW: Refund", False),
        ("", "", False),
        (None, "", False),
        ("Re: ", "", True),
    ],
)
def test_it_extracts_the_rfc_5256_base_subject(subject, expected, reply):
    assert base_subject(subject) == expected
    assert is_reply_or_forward(subject) is reply


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("AW: WG: Refund", "Refund"),
        ("SV: Refund", "Refund"),
        ("VS: Refund", "Refund"),
        ("Odp: Refund", "Refund"),
        ("Vá: Refund", "Refund"),
        ("RE : Refund", "Refund"),
        ("R: Refund", "Refund"),
        ("Antw: Refund", "Refund"),
        ("RV: Refund", "Refund"),
        ("TR: Refund", "Refund"),
        ("RES: ENC: Refund", "Refund"),
        ("Re(2): Refund", "Refund"),
        ("Re^3: Refund", "Refund"),
        ("回复：Refund", "Refund"),
        ("ΑΠ: Refund", "Refund"),
        ("[101-20261126-000001] Re: AW: Refund", "Refund"),
        ("Re:\u00a0Refund", "Refund"),
        ("Awesome: news", "Awesome: news"),
        ("Rebate: yes", "Rebate: yes"),
    ],
)
def test_it_strips_localised_reply_prefixes_for_the_live_system(subject, expected):
    assert base_subject_localized(subject) == expected


# ----------------------------------------------------------------------------------------------------------------------
# Ticket numbers


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [101-20261126-000001] Refund", ["101-20261126-000001"]),
        ("AB12-20260229-123456 and ab12-20260229-123456", []),  # 2026 is not a leap year
        ("ACME-20240229-123456", ["ACME-20240229-123456"]),
        ("#7-20261126-000001, again 7-20261126-000001", ["7-20261126-000001"]),
        ("101-20261126-000001 202-20261127-000002", ["101-20261126-000001", "202-20261127-000002"]),
        ("101-20261126-1234567", ["101-20261126-1234567"]),
        ("101-20261126-00001", []),
        ("101-20261326-000001", []),
        ("X" * 21 + "-20261126-000001", []),
        ("A" * 20 + "-20261126-000001", ["A" * 20 + "-20261126-000001"]),
        ("101-20261126-000001x", []),
        ("Order 101-20261126", []),
        ("١٠١-٢٠٢٦١١٢٦-٠٠٠٠٠١", []),
        ("", []),
        (None, []),
    ],
)
def test_it_finds_ticket_numbers_in_subjects(subject, expected):
    assert find_ticket_numbers(subject) == expected
