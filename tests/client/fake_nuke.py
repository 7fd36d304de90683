"""A stand-in for Nuke's ``nuke`` module: records the nodes, knobs and renders the integration asks for.

``execute(write, first, last)`` "renders" by copying the frames of the Write's input, when that input is a
Read (so a live portal gets real EXRs); everything else is only recorded.
"""

from __future__ import annotations

import os
import shutil
import threading


class Knob:
    def __init__(self, value=None):
        self._value = value

    def value(self):
        return self._value

    def setValue(self, value):  # noqa: N802 (Nuke's spelling)
        self._value = value


class Node:
    def __init__(self, node_class: str, **knobs):
        self.node_class = node_class
        self._name = knobs.pop("name", f"{node_class}{len(created) + 1}")
        self.knobs = {k: Knob(v) for k, v in knobs.items()}
        self.inputs: dict[int, Node] = {}
        created.append(self)

    def Class(self) -> str:  # noqa: N802
        return self.node_class

    def name(self) -> str:
        return self._name

    def knob(self, name: str):
        return self.knobs.get(name)

    def __getitem__(self, name: str) -> Knob:
        return self.knobs.setdefault(name, Knob())

    def setInput(self, index: int, node: Node) -> None:  # noqa: N802
        self.inputs[index] = node

    def input(self, index: int):
        return self.inputs.get(index)

    def value(self, name: str):
        return self.knobs[name].value()

    def __repr__(self) -> str:
        return f"<{self.node_class} {self._name}>"


class _Nodes:
    def __getattr__(self, node_class: str):
        return lambda **knobs: Node(node_class, **knobs)


class _Menu:
    def __init__(self, name: str):
        self.name, self.items = name, {}

    def addMenu(self, name: str) -> _Menu:  # noqa: N802
        return self.items.setdefault(name, _Menu(name))

    def addCommand(self, name: str, command, *args, **kwargs) -> None:  # noqa: N802
        self.items[name] = command


created: list[Node] = []
deleted: list[Node] = []
executed: list[tuple[str, int, int]] = []
messages: list[str] = []
selected: list[Node] = []
inputs: list[str] = []  # answers for getInput, in order
menus: dict[str, _Menu] = {}
nodes = _Nodes()
_root = Node("Root", first_frame=1001, last_frame=1100)
created.clear()


def reset() -> None:
    for record in (created, deleted, executed, messages, selected, inputs):
        record.clear()
    menus.clear()


def selectedNodes() -> list[Node]:  # noqa: N802
    return list(selected)


def root() -> Node:
    return _root


def menu(name: str) -> _Menu:
    return menus.setdefault(name, _Menu(name))


def execute(node: Node, first: int, last: int) -> None:
    executed.append((node.name(), first, last))
    source = node.input(0)
    if source is None or source.Class() != "Read":
        return
    for frame in range(first, last + 1):
        target = _frame(node.value("file"), frame)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(_frame(source.value("file"), frame), target)


def _frame(pattern: str, frame: int) -> str:
    hashes = pattern.count("#")
    return pattern.replace("#" * hashes, str(frame).zfill(hashes))


def delete(node: Node) -> None:
    deleted.append(node)


def message(text: str) -> None:
    messages.append(text)


def getInput(prompt: str, default: str = ""):  # noqa: N802
    return inputs.pop(0) if inputs else default


def executeInMainThread(fn, args=(), kwargs=None):  # noqa: N802
    """Nuke queues ``fn`` on its UI thread; here it runs at once (under a lock, as in one UI thread)."""
    with _main:
        return fn(*args, **(kwargs or {}))


_main = threading.Lock()
