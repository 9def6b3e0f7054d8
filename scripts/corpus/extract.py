"""Per-format text extractors for the pretraining corpus (Python 3 stdlib only).

Every extractor yields documents as (doc_id, group, paragraphs): doc_id names
the document inside its source, group is the key the held-out split draws on
(documents sharing a group always land on the same side), paragraphs are
already-normalized strings. Cleaning beyond markup removal happens later.
"""
import email
import email.policy
import gzip
import html.parser
import os
import re

from textclean import norm


# --------------------------------------------------------------------- files
def read_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def read_text(path):
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def walk(root, suffixes, exclude=None):
    """Sorted regular files (not symlinks) under root ending with one of suffixes."""
    out = []
    ex = re.compile(exclude) if exclude else None
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for fn in sorted(fns):
            p = os.path.join(dp, fn)
            if os.path.islink(p) or not fn.endswith(suffixes):
                continue
            rel = os.path.relpath(p, root)
            if ex and ex.search(rel):
                continue
            out.append((rel, p))
    return out


def blocks(text):
    """Blank-line separated blocks of a plain-text file, each as a list of lines."""
    cur = []
    for line in text.splitlines():
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            yield cur
            cur = []
    if cur:
        yield cur


def plain_paragraphs(text, drop_indented_code=True):
    for b in blocks(text):
        # ASCII-art, tables and code are left to the prose filter, except
        # blocks that are all deeply indented (literal examples in text docs)
        if drop_indented_code and all(l.startswith(("        ", "\t")) for l in b):
            continue
        yield norm(" ".join(l.strip() for l in b))


# ---------------------------------------------------------------------- HTML
VOID = {"br", "img", "hr", "meta", "link", "input", "wbr", "area", "col", "embed", "param",
        "source", "track", "base", "basefont", "frame", "keygen", "isindex"}
SKIP_TAGS = {"script", "style", "pre", "table", "head", "title", "nav", "header", "footer", "form",
             "select", "button", "svg", "math", "textarea", "noscript", "dt", "h1", "h2", "h3", "h4",
             "h5", "h6", "caption", "object", "iframe", "map", "textarea", "listing", "xmp", "tt-block",
             # Mallard (GNOME help)
             "info", "screen", "synopsis", "comment", "credit", "revision", "desc"}
BLOCK_TAGS = {"p", "li", "dd", "blockquote", "div", "section", "article", "td", "th", "tr", "ul", "ol",
              "dl", "br", "hr", "body", "main", "aside", "figcaption", "figure", "center", "address",
              "item", "list", "terms", "note", "steps", "page", "links", "tree", "tbody", "html", "span-block"}
PROSE_TAGS = {"p", "li", "dd", "blockquote", "td", "item", "note", "figcaption", "address"}
# class (or role) tokens, matched whole, that mark navigation, code, tables and other non-prose
SKIP_CLASS = re.compile(
    r"(sphinxsidebar\w*|related|footer|header|navheader|navfooter|navigation|nav|navbar|toc|toctree-wrapper|"
    r"breadcrumbs?|wy-breadcrumbs|menu|sidebar|search|highlight(-[\w-]+)?|literal-block(-wrapper)?|doctest|"
    r"headerlink|copyright|legalnotice|nosearch|sig|sig-object|programlisting|screen|synopsis|cmdsynopsis|"
    r"funcsynopsis|fsynopsis|refsynopsisdiv|literallayout|informaltable|codeblock|code-block|example-contents|"
    r"mediaobject|docinfo|revhistory|authorgroup|titlepage|indexterm|index|genindex|footnotes?|title|"
    r"rst-footer-buttons|wy-nav-side|wy-side-nav-search|version-switch|example|verbatim|smallexample|"
    r"lisp|display|format|menu-comment|contents|topic-title|rubric|caption|figure-title)")


class HTMLText(html.parser.HTMLParser):
    """Collects the prose paragraphs of an HTML (or Mallard XML) page: text of
    block elements outside code, tables, navigation and headings. A paragraph
    that is mostly link text (menus, tables of contents) is dropped."""

    def __init__(self, mallard=False):
        super().__init__(convert_charrefs=True)
        self.mallard = mallard
        self.stack = []  # (tag, skip)
        self.nskip = 0
        self.ina = 0
        self.inprose = 0
        self.buf = []
        self.alen = 0
        self.paras = []

    def flush(self):
        if self.buf:
            t = norm("".join(self.buf))
            if t and self.alen < 0.6 * len(t):
                self.paras.append(t)
        self.buf = []
        self.alen = 0

    def handle_starttag(self, tag, attrs):
        tag = tag.lower()
        if tag in BLOCK_TAGS or tag in SKIP_TAGS:
            self.flush()
        if tag in VOID:
            if tag in ("br", "img") and not self.nskip:
                self.buf.append(" ")
            return
        skip = tag in SKIP_TAGS
        if not skip:
            for k, v in attrs:
                if k in ("class", "role") and v and any(SKIP_CLASS.fullmatch(t) for t in v.split()):
                    skip = True
                    break
        # Mallard and some HTML use <code> both inline and as a block: a <code>
        # outside any prose element is a block of code
        if tag == "code" and self.mallard and not self.inprose:
            skip = True
        self.stack.append((tag, skip))
        if skip:
            self.nskip += 1
        if tag == "a":
            self.ina += 1
        if tag in PROSE_TAGS:
            self.inprose += 1

    def handle_startendtag(self, tag, attrs):
        if tag.lower() in BLOCK_TAGS:
            self.flush()

    def handle_endtag(self, tag):
        tag = tag.lower()
        if tag in VOID:
            return
        if not any(t == tag for t, _ in self.stack):
            return
        while self.stack:
            t, skip = self.stack.pop()
            if skip:
                self.nskip -= 1
            if t == "a":
                self.ina -= 1
            if t in PROSE_TAGS:
                self.inprose -= 1
            if t in BLOCK_TAGS or t in SKIP_TAGS:
                self.flush()
            if t == tag:
                break

    def handle_data(self, data):
        if self.nskip:
            return
        self.buf.append(data)
        if self.ina:
            self.alen += len(data.strip())

    def close(self):
        super().close()
        self.flush()


def html_paragraphs(text, mallard=False):
    p = HTMLText(mallard)
    try:
        p.feed(text)
        p.close()
    except Exception:  # a malformed page loses its tail, not the run
        p.flush()
    return p.paras


def html_docs(root, sub, suffixes=(".html", ".htm"), exclude=None):
    base = os.path.join(root, sub)
    for rel, path in walk(base, suffixes, exclude):
        yield rel, rel, html_paragraphs(read_text(path), mallard=path.endswith(".page"))


# ----------------------------------------------------------------------- RST
_RST_ADMONITIONS = {"note", "warning", "tip", "important", "attention", "caution", "hint", "danger",
                    "error", "admonition", "seealso", "versionadded", "versionchanged", "deprecated"}
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")
_RST_SIMPLE_TABLE = re.compile(r"^=+( +=+)+\s*$")
_RST_BULLET = re.compile(r"^(\s*)([-*+\u2022]|\d+[.)]|#\.|\(?[a-zA-Z0-9][.)])\s+")
_RST_FIELD = re.compile(r"^\s*:[\w -]+:(\s|$)")


def rst_inline(s):
    s = re.sub(r":[\w:.+-]+:`([^`<]*?)\s*<[^`>]*>`", r"\1", s)  # :role:`text <target>`
    s = re.sub(r":[\w:.+-]+:`~?!?([^`]*)`", r"\1", s)  # :role:`text`
    s = re.sub(r"``([^`]+)``", r"\1", s)
    s = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", s)  # `text <url>`_
    s = re.sub(r"`([^`]+)`__?", r"\1", s)
    s = re.sub(r"`([^`]+)`", r"\1", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"\1", s)
    s = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\1", s)
    s = re.sub(r"\[(#\w*|\*|\d+)\]_", "", s)
    s = re.sub(r"\|[\w -]+\|", "", s)
    s = re.sub(r"(\w)_\b", r"\1", s)  # reference_
    s = s.replace("\\ ", "").replace("\\", "")
    return s


def rst_paragraphs(text):
    lines = text.expandtabs(8).splitlines()
    n = len(lines)
    out, para = [], []
    state = {"ind": 0}
    skip_indent = None  # skipping blank lines and lines indented deeper than this

    def indent(l):
        return len(l) - len(l.lstrip())

    def flush():
        if para:
            t = " ".join(x.strip() for x in para)
            if t.endswith("::"):
                t = t[:-2].rstrip()
                if t and not t.endswith(":"):
                    t += ":"
            t = norm(rst_inline(t))
            if t:
                out.append(t)
        para.clear()

    i = 0
    while i < n:
        l = lines[i]
        s = l.strip()
        i += 1
        if skip_indent is not None:
            if not s or indent(l) > skip_indent:
                continue
            skip_indent = None
        if not s:
            flush()
            continue
        ind = indent(l)
        if _RST_UNDERLINE.match(l) and not _RST_SIMPLE_TABLE.match(l):
            flush()
            continue
        if not para and i < n and _RST_UNDERLINE.match(lines[i]) and not _RST_SIMPLE_TABLE.match(lines[i]):
            i += 1  # a section title and its underline
            continue
        if s.startswith(".."):
            flush()
            m = re.match(r"\.\.\s+([\w:-]+)::\s*(.*)$", s)
            if m and m.group(1).lower() in _RST_ADMONITIONS:
                while i < n and _RST_FIELD.match(lines[i]):
                    i += 1  # directive options
                if m.group(2) and m.group(1).lower() not in ("versionadded", "versionchanged", "deprecated"):
                    state["ind"] = ind
                    para.append(m.group(2))
                continue  # the body is ordinary indented paragraphs
            skip_indent = ind  # comment, directive, target, substitution: drop with its body
            continue
        if not para and (_RST_SIMPLE_TABLE.match(l) or s.startswith(("+-", "+=", "| ")) or s == "|"
                         or _RST_FIELD.match(l)):
            while i < n and lines[i].strip():
                i += 1  # tables, line blocks, field lists
            continue
        if s == "::":
            flush()
            skip_indent = state["ind"]
            continue
        m = _RST_BULLET.match(l)
        if m:
            flush()
            state["ind"] = ind
            para.append(l[len(m.group(0)):])
        else:
            if not para:
                state["ind"] = ind
            para.append(s)
        if s.endswith("::"):
            flush()
            skip_indent = state["ind"]
    flush()
    return out


# ----------------------------------------------------------------------- POD
_POD_ENT = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&", "apos": "'",
            "eacute": "\u00e9", "egrave": "\u00e8", "auml": "\u00e4", "ouml": "\u00f6", "uuml": "\u00fc",
            "copy": "\u00a9", "nbsp": " ", "ntilde": "\u00f1", "ccedil": "\u00e7", "szlig": "\u00df"}


def _pod_code(m):
    code, body = m.group(1), m.group(2)
    if code in "XZ":
        return ""
    if code == "E":
        if body.isdigit():
            return chr(int(body))
        if body.lower().startswith("0x"):
            return chr(int(body, 16))
        return _POD_ENT.get(body, "")
    if code == "L":
        if "|" in body:
            return body.split("|", 1)[0]
        if re.match(r"\w+://", body):
            return body
        if "/" in body:
            page, sec = body.split("/", 1)
            sec = sec.strip('"')
            return '"%s" in %s' % (sec, page) if page else '"%s"' % sec
        return body
    return body


def pod_inline(s):
    s = re.sub(r"\b([A-Z])<<+\s+(.*?)\s+>>+", lambda m: _pod_code(m), s)
    prev = None
    while prev != s:
        prev = s
        s = re.sub(r"\b([A-Z])<([^<>]*)>", _pod_code, s)
    return s


def pod_paragraphs(text):
    out = []
    skipping = False
    for b in re.split(r"\n[ \t]*\n", text):
        if not b.strip():
            continue
        if b.startswith("="):
            cmd = b.split(None, 1)[0]
            if cmd in ("=begin", "=for"):
                skipping = cmd == "=begin"
            elif cmd == "=end":
                skipping = False
            elif cmd == "=item":
                rest = b[len(cmd):].strip()
                rest = re.sub(r"^(\*|\d+\.?)\s*", "", rest)
                if rest.count(" ") >= 6:  # a prose item, not a function signature
                    out.append(norm(pod_inline(rest)))
            continue
        if skipping or b[0] in " \t":  # verbatim (code)
            continue
        out.append(norm(pod_inline(b)))
    return out


# ----------------------------------------------------------------------- man
_ROFF_CHARS = {
    "aq": "'", "dq": '"', "em": "\u2014", "en": "\u2013", "hy": "-", "ti": "~", "rs": "\\", "lq": "\u201c",
    "rq": "\u201d", "oq": "\u2018", "cq": "\u2019", "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae",
    "tm": "\u2122", "de": "\u00b0", "mu": "\u00d7", "di": "\u00f7", "+-": "\u00b1", "<=": "\u2264",
    ">=": "\u2265", "!=": "\u2260", "->": "\u2192", "<-": "\u2190", "ha": "^", "ga": "`", "ul": "_",
    "ba": "|", "br": "|", "sl": "/", "pl": "+", "mi": "-", "eq": "=", "Fo": "\u00ab", "Fc": "\u00bb",
    "fo": "\u2039", "fc": "\u203a", "'e": "\u00e9", "`e": "\u00e8", ":u": "\u00fc", ":o": "\u00f6",
    ":a": "\u00e4", "ss": "\u00df", "'a": "\u00e1", "'o": "\u00f3", "~n": "\u00f1", ",c": "\u00e7",
    "R": "\u00ae", "Tm": "\u2122", "lh": "", "rh": "", "at": "@", "sh": "#", "Do": "$", "ct": "\u00a2",
    "Po": "\u00a3", "Eu": "\u20ac", "ye": "\u00a5", "ps": "\u00b6", "sc": "\u00a7", "dg": "\u2020",
    "aa": "\u00b4", "dd": "\u2021", "bv": "|", "lB": "[", "rB": "]", "lC": "{", "rC": "}",
}
_ROFF_ESC = re.compile(r"\\(\(..|\[[^\]]*\]|\*\(..|\*\[[^\]]*\]|\*.|f\(..|f\[[^\]]*\]|f.|s[+-]?\d|"
                       r"[hvwlLDbxXNoZkHSRm]'[^']*'|[&:%/,^|)!cdurpte\-~0 '`\\.\"]|.)")


def _roff_esc(m):
    e = m.group(1)
    c = e[0]
    if c == "(":
        return _ROFF_CHARS.get(e[1:], "")
    if c == "[":
        name = e[1:-1]
        if name.startswith("u") and re.fullmatch(r"u[0-9A-Fa-f]{4,6}", name):
            return chr(int(name[1:], 16))
        return _ROFF_CHARS.get(name, "")
    if c == "*":
        name = e[2:-1] if e[1] == "[" else (e[2:] if e[1] == "(" else e[1:])
        return {"lq": "\u201c", "rq": "\u201d", "R": "\u00ae", "Tm": "\u2122"}.get(name, "")
    if c == "-":
        return "-"
    if c in "e\\":
        return "\\"
    if c in " ~0":
        return " "
    if c == "'":
        return "'"
    if c == "`":
        return "`"
    if c == ".":
        return "."
    return ""  # fonts, sizes, motions, zero-width and unknown escapes


def roff_inline(s):
    if "\\" not in s:
        return s
    return _ROFF_ESC.sub(_roff_esc, s)


def _roff_args(s):
    args, cur, q, i = [], "", False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            if q and i + 1 < len(s) and s[i + 1] == '"':
                cur += '"'
                i += 2
                continue
            q = not q
        elif c in " \t" and not q:
            if cur:
                args.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        args.append(cur)
    return args


_MAN_SKIP_SECTIONS = {"NAME", "SYNOPSIS", "SEE ALSO", "COLOPHON", "COPYRIGHT", "REPORTING BUGS",
                      "FILES", "ENVIRONMENT", "OPTIONS SUMMARY", "VERSIONS", "ATTRIBUTES"}
_MAN_BLOCK_END = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN", "PS": "PE", "SY": "YS", "de": ".",
                  "ig": ".", "am": "."}


def man_paragraphs(text):
    if re.match(r"\s*\.so\s", text):
        return []
    out, buf = [], []
    section = ""
    end_block = None
    tp_tag = False

    def flush():
        if buf:
            t = norm(" ".join(buf))
            if t and section not in _MAN_SKIP_SECTIONS:
                out.append(t)
        buf.clear()

    for line in text.splitlines():
        if end_block:
            if re.match(r"^[.']\s*%s\b" % re.escape(end_block), line) or (end_block == "." and line.strip() == ".."):
                end_block = None
            continue
        if line.startswith(("'\\\"", ".\\\"", "\\\"")) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")) and len(line) > 1:
            m = re.match(r"^[.']\s*(\S+)\s*(.*)$", line)
            if not m:
                continue
            req, rest = m.group(1), m.group(2)
            if req in _MAN_BLOCK_END:
                flush()
                end_block = _MAN_BLOCK_END[req]
                continue
            if req in ("SH", "SS"):
                flush()
                if req == "SH":
                    section = norm(roff_inline(" ".join(_roff_args(rest)))).upper()
                tp_tag = False
                continue
            if req == "TP":
                flush()
                tp_tag = True
                continue
            if req in ("PP", "LP", "P", "sp", "br", "IP", "HP", "RS", "RE", "in", "ti", "TQ", "bp", "ne", "ce"):
                flush()
                if req == "TQ":
                    tp_tag = True
                continue
            if req in ("B", "I", "SM", "SB", "BR", "IR", "RB", "RI", "BI", "IB", "OP", "Nm", "Ar", "Fl"):
                args = _roff_args(rest)
                if req in ("BR", "IR", "RB", "RI", "BI", "IB"):
                    t = "".join(args)
                else:
                    t = " ".join(args)
                t = roff_inline(t)
                if tp_tag:
                    tp_tag = False
                    continue
                if t:
                    buf.append(t)
                continue
            if req in ("UR", "MT"):
                continue
            if req in ("UE", "ME"):
                if rest and buf:
                    buf[-1] += rest.split()[0] if rest.split()[0] in ".,;:)" else ""
                continue
            continue  # every other request carries no prose
        if tp_tag:
            tp_tag = False
            continue
        t = roff_inline(line)
        if t.strip():
            buf.append(t)
    flush()
    return out


# ------------------------------------------------------------------ dictd
def dictd_entries(index_path, dict_path):
    """(headword, text) for every distinct entry of a dictd database, in file order."""
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def dec(s):
        v = 0
        for c in s:
            v = v * 64 + b64.index(c)
        return v

    data = read_bytes(dict_path)
    seen = {}
    for line in read_text(index_path).splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        word, off, ln = parts[0], dec(parts[1]), dec(parts[2])
        if word.startswith("00") or off in seen:
            continue
        seen[off] = (word, ln)
    for off in sorted(seen):
        word, ln = seen[off]
        yield word, data[off:off + ln].decode("utf-8", "replace")


def gcide_paragraphs(text):
    paras = []
    for b in blocks(text):
        s = " ".join(l.strip() for l in b)
        if s.startswith(("Syn:", "Syn.")) or re.match(r"^\[[^\]]*\]$", s):
            continue
        # headword spelling \A*buse"\ and the pronunciation after it, e.g. (b[o^]b)
        s = re.sub(r"\\[^\\]{0,80}\\(\s*\([^()]{0,60}\))?", "", s)
        s = re.sub(r"\s?\([^()\s]*[?`\"][^()\s]*\)", "", s)
        # GCIDE character codes: [`e] [o^] [ae] [=a] ... -> the plain letters
        s = re.sub(r"\[[`'\"^=~,]?([A-Za-z]{1,2})[`'\"^=~,]?\]", r"\1", s)
        for _ in range(3):
            s = re.sub(r"\[[^\[\]]*\]", "", s)  # etymology and source tags
        s = re.sub(r"\{([^{}]*)\}", r"\1", s)
        s = re.sub(r"\s--\s?(?:[A-Z][\w'&-]*\.?,?\s?){1,4}(?=\s|$)", " ", s)  # --Shak.
        s = re.sub(r"^(\d+\.|\([a-z]\))\s+", "", s)
        s = re.sub(r"\s(\d+\.|\([a-z]\))\s+(?=[A-Z])", " ", s)
        s = re.sub(r"\s+([,;.])", r"\1", s)
        s = re.sub(r"\bSyn:.*$", "", s)
        s = norm(s).strip(" ,;")
        if s:
            paras.append(s)
    return paras


def foldoc_paragraphs(word, text):
    paras = []
    first = True
    for b in blocks(text):
        if first:  # the headword line
            first = False
            if len(b) == 1 and b[0].strip() == word.strip():
                continue
        s = " ".join(l.strip() for l in b)
        s = re.sub(r"^\s*(<[^<>]+>\s*)+", "", s)  # <category> markers
        s = re.sub(r"\((\d{4}-\d{2}-\d{2})\)\s*$", "", s)
        s = re.sub(r"\{([^{}]*)\}", r"\1", s)
        s = re.sub(r"<[a-z][a-z ,/-]*>", "", s)
        s = re.sub(r"^/[^/\s]+(\s[^/\s]+){0,2}/,?\s*", "", s)  # /pronunciation/
        s = norm(s)
        if not s or s.startswith("["):
            continue
        paras.append(s)
    if paras:
        paras[0] = "%s: %s" % (word, paras[0])
    return paras


# ------------------------------------------------------------------ mail
_QUOTE_ATTR = re.compile(r"(wrote|writes|said|schrieb|a \u00e9crit)\s*:\s*$|^On .{5,100}(wrote|writes)|^-+\s*Original Message\s*-+", re.I)
_MAIL_FOOTER = re.compile(r"^(_{10,}|-{10,}|={10,}|\*{10,}|~{10,}|-- ?$|--$|Yahoo! Groups Sponsor|"
                          r"To unsubscribe|Sponsored by|-----BEGIN PGP SIGNATURE|This sf\.net email)", re.I)


_MAIL_HEADER = re.compile(r"^(From|To|Cc|Bcc|Subject|Date|Sent|Reply-To|Message-I[Dd]|Organization|"
                          r"X-[\w-]+|Content-[\w-]+|MIME-Version|Received|Return-Path):\s", re.I)


def mail_body(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    texts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_type() != "text/plain":
            continue
        disp = (part.get("Content-Disposition") or "").lower()
        if "attachment" in disp:
            continue
        payload = part.get_payload(decode=True)
        if not payload:
            continue
        cs = part.get_content_charset() or "latin-1"
        try:
            t = payload.decode(cs, "replace")
        except LookupError:
            t = payload.decode("latin-1", "replace")
        texts.append(t)
    return "\n\n".join(texts)


def mail_paragraphs(raw):
    body = mail_body(raw)
    if not body:
        return []
    lines = []
    in_pgp_head = False
    for line in body.replace("\r", "").splitlines():
        s = line.strip()
        if _MAIL_FOOTER.match(line) or _MAIL_FOOTER.match(s):
            break  # signature, list footer or forwarded/original message below
        if s.startswith("-----BEGIN PGP SIGNED MESSAGE"):
            in_pgp_head = True
            continue
        if in_pgp_head:
            if not s:
                in_pgp_head = False
            continue
        if s.startswith((">", "|", ":>")) or re.match(r"^[A-Za-z]{1,4}>", s) or _QUOTE_ATTR.search(s) \
                or _MAIL_HEADER.match(s):
            lines.append("")
            continue
        lines.append(line)
    paras = []
    for b in blocks("\n".join(lines)):
        if all(l.startswith(("    ", "\t")) for l in b) and len(b) > 1:
            continue  # indented code or tables
        paras.append(norm(" ".join(l.strip() for l in b)))
    return paras
