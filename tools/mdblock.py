"""Generated blocks inside hand-written markdown: ``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->``.

Several tools write results into the same document (``make synth`` and ``make fpga`` both into
docs/synth.md); each owns one named block and leaves the rest of the file alone.
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def get_block(text: str, name: str) -> str | None:
    """The block (markers included), or None."""
    begin, end = markers(name)
    if begin not in text or end not in text:
        return None
    return text[text.index(begin) : text.index(end) + len(end)]


def put_block(path: Path, name: str, body: str) -> None:
    """Replace block ``name`` of ``path`` by ``body`` (appended when the file has none)."""
    begin, end = markers(name)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else ""
    old = get_block(text, name)
    if old is not None:
        text = text.replace(old, block)
    else:
        sep = "" if not text else "\n" if text.endswith("\n") else "\n\n"  # a blank line
        text = text + sep + block + "\n"
    path.write_text(text)
