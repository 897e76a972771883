#!/usr/bin/python3
"""Writes bgfetchd.conf(5) from the commented default file, so the page
cannot drift from the file that is installed.

Usage: conf-man.py systemd/bgfetchd.conf DATE > man/bgfetchd.conf.5
"""
import re
import sys


def roff(line):
    line = line.replace("\\", "\\e")
    return "\\&" + line if line.startswith((".", "'")) else line


def main():
    path, date = sys.argv[1], sys.argv[2]
    lines = open(path, encoding="utf-8").read().split("\n")
    out = [
        '.TH "BGFETCHD.CONF" "5" "%s" "bgfetch" "bgfetch"' % date,
        ".SH NAME",
        "bgfetchd.conf \\- the administrator's settings for bgfetchd",
        ".SH SYNOPSIS",
        "/etc/bgfetch/bgfetchd.conf",
        ".SH DESCRIPTION",
    ]
    intro, comment, section = [], [], None
    for line in lines:
        header = re.match(r"^\[(\w+)\]$", line)
        setting = re.match(r"^#(\w+)=(.*)$", line)
        if header:
            section = header.group(1)
            out += [".SH [%s]" % section.upper()]
            comment = []
        elif setting:
            key, value = setting.groups()
            out += [".TP", ".B %s=%s" % (key, roff(value) if value else "(none)")]
            out += [roff(" ".join(comment)) if comment else "(no description)"]
            comment = []
        elif line.startswith("# "):
            (comment if section else intro).append(line[2:])
        elif line.strip() == "" and section is None and intro:
            out += [roff(" ".join(intro)), ".PP"]
            intro = []
    out += [".SH SEE ALSO", ".BR bgfetchd (8),", ".BR bgfetchctl (1),", ".BR org.bgfetch.BackgroundFetch1 (5)"]
    print("\n".join(out))


main()
