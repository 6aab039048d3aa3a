"""The report's templates (scenebias/report/templates/*.j2: the words and markup of every page and section, one
Jinja2 environment for them all) and the HTML page every report page is (the index, one per paper table, one per
method)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import jinja2

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2329;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #d9dee3;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #d9dee3;padding:.3em .6em;
text-align:right}th{background:#f3f5f7}td:first-child,th:first-child,td:nth-child(2){text-align:left}
.note{color:#5b6670;font-size:.92em}.verdict{background:#f6f8fa;border-left:4px solid #4c78a8;padding:.6em 1em}
img{max-width:100%;border:1px solid #e5e8eb;margin:.5em 0}code{background:#f3f5f7;padding:0 .25em}
.pill{padding:.1em .5em;border-radius:.6em;white-space:nowrap}table.claims td{text-align:left;vertical-align:top}
table.claims td.detail{max-width:28em}
"""

# Not autoescaped: the templates write Markdown as well as HTML, and a value that is HTML already (a table from
# pandas, a rendered section) goes in as it is. Text is escaped where a template says `|e`, which here is Python's
# html.escape (quotes as &quot; and &#x27;), not Jinja's own (&#34;, &#39;): the report's pages stay as they were.
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
TEMPLATES.filters["e"] = TEMPLATES.filters["escape"] = html.escape


def render(template: str, **values: Any) -> str:
    """`template` (a file name under templates/) filled in with `values`."""
    return TEMPLATES.get_template(template).render(**values)


def html_page(title: str, body: str, css: str = CSS) -> str:
    """A complete page: `title` (plain text), `body` (HTML), `css` (the report's style sheet by default)."""
    return render("page.html.j2", title=title, body=body, css=css)
