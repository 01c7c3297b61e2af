"""The recent output of a terminal, bounded, for a browser that (re)attaches.

terminado keeps its last 1,000 reads (up to ~64 MB) and replays them as they are; two known
problems follow from replaying raw output, and both are handled here:

- the oldest output is dropped whole lines at a time, so a replay never starts inside an escape
  sequence (which xterm.js would print as garbage);
- terminal *queries* in the replay (device attributes, cursor position and status reports, colour
  queries, window reports) are removed: xterm.js answers every query it reads by typing the answer
  into the shell, which showed up as stray input after every reattach (jupyterlab#17179).
"""

from __future__ import annotations

import re
from collections import deque

# CSI c / > c / = c (device attributes), CSI n with 5/6 (status, cursor position), CSI ... t
# (window reports), DECRQM (CSI ? Ps $ p), XTVERSION (CSI > q), DECRQSS (DCS $ q ... ST) and OSC
# colour queries (OSC 4;N;? / 10-19;? ... BEL or ST).
QUERIES = re.compile(
    r"\x1b\[[>=]?[0-9;]*c"
    r"|\x1b\[\??[56]n"
    r"|\x1b\[[0-9;]*t"
    r"|\x1b\[\??[0-9;]*\$p"
    r"|\x1b\[>[0-9;]*q"
    r"|\x1bP\$q[^\x1b\x07]*(?:\x1b\\|\x07)"
    r"|\x1b\](?:4;[0-9]+|1[0-9]);\?(?:\x1b\\|\x07)"
)


class ReplayBuffer:
    """The last ``limit`` characters of output (about: trimmed at line starts), as one string on demand."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[str] = deque()
        self._size = 0
        self._trimmed = False  # output was dropped: the first line kept may be a tail

    def __len__(self) -> int:
        return self._size

    def append(self, text: str) -> None:
        if self.limit <= 0 or not text:
            return
        self._chunks.append(text)
        self._size += len(text)
        while self._size > self.limit and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())
            self._trimmed = True
        if self._size > self.limit:  # one chunk larger than the whole buffer
            only = self._chunks.pop()
            self._chunks.append(only[-self.limit:])
            self._size = len(self._chunks[0])
            self._trimmed = True

    def text(self) -> str:
        """The output to replay: from the first line start kept, with terminal queries removed."""
        joined = "".join(self._chunks)
        self._chunks = deque([joined] if joined else [])
        newline = joined.find("\n")
        if self._trimmed and 0 <= newline < len(joined) - 1:
            joined = joined[newline + 1:]  # what was before it may be half an escape sequence
        return QUERIES.sub("", joined)
