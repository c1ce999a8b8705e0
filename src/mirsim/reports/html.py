"""The report page: one HTML file with its styles, images and sounds inside it.

Every text that comes from a run (names, labels, paths) is escaped. Images and sounds are
``data:`` URIs, and the page loads no script, style sheet or font from anywhere: it opens
offline, as a single file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

from mirsim.reports.metrics import (
    MetricRow,
    format_mean_std,
    metric_label,
    metric_names,
)

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1em; margin: 1.4em 0 0.4em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e5e5e5; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.saved td { background: #f2f7ff; }
.note { background: #fff8e6; border-left: 3px solid #e0a800; padding: 0.5em 0.8em; }
.muted { color: #666; font-size: 0.9em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
audio { height: 2em; vertical-align: middle; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; }
dl.facts dt { color: #666; }
dl.facts dd { margin: 0; }
"""


def esc(value: object) -> str:
    """Text escaped for HTML.

    Examples
    --------
    >>> esc("<a & b>")
    '&lt;a &amp; b&gt;'
    """
    return html.escape(str(value), quote=True)


def data_uri(payload: bytes, mime: str) -> str:
    """``data:<mime>;base64,...``: a file's bytes inside the page.

    Examples
    --------
    >>> data_uri(b"RIFF", "audio/wav")
    'data:audio/wav;base64,UklGRg=='
    """
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def page(title: str, body: Sequence[str]) -> str:
    """A complete HTML document with the report's style sheet inline."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def section(title: str, anchor: str, parts: Sequence[str]) -> str:
    """``<section>`` with a heading."""
    return (f"<section id=\"{esc(anchor)}\">\n<h2>{esc(title)}</h2>\n" + "\n".join(parts)
            + "\n</section>")


def paragraph(text: str, css: str = "") -> str:
    """A paragraph of plain text (escaped)."""
    attribute = f' class="{esc(css)}"' if css else ""
    return f"<p{attribute}>{esc(text)}</p>"


def note(text: str) -> str:
    """A highlighted paragraph: something the page could not show, and why."""
    return paragraph(text, "note")


def facts(pairs: Sequence[tuple[str, object]]) -> str:
    """A definition list of (name, value) pairs; ``None`` values are left out.

    Examples
    --------
    >>> facts([("model", "mlp"), ("seed", None)])
    '<dl class="facts"><dt>model</dt><dd>mlp</dd></dl>'
    """
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v is not None)
    return f"<dl class=\"facts\">{cells}</dl>"


def metrics_table(rows: Sequence[MetricRow], saved_model: str | None = None) -> str:
    """The metrics as an HTML table: mean ± std over folds per metric, parameters, time.

    The row of ``saved_model`` is highlighted (the model the rest of the page uses).

    Examples
    --------
    >>> t = metrics_table([MetricRow("mlp", "mfcc", {"p_at_1": (0.75, 0.125)}, 10, 1.5, 3)])
    >>> "<td class=\\"num\\">0.750 ± 0.125</td>" in t
    True
    """
    names = metric_names(list(rows))
    head = ("<tr><th>model</th><th>feature</th>"
            + "".join(f"<th class=\"num\">{esc(metric_label(n))}</th>" for n in names)
            + "<th class=\"num\">folds</th><th class=\"num\">parameters</th>"
              "<th class=\"num\">train s</th></tr>")
    body = []
    for row in rows:
        saved = saved_model is not None and row.model == saved_model
        cells = "".join(f"<td class=\"num\">{esc(format_mean_std(*row.metrics.get(n, (None, None))))}"
                        "</td>" for n in names)
        params = "" if row.n_parameters is None else f"{row.n_parameters:,}"
        seconds = "" if row.train_seconds is None else f"{row.train_seconds:.1f}"
        folds = "" if row.folds is None else str(row.folds)
        name = esc(row.model) + (" <span class=\"muted\">(saved model)</span>" if saved else "")
        attribute = ' class="saved"' if saved else ""
        body.append(f"<tr{attribute}><td>{name}</td>"
                    f"<td>{esc(row.feature)}</td>{cells}<td class=\"num\">{folds}</td>"
                    f"<td class=\"num\">{params}</td><td class=\"num\">{seconds}</td></tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def figure(png: bytes, alt: str, caption: str) -> str:
    """An embedded PNG with a caption."""
    return (f"<figure><img src=\"{data_uri(png, 'image/png')}\" alt=\"{esc(alt)}\">"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


@dataclass(frozen=True)
class SoundRow:
    """One sound of the neighbours section: what it is, its clip, its distance to the query.

    ``wav`` is ``None`` when the sound could not be read; ``problem`` then says why.
    """

    item_id: str
    label: str
    group: str
    wav: bytes | None
    problem: str = ""
    distance: float | None = None
    same_label: bool | None = None


def audio_player(row: SoundRow) -> str:
    """An ``<audio>`` element playing the row's embedded clip, or why there is none.

    Examples
    --------
    >>> audio_player(SoundRow("a", "x", "g", None, "silent"))
    '<span class="muted">no audio: silent</span>'
    """
    if row.wav is None:
        return f"<span class=\"muted\">no audio: {esc(row.problem)}</span>"
    return (f"<audio controls preload=\"metadata\" src=\"{data_uri(row.wav, 'audio/wav')}\">"
            f"</audio>")


def neighbours_table(number: int, query: SoundRow, neighbours: Sequence[SoundRow]) -> str:
    """A query (with its clip) and a table of its neighbours, nearest first."""
    shared = sum(bool(n.same_label) for n in neighbours)
    head = (f"<h3>Q{number}: {esc(query.item_id)} <span class=\"muted\">label {esc(query.label)}"
            f" · group {esc(query.group)}</span></h3>\n<p>{audio_player(query)} "
            f"<span class=\"muted\">{shared} of {len(neighbours)} neighbours share its label"
            f"</span></p>")
    rows = []
    for rank, n in enumerate(neighbours, start=1):
        mark = "✓" if n.same_label else ""
        distance = "" if n.distance is None else f"{n.distance:.3f}"
        rows.append(f"<tr><td class=\"num\">{rank}</td><td>{esc(n.item_id)}</td>"
                    f"<td>{esc(n.label)} {mark}</td><td>{esc(n.group)}</td>"
                    f"<td class=\"num\">{distance}</td><td>{audio_player(n)}</td></tr>")
    return (head + "\n<table>\n<thead><tr><th class=\"num\">#</th><th>item</th><th>label</th>"
            "<th>group</th><th class=\"num\">distance</th><th>listen</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def table(head: Sequence[str], rows: Sequence[Sequence[object]],
          numeric: Sequence[bool] = ()) -> str:
    """A plain table of escaped cells; the columns flagged in ``numeric`` right-aligned.

    Examples
    --------
    >>> table(["listener", "share"], [["ann", "0.750"]], numeric=[False, True])
    '<table>\\n<thead><tr><th>listener</th><th class="num">share</th></tr></thead>\\n<tbody>\\n<tr><td>ann</td><td class="num">0.750</td></tr>\\n</tbody>\\n</table>'
    """
    flags = list(numeric) + [False] * (len(head) - len(numeric))
    css = [' class="num"' if f else "" for f in flags]
    header = "".join(f"<th{c}>{esc(h)}</th>" for h, c in zip(head, css))
    body = ["<tr>" + "".join(f"<td{c}>{esc(v)}</td>" for v, c in zip(row, css)) + "</tr>"
            for row in rows]
    return (f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody>\n</table>")
