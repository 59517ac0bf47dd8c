"""Language detection of inbound email: stripping of quoted history and signatures, and the detector itself."""

import csv
import threading
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.inbound.language import (
    SUPPORTED_LANGUAGES,
    detect_language,
    detect_message_language,
    rank_languages,
    strip_quoted,
)
from postdesk.testing.corpora import corpus

CORPUS_LANGUAGES = "bg ca cs da de en es et fi fr hr hu it lt lv nb nl pl pt ro ru sk sl sv tr uk".split()

REPLY = "Thanks, the parcel arrived today and everything is fine."

# One attribution line per supported language, in the shapes the common mail clients write them.
ATTRIBUTIONS = [
    "On Mon, Mar 3, 2025 at 10:15 AM Anna Kovacs <anna@example.com> wrote:",  # Gmail en
    "On 3 Mar 2025, at 10:15, Anna Kovacs <anna@example.com> wrote:",  # Apple Mail en
    "On 03/03/2025 10:15, Anna Kovacs wrote:",  # Thunderbird en
    "Am 03.03.2025 um 10:15 schrieb Anna Kovacs <anna@example.com>:",  # de
    "Anna Kovacs <anna@example.com> schrieb am Mo., 3. März 2025, 10:15:",  # Gmail de
    "Kovács Anna <anna@example.com> ezt írta (időpont: 2025. márc. 3., H, 10:15):",  # Gmail hu
    "2025. 03. 03. 10:15 keltezéssel, Kovács Anna írta:",  # Thunderbird hu
    "Le lun. 3 mars 2025 à 10:15, Anna Kovacs <anna@example.com> a écrit :",  # fr
    "El lun, 3 mar 2025 a las 10:15, Anna Kovacs (<anna@example.com>) escribió:",  # es
    "Il giorno lun 3 mar 2025 alle ore 10:15 Anna Kovacs <anna@example.com> ha scritto:",  # it
    "Em seg., 3 de mar. de 2025 às 10:15, Anna Kovacs <anna@example.com> escreveu:",  # pt
    "Op ma 3 mrt 2025 om 10:15 schreef Anna Kovacs <anna@example.com>:",  # nl
    "Den mån 3 mars 2025 kl 10:15 skrev Anna Kovacs <anna@example.com>:",  # sv
    "Den man. 3. mar. 2025 kl. 10.15 skrev Anna Kovacs <anna@example.com>:",  # da
    "man. 3. mar. 2025 kl. 10:15 skrev Anna Kovacs <anna@example.com>:",  # nb
    "ma 3. maalisk. 2025 klo 10.15 Anna Kovacs <anna@example.com> kirjoitti:",  # fi
    "E, 3. märts 2025 kell 10:15 Anna Kovacs <anna@example.com> kirjutas:",  # et
    "pon., 3 mar 2025 o 10:15 Anna Kovacs <anna@example.com> napisał(a):",  # pl
    "po 3. 3. 2025 v 10:15 odesílatel Anna Kovacs <anna@example.com> napsal:",  # cs
    "po 3. 3. 2025 o 10:15 Anna Kovacs <anna@example.com> napísal(a):",  # sk
    "V pon., 3. mar. 2025 ob 10:15 je Anna Kovacs <anna@example.com> napisal(-a):",  # sl
    "pon, 3. ožu 2025. u 10:15 Anna Kovacs <anna@example.com> napisao je:",  # hr
    "пон, 3. мар 2025. у 10:15 Ана Ковач <anna@example.com> је написао/ла:",  # sr
    "Pe lun., 3 mar. 2025 la 10:15, Anna Kovacs <anna@example.com> a scris:",  # ro
    "На пн, 3.03.2025 г. в 10:15 ч. Анна Ковач <anna@example.com> написа:",  # bg
    "пн, 3 мар. 2025 г. в 10:15, Анна Ковач <anna@example.com>:",  # Gmail ru (no verb)
    "03.03.2025 10:15, Анна Ковач пишет:",  # ru
    "пн, 3 бер. 2025 р. о 10:15 Анна Ковач <anna@example.com> пише:",  # uk
    "3 Mar 2025 Pzt, saat 10:15 tarihinde Anna Kovacs <anna@example.com> şunu yazdı:",  # tr
    "2025-03-03, pr, 10:15, Anna Kovacs <anna@example.com> rašė:",  # lt
    "pirmd., 2025. g. 3. marts, plkst. 10:15 — lietotājs Anna Kovacs (<anna@example.com>) rakstīja:",  # lv
    "El dl., 3 de març 2025 a les 10:15, Anna Kovacs (<anna@example.com>) va escriure:",  # ca
    "Στις Δευ 3 Μαρ 2025 στις 10:15, ο/η Anna Kovacs <anna@example.com> έγραψε:",  # el
]

# Outlook's header block (From, Sent, To, Subject) in the languages Outlook writes it in.
OUTLOOK_LABELS = [
    ("From", "Sent", "To", "Subject"),
    ("Von", "Gesendet", "An", "Betreff"),
    ("De", "Envoyé", "À", "Objet"),
    ("De", "Enviado el", "Para", "Asunto"),
    ("Da", "Inviato", "A", "Oggetto"),
    ("De", "Enviada em", "Para", "Assunto"),
    ("Van", "Verzonden", "Aan", "Onderwerp"),
    ("Från", "Skickat", "Till", "Ämne"),
    ("Fra", "Sendt", "Til", "Emne"),
    ("Lähettäjä", "Lähetetty", "Vastaanottaja", "Aihe"),
    ("Saatja", "Saadetud", "Adressaat", "Teema"),
    ("Feladó", "Elküldve", "Címzett", "Tárgy"),
    ("Od", "Wysłano", "Do", "Temat"),
    ("Od", "Odesláno", "Komu", "Předmět"),
    ("Od", "Odoslané", "Komu", "Predmet"),
    ("Od", "Poslano", "Za", "Zadeva"),
    ("Šalje", "Poslano", "Prima", "Predmet"),
    ("Од", "Послато", "За", "Предмет"),
    ("De la", "Trimis", "Către", "Subiect"),
    ("От", "Изпратено", "До", "Относно"),
    ("От", "Отправлено", "Кому", "Тема"),
    ("Від", "Надіслано", "Кому", "Тема"),
    ("Kimden", "Gönderildi", "Kime", "Konu"),
    ("Nuo", "Išsiųsta", "Kam", "Tema"),
    ("No", "Nosūtīts", "Kam", "Tēma"),
    ("De", "Enviat", "Per a", "Assumpte"),
    ("Από", "Στάλθηκε", "Προς", "Θέμα"),
]

ORIGINAL_MESSAGE_SEPARATORS = [
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
    "-----Message d'origine-----",
    "-----Mensaje original-----",
    "-----Messaggio originale-----",
    "-----Oorspronkelijk bericht-----",
    "-----Eredeti üzenet-----",
    "-----Wiadomość oryginalna-----",
    "-----Původní zpráva-----",
    "-----Исходное сообщение-----",
    "---------- Forwarded message ---------",
    "---------- Weitergeleitete Nachricht ----------",
    "---------- Továbbított üzenet ---------",
]

MOBILE_SIGNATURES = [
    "Sent from my iPhone",
    "Sent from my Samsung Galaxy smartphone.",
    "Get Outlook for Android",
    "Sent from Mail for Windows",
    "Von meinem iPhone gesendet",
    "Envoyé de mon iPhone",
    "Enviado desde mi iPhone",
    "Inviato da iPhone",
    "Verzonden met mijn iPhone",
    "Skickat från min iPhone",
    "Sendt fra min iPhone",
    "Lähetetty iPhonesta",
    "iPhone-ról küldve",
    "Wysłane z iPhone'a",
    "Odesláno z iPhonu",
    "Отправлено с iPhone",
    "Надіслано з iPhone",
    "iPhone'umdan gönderildi",
]


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


# --- strip_quoted -------------------------------------------------------------------------------------------


def test_it_removes_quoted_lines():
    assert strip_quoted(f"{REPLY}\n\n> old text\n>> older text\n  > indented quote") == REPLY


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_it_removes_an_attribution_line_above_a_quote_in_every_supported_language(attribution):
    body = f"{REPLY}\n\n{attribution}\n\n> Earlier message.\n> Second line."
    assert strip_quoted(body) == REPLY


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_it_cuts_history_that_follows_an_attribution_without_quote_marks(attribution):
    # HTML mail turned into text loses the '>' marks: everything after the attribution is old.
    body = f"{REPLY}\n\n{attribution}\n\nEarlier message, not marked as a quote.\nSecond line."
    assert strip_quoted(body) == REPLY


def test_it_recognises_an_attribution_that_gmail_wrapped_over_two_lines():
    body = (
        f"{REPLY}\n\nOn Mon, Mar 3, 2025 at 10:15 AM Some Rather Long Sender Name <\n"
        "some.rather.long.address@example.com> wrote:\n\n> Earlier message."
    )
    assert strip_quoted(body) == REPLY


def test_it_keeps_the_reply_line_just_above_an_attribution():
    body = "I ordered 3 items.\nOn Mon, Mar 3, 2025 at 10:15 AM Anna <anna@example.com>\nwrote:\n> Earlier."
    assert strip_quoted(body) == "I ordered 3 items."


def test_it_keeps_answers_written_between_quoted_lines():
    body = (
        "On Mon, Mar 3, 2025 at 10:15 AM Support <support@example.com> wrote:\n"
        "> Did the parcel arrive?\nYes, yesterday.\n> Is everything fine?\nNo, one cup is broken."
    )
    assert strip_quoted(body) == "Yes, yesterday.\nNo, one cup is broken."


def test_it_keeps_text_after_a_colon_that_is_no_attribution():
    body = "Here is what my colleague wrote:\nThe machine stops after five minutes."
    assert strip_quoted(body) == body


@pytest.mark.parametrize("labels", OUTLOOK_LABELS, ids=lambda labels: labels[0])
def test_it_cuts_an_outlook_header_block_in_every_supported_language(labels):
    sender, sent, to, subject = labels
    body = (
        f"{REPLY}\n\n{sender}: Support <support@example.com>\n{sent}: 3.3.2025 10:15\n"
        f"{to}: Anna <anna@example.com>\n{subject}: RE: Order 12345\n\nThe old message, unquoted."
    )
    assert strip_quoted(body) == REPLY


def test_it_cuts_an_outlook_header_block_after_the_underscore_line():
    body = (
        f"{REPLY}\n\n________________________________\nFrom: Support <support@example.com>\n"
        "Sent: Monday, March 3, 2025 10:15 AM\nSubject: Order\n\nDear customer, the old message."
    )
    assert strip_quoted(body) == REPLY


def test_it_cuts_an_outlook_header_block_flattened_onto_one_line():
    body = (
        f"{REPLY}\n\nFrom: Shop <shop@example.com> Sent: Monday, March 3, 2025 10:15 To: me@example.com "
        "Subject: Versand\nIhre Bestellung wurde heute versandt."
    )
    assert strip_quoted(body) == REPLY


def test_it_keeps_a_line_that_merely_starts_with_from():
    body = "From: my point of view the update broke the printer.\nPlease advise."
    assert strip_quoted(body) == body


@pytest.mark.parametrize("separator", ORIGINAL_MESSAGE_SEPARATORS)
def test_it_cuts_at_original_message_and_forwarded_message_separators(separator):
    body = f"{REPLY}\n\n{separator}\nFrom: Shop <shop@example.com>\nSubject: Order\n\nOld text."
    assert strip_quoted(body) == REPLY


@pytest.mark.parametrize(
    "marker",
    ["Begin forwarded message:", "Anfang der weitergeleiteten Nachricht:", "Début du message réexpédié :"],
)
def test_it_cuts_at_apple_mail_forwarded_message_markers(marker):
    body = f"{REPLY}\n\n{marker}\n\nFrom: Shop <shop@example.com>\nSubject: Order\nDate: 3 March 2025\n\nOld."
    assert strip_quoted(body) == REPLY


def test_it_keeps_a_request_to_forward_something():
    body = "Could you forward the following to accounting:\nthe invoice 12345 is paid twice."
    assert strip_quoted(body) == body


def test_it_cuts_at_a_helpdesk_reply_above_this_line_marker():
    body = f"{REPLY}\n\n##- Please type your reply above this line -##\n\nYour request 12345 was updated."
    assert strip_quoted(body) == REPLY


def test_it_cuts_a_signature_after_the_dash_dash_space_delimiter():
    body = f"{REPLY}\n\n-- \nJean Dupont\nDirecteur commercial\nTéléphone : +33 1 23 45 67 89"
    assert strip_quoted(body) == REPLY


@pytest.mark.parametrize("signature", MOBILE_SIGNATURES)
def test_it_removes_sent_from_my_phone_lines(signature):
    assert strip_quoted(f"{REPLY}\n\n{signature}") == REPLY


def test_it_keeps_a_line_about_a_phone_that_is_no_signature():
    body = f"{REPLY}\nMy iPhone screen is broken."
    assert strip_quoted(body) == body


def test_it_falls_back_to_the_original_text_when_nothing_new_is_left():
    body = "> Only a quote.\n> Nothing new."
    assert strip_quoted(body) == body
    forwarded = "---------- Forwarded message ---------\nFrom: a@example.com\nSubject: x\n\nText."
    assert strip_quoted(forwarded) == forwarded
    assert strip_quoted("") == ""


def test_it_accepts_windows_line_endings():
    body = f"{REPLY}\r\n\r\nOn Mon, Mar 3, 2025 at 10:15 AM Anna <anna@example.com> wrote:\r\n> Old.\r\n"
    assert strip_quoted(body) == REPLY


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_it_strips_any_text_without_failing_and_keeps_only_its_lines(text):
    result = strip_quoted(text)
    assert result == text or all(line in text for line in result.split("\n"))


# --- reply above a quoted thread in another language --------------------------------------------------------

GERMAN = (
    "Sehr geehrte Damen und Herren,\n\nleider ist meine Bestellung noch nicht angekommen. Können Sie bitte "
    "nachsehen, wo das Paket gerade ist?\n\nMit freundlichen Grüßen\nHans Müller"
)
ENGLISH = (
    "Dear Hans,\n\nthank you for your message. Your parcel left our warehouse on Friday and should arrive "
    "within the next two working days. Please let us know if it does not.\n\nKind regards,\nThe support team"
)
HUNGARIAN = (
    "Tisztelt Ügyfélszolgálat!\n\nA megrendelt termék sajnos sérülten érkezett meg. Kérem, küldjenek egy "
    "újat, vagy utalják vissza a vételárat.\n\nÜdvözlettel:\nKovács Anna"
)
HUNGARIAN_REPLY = "Köszönöm szépen a gyors választ, megkaptam a csomagot, minden rendben van vele."
ENGLISH_REPLY = "Thank you, could you please also send me the invoice for this order?"
GERMAN_REPLY = "Vielen Dank für die schnelle Hilfe, jetzt funktioniert alles wieder einwandfrei."

REPLIES_ABOVE_QUOTES = {
    "en over hu, Gmail": (
        f"{ENGLISH_REPLY}\n\nOn Mon, Mar 3, 2025 at 10:15 AM Kovács Anna <anna@example.hu> wrote:\n\n"
        f"{_quote(HUNGARIAN)}\n",
        "en",
    ),
    "en over hu, Gmail in Hungarian": (
        f"{ENGLISH_REPLY}\n\nKovács Anna <anna@example.hu> ezt írta (időpont: 2025. márc. 3., H, 10:15):\n\n"
        f"{_quote(HUNGARIAN)}\n",
        "en",
    ),
    "en over hu, Outlook": (
        f"{ENGLISH_REPLY}\n\n________________________________\nFeladó: Kovács Anna <anna@example.hu>\n"
        f"Elküldve: 2025. március 3. 10:15\nCímzett: Support <support@example.com>\nTárgy: Sérült termék\n\n"
        f"{HUNGARIAN}\n",
        "en",
    ),
    "de over en, Outlook": (
        f"{GERMAN_REPLY}\n\nMit freundlichen Grüßen\nHans Müller\n\n________________________________\n"
        f"From: Support <support@example.com>\nSent: Monday, March 3, 2025 10:15 AM\nTo: Hans Müller "
        f"<hans@example.de>\nSubject: RE: Bestellung\n\n{ENGLISH}\n",
        "de",
    ),
    "de over en, Apple Mail": (
        f"{GERMAN_REPLY}\n\nVon meinem iPhone gesendet\n\n> Am 03.03.2025 um 10:15 schrieb Support "
        f"<support@example.com>:\n>\n{_quote(ENGLISH)}\n",
        "de",
    ),
    "de over en, Gmail": (
        f"{GERMAN_REPLY}\n\nOn Mon, Mar 3, 2025 at 10:15 AM Support <support@example.com> wrote:\n\n"
        f"{_quote(ENGLISH)}\n",
        "de",
    ),
    "hu over de, Apple Mail": (
        f"{HUNGARIAN_REPLY}\n\nÜdv,\nAnna\n\nSent from my iPhone\n\n> On 3 Mar 2025, at 10:15, Hans Müller "
        f"<hans@example.de> wrote:\n>\n{_quote(GERMAN)}\n",
        "hu",
    ),
    "hu over de, Gmail in German": (
        f"{HUNGARIAN_REPLY}\n\nAm Mo., 3. März 2025 um 10:15 Uhr schrieb Hans Müller <hans@example.de>:\n\n"
        f"{_quote(GERMAN)}\n",
        "hu",
    ),
    "hu over de, Outlook in German": (
        f"{HUNGARIAN_REPLY}\n\n-----Ursprüngliche Nachricht-----\nVon: Hans Müller <hans@example.de>\n"
        f"Gesendet: Montag, 3. März 2025 10:15\nAn: Kovács Anna <anna@example.hu>\nBetreff: Bestellung\n\n"
        f"{GERMAN}\n",
        "hu",
    ),
    "hu over de, Thunderbird unquoted": (
        f"{HUNGARIAN_REPLY}\n\n2025. 03. 03. 10:15 keltezéssel, Hans Müller írta:\n{GERMAN}\n",
        "hu",
    ),
}


@pytest.mark.parametrize("case", sorted(REPLIES_ABOVE_QUOTES))
def test_it_routes_a_reply_above_a_quoted_thread_in_another_language_to_the_reply_language(case):
    body, expected = REPLIES_ABOVE_QUOTES[case]
    assert detect_language(body) == expected
    assert detect_message_language(body) == expected


def test_it_detects_the_quoted_language_when_asked_not_to_strip():
    body, _ = REPLIES_ABOVE_QUOTES["en over hu, Outlook"]
    assert detect_language(body, strip=False) == "hu"


# --- detect_language ---------------------------------------------------------------------------------------


def test_it_supports_at_least_the_corpus_languages_and_the_named_ones():
    from postdesk.inbound.languages import LANGUAGE_NAMES

    assert set(CORPUS_LANGUAGES) <= set(SUPPORTED_LANGUAGES)
    assert set(LANGUAGE_NAMES) <= set(SUPPORTED_LANGUAGES)
    assert all(len(code) == 2 and code.islower() for code in SUPPORTED_LANGUAGES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Guten Tag, ich habe eine Frage zu meiner letzten Rechnung.", "de"),
        ("Dobrý den, prosím o zaslání faktury za minulý měsíc.", "cs"),
        ("Dobry den, prosim o zaslani faktury za minuly mesic.", "cs"),  # typed without diacritics
        ("Dobrý deň, prosím o zaslanie faktúry za minulý mesiac.", "sk"),
        ("Tere, kas saaksite mulle eelmise kuu arve saata?", "et"),
        ("Hei, voisitteko lähettää minulle viime kuun laskun?", "fi"),
        ("Hej, kan I sende mig fakturaen for sidste måned?", "da"),
        ("Hei, kan dere sende meg fakturaen for forrige måned?", "nb"),
        ("Здравствуйте, пришлите, пожалуйста, счёт за прошлый месяц.", "ru"),
        ("Добрий день, надішліть, будь ласка, рахунок за минулий місяць.", "uk"),
        ("Здравейте, моля изпратете ми фактурата за миналия месец.", "bg"),
        ("Здраво, молим вас да ми пошаљете рачун за прошли месец.", "sr"),
        ("Καλημέρα, θα ήθελα να ρωτήσω για την παραγγελία μου.", "el"),
        ("SEHR GEEHRTE DAMEN UND HERREN, ICH WARTE IMMER NOCH AUF MEIN PAKET!", "de"),
        ("Bonjour, je n'ai toujours pas reçu ma commande, pouvez-vous vérifier ?", "fr"),
    ],
)
def test_it_detects_typical_customer_sentences(text, expected):
    assert detect_language(text) == expected


def test_it_reads_text_whose_utf8_was_decoded_as_a_legacy_charset():
    assert detect_language("RychlĂ˝ Ăşvod do Autodesk Architectural Desktopu a jeho pouĹľitĂ­.") == "cs"
    assert detect_language("Merci beaucoup pour votre rÃ©ponse, jâ€™ai bien reÃ§u le colis.") == "fr"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "ok",
        "12345 678 90",
        "+++ !!! ???",
        "https://example.com/orders/12345 support@example.com",
        "asdfghjkl qwertyuiop",
        "sdfsdf sdfsdf jkljkl",
        "zzzzzz xxxxxx",
        "hjkhkjhkjh",
        "xqzkvbt wprtzq kjhgfd",
    ],
)
def test_it_is_unsure_of_empty_short_and_gibberish_text(text):
    assert detect_language(text) is None
    assert rank_languages(text) == []


def test_it_answers_only_within_the_given_languages():
    text = "Guten Tag, ich habe eine Frage zu meiner letzten Rechnung."
    assert detect_language(text, languages=["de", "en"]) == "de"
    assert detect_language(text, languages=("DE",)) == "de"
    assert detect_language(text, languages="de") == "de"
    assert detect_language(text, languages=["fr", "it", "es"]) in {"fr", "it", "es", None}
    assert detect_language(text, languages=["xx", "ja"]) is None
    assert detect_language(text, languages=[]) is None


@pytest.mark.parametrize("word", ["Hotel", "Taxi", "Radio", "Info"])
def test_it_is_unsure_of_a_lone_word_that_many_languages_share(word):
    ranked = rank_languages(word)
    assert ranked and ranked[0][1] == 0.0
    assert detect_language(word) is None


@pytest.mark.parametrize(("word", "expected"), [("Köszönöm", "hu"), ("Dziękuję", "pl"), ("Grazie", "it")])
def test_it_detects_a_lone_word_that_belongs_to_one_language(word, expected):
    assert detect_language(word) == expected


def test_it_ranks_all_candidates_best_first():
    ranked = rank_languages("Vielen Dank für Ihre Hilfe!", languages=["de", "nl", "en"])
    assert [code for code, _ in ranked][0] == "de"
    assert sorted(code for code, _ in ranked) == ["de", "en", "nl"]
    assert all(score <= 0.0 for _, score in ranked)


def test_it_gives_the_same_answers_from_many_threads():
    texts = [
        "Guten Tag, ich habe eine Frage.",
        "Bonjour, j'ai une question.",
        "Buongiorno, ho una domanda.",
        "Dzień dobry, mam pytanie.",
    ]
    expected = [detect_language(text) for text in texts]
    results: list[list[str | None]] = []

    def work():
        results.append([detect_language(text) for text in texts * 20][: len(texts)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_it_answers_a_supported_code_or_none_for_any_text(text):
    assert detect_language(text) in {None, *SUPPORTED_LANGUAGES}


# --- the shared corpus ------------------------------------------------------------------------------------


def _corpus_rows():
    path = corpus("language") / "dev.tsv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        assert header == ["text", "lang", "kind"]
        return [tuple(row) for row in reader]


@pytest.fixture(scope="module")
def corpus_accuracy():
    right, total = Counter(), Counter()
    for text, lang, kind in _corpus_rows():
        total[kind] += 1
        right[kind] += detect_language(text) == lang
    return {kind: right[kind] / total[kind] for kind in total}


@pytest.mark.corpus
def test_it_routes_at_least_99_percent_of_corpus_sentences_right(corpus_accuracy):
    assert corpus_accuracy["sentences"] >= 0.99


@pytest.mark.corpus
def test_it_routes_at_least_90_percent_of_corpus_word_pairs_right(corpus_accuracy):
    assert corpus_accuracy["word-pairs"] >= 0.90


@pytest.mark.corpus
def test_it_routes_most_corpus_single_words_right(corpus_accuracy):
    assert corpus_accuracy["single-words"] >= 0.65
