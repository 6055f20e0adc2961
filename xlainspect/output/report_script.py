"""The report's inline script and its data: what makes the page clickable, still one file that opens offline.

The page reads as a document without JavaScript (tables, graphs, ``<details>``); the script adds, on top of it:
selecting a kernel (in a table row or either graph) highlights it and its match on the other side in both graphs and
in every kernel table, and shows its fused HLO, framework ops and source lines in a details pane; kernel tables sort
by a click on a header (numeric columns as numbers) and filter by a box above them; a search box finds kernels by
name or op in both graphs; the graphs pan (drag) and zoom (wheel) by their SVG ``viewBox``, with a reset button; and
the graphs colour by kind (as drawn) or by measured time.

Per-kernel data travels as one inline ``<script type="application/json">`` block, written by :func:`data_block`
with ``<``, ``>`` and ``&`` as JSON escapes, so no text in a module (``</script>`` in a metadata string) can end the
block. The script loads nothing: no network, no fonts, no modules. Its work at load is one pass over the graphs'
nodes, the tables' rows and the kernels, so a 100,000-instruction module's page stays responsive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

DATA_ID = "xi-data"

CSS = """
.xi-k { cursor: pointer; }
.xi-sel polygon, .xi-sel ellipse, .xi-sel path { stroke: #d1146a; stroke-width: 4px;
  vector-effect: non-scaling-stroke; }
tr.xi-sel > td { background: #ffe3ef; } tr[data-a], tr[data-b] { cursor: pointer; }
svg.xi-searching g.node { opacity: 0.3; } svg.xi-searching g.node.xi-hit, svg.xi-searching g.node.xi-sel { opacity: 1; }
.js .zoom, .js .zoom + label { display: none; }
.js .graph { overflow: hidden; position: relative; cursor: grab; background: #fff; }
.js .graph svg { max-width: none; display: block; }
.xi-reset { position: absolute; top: 4px; right: 4px; }
th.xi-up::after { content: " \\25b2"; } th.xi-down::after { content: " \\25bc"; } table.xi-sortable th { cursor: pointer; }
.xi-filter { margin: 0.3em 0; width: 24em; }
#xi-bar { position: sticky; top: 0; z-index: 2; background: #fafafa; border: 1px solid #ddd; padding: 0.4em 0.8em;
          display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; font-size: 0.9em; }
#xi-bar input[type=search] { width: 22em; }
#xi-hits { max-height: 8em; overflow: auto; } #xi-hits button { margin: 1px; font-size: 0.85em; }
#xi-details { position: fixed; left: 0.5em; right: 0.5em; bottom: 0.3em; max-height: 38vh; overflow: auto;
              background: #fff; border: 2px solid #d1146a; box-shadow: 0 2px 12px #0003; padding: 0.5em 1em;
              z-index: 3; font-size: 0.85em; }
#xi-details pre { background: #f6f6f6; padding: 0.4em; overflow: auto; max-height: 16em; font-size: 0.95em; }
.xi-cols { display: flex; gap: 1.5em; } .xi-cols > div { flex: 1 1 0; min-width: 0; }
#xi-details h4 { margin: 0.6em 0 0.2em; } #xi-details .xi-close { float: right; }
"""

SCRIPT = r"""
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('xi-data').textContent);
  const sides = data.sides;
  document.body.classList.add('js');
  const nodes = sides.map(() => new Map());  // kernel name -> its <g class="node"> elements
  const rows = sides.map(() => new Map());   // kernel name -> the table rows naming it
  const views = [];                          // per side: the graph's pan/zoom controls
  let marked = [];
  let dragged = false;
  const add = (map, key, value) => { const list = map.get(key); if (list) list.push(value); else map.set(key, [value]); };
  const make = (tag, text, attrs) => {
    const el = document.createElement(tag);
    if (text !== undefined && text !== null) el.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  };

  // -- graphs: nodes by kernel, pan and zoom -------------------------------------------------------------------
  for (const div of document.querySelectorAll('.graph[data-side]')) {
    const side = Number(div.dataset.side);
    const svg = div.querySelector('svg');
    if (!svg || !sides[side]) continue;
    for (const g of svg.querySelectorAll('g.node')) {
      const title = g.querySelector('title');
      if (!title) continue;
      const text = title.textContent;
      const name = text.split('/')[0];  // a fused op's node is named fusion/op: it belongs to its fusion
      if (!Object.prototype.hasOwnProperty.call(sides[side].kernels, name)) continue;
      g.classList.add('xi-k');
      g.dataset.kernel = name;
      if (text === name) g.dataset.own = '1';
      add(nodes[side], name, g);
    }
    svg.addEventListener('click', (event) => {
      const g = event.target.closest('g.xi-k');
      if (g && !dragged) select(side, g.dataset.kernel, side);
    });
    views[side] = panZoom(div, svg);
  }

  function panZoom(div, svg) {
    const base = svg.viewBox.baseVal;
    const home = [base.x, base.y, base.width, base.height];
    const original = svg.getAttribute('viewBox');
    const naturalWidth = svg.width.baseVal.value || home[2];
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    const width = Math.min(naturalWidth, div.clientWidth || naturalWidth);
    svg.style.width = width + 'px';
    svg.style.height = Math.max(160, Math.min(width * home[3] / home[2], window.innerHeight * 0.75)) + 'px';
    let box = home.slice();
    const apply = () => svg.setAttribute('viewBox', box.join(' '));
    // The point under the pointer in viewBox units; the drawing is fitted and centred (preserveAspectRatio meet).
    const toGraph = (x, y) => {
      const r = svg.getBoundingClientRect();
      const scale = Math.max(box[2] / r.width, box[3] / r.height);
      return [box[0] - (r.width * scale - box[2]) / 2 + (x - r.left) * scale,
              box[1] - (r.height * scale - box[3]) / 2 + (y - r.top) * scale, scale];
    };
    svg.addEventListener('wheel', (event) => {
      event.preventDefault();
      const [x, y] = toGraph(event.clientX, event.clientY);
      const f = Math.min(4, Math.max(0.25, Math.exp(event.deltaY * 0.0015)));
      box = [x - (x - box[0]) * f, y - (y - box[1]) * f, box[2] * f, box[3] * f];
      apply();
    }, {passive: false});
    svg.addEventListener('mousedown', (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      const start = [event.clientX, event.clientY, box[0], box[1], toGraph(0, 0)[2]];
      dragged = false;
      const move = (e) => {
        const dx = e.clientX - start[0], dy = e.clientY - start[1];
        if (Math.abs(dx) + Math.abs(dy) > 3) dragged = true;
        box[0] = start[2] - dx * start[4];
        box[1] = start[3] - dy * start[4];
        apply();
      };
      const up = () => { window.removeEventListener('mousemove', move); window.removeEventListener('mouseup', up); };
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', up);
    });
    const reset = make('button', 'reset view', {type: 'button', class: 'xi-reset'});
    reset.addEventListener('click', () => { box = home.slice(); svg.setAttribute('viewBox', original); });
    div.appendChild(reset);
    return {
      reset: reset,
      // Brings a node into view: centred when it is outside the view, and zoomed in when it is too small to read
      // (to a quarter of the view's width).
      show(g) {
        const r = g.getBoundingClientRect(), s = svg.getBoundingClientRect();
        const inside = r.left >= s.left && r.right <= s.right && r.top >= s.top && r.bottom <= s.bottom;
        const f = Math.max(0.02, Math.min(1, 4 * r.width / (s.width || 1)));
        if (inside && r.width >= 60) return;
        const [x, y] = toGraph((r.left + r.right) / 2, (r.top + r.bottom) / 2);
        const zoom = r.width < 60 ? f : 1;
        box = [x - box[2] * zoom / 2, y - box[3] * zoom / 2, box[2] * zoom, box[3] * zoom];
        apply();
      },
    };
  }

  // -- tables: rows by kernel, sorting, filtering ---------------------------------------------------------------
  for (const table of document.querySelectorAll('table.xi-kernels')) {
    const body = table.tBodies[0];
    for (const tr of body.rows) {
      if (tr.dataset.a !== undefined) add(rows[0], tr.dataset.a, tr);
      if (tr.dataset.b !== undefined) add(rows[1], tr.dataset.b, tr);
    }
    body.addEventListener('click', (event) => {
      const tr = event.target.closest('tr');
      if (!tr) return;
      if (tr.dataset.a !== undefined) select(0, tr.dataset.a, -1);
      else if (tr.dataset.b !== undefined) select(1, tr.dataset.b, -1);
    });
    table.classList.add('xi-sortable');
    const heads = [...table.tHead.rows[0].cells];
    heads.forEach((th, column) => th.addEventListener('click', () => {
      const down = th.classList.contains('xi-up');
      heads.forEach((h) => h.classList.remove('xi-up', 'xi-down'));
      th.classList.add(down ? 'xi-down' : 'xi-up');
      sortRows(body, column, th.dataset.num !== undefined, down ? -1 : 1);
    }));
    const filter = make('input', null, {type: 'search', class: 'xi-filter', placeholder: 'filter these rows'});
    let texts = null;
    filter.addEventListener('input', () => {
      const words = filter.value.toLowerCase().trim();
      const all = [...body.rows];
      if (texts === null) texts = new Map(all.map((tr) => [tr, tr.textContent.toLowerCase()]));
      for (const tr of all) tr.hidden = words !== '' && !texts.get(tr).includes(words);
    });
    table.parentNode.insertBefore(filter, table);
  }

  // A number from a numeric cell: 1,234 / +5.0 / −5.0 / ±1.0 / 12.5%; "within noise" is a difference of 0.
  function number(text) {
    if (text.startsWith('within noise')) return 0;
    const value = parseFloat(text.replace(/\u2212/g, '-').replace(/[^0-9eE.+-]/g, ''));
    return Number.isNaN(value) ? null : value;
  }

  function sortRows(body, column, numeric, direction) {
    const keyed = [...body.rows].map((tr, index) => {
      const text = tr.cells[column] ? tr.cells[column].textContent : '';
      return {tr: tr, index: index, key: numeric ? number(text) : text};
    });
    keyed.sort((x, y) => {
      if (x.key === null || y.key === null) {  // empty cells last, whichever the direction
        return x.key === y.key ? x.index - y.index : (x.key === null ? 1 : -1);
      }
      const order = numeric ? x.key - y.key : x.key.localeCompare(y.key);
      return order * direction || x.index - y.index;
    });
    const fragment = document.createDocumentFragment();
    for (const item of keyed) fragment.appendChild(item.tr);
    body.appendChild(fragment);
  }

  // -- selection and its details --------------------------------------------------------------------------------
  const pane = make('div', null, {id: 'xi-details'});
  pane.hidden = true;
  document.body.appendChild(pane);

  function mark(side, name, into, still) {
    for (const el of (nodes[side].get(name) || []).concat(rows[side].get(name) || [])) {
      el.classList.add('xi-sel');
      marked.push(el);
    }
    const own = (nodes[side].get(name) || []).find((g) => g.dataset.own);
    if (own && views[side] && side !== still) views[side].show(own);
    into.push(name);
  }

  function clear() {
    for (const el of marked) el.classList.remove('xi-sel');
    marked = [];
    pane.hidden = true;
  }

  // Selects a kernel of a side and its matches; every graph but ``still`` (the one clicked in) brings them into view.
  function select(side, name, still) {
    clear();
    const kernel = sides[side].kernels[name];
    if (!kernel) return;
    const shown = [[], []];
    mark(side, name, shown[side], still);
    const other = 1 - side;
    if (sides[other]) for (const match of kernel.match || []) mark(other, match, shown[other], still);
    details(side, name, other);
  }

  function section(side, name) {
    const kernel = sides[side].kernels[name];
    const part = document.createDocumentFragment();
    part.appendChild(make('h4', sides[side].label + ': ' + name));
    const facts = [kernel.kind, kernel.ops];
    if (kernel.runs !== 1) facts.push('runs ' + kernel.runs + ' times');
    if (kernel.us !== null && kernel.us !== undefined) facts.push(kernel.us.toFixed(1) + ' \u00b5s');
    if (!nodes[side].has(name)) facts.push('not in the graph drawn (it is cut, or the kernel sits in a loop body)');
    part.appendChild(make('div', facts.filter(Boolean).join('; ')));
    if (kernel.src.length) part.appendChild(make('div', 'source: ' + kernel.src.join('; ')));
    if (kernel.fw.length) part.appendChild(make('div', 'framework ops: ' + kernel.fw.join('; ')));
    if (!kernel.src.length && !kernel.fw.length) part.appendChild(make('div', 'from: ' + kernel.from));
    part.appendChild(make('pre', kernel.hlo, {class: 'xi-hlo'}));
    return part;
  }

  // The selected kernel and its matches, each side in its own column, as the graphs stand.
  function details(side, name, other) {
    const close = make('button', 'close', {type: 'button', class: 'xi-close'});
    close.addEventListener('click', clear);
    const columns = sides.map(() => make('div'));
    columns[side].appendChild(section(side, name));
    const kernel = sides[side].kernels[name];
    let line = sides[side].label + ': ' + name;
    if (sides[other]) {
      const matches = kernel.match || [];
      line = matches.length ? sides[side].label + ': ' + name + ', matched in ' + sides[other].label + ' ('
        + kernel.how + ')' : 'only in ' + sides[side].label + ': no match in ' + sides[other].label;
      for (const match of matches.slice(0, 4)) columns[other].appendChild(section(other, match));
      if (matches.length > 4) columns[other].appendChild(make('div', 'and ' + (matches.length - 4) + ' more'));
    }
    const row = make('div', null, {class: 'xi-cols'});
    row.append(...columns);
    pane.replaceChildren(close, make('strong', line, {class: 'xi-match'}), row);
    pane.hidden = false;
  }

  // -- the bar: search, colour ----------------------------------------------------------------------------------
  const bar = make('div', null, {id: 'xi-bar'});
  const search = make('input', null, {type: 'search', placeholder: 'search kernels by name or op', id: 'xi-search'});
  const count = make('span', '', {class: 'muted', id: 'xi-count'});
  const hits = make('div', null, {id: 'xi-hits'});
  bar.append(search, count);
  const colours = make('span', 'colour: ');
  for (const [value, label] of [['kind', 'kind'], ['time', 'time']]) {
    const input = make('input', null, {type: 'radio', name: 'xi-colour', value: value, id: 'xi-colour-' + value});
    if (value === 'kind') input.checked = true;
    if (value === 'time' && !data.timed) input.disabled = true;
    input.addEventListener('change', () => colour(value));
    colours.append(input, make('label', label + (value === 'time' && !data.timed ? ' (no --timing)' : ''),
                               {for: 'xi-colour-' + value}));
  }
  bar.append(colours, make('span', 'click a kernel in a table or graph; drag and wheel move and zoom the graphs',
                           {class: 'muted'}), hits);
  const anchor = document.querySelector('h2');
  anchor.parentNode.insertBefore(bar, anchor);

  const haystacks = sides.map((s) => new Map());
  const haystack = (side, name) => {
    let text = haystacks[side].get(name);
    if (text === undefined) {
      const k = sides[side].kernels[name];
      text = [name, k.kind, k.ops, k.fw.join(' '), k.src.join(' ')].join(' ').toLowerCase();
      haystacks[side].set(name, text);
    }
    return text;
  };
  let pending = null;
  search.addEventListener('input', () => { clearTimeout(pending); pending = setTimeout(find, 150); });
  function find() {
    const words = search.value.toLowerCase().trim();
    for (const svg of document.querySelectorAll('.graph svg')) svg.classList.toggle('xi-searching', words !== '');
    for (const g of document.querySelectorAll('g.xi-hit')) g.classList.remove('xi-hit');
    hits.replaceChildren();
    if (!words) { count.textContent = ''; return; }
    const found = sides.map((s, side) => Object.keys(s.kernels).filter((name) => haystack(side, name).includes(words)));
    count.textContent = found.map((names, side) => names.length + ' in ' + sides[side].label).join(', ');
    found.forEach((names, side) => {
      for (const name of names) for (const g of nodes[side].get(name) || []) g.classList.add('xi-hit');
      for (const name of names.slice(0, 30)) {
        const button = make('button', sides[side].label + ': ' + name, {type: 'button'});
        button.addEventListener('click', () => select(side, name, -1));
        hits.appendChild(button);
      }
    });
  }

  const fills = new Map();  // each kernel's own node shape -> its fill by kind, as drawn
  function heat(share) {  // as render.py's _heat: white to red as the share grows
    const s = Math.sqrt(Math.min(Math.max(share, 0), 1));
    const gb = Math.round(255 - s * (255 - 60)).toString(16).padStart(2, '0');
    return '#ff' + gb + gb;
  }
  function colour(by) {
    sides.forEach((s, side) => {
      let total = 0;
      for (const k of Object.values(s.kernels)) total += k.us || 0;
      for (const [name, list] of nodes[side]) {
        for (const g of list) {
          if (!g.dataset.own) continue;
          const shape = g.querySelector('polygon, ellipse, path');
          if (!shape) continue;
          if (!fills.has(shape)) fills.set(shape, shape.getAttribute('fill'));
          const us = s.kernels[name].us;
          shape.setAttribute('fill', by === 'kind' ? fills.get(shape)
            : (us === null || us === undefined ? '#f2f2f2' : heat(us / (total || 1))));
        }
      }
    });
  }
})();
"""


def data_block(payload: Mapping[str, Any]) -> str:
    """The page's data as an inline JSON block that no text inside it can close: ``<``, ``>`` and ``&`` are written
    as JSON's ``\\u003c``, ``\\u003e`` and ``\\u0026``, which ``JSON.parse`` reads back as themselves."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # U+2028 and U+2029 are valid in JSON but end a line in older JavaScript parsers; escaped, they are harmless.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"<script type=\"application/json\" id=\"{DATA_ID}\">{text}</script>"


def script_block() -> str:
    return f"<script>{SCRIPT}</script>"
