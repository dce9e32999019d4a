"""`--output text`: a JSON document as plain tab-separated lines, the way the AWS CLI's text output reads.

The shape decides the lines, so `cut`, `awk` and `grep` work without knowing the command:

- an object's scalar values share one line, in the document's order, after the identifier it sits under;
- each of its lists or objects follows, under an identifier made from its key in capitals (`DEVICES`);
- a list of scalars is one line; a list of objects is one line per object.

So `deeplens-cli devices --query 'devices[].[name,health]' --output text` prints `name<TAB>health` per device, and
`deeplens-cli deploy --dry-run --output json --query plan.actions` read as text gives one line per action.
A value never contains a tab, a newline or any other control character: they are shown as visible escapes (`\\t`,
`\\n`, `\\x1b`, see printable.py), so a line is always one record and a value cannot steer the terminal.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from deeplens_cli.cli.printable import printable


def tsv_row(cells: Iterable[Any]) -> str:
    """One record: cells joined by tabs, each flattened to a single line."""
    return "\t".join(scalar_text(cell) for cell in cells)


def scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return printable(str(value))


def text_lines(value: Any, identifier: str | None = None) -> Iterator[str]:
    """The lines for `value` (already plain JSON types), each prefixed by `identifier` when there is one."""
    prefix = [identifier] if identifier else []
    if isinstance(value, dict):
        scalars = [item for item in value.values() if not isinstance(item, (dict, list))]
        if scalars:
            yield tsv_row(prefix + scalars)
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                yield from text_lines(item, key.upper())
    elif isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            if value:
                yield tsv_row(prefix + value)
            return
        for item in value:
            if isinstance(item, (dict, list)):
                yield from text_lines(item, identifier)
            else:
                yield tsv_row(prefix + [item])
    else:
        yield tsv_row(prefix + [value])
