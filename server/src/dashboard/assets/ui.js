// Small DOM helpers. Data is only ever set as text (never as HTML), so nothing an event carries can run.

/** `h('a', {href: '#'}, 'text', child)`: an element with attributes (`on*` as listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'line', 'polyline', 'circle', 'rect', 'text', 'title', 'path'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `2021-01-01 09:15:27.243 UTC` from an RFC 3339 instant (the API answers in UTC). */
export function fmtTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 23).replace('T', ' ')}`;
}

export const fmtCount = (n) => Number(n).toLocaleString('en');

/** `3 min 20 s`, `2 h 5 min`, `850 ms`. */
export function fmtDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A `datetime-local` value, read as UTC, as RFC 3339 (`''` stays empty). */
export function utcInput(value) {
  if (!value) return '';
  const date = new Date(`${value}Z`);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** The `datetime-local` form (UTC) of an RFC 3339 instant. */
export function toInput(iso) {
  return iso ? new Date(iso).toISOString().slice(0, 19) : '';
}

export function errorBox(error) {
  const status = error?.status ? ` (HTTP ${error.status})` : '';
  return h('div', { class: 'error-box', role: 'alert' }, `${error?.message || error}${status}`);
}

export function pretty(value) {
  return h('pre', {}, JSON.stringify(value, null, 2));
}

/** A table in a horizontally scrolling box; `columns` are `[heading, row => cell, className?]`. */
export function table(columns, rows, rowAttrs = () => ({})) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([heading]) => h('th', { scope: 'col' }, heading)))),
    h('tbody', {}, rows.map((row) => h('tr', rowAttrs(row),
      columns.map(([, cell, cls]) => h('td', { class: cls }, cell(row))))))));
}

/** A labelled form control. */
export function field(label, control) {
  return h('label', {}, label, control);
}

export function input(name, value, attrs = {}) {
  return h('input', { name, value: value || '', ...attrs });
}

export function select(name, options, value) {
  return h('select', { name }, options.map(([optionValue, text]) =>
    h('option', { value: optionValue, selected: optionValue === (value || '') }, text)));
}

/** The form's named values, without empty ones. */
export function formValues(form) {
  const values = {};
  for (const [key, value] of new FormData(form)) if (value !== '') values[key] = String(value).trim();
  return values;
}

/** `#/view?a=1` links built from an object. */
export function viewLink(view, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  return `#/${view}${query ? `?${query}` : ''}`;
}
