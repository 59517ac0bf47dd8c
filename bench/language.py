"""Language detection benchmark: candidates x kinds of the shared language corpus, plus synthetic replies.

    .venv/bin/python bench/language.py [--limit N] [--candidates postdesk,py3langid,lingua-low,...] [--repeat R]

For each candidate and kind (sentences, word-pairs, single-words of ../shared/corpora/language/dev.tsv, and
"replies": a reply of 2-6 corpus sentences in one language above an attributed, '>'-quoted thread in another) it
prints accuracy (right answers / all rows, an abstention counts as wrong), coverage (rows answered), precision
(right / answered) and milliseconds per message (best of --repeat runs; the machine is shared, so repeat).

Candidates (each restricted to the corpus languages; the ones whose package is not installed are skipped):
  postdesk           postdesk.inbound.language.detect_language (py3langid + wordfreq words, abstains when unsure)
  postdesk-forced    the same scores, best language always taken (no abstention)
  py3langid          py3langid 0.4 naive Bayes alone
  lingua-low         lingua-language-detector, low accuracy mode (trigrams)
  lingua-high        lingua-language-detector, high accuracy mode (1-5-grams)
  lingua-high+py3langid  log-linear sum of both models' probabilities
  postdesk+lingua-high   postdesk's scores plus lingua-high's log-confidence (does lingua still add anything?)
For the replies kind the others get the text after postdesk's strip_quoted (its time included); postdesk strips
by itself. Load time and resident memory added by each model are printed first (lingua's covers all its modes).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from postdesk.inbound import language as lang_mod  # noqa: E402

CORPUS_LANGUAGES = "bg ca cs da de en es et fi fr hr hu it lt lv nb nl pl pt ro ru sk sl sv tr uk".split()
KINDS = ("sentences", "word-pairs", "single-words", "replies")

ATTRIBUTIONS = {  # a few mail clients' attribution lines, in the quoted thread's language or English
    "en": "On Mon, 3 Mar 2025 at 10:15, Alex Smith <alex@example.com> wrote:",
    "de": "Am 03.03.2025 um 10:15 schrieb Alex Schmidt <alex@example.com>:",
    "hu": "Kovács Anna <anna@example.com> ezt írta (időpont: 2025. márc. 3., H, 10:15):",
    "fr": "Le lun. 3 mars 2025 à 10:15, Alex Martin <alex@example.com> a écrit :",
    "es": "El lun, 3 mar 2025 a las 10:15, Alex García (<alex@example.com>) escribió:",
}


def corpora_dir() -> Path:
    return Path(os.environ.get("POSTDESK_CORPORA", ROOT.parent / "shared" / "corpora"))


def load_rows(limit: int | None) -> list[tuple[str, str, str]]:
    path = corpora_dir() / "language" / "dev.tsv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        rows = [(text, lang, kind) for text, lang, kind in reader]
    if limit:
        by_kind: dict[str, list] = defaultdict(list)
        for row in rows:
            by_kind[row[2]].append(row)
        rows = [
            row for kind_rows in by_kind.values() for row in kind_rows[:: max(1, len(kind_rows) // limit)]
        ]
    return rows


def make_replies(
    rows: list[tuple[str, str, str]], count: int, seed: int = 20250303
) -> list[tuple[str, str, str]]:
    """Replies in one language above a quoted thread in another, built from corpus sentences."""
    rng = random.Random(seed)
    sentences: dict[str, list[str]] = defaultdict(list)
    for text, lang, kind in rows:
        if kind == "sentences":
            sentences[lang].append(text)
    languages = sorted(sentences)
    replies = []
    for _ in range(count):
        reply_lang, quoted_lang = rng.sample(languages, 2)
        reply = " ".join(rng.sample(sentences[reply_lang], rng.randint(2, 6)))
        quoted = " ".join(rng.sample(sentences[quoted_lang], rng.randint(6, 14)))
        attribution = ATTRIBUTIONS.get(quoted_lang, ATTRIBUTIONS["en"])
        body = f"{reply}\n\nBest,\nKim\n\n{attribution}\n" + "\n".join(
            f"> {line}" for line in quoted.split(". ")
        )
        replies.append((body, reply_lang, "replies"))
    return replies


def postdesk_candidates():
    def detect(text: str) -> str | None:
        return lang_mod.detect_language(text)

    def forced(text: str) -> str | None:
        ranked = lang_mod.rank_languages(text)
        return ranked[0][0] if ranked else None

    lang_mod.warm_up()
    return {"postdesk": detect, "postdesk-forced": forced}


def py3langid_candidate():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    codes = ["no" if code == "nb" else code for code in CORPUS_LANGUAGES]
    identifier.set_languages(codes)

    def detect(text: str) -> str | None:
        code, _ = identifier.classify(text)
        return "nb" if code == "no" else code

    return {"py3langid": detect}, identifier


def lingua_candidates(names: set[str], identifier):
    try:
        from lingua import IsoCode639_1, LanguageDetectorBuilder
    except ImportError:
        print("# lingua-language-detector is not installed: lingua candidates skipped", file=sys.stderr)
        return {}
    codes = [getattr(IsoCode639_1, code.upper()) for code in CORPUS_LANGUAGES]
    out = {}
    if "lingua-low" in names:
        low = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode()
        low = low.with_preloaded_language_models().build()
        out["lingua-low"] = lambda text: _lingua_code(low.detect_language_of(text))
    if names & {"lingua-high", "lingua-high+py3langid", "postdesk+lingua-high"}:
        high = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_preloaded_language_models().build()
        out["lingua-high"] = lambda text: _lingua_code(high.detect_language_of(text))

        def combined(text: str) -> str | None:
            scores = defaultdict(float)
            for value in high.compute_language_confidence_values(text):
                scores[_lingua_code(value.language)] += math.log(value.value + 1e-4)
            if identifier is not None:
                for code, prob in identifier.rank(text):
                    scores["nb" if code == "no" else code] += 0.7 * math.log(prob + 1e-4)
            return max(scores, key=scores.get) if scores else None

        out["lingua-high+py3langid"] = combined
        out["postdesk+lingua-high"] = combined_candidate(high)
    return out


def combined_candidate(lingua_high):
    """Our scores plus lingua's log-confidence: does lingua still add anything on top of the chosen detector?"""
    model = lang_mod._get_model()
    codes = tuple(CORPUS_LANGUAGES)

    def detect(text: str) -> str | None:
        prepared, words = lang_mod._prepare(lang_mod.strip_quoted(text))
        if not words:
            return None
        result = model.scores(prepared, words, codes)
        if result is None:
            return None
        total = result[0]
        scores = dict(zip(codes, total.tolist(), strict=True))
        for value in lingua_high.compute_language_confidence_values(prepared):
            code = _lingua_code(value.language)
            scores[code] += math.log(value.value + 1e-4)
        return max(scores, key=scores.get)

    return detect


def _lingua_code(language) -> str | None:
    return language.iso_code_639_1.name.lower() if language is not None else None


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(detect, rows, repeat: int, strip_replies: bool):
    """(accuracy, coverage, precision, ms per message) per kind."""
    answers: list[str | None] = []
    seconds: dict[str, float] = {}
    for attempt in range(repeat):
        spent: dict[str, float] = defaultdict(float)
        current = []
        for text, _, kind in rows:
            start = time.perf_counter()
            if strip_replies and kind == "replies":
                text = lang_mod.strip_quoted(text)
            current.append(detect(text))
            spent[kind] += time.perf_counter() - start
        answers = current
        seconds = spent if attempt == 0 else {k: min(seconds[k], spent[k]) for k in spent}
    figures = {}
    for kind in KINDS:
        picked = [(answer, lang) for answer, (_, lang, k) in zip(answers, rows, strict=True) if k == kind]
        if not picked:
            continue
        right = sum(answer == lang for answer, lang in picked)
        answered = sum(answer is not None for answer, _ in picked)
        figures[kind] = (
            right / len(picked),
            answered / len(picked),
            right / answered if answered else 0.0,
            1000 * seconds[kind] / len(picked),
            len(picked),
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=0, help="rows per kind (default: all)")
    parser.add_argument("--replies", type=int, default=1000, help="synthetic replies (default 1000)")
    parser.add_argument("--repeat", type=int, default=2, help="timing runs, best kept (default 2)")
    parser.add_argument(
        "--candidates",
        default="postdesk,postdesk-forced,py3langid,lingua-low,lingua-high,lingua-high+py3langid,postdesk+lingua-high",
        help="comma-separated candidate names",
    )
    args = parser.parse_args(argv)
    names = {name.strip() for name in args.candidates.split(",") if name.strip()}

    all_rows = load_rows(None)
    rows = load_rows(args.limit) if args.limit else all_rows
    rows += make_replies(all_rows, args.replies)
    candidates = {}
    load_times: dict[str, tuple[float, float]] = {}

    def loaded(name: str, load):
        start, rss = time.perf_counter(), rss_mb()
        result = load()
        load_times[name] = (time.perf_counter() - start, rss_mb() - rss)
        return result

    import numpy  # noqa: F401  (shared by postdesk and py3langid: not counted in either's load)

    candidates.update(loaded("postdesk", postdesk_candidates))
    identifier = None
    if names & {"py3langid", "lingua-high+py3langid"}:
        found, identifier = loaded("py3langid", py3langid_candidate)
        candidates.update(found)
    if any("lingua" in name for name in names):
        candidates.update(loaded("lingua", lambda: lingua_candidates(names, identifier)))

    counts = {kind: sum(1 for row in rows if row[2] == kind) for kind in KINDS}
    print(f"# rows: {counts}")
    print(
        "# load: "
        + ", ".join(f"{k} {seconds:.1f} s +{mb:.0f} MB RSS" for k, (seconds, mb) in load_times.items())
    )
    print(f"{'candidate':24} {'kind':13} {'accuracy':>8} {'coverage':>8} {'precision':>9} {'ms/msg':>7}")
    for name, detect in candidates.items():
        if name not in names:
            continue
        strip_replies = not name.startswith("postdesk")  # postdesk strips by itself
        figures = measure(detect, rows, args.repeat, strip_replies)
        for kind, (accuracy, coverage, precision, ms, _) in figures.items():
            print(
                f"{name:24} {kind:13} {accuracy:8.4f} {coverage:8.4f} {precision:9.4f} {ms:7.3f}", flush=True
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
