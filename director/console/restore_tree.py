"""The interactive restore tree: cd, ls, dir, mark, unmark, find, estimate, done (as in bconsole)."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from director.console.format import display_path
from director.console.paging import split_lines
from director.console.registry import Reply, Session
from protocol.attributes import FileType, decode_attributes

if TYPE_CHECKING:
    from director.restore.plan import Plan

PROMPT = "$ "
HELP = (
    "Commands: cd DIR, ls [PATTERN], dir [PATTERN], mark PATTERN|*, unmark PATTERN|*, find PATTERN, "
    "estimate, pwd, done (restore the marked files), quit (cancel)"
)


class Tree:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.children: dict[bytes, list[bytes]] = {}
        for path in plan.files:
            if path != b"/":
                self.children.setdefault(posixpath.dirname(path), []).append(path)
        roots = [p for p in plan.files if posixpath.dirname(p) not in plan.files]
        self.cwd = os.path.commonpath(roots) if roots else b"/"
        if self.cwd not in plan.files and self.cwd not in self.children:
            self.cwd = posixpath.dirname(self.cwd)
        self.marked: set[bytes] = set()

    def _resolve(self, name: str) -> bytes:
        target = os.fsencode(name)
        return posixpath.normpath(
            target if target.startswith(b"/") else posixpath.join(self.cwd, target)
        )

    def _matches(self, pattern: str) -> list[bytes]:
        names = self.children.get(self.cwd, [])
        return [
            p for p in names if fnmatch.fnmatchcase(os.fsdecode(posixpath.basename(p)), pattern)
        ]

    def _subtree(self, path: bytes) -> list[bytes]:
        out, stack = [], [path]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(self.children.get(current, []))
        return out

    def _line(self, path: bytes, long: bool) -> str:
        name = display_path(posixpath.basename(path)) + ("/" if path in self.children else "")
        mark = "*" if path in self.marked else " "
        if not long:
            return f"{mark}{name}"
        a = decode_attributes(self.plan.files[path].lstat)
        kind = "d" if a.type == FileType.DIRECTORY else "l" if a.type == FileType.SYMLINK else "-"
        return f"{kind}{oct(a.mode)[-4:]} {a.uid:>6} {a.gid:>6} {a.size:>14,} {mark}{name}"

    def command(self, line: str) -> tuple[str, bool]:
        """Run one tree command; returns (text, finished)."""
        verb, _, rest = line.strip().partition(" ")
        rest = rest.strip().strip('"')
        if verb in ("ls", "dir"):
            paths = self._matches(rest or "*")
            return "\n".join(
                self._line(p, verb == "dir") for p in sorted(paths)
            ) or "(empty)", False
        if verb == "cd":
            target = self._resolve(rest or "/")
            if target not in self.children and target != b"/":
                return f"Invalid path given: {rest}", False
            self.cwd = target
            return f"cwd is: {os.fsdecode(self.cwd)}", False
        if verb == "pwd":
            return f"cwd is: {os.fsdecode(self.cwd)}", False
        if verb in ("mark", "unmark"):
            paths = (
                self._matches(rest)
                if rest and "/" not in rest
                else [self._resolve(rest)]
                if rest
                else []
            )
            changed = 0
            for path in paths:
                for item in self._subtree(path):
                    if item not in self.plan.files:
                        continue
                    if verb == "mark" and item not in self.marked:
                        self.marked.add(item)
                        changed += 1
                    elif verb == "unmark" and item in self.marked:
                        self.marked.discard(item)
                        changed += 1
            return f"{changed} file{'s' if changed != 1 else ''} {verb}ed.", False
        if verb == "find":
            hits = [
                p
                for p in self.plan.files
                if fnmatch.fnmatchcase(os.fsdecode(posixpath.basename(p)), rest or "*")
            ]
            return "\n".join(display_path(p) for p in sorted(hits)) or "No matches.", False
        if verb == "estimate":
            size = sum(decode_attributes(self.plan.files[p].lstat).size for p in self.marked)
            return (
                f"{len(self.marked)} total files; {len(self.marked)} marked to be restored; {size:,} bytes.",
                False,
            )
        if verb == "done":
            return "", True
        if verb in ("help", "?"):
            return HELP, False
        return f'Invalid command "{verb}". Enter "done" to exit.\n{HELP}', False


def enter_tree(session: Session, plan: Plan, confirm: Callable[[Plan], Reply]) -> Reply:
    tree = Tree(plan)

    async def step(line: str) -> Reply:
        if line.strip() in ("quit", "exit", ".", "q"):
            return Reply(text="Restore canceled.", data={"restore": {"started": False}})
        text, finished = tree.command(line)
        if finished:
            if not tree.marked:
                session.pending = step
                return Reply(text="No files are marked; mark some or enter quit.", prompt=PROMPT)
            plan.chosen = {p: plan.files[p] for p in tree.marked}
            return confirm(plan)
        session.pending = step
        return _answer(text)

    session.pending = step
    intro = (
        f"{plan.selected_text()}\n"
        f"Building directory tree for JobId(s) {','.join(str(j.job_id) for j in plan.jobs)} ...\n"
        f"{len(plan.files)} files inserted into the tree.\n\n"
        "You are now entering file selection mode where you add (mark) and remove (unmark) files to be "
        "restored. No files are initially added.\n" + HELP + f"\n\ncwd is: {os.fsdecode(tree.cwd)}"
    )
    return Reply(text=intro, prompt=PROMPT)


def _answer(text: str) -> Reply:
    """A tree command's answer; a long one (`ls` of a huge directory, `find *`) in parts."""
    parts = list(split_lines(text.split("\n")))
    last = Reply(text="\n".join(parts.pop()) if parts else "", prompt=PROMPT)
    if parts:
        last.stream = _parts(parts)
    return last


async def _parts(parts: list[list[str]]) -> AsyncGenerator[Reply, None]:
    for lines in parts:
        yield Reply(text="\n".join(lines), data=lines, rows="tree")
