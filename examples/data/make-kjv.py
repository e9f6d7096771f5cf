#!/usr/bin/env python3
"""Turns the verse-per-line dump of Debian's bible-kjv into plain text.

Input: the output of `bible -f Gen1:1-Rev22:21` (one verse per line, each
prefixed by an abbreviated reference such as `Ge1:1` or `1Cor13:4`).
Output: the book names spelled out, a `Chapter N` line per chapter, and each
chapter's verses joined into one paragraph wrapped at 76 columns, so that a
byte-level model sees ordinary English prose without reference markup.

Usage: make-kjv.py RAW_DUMP OUT_TXT
"""
import re
import sys
import textwrap

# The 66 books in the order the dump lists them, with the abbreviation the
# dump uses; the count is checked, so a changed dump fails loudly.
BOOKS = [
    ("Ge", "Genesis"), ("Exo", "Exodus"), ("Lev", "Leviticus"),
    ("Num", "Numbers"), ("Deu", "Deuteronomy"), ("Josh", "Joshua"),
    ("Jdgs", "Judges"), ("Ruth", "Ruth"), ("1Sm", "1 Samuel"),
    ("2Sm", "2 Samuel"), ("1Ki", "1 Kings"), ("2Ki", "2 Kings"),
    ("1Chr", "1 Chronicles"), ("2Chr", "2 Chronicles"), ("Ezra", "Ezra"),
    ("Neh", "Nehemiah"), ("Est", "Esther"), ("Job", "Job"),
    ("Psa", "Psalms"), ("Prv", "Proverbs"), ("Eccl", "Ecclesiastes"),
    ("SSol", "The Song of Solomon"), ("Isa", "Isaiah"), ("Jer", "Jeremiah"),
    ("Lam", "Lamentations"), ("Eze", "Ezekiel"), ("Dan", "Daniel"),
    ("Hos", "Hosea"), ("Joel", "Joel"), ("Amos", "Amos"),
    ("Obad", "Obadiah"), ("Jonah", "Jonah"), ("Mic", "Micah"),
    ("Nahum", "Nahum"), ("Hab", "Habakkuk"), ("Zep", "Zephaniah"),
    ("Hag", "Haggai"), ("Zec", "Zechariah"), ("Mal", "Malachi"),
    ("Mat", "Matthew"), ("Mark", "Mark"), ("Luke", "Luke"),
    ("John", "John"), ("Acts", "Acts"), ("Rom", "Romans"),
    ("1Cor", "1 Corinthians"), ("2Cor", "2 Corinthians"),
    ("Gal", "Galatians"), ("Eph", "Ephesians"), ("Phi", "Philippians"),
    ("Col", "Colossians"), ("1Th", "1 Thessalonians"),
    ("2Th", "2 Thessalonians"), ("1Tim", "1 Timothy"), ("2Tim", "2 Timothy"),
    ("Titus", "Titus"), ("Phmn", "Philemon"), ("Heb", "Hebrews"),
    ("Jas", "James"), ("1Pet", "1 Peter"), ("2Pet", "2 Peter"),
    ("1Jn", "1 John"), ("2Jn", "2 John"), ("3Jn", "3 John"),
    ("Jude", "Jude"), ("Rev", "Revelation"),
]
NAMES = dict(BOOKS)
VERSE = re.compile(r"^([0-9]?[A-Za-z]+)([0-9]+):([0-9]+) (.*)$")


def main(raw_path, out_path):
    # (book, chapter) -> verses, in input order.
    chapters = []
    verses = 0
    with open(raw_path, encoding="ascii") as f:
        for line_no, line in enumerate(f, 1):
            m = VERSE.match(line.rstrip("\n"))
            if not m or m.group(1) not in NAMES:
                sys.exit(f"{raw_path}:{line_no}: not a verse line: {line!r}")
            key = (m.group(1), int(m.group(2)))
            if not chapters or chapters[-1][0] != key:
                chapters.append((key, []))
            chapters[-1][1].append(m.group(4).strip())
            verses += 1
    books = [b for i, ((b, _), _) in enumerate(chapters)
             if i == 0 or chapters[i - 1][0][0] != b]
    if books != [abbrev for abbrev, _ in BOOKS] or verses != 31102:
        sys.exit(f"unexpected dump: {len(books)} books, {verses} verses "
                 "(expected the 66 books and 31102 verses of the KJV)")
    out = []
    for i, ((book, chapter), text) in enumerate(chapters):
        if i == 0 or chapters[i - 1][0][0] != book:
            out.append(NAMES[book] + "\n\n")
        out.append(f"Chapter {chapter}\n\n")
        out.append(textwrap.fill(" ".join(text), width=76) + "\n\n")
    with open(out_path, "w", encoding="ascii", newline="\n") as f:
        f.write("".join(out).rstrip("\n") + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
