// One session's timeline, in the order its events occurred, with the pauses between them made visible.

import { api, allPages } from './api.js';
import { sessionStrip } from './chart.js';
import { h, fmtTime, fmtDuration, fmtCount, pretty, viewLink } from './ui.js';

/** A pause at least this long is drawn as a gap of its own in the timeline. */
const GAP_MS = 60e3;
const PAGE = 1000;
const MAX_PAGES = 10;

export async function render(main, params, ctx) {
  const id = params.get('id');
  const app = params.get('app');
  main.append(h('h1', {}, 'Session ', h('code', {}, id || '?')));
  if (!id) {
    main.append(h('p', { class: 'muted' }, 'Open a session from the event explorer.'));
    return;
  }
  const { items, complete } = await allPages((cursor, signal) =>
    api.sessionEvents(id, { application_id: app, limit: PAGE, cursor }, signal), 'events', MAX_PAGES, ctx.signal);
  const times = items.map((e) => Date.parse(e.timestamp));
  main.append(h('div', {}, summary(items, times, ctx, app),
    complete ? null : h('p', { class: 'notice' }, `Showing the first ${fmtCount(items.length)} events.`),
    times.length ? sessionStrip(times) : null,
    h('ol', { class: 'timeline', id: 'timeline' }, timeline(items, times))));
}

function summary(items, times, ctx, app) {
  const first = times[0], last = times[times.length - 1];
  return h('div', { class: 'cards' },
    h('section', { class: 'card' }, h('h2', {}, 'Events'), h('div', { class: 'big' }, fmtCount(items.length))),
    h('section', { class: 'card' }, h('h2', {}, 'Duration'), h('div', { class: 'big' }, items.length ? fmtDuration(last - first) : '—')),
    h('section', { class: 'card' }, h('h2', {}, 'Application'), h('div', {}, ctx.appName(items[0]?.application_id || app || '')),
      h('a', { href: viewLink('events', { app: items[0]?.application_id || app, session_id: items[0]?.session_id }) }, 'Open in the explorer')));
}

function timeline(items, times) {
  return items.flatMap((event, i) => {
    const delta = i ? times[i] - times[i - 1] : 0;
    const gap = delta >= GAP_MS ? h('li', { class: 'gap' }, `${fmtDuration(delta)} without events`) : null;
    return [gap, h('li', { dataset: { eventId: event.event_id } },
      h('span', { class: 'when' }, fmtTime(event.timestamp)),
      i ? h('span', { class: 'delta' }, `+${fmtDuration(delta)}`) : null,
      ' ', h('strong', {}, event.name), ` · ${event.category}`, event.user_id ? ` · user ${event.user_id}` : '',
      h('details', {}, h('summary', {}, 'data'), pretty(event.data)))];
  });
}
