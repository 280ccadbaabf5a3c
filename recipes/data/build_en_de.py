"""Builds kzoo's English-German corpus from the text that Debian packages ship.

Run from the repository root (needs `apt-get`, `dpkg-deb`; 377 packages,
2.0 GB of .debs, listed in `en_de_packages.tsv` beside this file; about three
minutes of one CPU core after the download):

    python recipes/data/build_en_de.py                     # apt-get download
    python recipes/data/build_en_de.py --debs /tmp/en_de_debs   # reuse / keep
    python recipes/data/build_en_de.py --skip-large        # 748 MB less

The shipped file is built with all packages: the four large ones
(`LARGE`) give about 8,500 aligned pairs for their 748 MB, and the download
is a one-off for whoever rebuilds; `--skip-large` gives a smaller corpus
(a different file) for a slow connection.

It writes `kzoo/data/files/en_de_pairs.tsv.xz` (`english<TAB>german<TAB>source`,
one pair a line, sorted, UTF-8, xz) and `kzoo/data/files/EN_DE_PROVENANCE.md`
(per source: packages and versions, licences named in the packages'
copyright files, pair counts; the sha256 of the file; the noise check of
`en_de_noise_check.tsv` when it matches the file). Same packages in, same
bytes out: the pairs are sorted and xz has no timestamp.

Where the text comes from and how the two sides are aligned (the source
column names the package list in `en_de_packages.tsv`):

- gettext catalogues (`.mo`, parsed here): msgid (English) with msgstr
  (German). Wesnoth's are game dialogue and narrative and are all kept
  (`wesnoth`); the catalogues of every other package keep sentence-like
  messages only (`gettext`): starts upper case, ends in `.`, `!` or `?`, four
  words or more, no placeholders (`%s`, `{0}`, `$name`), no markup, no
  keyboard accelerators;
- DocBook (KDE handbooks `usr/share/doc/HTML/{en,de}`, DocBook help under
  `usr/share/help/{C,de}`): the same file on both sides, paragraphs grouped by
  the id of their nearest section, paired in order where a section has as
  many paragraphs on both sides; entities from the document and from
  kdoctools5's entity files (`tool` in the package list, no text of its own);
- Mallard help (`usr/share/help/{C,de}/*/*.page`, GNOME and MATE): the same
  page, paragraphs grouped by section id, paired in order where counts match;
- man pages (`usr/share/man/de/manN/` of manpages-de against the English page
  of any listed package): the same page, sections (`.SH`, `.SS`) paired in
  order where both pages have as many, then paragraphs where a section has as
  many; groff requests, macros and escapes stripped, code blocks dropped;
- HTML manuals (GIMP help, the Debian handbook, reference and installation
  guide): the same file, paragraphs (`<p>`, `<div class="para">`, leaf
  `<li>` / `<dd>`) paired in order where the file has as many on both sides.

Then each aligned pair is split into sentences where both sides split into
the same number of them, and filtered (`reject_reason`): English 3-60 words,
German/English length in characters 0.5-2.2, Latin script on both sides,
German not a copy of the English (casefolded, or nearly all its words
English ones), no URL, e-mail address, markup, entity, groff escape,
placeholder, code or path left. Finally the English side is deduplicated by
its casefolded, whitespace-collapsed form (the German seen most often for it
wins, ties by source order and then by text).
"""

import argparse
import collections
import hashlib
import html
import html.entities
import html.parser
import io
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUTPUT = os.path.join(REPO, "kzoo", "data", "files", "en_de_pairs.tsv.xz")
PROVENANCE = os.path.join(REPO, "kzoo", "data", "files", "EN_DE_PROVENANCE.md")
PACKAGES = os.path.join(HERE, "en_de_packages.tsv")
NOISE_CHECK = os.path.join(HERE, "en_de_noise_check.tsv")

SOURCES = ("wesnoth", "manpages", "kde", "gnome", "gimp", "debian-manuals", "gettext")
# The four packages that DATA_SOURCES.md names as costing ~750 MB of download
# for ~9,000 pairs (`--skip-large` leaves them out).
LARGE = ("widelands-data", "warzone2100-data", "gnucash-docs", "kstars-data")
MIN_WORDS, MAX_WORDS = 3, 60
MIN_RATIO, MAX_RATIO = 0.5, 2.2


# ---------------------------------------------------------------------------
# Packages: read the list, download, unpack into memory
# ---------------------------------------------------------------------------


def read_package_list(path=PACKAGES):
    """[(source, package)] in file order."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                source, package = line.split("\t")
                entries.append((source, package))
    return entries


def find_debs(packages, debs_dir):
    """package -> path of its .deb in `debs_dir`, downloading the missing ones."""

    def scan():
        found = collections.defaultdict(list)
        for name in os.listdir(debs_dir):
            if name.endswith(".deb"):
                found[name.split("_")[0]].append(os.path.join(debs_dir, name))
        return found

    found = scan()
    missing = [p for p in packages if p not in found]
    if missing:
        print(f"apt-get download {len(missing)} packages into {debs_dir}")
        subprocess.run(["apt-get", "download", "-q", *missing], cwd=debs_dir, check=True)
        found = scan()
    result = {}
    for package in packages:
        paths = sorted(found.get(package, []))
        if len(paths) != 1:
            raise SystemExit(
                f"expected one .deb of {package} in {debs_dir}; found {paths or 'none'}"
            )
        result[package] = paths[0]
    return result


def deb_field(deb, field):
    return subprocess.run(
        ["dpkg-deb", "-f", deb, field], capture_output=True, text=True, check=True
    ).stdout.strip()


def unpack(deb, wanted):
    """{path: bytes} of the regular files of `deb` for which `wanted(path)`.

    Streams `dpkg-deb --fsys-tarfile` through `tarfile` instead of `tar -x`,
    so only the files used reach memory and nothing reaches the disk.
    Symbolic links are left out (a link is another name for a page that is
    read under its own name).
    """
    files = {}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
        for member in archive:
            path = member.name[2:] if member.name.startswith("./") else member.name
            if member.isfile() and wanted(path):
                files[path] = archive.extractfile(member).read()
    if proc.wait() != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb} failed")
    return files


_COPYRIGHT = re.compile(r"^usr/share/doc/[^/]+/copyright$")
_LICENSE_LINE = re.compile(r"^License:\s*(\S.*?)\s*$", re.M)


def licences(copyright_text):
    """Short licence names of a DEP-5 copyright file (empty for free-form ones)."""
    names = set()
    for match in _LICENSE_LINE.finditer(copyright_text):
        for name in re.split(r"\s+(?:or|and)\s+|\s*,\s*", match.group(1)):
            name = name.strip()
            if name and len(name) < 40:
                names.add(name)
    return names


# ---------------------------------------------------------------------------
# Text clean-up and sentences
# ---------------------------------------------------------------------------


def squash(text):
    return " ".join(text.replace("\u00ad", "").split())


_ABBREVIATIONS = {
    # English
    "e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "no.", "fig.", "mr.", "mrs.",
    "dr.", "st.", "sr.", "jr.", "ca.", "resp.", "incl.", "ed.", "vol.", "p.",
    # German
    "z.", "b.", "z.b.", "d.", "h.", "d.h.", "u.", "a.", "u.a.", "bzw.", "ggf.",
    "usw.", "vgl.", "evtl.", "nr.", "bspw.", "inkl.", "abb.", "engl.", "s.", "o.",
    "mio.", "sog.", "zb.", "ff.", "str.", "bzgl.", "max.", "min.", "allg.", "etw.",
    "zzgl.", "evtl.", "ebd.", "gem.", "jh.", "insb.", "u.u.", "o.ä.", "z.t.",
}
_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’»«)\]]*\s+(?=[\"'„“‚‘»«(\[]?[A-ZÄÖÜ0-9])")


def split_sentences(text):
    """Sentence boundaries after `.`, `!`, `?` before an upper-case start,
    not after a known abbreviation, a single letter or a number."""
    pieces, start = [], 0
    for match in _SPLIT.finditer(text):
        before = text[start : match.start()].rstrip("\"'”’»«)]")
        last = before.split()[-1].lower() if before.split() else ""
        if last in _ABBREVIATIONS or re.fullmatch(r"(\w\.)+|\d+\.|\.\.\.?", last):
            continue
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def sentence_pairs(english, german):
    """The pair itself, or its sentences pairwise when both sides have as many."""
    english, german = squash(english), squash(german)
    if not english or not german:
        return []
    en, de = split_sentences(english), split_sentences(german)
    if len(en) > 1 and len(en) == len(de):
        return list(zip(en, de))
    return [(english, german)]


_URL = re.compile(r"https?://|ftp://|www\.|\w[\w.+-]*@[\w-]+\.[\w.]+|\bfile:/")
_MARKUP = re.compile(r"<[^>]*>|</|/>|&[#\w]+;|\\[\w(*\[&-]|\{\{|\}\}|^\s*[.']\w")
_PLACEHOLDER = re.compile(
    r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?[sdifuxXcpgeEl]|%\(\w+\)|%\d|%[A-Z]\w*%|"
    r"\{[\w.:!]*\}|\$\w|\$\{|@\w+@|\[\w+\]|~\w"
)
_CODE_TOKEN = re.compile(r"[/\\_=<>{}\[\]|$#@;]|^--?\w|\w\(\)|::|->")
_GERMAN_EXTRA = set("äöüÄÖÜß")


def _latin(text):
    for ch in text:
        if ch.isalpha() and ch not in _GERMAN_EXTRA:
            if not unicodedata.name(ch, "").startswith("LATIN"):
                return False
    return True


def _words(text):
    return re.findall(r"[^\W\d_]+", text.lower())


def reject_reason(english, german):
    """Why a pair is not kept (a short reason), or None to keep it."""
    n_en = len(english.split())
    if not MIN_WORDS <= n_en <= MAX_WORDS:
        return "english words not 3-60"
    if len(german.split()) < 2:
        return "german under 2 words"
    ratio = len(german) / len(english)
    if not MIN_RATIO <= ratio <= MAX_RATIO:
        return "length ratio not 0.5-2.2"
    for side in (english, german):
        if _URL.search(side):
            return "url or e-mail"
        if _MARKUP.search(side):
            return "markup, entity or escape"
        if _PLACEHOLDER.search(side):
            return "placeholder"
    if not _latin(english) or not _latin(german):
        return "not latin script"
    for side in (english, german):
        tokens = side.split()
        code = sum(1 for t in tokens if _CODE_TOKEN.search(t))
        letters = sum(ch.isalpha() for ch in side)
        if code > 0.25 * len(tokens) or letters < 0.6 * len(side.replace(" ", "")):
            return "code or path"
    if english.casefold() == german.casefold():
        return "untranslated"
    de_words = _words(german)
    en_words = set(_words(english))
    shared = sum(1 for w in de_words if w in en_words)
    if len(de_words) >= 3 and shared > 0.75 * len(de_words):
        return "untranslated"
    return None


# ---------------------------------------------------------------------------
# gettext catalogues
# ---------------------------------------------------------------------------


def parse_mo(data):
    """[(msgid, msgstr)] of a GNU .mo file; context stripped, plural forms as
    (singular msgid, first msgstr)."""
    if len(data) < 28:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">"
    if struct.unpack(order + "I", data[:4])[0] != 0x950412DE:
        return []
    _, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])
    raw = []
    charset = "utf-8"
    for i in range(count):
        id_len, id_at = struct.unpack(order + "2I", data[ids_at + 8 * i : ids_at + 8 * i + 8])
        st_len, st_at = struct.unpack(order + "2I", data[strs_at + 8 * i : strs_at + 8 * i + 8])
        msgid, msgstr = data[id_at : id_at + id_len], data[st_at : st_at + st_len]
        if not msgid:
            match = re.search(rb"charset=([\w-]+)", msgstr)
            if match:
                charset = match.group(1).decode("ascii")
            continue
        raw.append((msgid, msgstr))
    pairs = []
    for msgid, msgstr in raw:
        try:
            msgid, msgstr = msgid.decode(charset), msgstr.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        msgid = msgid.split("\x04")[-1].split("\x00")[0]
        msgstr = msgstr.split("\x00")[0]
        if msgid and msgstr:
            pairs.append((msgid, msgstr))
    return pairs


_WESNOTH_CONTEXT = re.compile(r"^\w+\^")
_ACCELERATOR = re.compile(r"&\w|_\w|\w_\w")


def sentence_like(text):
    words = text.split()
    return (
        len(words) >= 4
        and text[:1].isupper()
        and text[-1:] in ".!?"
        and not text.endswith("..")
        and not _ACCELERATOR.search(text)
        and "\n\n" not in text
    )


def gettext_pairs(catalogue, wesnoth):
    """Aligned (english, german) of one catalogue, before sentence splitting."""
    out = []
    for msgid, msgstr in parse_mo(catalogue):
        if wesnoth:
            msgid = _WESNOTH_CONTEXT.sub("", msgid)
            out.append((msgid, msgstr))
        elif sentence_like(msgid.strip()) and sentence_like(msgstr.strip()):
            out.append((msgid, msgstr))
    return out


# ---------------------------------------------------------------------------
# DocBook (KDE handbooks, DocBook help)
# ---------------------------------------------------------------------------

_ENTITY_DECL = re.compile(
    r"<!ENTITY\s+(%\s+)?([\w.-]+)\s+(?:(\"([^\"]*)\"|'([^']*)')|(?:SYSTEM|PUBLIC)[^>]*)\s*>",
    re.S,
)
_ENTITY_REF = re.compile(r"&([A-Za-z_][\w.-]*);")
_XML_ENTITIES = {"amp": "&amp;", "lt": "&lt;", "gt": "&gt;", "quot": '"', "apos": "'"}


def entity_table(*texts):
    """name -> replacement text of the general entities declared in `texts`;
    the first declaration wins, as in XML. External entities become ''."""
    table = {}
    for text in texts:
        for match in _ENTITY_DECL.finditer(text):
            if match.group(1):  # parameter entity
                continue
            name = match.group(2)
            if name not in table:
                value = match.group(4) if match.group(4) is not None else match.group(5)
                table[name] = value if value is not None else ""
    return table


def resolve_entities(text, table, depth=8):
    """Expands entity references (document, kdoctools, HTML 4) in place."""

    def one(match):
        name = match.group(1)
        if name in _XML_ENTITIES:
            return _XML_ENTITIES[name]
        if name in table:
            return table[name]
        if name in html.entities.name2codepoint:
            return chr(html.entities.name2codepoint[name])
        return match.group(0)

    for _ in range(depth):
        new = _ENTITY_REF.sub(one, text)
        if new == text:
            break
        text = new
    return text


_DOCBOOK_SECTIONS = {
    "book", "article", "chapter", "appendix", "preface", "part", "section",
    "sect1", "sect2", "sect3", "sect4", "sect5", "refentry", "refsect1",
    "refsect2", "refsect3", "glossary", "glossentry", "qandaentry", "simplesect",
    "reference", "partintro", "bibliography", "colophon",
}
_DOCBOOK_PARAGRAPHS = {"para", "simpara"}
_DOCBOOK_DROP = {
    "screen", "programlisting", "synopsis", "cmdsynopsis", "funcsynopsis",
    "literallayout", "indexterm", "remark", "footnote", "mediaobject",
    "inlinemediaobject", "screenshot", "imageobject", "authorgroup", "author",
    "othercredit", "copyright", "legalnotice", "revhistory", "address",
    "email", "comment", "date", "releaseinfo", "keywordset", "graphic",
}
_TAG = re.compile(r"<(/?)([\w:.-]+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)
_ID = re.compile(r"""\b(?:xml:)?id\s*=\s*["']([^"']+)["']""")


def docbook_paragraphs(text, entities):
    """{section id: [paragraph text]} of a DocBook file (paragraphs whose
    text is incomplete, such as ones with unresolved entities, stay as they
    are and are rejected later by the markup filter)."""
    body = text
    doctype = re.search(r"<!DOCTYPE[^\[>]*(\[.*?\]\s*)?>", text, re.S)
    if doctype:
        table = dict(entity_table(doctype.group(0)))
        for name, value in entities.items():
            table.setdefault(name, value)
        body = text[doctype.end() :]
    else:
        table = entities
    body = resolve_entities(body, table)
    # Keys of a key combination: "Ctrl+S", as the rendered handbook shows.
    body = re.sub(r"(</(?:keycap|keysym)>)\s*(?=<(?:keycap|keysym)\b)", r"\1+", body)
    # Menu paths: "File → Save".
    body = re.sub(
        r"(</(?:guimenu|guisubmenu|guimenuitem)>)\s*(?=<(?:guimenu|guisubmenu|guimenuitem)\b)",
        r"\1 → ", body,
    )
    body = re.sub(r"(</shortcut>)\s*", r"\1 ", body)
    sections = collections.defaultdict(list)
    stack = []  # (tag, id) of open sections
    open_paras = []  # [tag, pieces, section id]
    drop = 0
    emitted = []  # (start index, section id, text)
    position = 0
    for match in _TAG.finditer(body):
        if drop == 0 and open_paras:
            open_paras[-1][1].append(body[position : match.start()])
        position = match.end()
        closing, tag, attrs, empty = match.group(1), match.group(2), match.group(3), match.group(4)
        if tag is None:
            continue
        tag = tag.lower()
        if tag in _DOCBOOK_DROP:
            if not empty:
                drop += -1 if closing else 1
                drop = max(drop, 0)
            continue
        if drop:
            continue
        if tag in _DOCBOOK_SECTIONS and not empty:
            if closing:
                if stack:
                    stack.pop()
            else:
                found = _ID.search(attrs or "")
                parent = stack[-1][1] if stack else ""
                stack.append((tag, found.group(1) if found else parent))
        elif tag in _DOCBOOK_PARAGRAPHS and not empty:
            if closing:
                if open_paras:
                    _, pieces, section, start = open_paras.pop()
                    emitted.append((start, section, "".join(pieces)))
            else:
                open_paras.append([tag, [], stack[-1][1] if stack else "", match.start()])
        elif open_paras and not closing and tag in ("listitem", "entry", "term"):
            open_paras[-1][1].append(" ")
    for _, section, raw in sorted(emitted):
        sections[section].append(unescape_xml(raw))
    return sections


def unescape_xml(text):
    return squash(html.unescape(text))


def align_by_section(english, german):
    """Pairs of paragraphs of the sections that have as many on both sides."""
    pairs = []
    for section in sorted(set(english) & set(german)):
        en, de = english[section], german[section]
        if len(en) == len(de):
            pairs.extend(zip(en, de))
    return pairs


# ---------------------------------------------------------------------------
# Mallard (GNOME / MATE help pages)
# ---------------------------------------------------------------------------

_MALLARD_DROP = {"info", "screen", "code", "media", "comment", "title", "desc", "synopsis"}
_MALLARD_INLINE_DROP = {"media", "comment"}


def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def mallard_paragraphs(data):
    """{section id: [paragraph text]} of a Mallard page; None if it does not parse."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    sections = collections.defaultdict(list)

    def text_of(element):
        parts = [element.text or ""]
        for child in element:
            name = _local(child.tag)
            if name == "link" and not (child.text or len(child)):
                return None  # generated link text: missing in the file
            if name not in _MALLARD_INLINE_DROP:
                inner = text_of(child)
                if inner is None:
                    return None
                joiner = ""
                if child is not element[0]:
                    if name == "key" and _local(element.tag) == "keyseq":
                        joiner = "+"
                    elif name == "gui" and _local(element.tag) == "guiseq":
                        joiner = " ▸ "
                parts.append(joiner + inner)
            parts.append(child.tail or "")
        return "".join(parts)

    def walk(element, section):
        for child in element:
            name = _local(child.tag)
            if name in _MALLARD_DROP:
                continue
            if name == "section":
                walk(child, child.get("id", section))
            elif name == "p":
                text = text_of(child)
                sections[section].append(squash(text) if text is not None else "")
            else:
                walk(child, section)

    walk(root, "")
    return sections


# ---------------------------------------------------------------------------
# man pages (groff -man)
# ---------------------------------------------------------------------------

_GROFF_CHARS = {
    "em": "—", "en": "–", "lq": "“", "rq": "”", "Bq": "„", "bq": "‚", "oq": "‘",
    "cq": "’", "aq": "'", "dq": '"', "bu": "•", "co": "©", "rg": "®", "tm": "™",
    "de": "°", "mu": "×", "hy": "-", "ti": "~", "ha": "^", "rs": "\\", "sl": "/",
    "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", ":a": "ä", ":o": "ö", ":u": "ü",
    ":A": "Ä", ":O": "Ö", ":U": "Ü", "ss": "ß", "'e": "é", "`e": "è", "'a": "á",
    "`a": "à", "ga": "`", "ul": "_", "pl": "+", "eq": "=", "<=": "≤", ">=": "≥",
    "->": "→", "<-": "←", "Eu": "€", "eu": "€", "dg": "†", "sc": "§", "ps": "¶",
    "R": "®", "Tm": "™", "S": "", "Ps": "¶",
}
_GROFF_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)|s[-+]?(?:\d+|\(\d\d|\[\d+\])|\((..)|\[([^\]]+)\]|"
    r"\*(?:\((..)|\[([^\]]+)\]|(.))|[nk](?:\(..|\[[^\]]*\]|.)|[hvwoxzNlLbDXR]'[^']*'|"
    r"(-)|(e)|([&%:|^)cdu{}!])|([ ~0])|(\\)|(.))"
)


def _groff_escape(match):
    (two, bracket, str_two, str_bracket, str_one, dash, e, silent, space, backslash, other) = match.groups()
    if two is not None:
        return _GROFF_CHARS.get(two, "\\(" + two)
    if bracket is not None:
        if re.fullmatch(r"u[0-9A-Fa-f]{4,5}", bracket):
            return chr(int(bracket[1:], 16))
        return _GROFF_CHARS.get(bracket, "\\[" + bracket + "]")
    for name in (str_two, str_bracket, str_one):
        if name is not None:
            return _GROFF_CHARS.get(name, "")
    if dash:
        return "-"
    if e:
        return "\\e"  # a literal backslash: rejected as an escape later
    if space:
        return " "
    if backslash:
        return "\\\\"
    if other is not None:
        return "\\" + other
    return ""


def groff_text(line):
    line = re.sub(r'\\".*$', "", line)
    return _GROFF_ESCAPE.sub(_groff_escape, line)


_MACRO_ARGS = re.compile(r'"((?:[^"]|"")*)"?|(\S+)')
_FONT_MACROS = {"B", "I", "SM", "SB", "BR", "RB", "BI", "IB", "IR", "RI"}
_BREAKS = {"PP", "LP", "P", "TP", "IP", "HP", "sp", "br", "RS", "RE", "in", "ti",
           "TQ", "ne", "bp", "UR", "UE", "MT", "ME", "SY", "YS", "OP", "TS", "TE"}


# Sections that only one side has: manpages-de's translator credits, the
# Linux man-pages project's colophon.
_MAN_TRANSLATION_ONLY = {"ÜBERSETZUNG", "COLOPHON", "KOLOPHON"}


def man_sections(text):
    """[[paragraph]] by section (`.SH` and `.SS`), None for an mdoc page or a
    `.so` redirect. The sections of `_MAN_TRANSLATION_ONLY` are left out."""
    if re.search(r"^\.(Dd|Sh)\b", text, re.M) or re.match(r"\s*\.so\s", text):
        return None
    sections, titles = [], []
    paragraph = []
    in_code = False
    in_table = False
    tag_next = False

    def end_paragraph():
        if paragraph and sections:
            sections[-1].append(squash(" ".join(paragraph)))
        paragraph.clear()

    for line in text.split("\n"):
        if in_code:
            if re.match(r"[.']\s*(fi|EE)\b", line):
                in_code = False
            continue
        if in_table:
            if re.match(r"[.']\s*TE\b", line):
                in_table = False
            continue
        if line.startswith((".", "'")):
            match = re.match(r"[.']\s*(\S+)\s*(.*)", line)
            if not match:
                continue
            macro, rest = match.group(1), match.group(2)
            if macro in ("SH", "SS"):
                end_paragraph()
                title = squash(groff_text(rest).replace('"', " "))
                sections.append([])
                titles.append(title)
                continue
            if macro in ("nf", "EX"):
                end_paragraph()
                in_code = True
                continue
            if macro == "TS":
                end_paragraph()
                in_table = True
                continue
            if macro in _BREAKS:
                end_paragraph()
                tag_next = macro == "TP"
                continue
            if macro in _FONT_MACROS:
                args = [
                    m.group(1) if m.group(1) is not None else m.group(2)
                    for m in _MACRO_ARGS.finditer(rest)
                ]
                args = [a.replace('""', '"') for a in args]
                joiner = " " if macro in ("B", "I", "SM", "SB") else ""
                line = joiner.join(args)
            else:
                continue  # other requests and macros carry no running text
        elif not line.strip():
            end_paragraph()
            continue
        if tag_next:  # the tag line of .TP (an option, a name): a paragraph of its own
            tag_next = False
            paragraph.append(groff_text(line))
            end_paragraph()
            continue
        paragraph.append(groff_text(line))
    end_paragraph()
    return [
        paragraphs
        for title, paragraphs in zip(titles, sections)
        if title.upper() not in _MAN_TRANSLATION_ONLY
    ]


def align_man(english, german):
    if english is None or german is None or len(english) != len(german):
        return []
    pairs = []
    for en, de in zip(english, german):
        if len(en) == len(de):
            pairs.extend(zip(en, de))
    return pairs


def decode_man(data):
    import gzip

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# ---------------------------------------------------------------------------
# HTML manuals
# ---------------------------------------------------------------------------


class _Paragraphs(html.parser.HTMLParser):
    """Text of `<p>`, `<div class="para">` and leaf `<li>` / `<dd>`, in order."""

    BLOCKS = {"p", "li", "dd", "div"}
    DROP = {"pre", "script", "style", "code_block", "head"}
    VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs = []
        self.stack = []  # [tag, is_paragraph, pieces, has_inner_paragraph]
        self.drop = 0
        self.skipping = None  # [tag, depth] of a table of contents being skipped

    def _current(self):
        for entry in reversed(self.stack):
            if entry[1]:
                return entry
        return None

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        if self.skipping:
            self.skipping[1] += tag == self.skipping[0]
            return
        if re.search(r"\btoc\b|\blist-of-", dict(attrs).get("class") or ""):
            self.skipping = [tag, 1]  # tables of contents repeat the titles
            return
        if tag in self.DROP:
            self.drop += 1
        classes = dict(attrs).get("class") or ""
        is_paragraph = tag in ("p", "li", "dd") or (tag == "div" and "para" in classes.split())
        if is_paragraph:
            outer = self._current()
            if outer is not None:
                outer[3] = True
        self.stack.append([tag, is_paragraph, [], False])

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if self.skipping:
            if tag == self.skipping[0]:
                self.skipping[1] -= 1
                if not self.skipping[1]:
                    self.skipping = None
            return
        if tag in self.DROP:
            self.drop = max(0, self.drop - 1)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                closed = self.stack[i:]
                del self.stack[i:]
                for entry in reversed(closed):
                    if entry[1]:
                        text = squash("".join(entry[2]))
                        # A list item that wraps paragraphs is not one itself.
                        if not (entry[3] and entry[0] in ("li", "dd")):
                            self.paragraphs.append(text)
                return

    def handle_data(self, data):
        if self.drop or self.skipping:
            return
        current = self._current()
        if current is not None:
            current[2].append(data)


def html_paragraphs(data):
    parser = _Paragraphs()
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    return [p for p in parser.paragraphs]


def align_lists(english, german):
    if len(english) != len(german):
        return []
    return list(zip(english, german))


# ---------------------------------------------------------------------------
# Per source: which files, how paired
# ---------------------------------------------------------------------------

_MO = re.compile(r"(?:^|/)(?:locale|translations)/de(?:_DE)?/LC_MESSAGES/[^/]+\.mo$")
_KDE_DOC = re.compile(r"^usr/share/doc/HTML/(en|de)/(.+\.docbook)$")
_HELP = re.compile(r"^usr/share/help/(C|de)/(.+\.(?:page|xml))$")
_MAN_DE = re.compile(r"^usr/share/man/de/(man\w+/[^/]+)$")
_MAN_EN = re.compile(r"^usr/share/man/(man\w+/[^/]+)$")
_GIMP = re.compile(r"^usr/share/gimp/2\.0/help/(en|de)/(.+\.html)$")
_MANUALS = (
    re.compile(r"^usr/share/doc/debian-handbook/html/(en-US|de-DE)/(.+\.html)$"),
    re.compile(r"^usr/share/debian-reference/(.+)\.(en|de)\.html$"),
    re.compile(r"^usr/share/doc/installation-guide-amd64/(en|de)/(.+\.html)$"),
)
_KDOCTOOLS = re.compile(
    r"^usr/share/kf5/kdoctools/customization/(entities/general\.entities|(en|de)/(user|strings|lang)\.entities)$"
)


def wanted(path):
    return bool(
        _COPYRIGHT.match(path) or _MO.search(path) or _KDE_DOC.match(path)
        or _HELP.match(path) or _MAN_DE.match(path) or _MAN_EN.match(path)
        or _GIMP.match(path) or any(p.match(path) for p in _MANUALS)
        or _KDOCTOOLS.match(path)
    )


def _side(language):
    return "en" if language in ("en", "C", "en-US") else "de"


def _doc_key(path):
    """(side, key shared by the two language versions) of a doc file, or None."""
    for pattern in (_KDE_DOC, _HELP, _GIMP, _MANUALS[0], _MANUALS[2]):
        match = pattern.match(path)
        if match:
            return _side(match.group(1)), (pattern.pattern, match.group(2))
    match = _MANUALS[1].match(path)
    if match:
        return _side(match.group(2)), (_MANUALS[1].pattern, match.group(1))
    return None


class Builder:
    """Collects aligned pairs per source and statistics, package by package."""

    def __init__(self):
        self.candidates = []  # (english, german, source)
        self.stats = collections.defaultdict(collections.Counter)
        self.versions = {}  # package -> version
        self.licences = collections.defaultdict(set)  # source -> names
        self.contributed = collections.Counter()  # package -> pairs aligned
        self.entities = {"en": {}, "de": {}}

    def add(self, pairs, source, package):
        for english, german in pairs:
            for en, de in sentence_pairs(english, german):
                self.candidates.append((en, de, source, package))
                self.stats[source]["aligned"] += 1

    def load_entities(self, files):
        def text(name):
            for path, data in files.items():
                if path.endswith(name):
                    return data.decode("utf-8", errors="replace")
            return ""

        general = text("customization/entities/general.entities")
        for lang in ("en", "de"):
            own = "".join(text(f"customization/{lang}/{n}.entities") for n in ("lang", "user", "strings"))
            # kdoctools' order: general entities first (the user file's lose).
            self.entities[lang] = entity_table(general, own)

    def docs(self, files_by_package, source):
        """DocBook, Mallard and HTML manuals of one source's packages."""
        sides = {"en": {}, "de": {}}
        owner = {}
        for package, files in files_by_package:
            for path, data in files.items():
                found = _doc_key(path)
                if found:
                    side, key = found
                    if key not in sides[side]:
                        sides[side][key] = data
                        owner.setdefault(key, set()).add(package)
        for key in sorted(set(sides["en"]) & set(sides["de"])):
            en, de = sides["en"][key], sides["de"][key]
            name = key[1]
            if name.endswith(".page"):
                en_p, de_p = mallard_paragraphs(en), mallard_paragraphs(de)
                if en_p is None or de_p is None:
                    self.stats[source]["pages that do not parse"] += 1
                    continue
                pairs = align_by_section(en_p, de_p)
            elif name.endswith((".docbook", ".xml")):
                en_p = docbook_paragraphs(en.decode("utf-8", errors="replace"), self.entities["en"])
                de_p = docbook_paragraphs(de.decode("utf-8", errors="replace"), self.entities["de"])
                pairs = align_by_section(en_p, de_p)
            else:
                pairs = align_lists(html_paragraphs(en), html_paragraphs(de))
            self.stats[source]["files paired"] += 1
            self.stats[source]["files with aligned paragraphs"] += bool(pairs)
            for package in owner[key]:
                self.contributed[package] += len(pairs)
            self.add(pairs, source, min(owner[key]))

    def man_pages(self, files_by_package):
        english, german = {}, {}
        for package, files in files_by_package:
            for path, data in files.items():
                match = _MAN_DE.match(path)
                if match:
                    german.setdefault(match.group(1), (package, data))
                    continue
                match = _MAN_EN.match(path)
                if match:
                    english.setdefault(match.group(1), (package, data))
        for page in sorted(german):
            if page not in english:
                self.stats["manpages"]["german pages without an english one"] += 1
                continue
            de_package, de_data = german[page]
            en_package, en_data = english[page]
            pairs = align_man(man_sections(decode_man(en_data)), man_sections(decode_man(de_data)))
            self.stats["manpages"]["pages paired"] += 1
            self.stats["manpages"]["pages with aligned paragraphs"] += bool(pairs)
            self.contributed[en_package] += len(pairs)
            self.contributed[de_package] += len(pairs)
            self.add(pairs, "manpages", de_package)

    def catalogues(self, package, files, source):
        wesnoth = source == "wesnoth"
        label = "wesnoth" if wesnoth else "gettext"
        for path in sorted(files):
            if _MO.search(path):
                pairs = gettext_pairs(files[path], wesnoth)
                self.stats[label]["catalogues"] += 1
                self.contributed[package] += len(pairs)
                self.add(pairs, label, package)

    def select(self, rejected=None):
        """Filters, then keeps one German per English (see the docstring).

        `rejected`: a file to write the rejected pairs to (with the reason)."""
        kept = collections.defaultdict(collections.Counter)  # key -> (de, source, en) counts
        rank = {s: i for i, s in enumerate(SOURCES)}
        for english, german, source, _ in self.candidates:
            reason = reject_reason(english, german)
            if reason:
                self.stats[source][f"rejected: {reason}"] += 1
                if rejected:
                    rejected.write(f"{reason}\t{source}\t{english}\t{german}\n")
                continue
            self.stats[source]["passed the filters"] += 1
            kept[" ".join(english.casefold().split())][(german, source, english)] += 1
        pairs = []
        for key, options in kept.items():
            by_german = collections.Counter()
            for (german, _, _), n in options.items():
                by_german[german] += n
            best = min(by_german, key=lambda g: (-by_german[g], g))
            choices = sorted(
                (o for o in options if o[0] == best), key=lambda o: (rank[o[1]], -options[o], o[2])
            )
            german, source, english = choices[0]
            pairs.append((english, german, source))
        pairs.sort()
        return pairs


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def write_pairs(pairs, path):
    text = "".join(f"{en}\t{de}\t{src}\n" for en, de, src in pairs).encode("utf-8")
    data = lzma.compress(text, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return hashlib.sha256(data).hexdigest(), len(data)


LICENCE_SUMMARY = {
    "wesnoth": "GPL-2+ (Battle for Wesnoth: code, campaigns and translations)",
    "manpages": "GPL-3+ for the German translations (manpages-de); the English "
    "pages under their own packages' licences (the Linux man-pages project's "
    "permissive licences, GPL-2+, GPL-3+, LGPL-2.1+, BSD)",
    "kde": "GFDL-1.2+ for most KDE handbooks (some CC-BY-SA-4.0, GPL-2+)",
    "gnome": "CC-BY-SA-3.0 or 4.0 for most GNOME help, GFDL-1.1+ for MATE and "
    "older DocBook help, some GPL-2+",
    "gimp": "GFDL-1.2+ (GIMP user manual)",
    "debian-manuals": "GPL-2+ or CC-BY-SA-3.0 (Debian handbook), GPL-2+ (Debian "
    "reference, installation guide), GFDL-1.1+ (GnuCash guide and help)",
    "gettext": "GPL-2+, GPL-3+ or LGPL (application and game message catalogues)",
}


def noise_summary(pairs):
    """Counts of the committed noise check, if its pairs are in `pairs`."""
    if not os.path.exists(NOISE_CHECK):
        return None
    present = {(en, de) for en, de, _ in pairs}
    judged = collections.Counter()
    seed = None
    missing = 0
    with open(NOISE_CHECK, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# seed"):
                seed = line.split()[2]
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if cols[0] == "judgement":
                continue
            judged[cols[0]] += 1
            missing += (cols[2], cols[3]) not in present
    return seed, judged, missing


def write_provenance(builder, pairs, sha256, size, packages, command, seconds):
    counts = collections.Counter(src for _, _, src in pairs)
    by_source = collections.defaultdict(list)
    for source, package in packages:
        by_source[source].append(package)
    lines = [
        "# en_de_pairs.tsv.xz: provenance and licence",
        "",
        f"**What**: {len(pairs):,} English-German pairs (sentences and short "
        "paragraphs), one a line, `english<TAB>german<TAB>source`, UTF-8, xz "
        f"({size:,} bytes; sha256 `{sha256}`). English is unique under "
        "casefolding and whitespace. Generated by `recipes/data/build_en_de.py` "
        "from the Debian bookworm packages listed below; do not edit by hand.",
        "",
        "**Licences are mixed**: each pair keeps the `source` column, so a user "
        "can keep only the sources whose licence suits them "
        "(`kzoo.data.translation.load_en_de_pairs(origins=(\"wesnoth\",))`: the "
        "loader calls this column a pair's *origin*, since *source* means the "
        "sentence to translate there; the recipes take `--origins wesnoth,kde`). "
        "kzoo's code is Apache-2.0; "
        "this data file is not: each pair is under the licence of the package "
        "it came from.",
        "",
        "| source | pairs | licence | packages |",
        "| --- | ---: | --- | ---: |",
    ]
    for source in SOURCES:
        lines.append(
            f"| `{source}` | {counts[source]:,} | {LICENCE_SUMMARY[source]} | "
            f"{len(by_source.get(source, [])) if source != 'gettext' else 'all'} |"
        )
    lines += [
        f"| total | {len(pairs):,} | | {len(packages)} |",
        "",
        "`gettext` pairs come from the German message catalogues of every package "
        "below except Wesnoth's (those are `wesnoth`), sentence-like messages only.",
        "",
        "**How it was made**: "
        f"`{command}` (took {seconds / 60:.0f} minutes here; it downloads the "
        "packages with `apt-get download`, reads them with `dpkg-deb "
        "--fsys-tarfile` and never installs them). The rules are in the script's "
        "docstring. Same packages in, same bytes out.",
        "",
        "## What the build measured",
        "",
        "| source | aligned | passed the filters | kept (English unique) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for source in SOURCES:
        s = builder.stats[source]
        lines.append(f"| `{source}` | {s['aligned']:,} | {s['passed the filters']:,} | {counts[source]:,} |")
    lines += ["", "Rejections and alignment counts per source:", ""]
    for source in SOURCES:
        s = builder.stats[source]
        details = ", ".join(f"{k} {v:,}" for k, v in sorted(s.items())
                            if k not in ("aligned", "passed the filters"))
        lines.append(f"- `{source}`: {details}")
    large = [p for p in LARGE if p in builder.versions]
    if large:
        aligned = ", ".join(f"`{p}` {builder.contributed[p]:,}" for p in large)
        lines += [
            "",
            f"The four largest downloads ({aligned} aligned pairs, before filtering and "
            "deduplication) can be left out with `--skip-large` (about 750 MB less).",
        ]
    noise = noise_summary(pairs)
    lines += ["", "## Noise check", ""]
    if noise:
        seed, judged, missing = noise
        total = sum(judged.values())
        fractions = ", ".join(
            f"{k} {judged[k]} ({judged[k] / total:.0%})" for k in ("exact", "loose", "wrong")
        )
        lines.append(
            f"{total} pairs drawn with `python recipes/data/sample_en_de.py --seed {seed} --tsv` "
            f"and judged by hand (`recipes/data/en_de_noise_check.tsv`): {fractions}. "
            "exact = a faithful translation; loose = right meaning, but partial, "
            "freer or with an extra or missing clause; wrong = not a translation "
            "of each other or not usable text."
            + (f" ({missing} judged pairs are no longer in this file: redo the check.)" if missing else "")
        )
    else:
        lines.append("Not yet measured for this file.")
    lines += [
        "",
        "## Packages and versions",
        "",
        "Licences are the `License:` names of each list's packages' copyright "
        "files (machine-readable ones; the others say theirs in prose).",
        "",
    ]
    for source in SOURCES + ("tool",):
        names = by_source.get(source, [])
        if not names:
            continue
        listed = ", ".join(f"`{p}` {builder.versions[p]}" for p in names)
        licence = ", ".join(sorted(builder.licences[source])) or "see the copyright files"
        lines += [f"**{source}** ({len(names)} packages; licences: {licence}): {listed}", ""]
    with open(PROVENANCE, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--debs", help="folder of .debs to reuse (missing ones are downloaded into it)")
    parser.add_argument("--skip-large", action="store_true", help=f"leave out {', '.join(LARGE)}")
    parser.add_argument("--output", default=OUTPUT)
    parser.add_argument("--no-provenance", action="store_true")
    parser.add_argument("--rejected", help="write the rejected pairs and why to this TSV")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    packages = read_package_list()
    if args.skip_large:
        packages = [(s, p) for s, p in packages if p not in LARGE]
    workdir = None
    debs_dir = args.debs
    if not debs_dir:
        workdir = tempfile.mkdtemp(prefix="kzoo-en-de-")
        debs_dir = workdir
    os.makedirs(debs_dir, exist_ok=True)
    try:
        shutil.chown(debs_dir, user="_apt")  # apt-get download as root drops to _apt
    except (LookupError, PermissionError, OSError):
        pass
    try:
        debs = find_debs([p for _, p in packages], debs_dir)
        builder = Builder()
        order = ("tool", "wesnoth", "gettext", "kde", "gnome", "gimp", "debian-manuals", "manpages")
        for source in order:
            group = []
            for s, package in packages:
                if s != source:
                    continue
                deb = debs[package]
                builder.versions[package] = deb_field(deb, "Version")
                files = unpack(deb, wanted)
                for path, data in files.items():
                    if _COPYRIGHT.match(path):
                        builder.licences[source] |= licences(data.decode("utf-8", "replace"))
                if source == "tool":
                    builder.load_entities(files)
                    continue
                builder.catalogues(package, files, source)
                group.append((package, {k: v for k, v in files.items() if not _MO.search(k)}))
            if source in ("kde", "gnome", "gimp", "debian-manuals"):
                builder.docs(group, source)
            elif source == "manpages":
                builder.man_pages(group)
            print(f"{source}: {builder.stats[source]['aligned']:,} aligned so far "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    if args.rejected:
        with open(args.rejected, "w", encoding="utf-8") as rejected:
            pairs = builder.select(rejected)
    else:
        pairs = builder.select()
    sha256, size = write_pairs(pairs, args.output)
    seconds = time.perf_counter() - start
    counts = collections.Counter(src for _, _, src in pairs)
    for source in SOURCES:
        print(f"{source}: {counts[source]:,} pairs; " + json.dumps(dict(builder.stats[source])))
    idle = sorted(p for _, p in packages if not builder.contributed[p] and p != "kdoctools5")
    print(f"packages that gave no aligned pair ({len(idle)}): {' '.join(idle)}")
    print("aligned pairs of the large packages: " + ", ".join(
        f"{p} {builder.contributed[p]:,}" for p in LARGE if p in builder.versions))
    print(f"wrote {args.output}: {len(pairs):,} pairs, {size:,} bytes, sha256 {sha256} "
          f"({seconds:.0f} s)")
    if not args.no_provenance:
        command = "python recipes/data/build_en_de.py" + (" --skip-large" if args.skip_large else "")
        write_provenance(builder, pairs, sha256, size, packages, command, seconds)
        print(f"wrote {PROVENANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
