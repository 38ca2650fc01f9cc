"""Read the README's quick start as a newcomer would: its commands, and the output it says they print.

Pure functions over the README's text (tested exactly in test_readme.py); test_quickstart.py runs
what they find. The quick start is everything before the first `## ` heading. In it:

- shell blocks (```bash / ```sh / ```shell) hold commands; a trailing `\\` continues a line,
  `&&` chains steps, `# …` after a command is a comment (it may claim what the command answers);
- ```console blocks hold `$ command` lines each followed by the output it prints;
- other fenced blocks (```text, ```) that follow a command are the output of the command before.

An output line is a template: `<anything>` and `…` stand for any text, the rest must appear as
written (the port of the README's URL is swapped for the test's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SHELL = {"bash", "sh", "shell"}
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)


@dataclass(frozen=True)
class Command:
    text: str  # one shell command line, continuations joined
    comment: str = ""  # the trailing `# …`, without the hash
    output: tuple[str, ...] = ()  # the lines the README shows it printing


@dataclass
class QuickStart:
    commands: list[Command] = field(default_factory=list)
    prose: str = ""

    def find(self, needle: str) -> Command:
        """The first command that contains `needle` (AssertionError naming the README otherwise)."""
        for command in self.commands:
            if needle in command.text:
                return command
        raise AssertionError(f"README.md's quick start has no command with {needle!r}: "
                             f"{[c.text for c in self.commands]}")

    def all(self, needle: str) -> list[Command]:
        return [c for c in self.commands if needle in c.text]


def quick_start_section(readme: str) -> str:
    """The README up to its first `## ` heading."""
    match = re.search(r"^## ", readme, re.M)
    return readme[: match.start()] if match else readme


def split_comment(line: str) -> tuple[str, str]:
    """`cmd args  # note` -> ("cmd args", "note"); a `#` inside quotes or a word is not a comment."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def shell_lines(body: str) -> list[tuple[str, str]]:
    """(command, comment) per logical line of a shell block; comment-only and blank lines dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in body.splitlines():
        text, comment = split_comment(raw)
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        text = (pending + text.strip()).strip()
        pending = ""
        if text:
            lines.append((text, comment))
    return lines


def parse(readme: str) -> QuickStart:
    section = quick_start_section(readme)
    qs = QuickStart(prose=_FENCE.sub("", section))
    for match in _FENCE.finditer(section):
        lang, body = match.group(1).lower(), match.group(2)
        if lang in SHELL:
            qs.commands.extend(Command(text, comment) for text, comment in shell_lines(body))
        elif lang == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    text, comment = split_comment(line[2:])
                    qs.commands.append(Command(text.strip(), comment))
                elif line.strip() and qs.commands:
                    last = qs.commands[-1]
                    qs.commands[-1] = Command(last.text, last.comment, last.output + (line.rstrip(),))
        elif qs.commands:  # printed output of the command before
            last = qs.commands[-1]
            lines = tuple(line.rstrip() for line in body.splitlines() if line.strip())
            qs.commands[-1] = Command(last.text, last.comment, last.output + lines)
    return qs


def steps(command: str) -> list[str]:
    """`a && b && c` -> ["a", "b", "c"] (an `&&` inside quotes is kept)."""
    out, current, quote = [], "", None
    i = 0
    while i < len(command):
        ch = command[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif command.startswith("&&", i):
            out.append(current.strip())
            current = ""
            i += 2
            continue
        current += ch
        i += 1
    if current.strip():
        out.append(current.strip())
    return out


def line_pattern(template: str, *, readme_port: int | None = None, port: int | None = None) -> re.Pattern:
    """A README output line as a regex: `<…>` and `…` match any text; whitespace runs match any run."""
    parts = re.split(r"(<[^<>\s][^<>]*>|…|\.\.\.|\s+)", template.strip())
    regex = ""
    for part in parts:
        if not part:
            continue
        if part in ("…", "...") or (part.startswith("<") and part.endswith(">")):
            regex += r".*?"
        elif part.isspace():
            regex += r"\s+"
        else:
            escaped = re.escape(part)
            if readme_port and port:
                escaped = escaped.replace(re.escape(f":{readme_port}"), re.escape(f":{port}"))
            regex += escaped
    return re.compile(regex)


def match_output(expected: tuple[str, ...] | list[str], actual: str, *, readme_port: int | None = None,
                  port: int | None = None) -> list[str]:
    """The expected lines that appear nowhere in `actual` (in order: each after the previous match)."""
    lines = actual.splitlines()
    missing, at = [], 0
    for template in expected:
        pattern = line_pattern(template, readme_port=readme_port, port=port)
        for i in range(at, len(lines)):
            if pattern.search(lines[i]):
                at = i + 1
                break
        else:
            missing.append(template)
    return missing


def readme_port(qs: QuickStart) -> int | None:
    """The port of the first http://127.0.0.1:PORT or localhost:PORT the quick start names."""
    text = " ".join(c.text for c in qs.commands) + "\n" + "\n".join(line for c in qs.commands for line in c.output)
    match = re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)", text + qs.prose)
    return int(match.group(1)) if match else None


# What the quick start's prose says `abr dev` prints or serves, by the phrase that says it. Only the
# phrases present are checked: when the README stops saying something, the test stops asking it.
CLAIMS = {
    "url": r"\bthe URL\b",
    "key": r"\ban API key\b",
    "docs": r"\bAPI docs\b|`/docs`",
    "redoc": r"`/redoc`",
    "offline": r"\bwork offline\b",
    "rtmp": r"\blive push \(RTMP\)|\bRTMP\b",
    "apt_hint": r"\bprints that line\b",
    "short": r"\bshort banner\b",
}


def about(prose: str, subject: str) -> str:
    """The paragraphs of `prose` that mention `subject`."""
    return "\n\n".join(p for p in re.split(r"\n\s*\n", prose) if subject in p)


def claims(prose: str) -> set[str]:
    return {name for name, pattern in CLAIMS.items() if re.search(pattern, prose)}


def apt_line(prose: str) -> str | None:
    """The first `…apt-get install …` (or `apt install`) the prose quotes in backticks."""
    match = re.search(r"`((?:sudo\s+)?apt(?:-get)?\s+install\s[^`]+)`", prose)
    return match.group(1) if match else None
