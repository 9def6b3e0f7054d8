"""Shared text cleaning for the pretraining corpus builder (Python 3 stdlib only).

A "paragraph" is one extracted unit of prose (an HTML <p>, a man-page
paragraph, a mail paragraph, a dictionary entry...). Paragraphs are cleaned,
filtered, then packed into output lines of roughly MIN_LINE..MAX_LINE
characters without crossing document boundaries.
"""
import hashlib
import re
import unicodedata

MIN_LINE = 100
MAX_LINE = 2000
SPLIT_TARGET = 1000  # long paragraphs are cut into sentence groups of about this size

_ZW = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_WS = re.compile(r"\s+")
_CTRL = re.compile("[\x00-\x1f\x7f-\x9f\u00a0\u2028\u2029]")
# markup that must never survive into the output
RESIDUE = re.compile(
    r"</?[A-Za-z][A-Za-z0-9:-]*(\s+[A-Za-z:-]+=(\"[^\"]*\"|'[^']*'|\S+))*\s*/?>"  # tags
    r"|&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]{2,8});"  # entities
    r"|\\f[BIRPC(\[]|\\\(..|\\\[[a-z]{2,4}\]"  # roff escapes
    r"|\b[BICLFSEXZ]<[^<>]{1,80}>"  # pod formatting codes
    r"|``[^`]+``|:[a-z]+:`[^`]+`"  # rst literals and roles
    r"|^\s*(>|\|)\s"  # quoted mail
    r"|[A-Za-z0-9+/]{60,}"  # base64 / hashes
)
_SYMBOLS = set("{}[]<>=|\\^~`$#@*_")
_SENT_END = re.compile(r"([.!?][\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_END_PUNCT = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*$")


def norm(s):
    """Unicode NFC, no control or zero-width characters, single spaces."""
    if not s:
        return ""
    s = s.translate(_ZW)
    s = unicodedata.normalize("NFC", s)
    s = _CTRL.sub(" ", s)
    return _WS.sub(" ", s).strip()


def stats(s):
    nonspace = len(s) - s.count(" ")
    if nonspace == 0:
        return 0.0, 1.0
    letters = sum(1 for c in s if c.isalpha())
    syms = sum(1 for c in s if c in _SYMBOLS)
    return letters / nonspace, syms / nonspace


def prose_ok(s, min_letters=0.72, max_symbols=0.04):
    """True for text that looks like prose rather than code, tables or noise."""
    if not s:
        return False
    let, sym = stats(s)
    if let < min_letters or sym > max_symbols:
        return False
    if RESIDUE.search(s):
        return False
    words = s.split(" ")
    # mostly real words (letters with optional trailing punctuation)
    wordish = sum(1 for w in words if re.fullmatch(r"[\"'(\[\u201c\u2018]*[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'\u2019-]*[.,;:!?\"')\]\u201d\u2019]*", w))
    if wordish < 0.6 * len(words):
        return False
    return True


_HEADING = re.compile(r"^(CHAPTER|Chapter|BOOK|Book|PART|Part|VOLUME|Volume|SECTION|Section|ACT|Act|SCENE|Scene)"
                      r"\s+([\dIVXLCivxlc]+|[A-Z][a-z]+)\b")
_CAPTION = re.compile(r"^(Example|Figure|Table|Listing|Fig\.)\s+\d[\d.-]*\.?(\s|$)")


def para_ok(s):
    """Paragraph-level gate applied before packing: drops headings, captions,
    menu items and other fragments so that they are not glued into prose."""
    n = s.count(" ") + 1
    if len(s) < 100 and (_HEADING.match(s) or _CAPTION.match(s)):
        return False
    if n < 8:
        letters = [c for c in s if c.isalpha()]
        if letters and sum(1 for c in letters if c.isupper()) > 0.5 * len(letters):
            return False  # SHOUTED HEADINGS
    if n >= 8:
        return prose_ok(s)
    if n >= 3 and _END_PUNCT.search(s) and s[0].isupper():
        return prose_ok(s)
    return False


_ABBREV = re.compile(r"(?:^|\s)(?:Mr|Mrs|Ms|Dr|St|Sr|Jr|Prof|Gen|Gov|Rev|Hon|No|Nos|Fig|vs|etc|e\.g|i\.e|cf|viz|Vol|pp|ch|sec)\.$")


def sentences(p):
    out = []
    for piece in _SENT_END.sub("\\1\x00", p).split("\x00"):
        if out and _ABBREV.search(out[-1]):
            out[-1] += " " + piece
        else:
            out.append(piece)
    return out


def split_long(p):
    """Cuts a paragraph longer than MAX_LINE into sentence groups."""
    if len(p) <= MAX_LINE:
        return [p]
    sents = sentences(p)
    pieces = []
    for s in sents:
        while len(s) > MAX_LINE:  # one huge sentence: cut at a clause or word boundary
            cut = max(s.rfind("; ", 0, SPLIT_TARGET), s.rfind(", ", 0, SPLIT_TARGET))
            if cut < SPLIT_TARGET // 2:
                cut = s.rfind(" ", 0, SPLIT_TARGET)
            if cut <= 0:
                cut = SPLIT_TARGET
            pieces.append(s[:cut + 1].strip())
            s = s[cut + 1:].strip()
        if s:
            pieces.append(s)
    out, cur = [], ""
    for s in pieces:
        if cur and len(cur) + 1 + len(s) > SPLIT_TARGET and len(cur) >= MIN_LINE:
            out.append(cur)
            cur = s
        else:
            cur = (cur + " " + s) if cur else s
    if cur:
        if out and len(cur) < MIN_LINE and len(out[-1]) + 1 + len(cur) <= MAX_LINE:
            out[-1] += " " + cur
        else:
            out.append(cur)
    return out


def pack(paras, min_line=MIN_LINE):
    """Packs a document's paragraphs into lines of min_line..MAX_LINE chars."""
    lines, cur = [], ""
    for p in paras:
        for piece in split_long(p):
            if not cur:
                cur = piece
            elif len(cur) < min_line and len(cur) + 1 + len(piece) <= MAX_LINE:
                cur += " " + piece
            else:
                lines.append(cur)
                cur = piece
    if cur:
        if len(cur) < min_line and lines and len(lines[-1]) + 1 + len(cur) <= MAX_LINE:
            lines[-1] += " " + cur
        else:
            lines.append(cur)
    return [l for l in lines if len(l) >= 60]


def line_key(s):
    """Dedup key: case-folded letters and digits only."""
    k = re.sub(r"[^0-9a-z]+", "", s.casefold())
    return hashlib.blake2b(k.encode("utf-8"), digest_size=10).digest()
