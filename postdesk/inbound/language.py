"""Language detection for inbound email.

Two steps, both pure functions (no Django, no I/O beyond loading the bundled models once):

``strip_quoted(text)``
    The new text of a message: quoted history ('>' lines), attribution lines ("On ... wrote:", "Am ... schrieb",
    "... ezt írta:" and their equivalents in every supported language), "-----Original Message-----" style separators,
    Outlook header blocks (From:/Sent:/To:/Subject: and localised labels), forwarded-message markers and signatures
    ('-- ' delimiter, "Sent from my iPhone" kinds) are removed. When nothing would be left, the original text is
    returned unchanged.

``detect_language(text, *, languages=None, strip=True)``
    The ISO 639-1 code of the language of ``text``, or ``None`` when unsure (empty, too short, non-linguistic text,
    gibberish, or two languages too close to call). It strips quoted history itself (``strip=True``) so it can be
    given a whole message body; pass ``strip=False`` for a subject line or other text with no history.
    ``detect_message_language(text)`` is the same as ``detect_language(text)``, spelt for readers of ingest code.
    ``languages`` restricts the answer to a project's languages (unsupported codes are ignored).

The detector is our own combination of models shipped inside PyPI packages (nothing is downloaded at run time):

* py3langid's naive-Bayes model over byte n-grams (fast, strong on sentences), restricted to the supported languages;
* a word model built from wordfreq's per-language word-frequency lists (strong on short text and on close pairs
  such as cs/sk, da/nb, hr/sl, es/ca, and on text typed without diacritics, which is matched with a penalty);
* a letter-trigram model pooled over the frequent words of all those lists, which tells language from keyboard
  mashing and random letters (gibberish -> None).

The score of a language is py3langid's raw log-score plus the sum over words of log P(word | language). Estonian
has no wordfreq list; its words score a constant that sits between a known and an unknown word, so py3langid
decides it. Serbo-Croatian shares one word list (hr and sr); Cyrillic words are transliterated for Serbian.
The answer is None when fewer than 3 letters are left, when the letters do not look like any language, or when the
best language leads the second by less than 0.25 nats (1 nat for a lone word such as "Hotel").
``bench/language.py`` has the figures that chose this over lingua and py3langid alone: on the shared corpus
99.3 % of sentences and 92 % of word pairs right, about 0.5 ms for a sentence and 1 ms for a typical reply.

Models load lazily and thread-safely on first use (1.5-3 s, about 150 MB resident: py3langid's automaton and the
word tables, numpy arrays that forked workers share); call ``warm_up()`` at worker start, before forking if the
server forks, to pay that before the first message.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable

__all__ = [
    "SUPPORTED_LANGUAGES",
    "detect_language",
    "detect_message_language",
    "rank_languages",
    "strip_quoted",
    "warm_up",
]

SUPPORTED_LANGUAGES: tuple[str, ...] = (
    "bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "hr", "hu", "it",
    "lt", "lv", "nb", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sr", "sv", "tr", "uk",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------------------------
# Stripping quoted history and signatures
# ---------------------------------------------------------------------------------------------------------------

# Verbs of attribution lines ("On <date>, <name> wrote:") in the supported languages and the common mail clients.
_WROTE = (
    r"wrote|writes|has\s+written|schrieb|schreibt|geschrieben|a\s+écrit|écrit|escribió|ha\s+escrito|escreveu"
    r"|ha\s+scritto|scrisse|schreef|heeft\s+geschreven|skrev|skriver|kirjoitti|kirjutas|írta|napisał|napisała"
    r"|napsal|napsala|napísal|napísala|napisal|napisala|napisao|napisala|a\s+scris|написа|написал|написала"
    r"|написав|пишет|пише|написао|написала|yazdı|rašė|parašė|rakstīja|va\s+escriure|escrigué|ha\s+escrit"
    r"|έγραψε"
)
_WROTE_RE = re.compile(rf"(?<!\w)(?:{_WROTE})(?!\w)", re.IGNORECASE)
# Gmail in some locales (ru, uk...) writes no verb: "пн, 1 янв. 2024 г. в 10:00, Иван <ivan@example.ru>:"
_ADDRESS_COLON_RE = re.compile(r"[<(\[]\s*(?:mailto:)?[^\s<>()\[\]@]+@[^\s<>()\[\]]+\s*[>)\]]\s*:\s*$")

# Outlook and forwarded-message header labels. A block starts with a "from" label.
_FROM_LABELS = (
    r"from|von|de|da|van|från|fra|lähettäjä|saatja|feladó|od|šalje|pošiljatelj|de\s+la|от|від|kimden|nuo|no"
    r"|από|од|poslao|expéditeur|remitente|mittente|remetente|afzender|avsändare|afsender|avsender"
)
_OTHER_LABELS = (
    r"sent|date|to|cc|bcc|subject|reply-to|gesendet|datum|an|betreff|envoyé|envoyé\s+le|à|objet|enviado"
    r"|enviado\s+el|fecha|para|asunto|inviato|data|a|oggetto|enviada\s+em|enviado\s+em|assunto|verzonden"
    r"|aan|onderwerp|skickat|till|kopia|ämne|sendt|dato|til|emne|kopi|lähetetty|päivämäärä|vastaanottaja"
    r"|kopio|aihe|saadetud|kuupäev|adressaat|koopia|teema|elküldve|dátum|címzett|másolatot\s+kap|tárgy"
    r"|wysłano|do|dw|temat|odesláno|komu|kopie|předmět|odoslané|kópia|predmet|poslano|za|kp|zadeva|prima"
    r"|kopija|trimis|către|subiect|dată|изпратено|до|относно|дата|отправлено|кому|копия|тема|надіслано"
    r"|копія|gönderildi|gönderilme\s+tarihi|kime|bilgi|konu|tarih|išsiųsta|kam|tema|nosūtīts|datums|tēma"
    r"|enviat|per\s+a|assumpte|στάλθηκε|προς|κοιν|θέμα|ημερομηνία|послато|предмет|poslato|pregled"
)
_LABEL_TAIL = r"\s*\**\s*:"
_FROM_HEADER_RE = re.compile(rf"^\s*\**\s*(?:{_FROM_LABELS}){_LABEL_TAIL}", re.IGNORECASE)
_ANY_HEADER_RE = re.compile(rf"^\s*\**\s*(?:{_FROM_LABELS}|{_OTHER_LABELS}){_LABEL_TAIL}", re.IGNORECASE)
_INLINE_HEADER_RE = re.compile(rf"(?<!\w)(?:{_OTHER_LABELS}){_LABEL_TAIL}", re.IGNORECASE)

# "-----Original Message-----", "---------- Forwarded message ---------" and their translations.
_DASHED_SEPARATOR_RE = re.compile(r"^\s*-{3,}\s*[^\s-][^\n]{0,80}?\s*-{3,}\s*$")
_UNDERSCORE_LINE_RE = re.compile(r"^\s*_{8,}\s*$")
_FORWARD_STEMS = (
    r"forward|weitergeleitet|réexpédié|transféré|reenviado|inoltrato|reencaminhad|encaminhad|doorgestuurd"
    r"|vidarebefordra|videresend|välitetty|edastatud|továbbított|przekazywan|přeposlan|přeposílan|preposlan"
    r"|posredovan|proslijeđen|prosleđen|redirecționat|redirectionat|препратен|переадресован|пересланн|переслан"
    r"|iletilmiş|yönlendirilmiş|persiųst|pārsūtīt|reenviat|προωθημένο|прослеђен"
)
_MESSAGE_NOUNS = (
    r"message|nachricht|mail|mensaje|messaggio|mensagem|bericht|brev|meddelande|besked|meddelelse|melding"
    r"|viesti|kiri|levél|üzenet|wiadomoś|zpráv|správ|sporočil|poruk|mesaj|съобщение|сообщени|повідомлення"
    r"|ileti|laišk|ziņojum|missatge|μηνύματ|порук"
)
_FORWARD_STEM_RE = re.compile(rf"(?:{_FORWARD_STEMS})", re.IGNORECASE)
_MESSAGE_NOUN_RE = re.compile(rf"(?:{_MESSAGE_NOUNS})", re.IGNORECASE)
# helpdesk markers such as "##- Please type your reply above this line -##"
_REPLY_ABOVE_RE = re.compile(r"^#{2,}\s*-.*-\s*#{2,}$")
_ORIGINAL_MESSAGE_RE = re.compile(
    r"^\s*(?:original\s+message|ursprüngliche\s+nachricht|message\s+d'origine|mensaje\s+original"
    r"|messaggio\s+originale|mensagem\s+original|oorspronkelijk\s+bericht|ursprungligt\s+meddelande"
    r"|oprindelig\s+meddelelse|opprinnelig\s+melding|alkuperäinen\s+viesti|algne\s+sõnum|eredeti\s+üzenet"
    r"|wiadomość\s+oryginalna|oryginalna\s+wiadomość|původní\s+zpráva|pôvodná\s+správa|izvirno\s+sporočilo"
    r"|izvorna\s+poruka|originalna\s+poruka|mesaj\s+original|mesajul\s+original|оригинално\s+съобщение"
    r"|исходное\s+сообщение|оригінальне\s+повідомлення|вихідне\s+повідомлення|özgün\s+ileti|orijinal\s+mesaj"
    r"|originalus\s+pranešimas|sākotnējais\s+ziņojums|missatge\s+original|αρχικό\s+μήνυμα|оригинална\s+порука)"
    r"\s*:?\s*$",
    re.IGNORECASE,
)

# "Sent from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for Android"... (the whole line).
_SENT_WORDS = (
    r"sent|sendt|skickat|gesendet|envoyé|enviado|enviada|enviat|inviato|verzonden|verstuurd|lähetetty|wysłane"
    r"|wysłano|odesláno|odoslané|poslano|poslato|trimis|отправлено|надіслано|изпратено|послато|gönderildi"
    r"|saadetud|išsiųsta|nosūtīts|elküldve|küldve|küldöm|στάλθηκε|get|holen|obtenez|obtener|scarica|baixe"
    r"|download|hämta|hent|haal"
)
_DEVICE_WORDS = (
    r"iphon|ipad|ipod|android|samsung|galaxy|blackberry|outlook|huawei|xiaomi|pixel|nokia|motorola|oneplus"
    r"|mail\s+for\s+windows|windows\s+mail|yahoo|gmail|aol|mobil|móvil|cellulare|smartphone|telefon|телефон"
    r"|tablet|proton\s*mail|thunderbird|airmail|bluemail"
)
_SENT_WORD_RE = re.compile(rf"(?<!\w)(?:{_SENT_WORDS})(?!\w)", re.IGNORECASE)
_DEVICE_RE = re.compile(_DEVICE_WORDS, re.IGNORECASE)
_SIGNATURE_DELIMITER_RE = re.compile(r"^(?:--|__|—)\s?$")
_HAS_WORD_CHAR_RE = re.compile(r"[^\W_]")


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


_SENTENCE_END_RE = re.compile(r"[.!?…]\s*$")


def _attribution_window(window: str) -> bool | None:
    """Whether ``window`` is an attribution: True for a strong one, False for a weak one, None when it is none."""
    if len(window) > 300:
        return None
    strong = any(c.isdigit() for c in window) or "@" in window
    if _WROTE_RE.search(window) and (strong or len(window) < 80):
        return strong
    if strong and _ADDRESS_COLON_RE.search(window):
        return True
    return None


def _attribution(lines: list[str], j: int) -> tuple[int, bool] | None:
    """An attribution line ending at ``lines[j]`` (which ends with ':'): (its first line, strong), or None.

    Gmail and others wrap long attributions, so up to two lines before ``j`` may belong to it. Strong attributions
    carry a date or an address; weak ones ("Anna wrote:") only count when quoted lines follow.
    """
    for first in range(j, max(j - 3, -1), -1):
        if first < j and (not lines[first].strip() or _is_quoted(lines[first])):
            return None
        strong = _attribution_window(" ".join(part.strip() for part in lines[first : j + 1]))
        if strong is None:
            continue
        # a wrapped start ("On Mon, 3 Mar 2025 at 10:15 Anna Long-Name <") has a date or an address, no full stop
        while first > max(j - 2, 0):
            previous = lines[first - 1].strip()
            if not previous or _is_quoted(previous) or _SENTENCE_END_RE.search(previous):
                break
            if not (any(c.isdigit() for c in previous) or "@" in previous or "<" in previous):
                break
            first -= 1
        return first, strong
    return None


def _is_header_block(lines: list[str], i: int) -> bool:
    """Whether ``lines[i]`` starts an Outlook/forward header block (From: ... with two more header lines)."""
    line = lines[i]
    if not _FROM_HEADER_RE.match(line):
        return False
    rest = _FROM_HEADER_RE.sub("", line, count=1)
    if len(_INLINE_HEADER_RE.findall(rest)) >= 2:  # the whole block on one line
        return True
    found, seen = 0, 0
    for following in lines[i + 1 : i + 10]:
        if not following.strip():
            continue
        seen += 1
        if _ANY_HEADER_RE.match(following):
            found += 1
            if found >= 2:
                return True
        if seen >= 6:
            break
    # after a separator line (Outlook's underscores, dashes) one more header line is enough
    previous = next((p for p in reversed(lines[max(0, i - 3) : i]) if p.strip()), "")
    return found >= 1 and bool(_UNDERSCORE_LINE_RE.match(previous) or _DASHED_SEPARATOR_RE.match(previous))


def _starts_history(lines: list[str], i: int) -> bool:
    """Whether everything from ``lines[i]`` on is history (separators, forward markers, header blocks)."""
    stripped = lines[i].strip()
    if not stripped:
        return False
    if stripped[0] in "-_" and (_DASHED_SEPARATOR_RE.match(stripped) or _UNDERSCORE_LINE_RE.match(stripped)):
        if _UNDERSCORE_LINE_RE.match(stripped):
            following = [p for p in lines[i + 1 : i + 4] if p.strip()]
            return bool(following) and bool(_ANY_HEADER_RE.match(following[0]))
        return True
    if (  # "Begin forwarded message:", "Anfang der weitergeleiteten Nachricht:"...
        stripped.endswith(":")
        and len(stripped.split()) <= 5
        and _FORWARD_STEM_RE.search(stripped)
        and _MESSAGE_NOUN_RE.search(stripped)
    ):
        return True
    if stripped[0] == "#" and _REPLY_ABOVE_RE.match(stripped):
        return True
    if len(stripped) < 60 and _ORIGINAL_MESSAGE_RE.match(stripped):
        return True
    head = stripped[:40]
    return ":" in head and _is_header_block(lines, i)


def strip_quoted(text: str) -> str:
    """The new text of a reply, without quoted history, attribution lines, separators and signatures.

    Falls back to ``text`` itself when nothing (no letter or digit) would be left.
    """
    if not text:
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if _is_quoted(line):
            continue
        stripped = line.strip()
        if _SIGNATURE_DELIMITER_RE.match(line) or _starts_history(lines, i):
            break
        if stripped.endswith(":") and len(stripped) <= 300:
            found = _attribution(lines, i)
            if found:
                first, strong = found
                after = next((p for p in lines[i + 1 :] if p.strip()), None)
                quoted_after = after is not None and _is_quoted(after)
                if quoted_after or strong:
                    while kept and kept[-1][0] >= first:  # its wrapped first lines were kept already
                        kept.pop()
                    if quoted_after:  # inline or bottom-posted reply: answers between the quotes stay
                        continue
                    break  # unquoted history (Outlook, HTML turned into text): everything below is old
        # short lines only (the device lines are), and the cheaper pattern first: these two searches were most of
        # the cost of stripping an ordinary message
        if len(stripped) <= 60 and _SENT_WORD_RE.search(stripped) and _DEVICE_RE.search(stripped):
            continue  # "Sent from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for Android"...
        kept.append((i, line))
    result = "\n".join(line for _, line in kept).strip()
    if not _HAS_WORD_CHAR_RE.search(result):
        return text
    return result


# ---------------------------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------------------------

# Tuned on one half of the language corpus and checked on the other half (see bench/language.py).
_WORD_WEIGHT = 1.0  # weight of the word model against py3langid's raw log-score
_LOG_FLOOR = math.log(3e-9)  # log P(word | language) of a word missing from that language's list
_LOG_FOLD_PENALTY = math.log(0.05)  # a word that matches only without diacritics ("prilis" for "příliš")
_NO_LIST_TOKEN_SCORE = -16.0  # per word, for a language without a word list (Estonian)
_MIN_LETTERS = 3  # fewer letters than this: unsure
_MIN_MARGIN = 0.25  # best minus second-best score (nats) below this: unsure
_MIN_MARGIN_ONE_WORD = 1.0  # the same for a lone word ("Hotel", "Info" belong to many languages)
_MIN_PLAUSIBILITY = -4.0  # mean log P(letter | two before) under all word lists below this: gibberish
_PLAUSIBILITY_WORDS = 5000  # most frequent words of each list that the letter model is built from
_HOT_WORDS = 5000  # most frequent words of each list whose scores are kept ready in a dict
_MAX_CHARS = 1500  # longer texts are cut (the language is settled long before)
_MAX_TOKENS = 120  # words read by the word model
_MAX_LANGID_CHARS = 300  # py3langid walks bytes in Python: it reads the first 300 characters
_PLAUSIBILITY_TOKENS = 60  # the gibberish check reads the first 60 words
_QUANT = 10.0  # word log-probabilities are stored as uint8 of -logp * _QUANT
_WORDS_DECIDE_ALONE = 40  # from this many words on, the word model may decide alone ...
_WORDS_DECIDE_MARGIN = 1.0  # ... when its best list leads by at least this much per word (nats)

# py3langid's code and wordfreq's list for each supported language (None: no list).
_LANGID_CODES = {code: code for code in SUPPORTED_LANGUAGES} | {"nb": "no"}
_WORDLIST_CODES = {code: code for code in SUPPORTED_LANGUAGES} | {"et": None, "hr": "sh", "sr": "sh"}
_CYRILLIC_LISTS = ("bg", "ru", "uk")

_URL_RE = re.compile(r"(?:https?://|ftp://|www\.)\S+|\[cid:[^\]]*\]", re.IGNORECASE)
_ADDRESS_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")
_MOJIBAKE_HINT_RE = re.compile(
    r"[ÃÂÅÄĂĹÐÑРСÎ][\x80-\xbf\u0100-\u02ff\u2000-\u206f\u0400-\u045f€‚ƒ„…†‡ˆ‰Š‹ŚŤŽŹ‘’“”•–—˜™š›śťžź]"
)

_SERBIAN_LATIN = dict(
    zip(
        "абвгдђежзијклљмнњопрстћуфхцчџш",
        "a b v g d đ e ž z i j k l lj m n nj o p r s t ć u f h c č dž š".split(),
        strict=True,
    )
)


def _fold_table() -> dict[int, str]:
    """str.translate table removing diacritics from Latin and Greek letters."""
    import unicodedata

    table: dict[int, str] = {}
    for cp in (*range(0x00C0, 0x0250), *range(0x0370, 0x0400), *range(0x1E00, 0x1F00)):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and base:
            table[cp] = base
    table.update({ord("ł"): "l", ord("Ł"): "L", ord("đ"): "d", ord("Đ"): "D", ord("ø"): "o", ord("Ø"): "O"})
    table.update({ord("ß"): "ss", ord("æ"): "ae", ord("œ"): "oe", ord("ı"): "i", ord("’"): "'"})
    return table


_FOLD = _fold_table()


def _repair_mojibake(text: str) -> str:
    """UTF-8 that was read as a legacy single-byte charset ("Ã©tÃ©", "RychlĂ˝") decoded back, when that is what it is.

    Legitimate text practically never re-encodes to valid UTF-8 with fewer characters, so this is safe to try.
    """
    if text.isascii() or not _MOJIBAKE_HINT_RE.search(text):
        return text
    for charset in ("cp1252", "cp1250", "cp1251", "latin-1"):
        try:
            repaired = text.encode(charset).decode("utf-8")
        except UnicodeError:
            continue
        if len(repaired) < len(text):
            return repaired
    return text


def _hashes(np, words: list[str]):
    return np.fromiter(map(hash, words), dtype=np.int64, count=len(words))


class _WordTable:
    """Sorted 64-bit string hashes -> one uint8 row of quantised -log P(word | list) per word list (0: absent).

    Python's string hash is salted per process, which is fine: the table is built in the process that queries it.
    """

    def __init__(self, np, parts: list[tuple[object, int, object]], n_lists: int) -> None:
        """``parts``: (hashes, list column, quantised values) for each word list."""
        self._np = np
        all_hashes = np.concatenate([hashes for hashes, _, _ in parts])
        columns = np.concatenate(
            [np.full(len(hashes), column, dtype=np.int16) for hashes, column, _ in parts]
        )
        values = np.concatenate([quantised for _, _, quantised in parts])
        self.keys, inverse = np.unique(all_hashes, return_inverse=True)
        self.rows = np.full((len(self.keys), n_lists), 255, dtype=np.uint8)
        # the most frequent spelling wins when several words of one list fold to the same key
        np.minimum.at(self.rows, (inverse, columns), values)
        self.rows[self.rows == 255] = 0

    def lookup(self, words: list[str]):
        np = self._np
        hashes = _hashes(np, words)
        positions = np.searchsorted(self.keys, hashes)
        positions[positions >= len(self.keys)] = 0
        rows = self.rows[positions]
        rows[self.keys[positions] != hashes] = 0
        return rows


class _LetterModel:
    """Letter trigram model pooled over the frequent words of all lists: how word-like a text is at all."""

    _START, _END = 0x5E, 0x24  # '^' and '$' around each word

    def __init__(self, np, word_lists: list[list[str]]) -> None:
        self._np = np
        codes = self._codes("".join("^" + "$^".join(words) + "$" for words in word_lists))
        self.tri_keys, self.tri_counts = np.unique(self._trigrams(codes), return_counts=True)
        self.bi_keys, self.bi_counts = np.unique((codes[:-1] << 21) | codes[1:], return_counts=True)
        self.alphabet = len(np.unique(codes))

    def _codes(self, text: str):
        np = self._np
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)

    @staticmethod
    def _trigrams(codes):
        return (codes[:-2] << 42) | (codes[1:-1] << 21) | codes[2:]

    def _counts(self, keys, counts, queries):
        np = self._np
        positions = np.searchsorted(keys, queries)
        positions[positions >= len(keys)] = 0
        return np.where(keys[positions] == queries, counts[positions], 0)

    def plausibility(self, words: list[str]) -> float:
        """Mean log P(letter | the two before) over the letters of ``words`` (about -2.5 for text, -5 for mashing)."""
        np = self._np
        codes = self._codes("^" + "$^".join(words) + "$")
        inside = (codes[:-2] != self._END) & (codes[1:-1] != self._END)  # no trigram across two words
        trigrams = self._trigrams(codes)[inside]
        contexts = ((codes[:-2] << 21) | codes[1:-1])[inside]
        if not len(trigrams):
            return 0.0
        numerator = self._counts(self.tri_keys, self.tri_counts, trigrams) + 0.1
        denominator = self._counts(self.bi_keys, self.bi_counts, contexts) + 0.1 * self.alphabet
        return float(np.log(numerator / denominator).mean())


class _Model:
    def __init__(self) -> None:
        import numpy as np
        import wordfreq
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.np = np
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        identifier.set_languages(sorted(set(_LANGID_CODES.values())))
        if hasattr(
            identifier, "_full_model"
        ):  # py3langid keeps all ~140 languages for set_languages(): free them
            identifier._full_model = (identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes)
        self.identifier = identifier

        self.lists = sorted({code for code in _WORDLIST_CODES.values() if code})
        list_index = {code: i for i, code in enumerate(self.lists)}
        self.column_of = {lang: list_index.get(_WORDLIST_CODES[lang]) for lang in SUPPORTED_LANGUAGES}
        self.sh_column = list_index.get("sh")
        files = wordfreq.available_languages("small")
        exact, folded, frequent, hot_words = [], [], [], {}
        for column, code in enumerate(self.lists):
            # read_cBpack, not get_frequency_dict: that one caches every dict for the life of the process
            words, centibels = [], []
            for cb, bucket in enumerate(wordfreq.read_cBpack(files[code])):
                words.extend(bucket)
                centibels.extend([cb] * len(bucket))
            neg_logp = np.array(centibels, dtype=np.float64) * (math.log(10) / 100)  # -ln P = cB/100 * ln 10
            quantised = np.clip(np.rint(neg_logp * _QUANT), 1, 254).astype(np.uint8)
            exact.append((_hashes(np, words), column, quantised))
            # diacritic-free forms; Cyrillic lists get none (й/и, ї/і are different letters there, not accents)
            changed = np.zeros(len(words), dtype=bool)
            if code not in _CYRILLIC_LISTS:
                changed = np.fromiter((not word.isascii() for word in words), dtype=bool, count=len(words))
            folds = [words[k].translate(_FOLD) for k in np.flatnonzero(changed)]
            folded.append((_hashes(np, folds), column, quantised[changed]))
            frequent.append(
                [word for word in words[: _PLAUSIBILITY_WORDS * 2] if word.isalpha()][:_PLAUSIBILITY_WORDS]
            )
            hot_words.update(dict.fromkeys(words[:_HOT_WORDS]))
        self.exact = _WordTable(np, exact, len(self.lists))
        self.folded = _WordTable(np, folded, len(self.lists))
        if self.sh_column is not None:  # Serbian is written in both scripts; the list has Latin only
            latin_to_cyrillic = {latin: cyr for cyr, latin in _SERBIAN_LATIN.items()}
            pattern = re.compile("|".join(sorted(map(re.escape, latin_to_cyrillic), key=len, reverse=True)))
            frequent.append(
                [pattern.sub(lambda m: latin_to_cyrillic[m[0]], w) for w in frequent[self.sh_column]]
            )
        self.letters = _LetterModel(np, frequent)
        # the frequent words' rows, ready in a dict: most words of a message are found here without a search
        self.hot_rows = self._word_log_probs(list(hot_words)).astype(np.float32)
        self.hot = {word: row for row, word in enumerate(hot_words)}

    def _word_log_probs(self, words: list[str]):
        """(n_words, n_lists) log P(word | list), with the diacritic-free fallback and the floor."""
        np = self.np
        exact = self.exact.lookup(words)
        folds = [w.translate(_FOLD) for w in words]
        loose = np.maximum(self.folded.lookup(folds), self.exact.lookup(folds))
        return np.where(
            exact > 0,
            exact * (-1.0 / _QUANT),
            np.where(loose > 0, loose * (-1.0 / _QUANT) + _LOG_FOLD_PENALTY, _LOG_FLOOR),
        )

    def _serbian_cyrillic(self, words: list[str], per_list) -> float:
        """The Serbian word score of a text with Cyrillic words: those are transliterated to the Latin-script list.

        ``per_list`` scored every Cyrillic word at the floor in the Serbo-Croatian column (its list is Latin only);
        transliterated words found among the frequent ones get their score instead (rarer ones stay at the floor,
        which keeps this cheap for the Russian, Ukrainian and Bulgarian mail that also takes this path).
        """
        hot_get = self.hot.get
        rows = []
        for word in words:
            if _CYRILLIC_RE.search(word) and all(c in _SERBIAN_LATIN for c in word):
                row = hot_get("".join(_SERBIAN_LATIN[c] for c in word))
                if row is not None:
                    rows.append(row)
        score = float(per_list[self.sh_column])
        if rows:
            score += float(self.hot_rows[rows, self.sh_column].sum(dtype=self.np.float64)) - _LOG_FLOOR * len(
                rows
            )
        return score

    def _word_scores(self, words: list[str]):
        """Sum over ``words`` of log P(word | list), one value per list, and how many words were frequent ones."""
        np = self.np
        hot_get = self.hot.get
        found, misses = [], []
        for word in words:
            row = hot_get(word)
            if row is None:
                misses.append(word)
            else:
                found.append(row)
        total = self.hot_rows[found].sum(axis=0, dtype=np.float64) if found else np.zeros(len(self.lists))
        if misses:
            total += self._word_log_probs(misses).sum(axis=0)
        return total, len(found)

    def scores(self, text: str, words: list[str], languages: tuple[str, ...]):
        """Scores (log-likelihoods, nats) of ``languages`` for prepared ``text`` and its lower-cased ``words``, and
        the share of ``words`` that are frequent words of some list; None when there is nothing to score."""
        np = self.np
        if len(words) >= _WORDS_DECIDE_ALONE:
            decided = self._words_alone(text, words, languages)
            if decided is not None:
                return decided
        langid = dict(self.identifier.rank(text[:_MAX_LANGID_CHARS]))
        total = np.array([langid[_LANGID_CODES[lang]] for lang in languages], dtype=np.float64)
        if total.max() <= -1e30:  # py3langid knows no n-gram of the text ("test"): the words decide alone
            if not words:
                return None
            total[:] = 0.0
        if not words:
            return total, 0.0
        per_list, frequent = self._word_scores(words)
        serbian = None
        for k, lang in enumerate(languages):
            column = self.column_of[lang]
            if column is None:
                word_score = _NO_LIST_TOKEN_SCORE * len(words)
            elif lang == "sr" and _CYRILLIC_RE.search(text):
                if serbian is None:
                    serbian = self._serbian_cyrillic(words, per_list)
                word_score = serbian
            else:
                word_score = per_list[column]
            total[k] += _WORD_WEIGHT * word_score
        return total, frequent / len(words)


    def _words_alone(self, text: str, words: list[str], languages: tuple[str, ...]):
        """For a long text whose words leave no doubt, the scores from the word model alone (py3langid, which walks
        the text byte by byte in Python, is then skipped: most of the time of a typical email). None when the words
        do not settle it: a language without a list (Estonian), Croatian/Serbian (one shared list), a close second."""
        np = self.np
        per_list, frequent = self._word_scores(words)
        best = int(np.argmax(per_list))
        if best == self.sh_column:
            return None
        ordered = np.sort(per_list)
        fixed = _NO_LIST_TOKEN_SCORE * len(words)  # what a language without a word list scores
        if ordered[-1] - max(ordered[-2], fixed) < _WORDS_DECIDE_MARGIN * len(words):
            return None
        total = np.array(
            [per_list[self.column_of[lang]] if self.column_of[lang] is not None else fixed for lang in languages],
            dtype=np.float64,
        )
        return _WORD_WEIGHT * total, frequent / len(words)


_model: _Model | None = None
_model_lock = threading.Lock()


def _get_model() -> _Model:
    global _model
    model = _model
    if model is None:
        with _model_lock:
            model = _model
            if model is None:
                model = _model = _Model()
    return model


def warm_up() -> None:
    """Load the models now (about 1.5 s) rather than on the first message."""
    _get_model()


def _candidates(languages: Iterable[str] | None) -> tuple[str, ...]:
    if languages is None:
        return SUPPORTED_LANGUAGES
    if isinstance(languages, str):
        languages = [languages]
    wanted = {code.strip().lower() for code in languages if code}
    return tuple(code for code in SUPPORTED_LANGUAGES if code in wanted)


def _prepare(text: str) -> tuple[str, list[str]]:
    """The text to classify (mojibake repaired, no URLs or addresses, bounded length) and its lower-cased words."""
    text = _repair_mojibake(text[: _MAX_CHARS * 2])
    if "://" in text or "www." in text or "[cid:" in text:
        text = _URL_RE.sub(" ", text)
    if "@" in text:
        text = _ADDRESS_RE.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > _MAX_CHARS:
        cut = text.rfind(" ", 0, _MAX_CHARS)
        text = text[: cut if cut > 0 else _MAX_CHARS]
    words = _WORD_RE.findall(text)[:_MAX_TOKENS]
    if words and sum(map(str.isupper, words)) > 0.3 * len(
        words
    ):  # SHOUTING: py3langid expects the usual case
        text = text.lower()
    return text, [w.lower().replace("’", "'") for w in words]


def _ranked(text: str, languages: Iterable[str] | None, strip: bool) -> tuple[list[tuple[str, float]], int]:
    """Candidates best first with their score minus the best one's (empty when the text is not linguistic), and
    the number of words read."""
    candidates = _candidates(languages)
    if not text or not candidates:
        return [], 0
    prepared, words = _prepare(strip_quoted(text) if strip else text)
    if sum(map(len, words)) < _MIN_LETTERS:
        return [], len(words)
    model = _get_model()
    result = model.scores(prepared, words, candidates)
    if result is None:
        return [], len(words)
    total, frequent_share = result
    # text made mostly of frequent words is language; otherwise ask the letter model whether it looks like any
    if len(words) < 3 or frequent_share < 0.6:
        if model.letters.plausibility(words[:_PLAUSIBILITY_TOKENS]) < _MIN_PLAUSIBILITY:
            return [], len(words)
    best = float(total.max())
    ranked = [(lang, float(score) - best) for lang, score in zip(candidates, total, strict=True)]
    ranked.sort(key=lambda item: item[1], reverse=True)
    return ranked, len(words)


def rank_languages(
    text: str, *, languages: Iterable[str] | None = None, strip: bool = True
) -> list[tuple[str, float]]:
    """Candidate languages best first, each with its score minus the best one's (0.0, then negative, in nats).

    Empty when the text is empty, too short or not language at all. For diagnostics; routing uses detect_language.
    """
    return _ranked(text, languages, strip)[0]


def detect_language(text: str, *, languages: Iterable[str] | None = None, strip: bool = True) -> str | None:
    """ISO 639-1 code of the language of ``text``, or None when unsure.

    ``text`` may be a whole message body: quoted history and signatures are stripped first (``strip=True``).
    ``languages`` restricts the answer (a project's languages); codes that are not supported are ignored.
    """
    ranked, n_words = _ranked(text, languages, strip)
    if not ranked:
        return None
    margin = _MIN_MARGIN_ONE_WORD if n_words == 1 else _MIN_MARGIN
    if len(ranked) > 1 and ranked[1][1] > -margin:
        return None
    return ranked[0][0]


def detect_message_language(text: str, *, languages: Iterable[str] | None = None) -> str | None:
    """The language of a message body's new text (quoted history and signatures stripped), or None when unsure."""
    return detect_language(text, languages=languages, strip=True)
