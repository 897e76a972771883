#!/usr/bin/python3
"""Writes org.bgfetch.BackgroundFetch1(5), the D-Bus API man page, from the
interface XML and the comments in it, so the page cannot drift from the file.

Usage: dbus-man.py dbus/org.bgfetch.BackgroundFetch1.xml DATE > man/org.bgfetch.BackgroundFetch1.5
"""
import sys
import textwrap
import xml.etree.ElementTree as ET


def roff(text):
    """Text as roff: a leading dot or quote escaped, backslashes doubled."""
    lines = []
    for line in text.split("\n"):
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def comment_text(node):
    return textwrap.dedent(node.text or "").strip("\n")


def signature(member):
    args = []
    for arg in member.findall("arg"):
        direction = arg.get("direction", "in" if member.tag == "method" else "")
        prefix = "out " if direction == "out" else ""
        args.append("%s%s %s" % (prefix, arg.get("type"), arg.get("name")))
    return "%s(%s)" % (member.get("name"), ", ".join(args))


def main():
    path, date = sys.argv[1], sys.argv[2]
    tree = ET.parse(path, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    root = tree.getroot()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head = text[text.index("<!--") + 4:text.index("-->")]
    out = [
        '.TH "ORG.BGFETCH.BACKGROUNDFETCH1" "5" "%s" "bgfetch" "bgfetch"' % date,
        ".SH NAME",
        "org.bgfetch.BackgroundFetch1 \\- the D-Bus API of bgfetchd, the background-fetch service",
        ".SH INTRODUCTION",
        ".nf",
        roff(textwrap.dedent(head).strip("\n")),
        ".fi",
    ]
    pending = None
    for interface in root.findall("interface"):
        pass
    for child in root:
        if child.tag is ET.Comment:
            pending = comment_text(child)
            continue
        if child.tag != "interface":
            continue
        out += [".SH INTERFACE %s" % child.get("name").upper().replace(".", "\\&."), ".B %s" % child.get("name")]
        if pending:
            out += [".PP", ".nf", roff(pending), ".fi"]
        pending = None
        for member in child:
            if member.tag is ET.Comment:
                pending = comment_text(member)
                continue
            kind = {"method": "Method", "signal": "Signal", "property": "Property"}.get(member.tag)
            if not kind:
                continue
            if member.tag == "property":
                title = "%s %s (%s)" % (member.get("name"), member.get("type"), member.get("access"))
            else:
                title = signature(member)
            out += [".TP", ".B %s %s" % (kind.lower(), roff(title))]
            out += [".nf", roff(pending) if pending else "(no description)", ".fi"]
            pending = None
    out += [
        ".SH SEE ALSO",
        ".BR bgfetchd (8),",
        ".BR bgfetchctl (1),",
        ".BR bgfetchd.conf (5),",
        ".BR busctl (1),",
        ".BR gdbus (1)",
    ]
    print("\n".join(out))


main()
