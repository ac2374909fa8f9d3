// Event explorer: any combination of the API's filters, keyset paging, each event's data pretty-printed
// and a link to its session.

import { api, specHasParam } from './api.js';
import { h, fill, fmtTime, field, input, select, utcInput, toInput, formValues, viewLink, table, pretty, errorBox } from './ui.js';

const FILTERS = ['app', 'category', 'name', 'user_id', 'session_id', 'from', 'to', 'order', 'limit'];
let descendingSupported; // whether this server's spec documents `order` on GET /v1/events (asked once)

export async function render(main, params, ctx) {
  if (descendingSupported === undefined) {
    descendingSupported = await specHasParam('/v1/events', 'order', ctx.signal).catch(() => false);
  }
  const results = h('div', { id: 'explorer-results' });
  main.append(h('h1', {}, 'Events'), filterForm(params, ctx), results);
  const query = {
    application_id: params.get('app'), category: params.get('category'), name: params.get('name'),
    user_id: params.get('user_id'), session_id: params.get('session_id'), from: params.get('from'),
    to: params.get('to'), limit: params.get('limit') || '50',
    order: descendingSupported && params.get('order') === 'desc' ? 'desc' : undefined,
  };
  await showPage(results, query, [undefined], ctx);
}

function filterForm(params, ctx) {
  const apps = [['', 'All'], ...[...ctx.apps]];
  const order = [['asc', 'Oldest first'], ['desc', descendingSupported ? 'Newest first' : 'Newest first (needs a newer server)']];
  const form = h('form', { class: 'filters panel', 'aria-label': 'Filters', onsubmit: (event) => {
    event.preventDefault();
    const values = formValues(form);
    values.from = utcInput(values.from);
    values.to = utcInput(values.to);
    if (values.order === 'asc') delete values.order;
    location.hash = viewLink('events', values);
  } },
  ctx.admin ? field('Application', select('app', apps, params.get('app')))
    : field('Application id', input('app', params.get('app'), { placeholder: 'any readable' })),
  field('Category', input('category', params.get('category'))),
  field('Name', input('name', params.get('name'))),
  field('User', input('user_id', params.get('user_id'))),
  field('Session', input('session_id', params.get('session_id'))),
  field('From (UTC)', input('from', toInput(params.get('from')), { type: 'datetime-local', step: 1 })),
  field('To (UTC)', input('to', toInput(params.get('to')), { type: 'datetime-local', step: 1 })),
  field('Order', select('order', order, params.get('order') || 'asc')),
  field('Per page', select('limit', [['25', '25'], ['50', '50'], ['100', '100'], ['500', '500']], params.get('limit') || '50')),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'),
    h('a', { href: '#/events' }, 'Clear')));
  if (!descendingSupported) form.elements.order.options[1].disabled = true;
  return form;
}

/** One page; `cursors` is the stack of cursors that led here (the first page's is `undefined`). */
async function showPage(results, query, cursors, ctx) {
  const cursor = cursors[cursors.length - 1];
  const page = await api.events({ ...query, cursor }, ctx.signal);
  const pager = h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary', id: 'previous-page', disabled: cursors.length < 2,
      onclick: () => turn(results, query, cursors.slice(0, -1), ctx) }, '← Previous'),
    h('span', { class: 'muted' }, `Page ${cursors.length} · ${page.events.length} events`),
    h('button', { type: 'button', class: 'secondary', id: 'next-page', disabled: !page.next_cursor,
      onclick: () => turn(results, query, [...cursors, page.next_cursor], ctx) }, 'Next →'));
  fill(results, page.events.length ? eventTable(page.events, ctx) : h('p', { class: 'muted' }, 'No events match.'), pager);
}

function turn(results, query, cursors, ctx) {
  showPage(results, query, cursors, ctx).catch((error) => {
    if (error.name !== 'AbortError') results.prepend(errorBox(error));
  });
}

export function eventTable(events, ctx) {
  return table([
    ['Time (UTC)', (e) => fmtTime(e.timestamp), 'time'],
    ['Category', (e) => e.category],
    ['Name', (e) => e.name],
    ['User', (e) => e.user_id || '—'],
    ['Session', (e) => h('a', { href: viewLink('session', { app: e.application_id, id: e.session_id }) }, e.session_id)],
    ['Application', (e) => ctx.appName(e.application_id)],
    ['Data', (e) => h('details', {}, h('summary', {}, summary(e.data)), pretty(e.data))],
  ], events, (e) => ({ dataset: { eventId: e.event_id } }));
}

function summary(data) {
  const text = JSON.stringify(data);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
