#!/usr/bin/env python3
# subcommands_h2m.py PROGRAM OUTPUT: writes a help2man include file whose [COMMANDS] section holds, for each
# subcommand that `PROGRAM --help` lists (CLI11's "Subcommands:" group), the text of `PROGRAM SUBCOMMAND --help`
# as roff: its usage, its description, its positionals and options. A program without subcommands gets an
# include file that adds nothing. Run by man/CMakeLists.txt with the just-built program first on PATH, so the
# page cannot drift from it.
import re
import subprocess
import sys


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit("subcommands_h2m: %s exited %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout


def roff(text):
    """Plain text as roff: backslashes and hyphens escaped, no line taken for a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def groups(help_text):
    """CLI11 --help: [(heading, [(names, description)])]. A heading is an unindented line ending in ':'; an item is
    indented two spaces, its description after two spaces or on the next, deeper indented, line."""
    out = []
    for line in help_text.splitlines():
        if re.fullmatch(r"\S.*:", line):
            out.append((line[:-1], []))
        elif out and re.match(r"  \S", line):
            head, _, desc = line[2:].partition("  ")
            out[-1][1].append([head.strip(), desc.strip()])
        elif out and out[-1][1] and line.strip():
            out[-1][1][-1][1] = (out[-1][1][-1][1] + " " + line.strip()).strip()
    return out


def item(head):
    """`-d,--dir TEXT` as `\\fB\\-d\\fR, \\fB\\-\\-dir\\fR TEXT` (names bold, as help2man sets the options)."""
    names, _, rest = head.partition(" ")
    if not names.startswith("-"):
        return "\\fI%s\\fR %s" % (roff(names), roff(rest))
    bold = ", ".join("\\fB%s\\fR" % roff(n) for n in names.split(","))
    return (bold + " " + roff(rest)).rstrip()


def main():
    program, output = sys.argv[1], sys.argv[2]
    subcommands = [names for heading, items in groups(run([program, "--help"])) if heading == "Subcommands"
                   for names, _ in items]
    lines = []
    if subcommands:
        lines += ["[COMMANDS]"]
    for sub in subcommands:
        text = run([program, sub, "--help"])
        before_usage = text.split("Usage:", 1)[0].strip()
        usage = re.search(r"^Usage: *(.*)$", text, re.M)
        lines += ['.SS "%s"' % roff(sub)]
        if usage:
            lines += [".B %s" % roff(usage.group(1).strip()), ".PP"]
        if before_usage:
            lines += [roff(before_usage)]
        for heading, items in groups(text):
            items = [(h, d) for h, d in items if h != "-h,--help"]
            if not items:
                continue
            if heading != "Options":
                lines += [".PP", "\\fI%s:\\fR" % roff(heading)]
            for head, desc in items:
                lines += [".TP", item(head), roff(desc)]
    if not lines:  # help2man refuses an include file without a section: an empty addition to OPTIONS
        lines = ["[>OPTIONS]"]
    with open(output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
