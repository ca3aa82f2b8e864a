"""Cursor moves as the ANSI escapes every common terminal shares.

The editor only ever moves within its own input area: up or down some rows,
then to a column from the row's start (CR, then CSI C), so no move depends
on how a terminal counts columns of wide characters.
"""

from __future__ import annotations


def place(rows_drawn: int, row: int, col: int, end_col: int) -> str:
    """Move from the end of the last of ``rows_drawn`` drawn rows (at
    column ``end_col``) to (row, col)."""
    out = ""
    up = rows_drawn - 1 - row
    if up:
        out += f"\x1b[{up}A"
    if col != end_col or up:
        out += "\r" + (f"\x1b[{col}C" if col else "")
    return out


def move(from_row: int, from_col: int, row: int, col: int) -> str:
    """Move from (from_row, from_col) to (row, col), printing nothing."""
    out = ""
    if row < from_row:
        out += f"\x1b[{from_row - row}A"
    elif row > from_row:
        out += f"\x1b[{row - from_row}B"
    if col != from_col:
        out += "\r" + (f"\x1b[{col}C" if col else "")
    return out
