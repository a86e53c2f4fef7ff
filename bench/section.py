#!/usr/bin/env python3
"""Replace (or append) one '## TITLE' section of BENCHMARKS.md.

Usage: section.py TITLE TEXT   (TEXT starts with the '## TITLE' line)
"""
import pathlib
import re
import sys

title, section = sys.argv[1], sys.argv[2]
path = pathlib.Path("BENCHMARKS.md")
text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures measured by the scripts in `bench/`; each section says how.\n"
pattern = re.compile(r"## " + re.escape(title) + r".*?(?=\n## |\Z)", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section.rstrip() + "\n", text)
else:
    text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
path.write_text(text)
