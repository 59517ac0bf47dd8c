"""HTML sanitising for inbound email bodies, and HTML-to-text conversion.

``sanitize_html`` runs nh3 (ammonia) with a strict allow-list, then rewrites the sanitised output so that nothing
loads from the network when it is shown: remote ``<img src>``, ``background`` attributes and CSS ``url()`` are
moved into ``data-remote-*`` attributes (the per-email "show images" choice turns them back on with
``allow_remote_images``). ``cid:`` references are kept as they are for ``resolve_cids``.

nh3's output is canonical (every attribute double-quoted with ``"`` escaped, ``<`` escaped in text, no comments), so
the post-processing below can parse its tags with a simple, exact regular expression.

Bounded time: html5ever (inside nh3) and libxml2 (inside lxml/inscriptis) are quadratic on some inputs (thousands of
nested block elements, unclosed formatting elements with distinct attributes, one tag with many thousand
attributes). Any document that is large or has many tags is first re-serialised by ``_bound_html``, a linear
tokenizer that keeps only allowed tags and attributes, closes every element explicitly and caps the nesting depth,
so that what nh3 parses is shallow and well-formed.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable
from urllib.parse import unquote

import nh3

# The whole HTML body sanitised at most; the rest is cut (the raw message is kept anyway).
MAX_HTML_CHARS = 2_000_000
# Documents over these go through ``_bound_html`` before nh3 (see the module docstring).
_GUARD_CHARS = 64_000
_GUARD_TAGS = 2_000
_GUARD_FORMATTING_WITH_ATTRS = 150
MAX_DEPTH = 200  # under libxml2's 256 so that inscriptis sees the whole tree
MAX_ATTRIBUTES_PER_TAG = 64
# inscriptis is pure Python (about 12 us per element here): larger documents use the linear regex conversion.
INSCRIPTIS_MAX_CHARS = 8_000

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
        "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt",
        "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i",
        "img", "ins", "kbd", "li", "main", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp",
        "section", "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# Removed together with everything inside them.
CLEAN_CONTENT_TAGS = frozenset(
    {
        "applet", "audio", "canvas", "embed", "frame", "frameset", "head", "iframe", "map", "math", "noembed",
        "noframes", "noscript", "object", "script", "select", "style", "svg", "template", "textarea", "title",
        "video", "xmp", "plaintext",
    }
)  # fmt: skip
_GENERIC_ATTRIBUTES = {
    "style",
    "title",
    "dir",
    "lang",
    "align",
    "valign",
    "width",
    "height",
    "bgcolor",
    "border",
}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": _GENERIC_ATTRIBUTES,
    "a": {"href"},
    "img": {"src", "alt", "hspace", "vspace"},
    "table": {"cellpadding", "cellspacing", "summary", "background"},
    "td": {"colspan", "rowspan", "nowrap", "scope", "abbr", "background"},
    "th": {"colspan", "rowspan", "nowrap", "scope", "abbr", "background"},
    "tr": {"background"},
    "font": {"color", "face", "size"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "hr": {"noshade", "size", "color"},
    "del": {"datetime"},
    "ins": {"datetime"},
    "time": {"datetime"},
    "details": {"open"},
}
# CSS properties kept in style attributes. No position/z-index/transform (a message must not be able to cover the
# application), no content/cursor/behavior/binding; url() values are handled by the post-processing.
ALLOWED_CSS_PROPERTIES = frozenset(
    {
        "background", "background-color", "background-image", "background-position", "background-repeat",
        "background-size", "border", "border-bottom", "border-bottom-color", "border-bottom-left-radius",
        "border-bottom-right-radius", "border-bottom-style", "border-bottom-width", "border-collapse",
        "border-color", "border-left", "border-left-color", "border-left-style", "border-left-width",
        "border-radius", "border-right", "border-right-color", "border-right-style", "border-right-width",
        "border-spacing", "border-style", "border-top", "border-top-color", "border-top-left-radius",
        "border-top-right-radius", "border-top-style", "border-top-width", "border-width", "caption-side", "clear",
        "color", "direction", "display", "empty-cells", "float", "font", "font-family", "font-size", "font-style",
        "font-variant", "font-weight", "height", "letter-spacing", "line-height", "list-style-position",
        "list-style-type", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top", "max-height",
        "max-width", "min-height", "min-width", "overflow-wrap", "padding", "padding-bottom", "padding-left",
        "padding-right", "padding-top", "table-layout", "text-align", "text-decoration", "text-indent",
        "text-overflow", "text-transform", "vertical-align", "white-space", "width", "word-break", "word-spacing",
        "word-wrap",
    }
)  # fmt: skip
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid", "data", "ftp"})
LINK_REL = "noopener noreferrer nofollow"

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})  # fmt: skip
# Formatting elements (HTML's "list of active formatting elements") with attributes: left unclosed, html5ever
# reopens every one of them at each later text, which is quadratic in time and output size.
_FORMATTING_WITH_ATTRS = re.compile(
    r"<(?:a|b|big|code|em|font|i|nobr|s|small|strike|strong|tt|u)[\t\n\f\r /]", re.I
)


def _relative_url(url: str) -> str | None:
    """nh3's hook for URLs without a scheme: protocol-relative ones become https (then remote), others are dropped
    (a relative URL would resolve against the application itself)."""
    if url.startswith("//") and len(url) > 2 and url[2] not in "/\\":
        return "https:" + url
    return None


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(CLEAN_CONTENT_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel=LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties=set(ALLOWED_CSS_PROPERTIES),
    url_relative=_relative_url,
    strip_comments=True,
)

# A start tag of nh3's (canonical) output: lower-case name, attributes name="value" with no '"' inside values.
_OUT_TAG = re.compile(r'<([a-z][a-z0-9]*)((?:\s+[a-z][a-z0-9_:-]*(?:="[^"]*")?)+)\s*/?>')
_OUT_ATTR = re.compile(r'\s+([a-z][a-z0-9_:-]*)(?:="([^"]*)")?')
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp|x-icon|vnd\.microsoft\.icon)[;,]", re.I)
_CSS_FUNCTION = re.compile(r"(?<![a-zA-Z-])([a-zA-Z-]*)\s*\(")
_CSS_SAFE_FUNCTIONS = frozenset(
    {"rgb", "rgba", "hsl", "hsla", "calc", "min", "max", "clamp", "linear-gradient", "radial-gradient",
     "repeating-linear-gradient", "repeating-radial-gradient"}
)  # fmt: skip
_CSS_DECLARATION = re.compile(r"""((?:"[^"]*"|'[^']*'|\([^)]*\)|[^;])+)(?:;|$)""")
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)""", re.I)
_MARKERS = (' src="', ' background="', "(", "\\", ' href="data:')


def _is_remote(url: str) -> bool:
    low = url.lstrip().lower()
    return low.startswith(("http://", "https://"))


def _is_local(url: str) -> bool:
    """A URL that loads nothing from the network: an inline part (cid:) or an inline image (data:image/...)."""
    low = url.strip().lower()
    return low.startswith("cid:") or bool(_DATA_IMAGE.match(low))


def _attr(value: str) -> str:
    return _html.escape(value, quote=True)


def _rebuild(name: str, attrs: list[tuple[str, str | None]], self_closing: bool = False) -> str:
    parts = [f"<{name}"]
    for key, value in attrs:
        parts.append(f" {key}" if value is None else f' {key}="{value}"')
    parts.append("/>" if self_closing else ">")
    return "".join(parts)


def _split_css(style: str) -> list[str]:
    return [m.group(1).strip() for m in _CSS_DECLARATION.finditer(style) if m.group(1).strip()]


def _clean_style(style: str) -> tuple[str, str | None, bool]:
    """(style without anything that loads, style with the remote images back or None, had remote images)."""
    local: list[str] = []
    remote: list[str] = []
    had_remote = False
    for decl in _split_css(style):
        low = decl.lower()
        if (
            "\\" in decl
            or "@import" in low
            or "<" in decl
            or "/*" in decl
            or "javascript:" in low
            or "vbscript:" in low
        ):
            continue
        functions = {m.group(1).lower() for m in _CSS_FUNCTION.finditer(decl)} if "(" in decl else set()
        if not functions:
            local.append(decl)
            remote.append(decl)
            continue
        if functions - _CSS_SAFE_FUNCTIONS - {"url"}:
            continue
        if "url" not in functions:
            local.append(decl)
            remote.append(decl)
            continue
        urls = [next(g for g in m.groups() if g is not None) for m in _CSS_URL.finditer(decl)]
        if not urls or len(urls) != low.count("url("):
            continue
        if all(_is_local(u) for u in urls):
            local.append(decl)
            remote.append(decl)
        elif all(_is_remote(u) or _is_local(u) for u in urls):
            had_remote = True
            remote.append(decl)
    live = ";".join(local)
    return live, (";".join(remote) if had_remote else None), had_remote


def _fix_tag(match: re.Match, state: list[bool]) -> str:
    text = match.group(0)
    if not any(marker in text for marker in _MARKERS):
        return text
    name = match.group(1)
    attrs: list[tuple[str, str | None]] = []
    changed = False
    for am in _OUT_ATTR.finditer(match.group(2)):
        key, raw = am.group(1), am.group(2)
        value = None if raw is None else _html.unescape(raw)
        if key == "src" and value is not None:
            low = value.strip().lower()
            if _is_remote(value):
                attrs.append(("data-remote-src", _attr(value.strip())))
                state[0] = True
                changed = True
            elif low.startswith("cid:") or (name == "img" and _DATA_IMAGE.match(low)):
                attrs.append((key, raw))
            else:
                changed = True
            continue
        if key == "background" and value is not None:
            if _is_remote(value):
                attrs.append(("data-remote-background", _attr(value.strip())))
                state[0] = True
                changed = True
            elif value.strip().lower().startswith("cid:"):
                attrs.append((key, raw))
            else:
                changed = True
            continue
        if key == "href" and value is not None and value.strip().lower().startswith("data:"):
            changed = True
            continue
        if key == "style" and value is not None and ("(" in value or "\\" in value):
            live, remote, had_remote = _clean_style(value)
            if live:
                attrs.append(("style", _attr(live)))
            if remote is not None:
                attrs.append(("data-remote-style", _attr(remote)))
            state[0] = state[0] or had_remote
            changed = True
            continue
        attrs.append((key, raw))
    if not changed:
        return text
    return _rebuild(name, attrs, text.endswith("/>"))


# Attributes that the post-processing rewrites; it looks only at the tags that hold one.
_INTERESTING = re.compile(r' (?:(?:src|background)="|href="data:|style="[^"]*[(\\])')


def _postprocess(out: str) -> tuple[str, bool]:
    state = [False]
    pieces: list[str] = []
    last = 0
    pos = 0
    while True:
        hit = _INTERESTING.search(out, pos)
        if hit is None:
            break
        tag_start = out.rfind("<", 0, hit.start())
        m = _OUT_TAG.match(out, tag_start) if tag_start >= last else None
        if m is None or m.end() <= hit.start():  # text that only looks like an attribute
            pos = hit.end()
            continue
        pieces.append(out[last:tag_start])
        pieces.append(_fix_tag(m, state))
        last = pos = m.end()
    if not pieces:
        return out, False
    pieces.append(out[last:])
    return "".join(pieces), state[0]


# ---------------------------------------------------------------------------------------------------------------
# _bound_html: a linear re-serialisation that keeps nh3 (and lxml) away from their quadratic cases.

_WS = "\t\n\f\r "
_ATTRS = r"""[^>"']*(?:(?:"[^"]*"?|'[^']*'?)[^>"']*)*"""
_TOKEN = re.compile(
    r"<!--.*?(?:--!?>|\Z)"  # comment
    r"|<[!?][^>]*>?"  # doctype, CDATA, processing instruction: bogus comments
    r"|</([a-zA-Z][^\t\n\f\r />]*)" + _ATTRS + r">?"  # end tag
    r"|<([a-zA-Z][^\t\n\f\r />]*)(" + _ATTRS + r")>?",  # start tag
    re.S,
)
_TAG_ATTR = re.compile(
    r"""([^\t\n\f\r />=][^\t\n\f\r /=>]*)(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"([^"]*)"?|'([^']*)'?|([^\t\n\f\r >]+)))?"""
)
_RAW_TEXT = ("script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title")
_RAW_END = {name: re.compile(r"</" + name + r"[\t\n\f\r />]", re.I) for name in _RAW_TEXT}
_IMPLIED_CLOSE = {
    "p": {"p"},
    "li": {"li"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "tr": {"tr", "td", "th"},
    "td": {"td", "th"},
    "th": {"td", "th"},
    "tbody": {"tbody", "thead", "tfoot", "tr", "td", "th"},
    "thead": {"tbody", "thead", "tfoot", "tr", "td", "th"},
    "tfoot": {"tbody", "thead", "tfoot", "tr", "td", "th"},
}


def _needs_bounding(html: str) -> bool:
    if len(html) > _GUARD_CHARS:
        return True
    tags = html.count("<")
    if tags > _GUARD_TAGS:
        return True
    return (
        tags > _GUARD_FORMATTING_WITH_ATTRS
        and len(_FORMATTING_WITH_ATTRS.findall(html)) > _GUARD_FORMATTING_WITH_ATTRS
    )


def _bound_html(html: str) -> str:
    """Re-serialise ``html`` keeping only allowed tags and attributes, each element explicitly closed, nesting
    at most MAX_DEPTH deep. Linear in the input; what it outputs is unambiguous, so nh3 sees exactly this tree."""
    out: list[str] = []
    stack: list[tuple[str, bool | None]] = []  # (tag, emitted); None: removed with its content
    dropping = 0  # inside an element removed with its content
    pos = 0
    n = len(html)
    allowed_generic = ALLOWED_ATTRIBUTES["*"]
    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            if not dropping:
                out.append(html[pos:])
            break
        if lt > pos and not dropping:
            out.append(html[pos:lt])
        m = _TOKEN.match(html, lt)
        if m is None:  # a '<' that starts nothing: text
            if not dropping:
                out.append("&lt;")
            pos = lt + 1
            continue
        pos = m.end()
        end_name, start_name = m.group(1), m.group(2)
        if end_name is not None:
            name = end_name.lower()
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == name:
                    while len(stack) > i:
                        tag, emitted = stack.pop()
                        if emitted is None:
                            dropping -= 1
                        elif emitted and not dropping:
                            out.append(f"</{tag}>")
                    break
            continue
        if start_name is None:
            continue  # comment, doctype
        name = start_name.lower()
        if name in _RAW_TEXT:
            end = _RAW_END[name].search(html, pos)
            if end is None:
                break
            close = html.find(">", end.end() - 1)
            pos = n if close < 0 else close + 1
            continue
        if name == "plaintext":
            break
        if name in CLEAN_CONTENT_TAGS:
            if len(stack) < MAX_DEPTH and not m.group(3).rstrip().endswith("/"):
                stack.append((name, None))
                dropping += 1
            continue
        if dropping:
            if name not in _VOID and len(stack) < MAX_DEPTH:
                stack.append((name, False))
            continue
        if name not in ALLOWED_TAGS:
            continue
        closes = _IMPLIED_CLOSE.get(name)
        while closes and stack and stack[-1][0] in closes:
            tag, emitted = stack.pop()
            if emitted:
                out.append(f"</{tag}>")
        if name not in _VOID and len(stack) >= MAX_DEPTH:
            continue
        allowed = ALLOWED_ATTRIBUTES.get(name, ())
        attrs: list[str] = []
        seen: set[str] = set()
        raw_attrs = m.group(3)
        if raw_attrs.strip(_WS + "/"):
            for count, am in enumerate(_TAG_ATTR.finditer(raw_attrs)):
                if count >= MAX_ATTRIBUTES_PER_TAG:
                    break
                key = am.group(1).lower()
                if key in seen or (key not in allowed_generic and key not in allowed):
                    continue
                seen.add(key)
                value = (
                    am.group(2)
                    if am.group(2) is not None
                    else am.group(3)
                    if am.group(3) is not None
                    else am.group(4)
                )
                attrs.append(key if value is None else f'{key}="{value.replace(chr(34), "&quot;")}"')
        out.append(f"<{name} {' '.join(attrs)}>" if attrs else f"<{name}>")
        if name not in _VOID:
            stack.append((name, True))
    out.extend(f"</{tag}>" for tag, emitted in reversed(stack) if emitted)
    return "".join(out)


def _truncate(html: str, limit: int) -> str:
    if len(html) <= limit:
        return html
    cut = html.rfind("<", limit - 4096, limit)
    return html[: cut if cut > 0 else limit]


def sanitize_html(html: str) -> tuple[str, bool]:
    """Sanitise an email's HTML for display: (safe_html, had_remote_images). Never raises.

    Strict allow-list (no script, style element, iframe, object, svg, math, form, event handler, javascript:/data:
    links; data:image only in img src). Remote images (http, https, protocol-relative ``<img src>``, ``background``
    attributes, CSS ``url()``) are kept only as ``data-remote-*`` attributes, so nothing loads until
    ``allow_remote_images``. ``cid:`` sources are kept. Links get ``rel="noopener noreferrer nofollow"`` and
    ``target="_blank"``."""
    if not html:
        return "", False
    try:
        html = _truncate(html.replace("\x00", ""), MAX_HTML_CHARS)
        if _needs_bounding(html):
            html = _bound_html(html)
        out = _CLEANER.clean(html)
        return _postprocess(out)
    except BaseException as exc:  # noqa: BLE001 - nh3 panics are BaseException; the body must never be lost
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit | MemoryError):
            raise
        return "<pre>" + _html.escape(_fast_text(html)) + "</pre>", False


def allow_remote_images(safe_html: str) -> str:
    """The per-email "show images" choice: turn the ``data-remote-*`` attributes that ``sanitize_html`` left back
    into ``src``/``background``/``style`` (http and https only). Only for output of ``sanitize_html``."""
    if "data-remote-" not in safe_html:
        return safe_html

    def fix(match: re.Match) -> str:
        text = match.group(0)
        if "data-remote-" not in text:
            return text
        pairs = [(am.group(1), am.group(2)) for am in _OUT_ATTR.finditer(match.group(2))]
        remote_style = next((v for k, v in pairs if k == "data-remote-style"), None)
        attrs: list[tuple[str, str | None]] = []
        for key, raw in pairs:
            if key in ("data-remote-src", "data-remote-background"):
                if raw is not None and _is_remote(_html.unescape(raw)):
                    attrs.append((key[len("data-remote-") :], raw))
            elif key == "data-remote-style":
                attrs.append(("style", raw))
            elif key == "style" and remote_style is not None:
                continue
            else:
                attrs.append((key, raw))
        return _rebuild(match.group(1), attrs, text.endswith("/>"))

    return _OUT_TAG.sub(fix, safe_html)


def _safe_resolved(url: str | None) -> str | None:
    if not url or not isinstance(url, str):
        return None
    low = url.strip().lower()
    if low.startswith(("http://", "https://", "/")) or _DATA_IMAGE.match(low):
        return url.strip()
    if ":" not in low.split("/", 1)[0] and not low.startswith("\\"):
        return url.strip()  # relative path
    return None


def resolve_cids(safe_html: str, url_for_cid: Callable[[str], str | None]) -> str:
    """Replace ``cid:`` references (src, href, background, CSS url()) in sanitised HTML with the URLs of the stored
    inline parts. ``url_for_cid`` gets the Content-ID without ``<>`` (percent-decoded) and returns a URL or None
    (left as it is)."""
    if "cid:" not in safe_html.lower():
        return safe_html

    def lookup(ref: str) -> str | None:
        cid = unquote(ref.strip()[4:]).strip().strip("<>")
        if not cid:
            return None
        try:
            return _safe_resolved(url_for_cid(cid))
        except Exception:  # noqa: BLE001 - a failing lookup leaves the reference as it is
            return None

    def fix_css(style: str) -> str:
        def one(m: re.Match) -> str:
            ref = next(g for g in m.groups() if g is not None)
            if not ref.strip().lower().startswith("cid:"):
                return m.group(0)
            url = lookup(ref)
            return m.group(0) if url is None else f'url("{url}")'

        return _CSS_URL.sub(one, style)

    def fix(match: re.Match) -> str:
        text = match.group(0)
        if "cid:" not in text.lower():
            return text
        attrs: list[tuple[str, str | None]] = []
        for am in _OUT_ATTR.finditer(match.group(2)):
            key, raw = am.group(1), am.group(2)
            if raw is not None and key in ("src", "href", "background"):
                value = _html.unescape(raw)
                if value.strip().lower().startswith("cid:"):
                    url = lookup(value)
                    if url is not None:
                        raw = _attr(url)
            elif raw is not None and key in ("style", "data-remote-style") and "cid:" in raw.lower():
                raw = _attr(fix_css(_html.unescape(raw)))
            attrs.append((key, raw))
        return _rebuild(match.group(1), attrs, text.endswith("/>"))

    return _OUT_TAG.sub(fix, safe_html)


# ---------------------------------------------------------------------------------------------------------------
# HTML to text

_BLOCK_TAGS = frozenset(
    {"p", "div", "tr", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
     "pre", "section", "article", "header", "footer", "hr", "address", "center", "figure", "figcaption",
     "details", "summary", "main", "nav", "aside", "caption", "tbody", "thead", "tfoot"}
)  # fmt: skip
_DROP_BLOCKS = re.compile(
    r"<(script|style|title|head|template|svg|math|noscript|xmp|textarea)\b[^<>]*>.*?(?:</\1\s*>|\Z)",
    re.I | re.S,
)
_DROPPED_NAMES = (
    "<script",
    "<style",
    "<title",
    "<head",
    "<template",
    "<svg",
    "<math",
    "<noscript",
    "<xmp",
    "<textarea",
)
# Any tag (name captured), comment, doctype or processing instruction.
_TAG_SPLIT = re.compile(
    r"""<(?:(/?)([a-zA-Z][a-zA-Z0-9]*)[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>?|!--.*?(?:-->|\Z)|[!?/][^>]*>?)""",
    re.S,
)
_BLANK_LINES = re.compile(r"\n\s*\n(?:\s*\n)+")


def _fast_text(html: str) -> str:
    """A linear, layout-light HTML to text conversion (large or broken documents)."""
    low = html.lower()
    if any(name in low for name in _DROPPED_NAMES):
        html = _DROP_BLOCKS.sub(" ", html)
    pre = "<pre" in low
    if not pre:  # line breaks in HTML source are spaces (except in <pre>)
        html = " ".join(html.split())
    parts = _TAG_SPLIT.split(html)
    out = [parts[0]]
    for i in range(1, len(parts) - 1, 3):
        closing, name = parts[i], parts[i + 1]
        if name:
            name = name.lower()
            if name == "br":
                out.append("\n")
            elif name == "li" and not closing:
                out.append("\n\u2022 ")
            elif name in _BLOCK_TAGS:
                out.append("\n")
            elif name in ("td", "th") and closing:
                out.append("  ")
        out.append(parts[i + 2])
    text = _html.unescape("".join(out))
    if pre:
        text = "\n".join(line.replace("\u00a0", " ").strip() for line in text.split("\n"))
    else:
        text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_text(html: str, inscriptis_max_chars: int = INSCRIPTIS_MAX_CHARS) -> str:
    """Plain text of an HTML body: inscriptis (good layout, slow) up to ``inscriptis_max_chars``, a linear
    regex conversion for larger documents or when inscriptis loses text. Never raises."""
    if not html:
        return ""
    fast = _fast_text(html)
    if len(html) > inscriptis_max_chars or not fast:
        return fast
    try:
        from inscriptis import get_text

        text = get_text(html)
    except Exception:  # noqa: BLE001 - lxml/inscriptis failures fall back to the regex conversion
        return fast
    text = text.strip()
    if len(text.split()) < len(fast.split()) // 2:  # libxml2 stopped early (deep nesting, broken markup)
        return fast
    return text
