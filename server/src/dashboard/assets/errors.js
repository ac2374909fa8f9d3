// Refused events by reason with their JSON-pointer details; for the admin token, fix a type's schema
// and replay its refused events, with the outcome shown.

import { api } from './api.js';
import { h, fill, fmtTime, fmtCount, field, input, select, utcInput, toInput, formValues, viewLink, table, pretty, errorBox } from './ui.js';

const REASONS = ['invalid_payload', 'future_timestamp', 'unknown_event_type', 'storage_rejected', 'invalid_sent_at'];
const PAGE = 50;

export async function render(main, params, ctx) {
  const filters = { reason: params.get('reason'), category: params.get('category'), name: params.get('name'),
    from: params.get('from'), to: params.get('to') };
  const fix = h('div', { id: 'fix-panel' });
  const results = h('div', { id: 'errors-results' });
  main.append(h('h1', {}, 'Errors'), filterForm(params), fix, results);
  const reload = () => showPage(results, { filters, cursors: [undefined], fix, reload }, ctx);
  if (ctx.admin) main.insertBefore(replayAll(filters, fix, reload), fix);
  await reload();
}

function filterForm(params) {
  const form = h('form', { class: 'filters panel', 'aria-label': 'Filters', onsubmit: (event) => {
    event.preventDefault();
    const values = formValues(form);
    values.from = utcInput(values.from);
    values.to = utcInput(values.to);
    location.hash = viewLink('errors', values);
  } },
  field('Reason', select('reason', [['', 'Any'], ...REASONS.map((r) => [r, r])], params.get('reason'))),
  field('Category', input('category', params.get('category'))),
  field('Name', input('name', params.get('name'))),
  field('From (UTC)', input('from', toInput(params.get('from')), { type: 'datetime-local', step: 1 })),
  field('To (UTC)', input('to', toInput(params.get('to')), { type: 'datetime-local', step: 1 })),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '#/errors' }, 'Clear')));
  return form;
}

async function showPage(results, view, ctx) {
  const { filters, cursors } = view;
  const page = await api.errors({ ...filters, limit: PAGE, cursor: cursors[cursors.length - 1] }, ctx.signal);
  const turn = (next) => showPage(results, { ...view, cursors: next }, ctx).catch((e) => results.prepend(errorBox(e)));
  fill(results,
    byReason(page.errors),
    page.errors.length ? errorTable(page.errors, view, ctx) : h('p', { class: 'muted' }, 'No refused events match.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', disabled: cursors.length < 2, onclick: () => turn(cursors.slice(0, -1)) }, '← Newer'),
      h('span', { class: 'muted' }, `Page ${cursors.length}`),
      h('button', { type: 'button', class: 'secondary', disabled: !page.next_cursor, onclick: () => turn([...cursors, page.next_cursor]) }, 'Older →')));
}

function byReason(errors) {
  const counts = new Map();
  for (const e of errors) counts.set(e.reason, (counts.get(e.reason) || 0) + 1);
  return h('p', { class: 'muted', id: 'errors-by-reason' }, counts.size ? 'On this page: ' : '',
    [...counts].map(([reason, n], i) => [i ? ', ' : '', h('a', { href: viewLink('errors', { reason }) }, reason), ` ${fmtCount(n)}`]));
}

function errorTable(errors, view, ctx) {
  const columns = [
    ['Recorded (UTC)', (e) => fmtTime(e.recorded_at), 'time'],
    ['Reason', (e) => e.reason],
    ['Type', (e) => `${e.category} / ${e.name}`],
    ['Detail', (e) => h('pre', { class: 'detail' }, e.detail.split('; ').join('\n'))],
    ['Application', (e) => ctx.appName(e.application_id)],
    ['Resolved', (e) => (e.resolved_at ? h('span', { class: 'ok' }, `stored ${fmtTime(e.resolved_at)}`) : 'no')],
    ['Event', (e) => h('details', {}, h('summary', {}, 'as received'), pretty(e.raw))],
  ];
  if (ctx.admin) {
    columns.push(['', (e) => h('button', { type: 'button', class: 'secondary fix-button',
      onclick: () => openFix(view.fix, e, view.reload).catch((err) => view.fix.replaceChildren(errorBox(err))) }, 'Fix & replay')]);
  }
  return table(columns, errors, (e) => ({ dataset: { eventId: e.event_id, reason: e.reason } }));
}

/** The schema editor for the error's event type, then a replay of that type's refused events. */
async function openFix(panel, error, reload) {
  const types = await api.eventTypes();
  const current = types.find((t) => t.category === error.category && t.name === error.name);
  const editor = h('textarea', { id: 'schema-editor', 'aria-label': 'JSON Schema of the data', spellcheck: 'false' },
    JSON.stringify(current?.schema || { type: 'object' }, null, 2));
  const outcome = h('div', { id: 'replay-outcome', 'aria-live': 'polite' });
  const publish = async () => {
    const schema = JSON.parse(editor.value);
    const published = await api.publishSchema(error.category, error.name, schema);
    fill(outcome, h('p', { class: 'ok' }, `Published version ${published.version} of ${error.category} / ${error.name}.`));
  };
  const replay = async () => {
    const result = await api.replayErrors({ category: error.category, name: error.name });
    fill(outcome, replayResult(result));
    await reload();
  };
  const guard = (action) => () => action().catch((err) => fill(outcome, errorBox(err)));
  fill(panel, h('section', { class: 'panel' },
    h('h2', {}, `Fix ${error.category} / ${error.name}`),
    h('p', { class: 'muted' }, current ? `Current schema: version ${current.version}, published ${fmtTime(current.published_at)}.`
      : 'No schema is registered for this type.'),
    editor,
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'publish-schema', onclick: guard(publish) }, 'Publish schema'),
      h('button', { type: 'button', id: 'replay-type', onclick: guard(replay) }, 'Replay this type\'s refused events'),
      h('button', { type: 'button', class: 'secondary', onclick: () => panel.replaceChildren() }, 'Close')),
    outcome));
  editor.focus();
}

function replayAll(filters, panel, reload) {
  const run = async () => {
    const result = await api.replayErrors(filters);
    fill(panel, h('section', { class: 'panel' }, replayResult(result)));
    await reload();
  };
  return h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', id: 'replay-all',
    onclick: () => run().catch((err) => fill(panel, errorBox(err))) }, 'Replay every refused event matching the filters'));
}

function replayResult(result) {
  return h('div', { class: 'notice', id: 'replay-result', role: 'status' },
    h('p', {}, `Replayed ${fmtCount(result.replayed)}: `, h('strong', {}, `${fmtCount(result.stored)} stored`),
      `, ${fmtCount(result.still_failing)} still failing.`),
    result.failures.length ? h('ul', {}, result.failures.map((f) => h('li', {}, `#${f.error_id}: ${f.detail}`))) : null);
}
