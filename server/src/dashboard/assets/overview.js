// Overview: events over time per category, totals, refused events, pipeline health and notifications,
// refreshed every few seconds while the view is open and the tab visible.

import { api, metrics } from './api.js';
import { lineChart, bucketStarts, intervalFor, seriesOf, colours } from './chart.js';
import { h, fill, fmtCount, fmtDuration, field, select, input, utcInput, toInput, formValues, viewLink, errorBox } from './ui.js';

const REFRESH_MS = 5000;
/** Rows read to count refused events and notifications (the API has lists, not counts, for them). */
const SAMPLE = 1000;
const RANGES = [['hour', 'Last hour'], ['day', 'Last day'], ['week', 'Last 7 days'], ['custom', 'Custom (UTC)']];
const SPAN_MS = { hour: 3600e3, day: 86400e3, week: 7 * 86400e3 };

/** The `[from, to)` a range picker value stands for, as of now. */
export function rangeOf(params) {
  const range = params.get('range') || 'hour';
  if (range === 'custom' && params.get('from') && params.get('to')) {
    return { from: params.get('from'), to: params.get('to') };
  }
  const to = Date.now();
  return { from: new Date(to - (SPAN_MS[range] || SPAN_MS.hour)).toISOString(), to: new Date(to).toISOString() };
}

export async function render(main, params, ctx) {
  const body = h('div', { id: 'overview-body' });
  const updated = h('span', { class: 'updated', 'aria-live': 'polite' });
  main.append(h('h1', {}, 'Overview'), controls(params, ctx, updated), body);
  const state = { previous: null };
  const tick = async () => {
    if (ctx.signal.aborted) return;
    if (!document.hidden) {
      try {
        fill(body, ...(await load(rangeOf(params), params.get('app') || '', ctx, state)));
        updated.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC · every ${REFRESH_MS / 1000} s`;
      } catch (error) {
        if (error.name === 'AbortError') return;
        if (error.status === 401) throw error;
        fill(body, errorBox(error));
      }
    }
    const timer = setTimeout(() => tick().catch(() => {}), REFRESH_MS);
    ctx.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  };
  await tick();
}

function controls(params, ctx, updated) {
  const range = params.get('range') || 'hour';
  const apps = [['', 'All applications'], ...[...ctx.apps].map(([id, name]) => [id, name])];
  const custom = range === 'custom';
  const form = h('form', { class: 'filters panel', 'aria-label': 'Range', onsubmit: (event) => {
    event.preventDefault();
    const values = formValues(form);
    if (values.range === 'custom') {
      values.from = utcInput(values.from);
      values.to = utcInput(values.to);
    } else {
      delete values.from; delete values.to;
    }
    location.hash = viewLink('overview', values);
  } },
  field('Range', select('range', RANGES, range)),
  field('From (UTC)', input('from', toInput(custom ? params.get('from') : ''), { type: 'datetime-local', step: 1 })),
  field('To (UTC)', input('to', toInput(custom ? params.get('to') : ''), { type: 'datetime-local', step: 1 })),
  ctx.admin ? field('Application', select('app', apps, params.get('app'))) : null,
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show'), updated));
  // The dates matter only for a custom range: picking another range applies it at once.
  const dates = [form.elements.from, form.elements.to];
  const showDates = (on) => dates.forEach((el) => { el.disabled = !on; el.parentElement.hidden = !on; });
  showDates(custom);
  form.elements.range.addEventListener('change', () => {
    if (form.elements.range.value === 'custom') showDates(true);
    else form.requestSubmit();
  });
  return form;
}

async function load({ from, to }, app, ctx, state) {
  const interval = intervalFor(from, to);
  const within = (row) => !app || row.application_id === app;
  const [stats, refused, notes, health] = await Promise.all([
    api.stats({ group_by: 'category', interval, from, to, application_id: app }, ctx.signal),
    api.errors({ from, to, limit: SAMPLE }, ctx.signal),
    api.notifications({ from, to, limit: SAMPLE }, ctx.signal),
    metrics(ctx.signal).catch(() => new Map()),
  ]);
  const series = seriesOf(stats.buckets);
  const total = stats.buckets.reduce((sum, b) => sum + b.count, 0);
  return [
    h('div', { class: 'cards' },
      totalsCard(series, total),
      countCard('Refused events by reason', tally(refused.errors.filter(within), 'reason'), refused.next_cursor || refused.errors.length >= SAMPLE, (reason) => viewLink('errors', { reason })),
      pipelineCard(health, state),
      countCard('Notifications by status', tally(notes.notifications.filter(within), 'status'), notes.next_cursor || notes.notifications.length >= SAMPLE, (status) => viewLink('notifications', { status }))),
    chartPanel({ from, to, interval, app, series, total }),
  ];
}

function totalsCard(series, total) {
  const perGroup = [...series].map(([group, counts]) => [group, [...counts.values()].reduce((a, b) => a + b, 0)]);
  return h('section', { class: 'card' }, h('h2', {}, 'Events in range'),
    h('div', { class: 'big', id: 'total-events' }, fmtCount(total)),
    h('dl', {}, perGroup.map(([group, count]) => [h('dt', {}, group), h('dd', {}, fmtCount(count))])));
}

function tally(rows, key) {
  const counts = new Map();
  for (const row of rows) counts.set(row[key], (counts.get(row[key]) || 0) + 1);
  return counts;
}

function countCard(title, counts, capped, link) {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const more = capped ? '+' : '';
  return h('section', { class: 'card' }, h('h2', {}, title),
    h('div', { class: 'big' }, `${fmtCount(total)}${more}`),
    counts.size ? h('dl', {}, [...counts].map(([key, count]) =>
      [h('dt', {}, h('a', { href: link(key) }, key)), h('dd', {}, `${fmtCount(count)}${more}`)]))
      : h('p', { class: 'muted' }, 'none in range'),
    capped ? h('p', { class: 'muted' }, `counted among the newest ${fmtCount(SAMPLE)}`) : null);
}

/** Lag and queue depth from `/metrics`: the mean lag of the events stored since the last refresh. */
function pipelineCard(health, state) {
  const sum = health.get('eye_ingest_lag_seconds_sum');
  const count = health.get('eye_ingest_lag_seconds_count');
  const previous = state.previous;
  state.previous = { sum, count };
  let lag = 'no events stored by this process';
  if (count > 0) {
    const recent = previous && count > previous.count;
    const mean = recent ? (sum - previous.sum) / (count - previous.count) : sum / count;
    lag = `${fmtDuration(mean * 1000)} ${recent ? '(last few seconds)' : '(since start)'}`;
  }
  const depth = health.get('eye_queue_depth');
  const dead = health.get('eye_dead_jobs');
  return h('section', { class: 'card' }, h('h2', {}, 'Pipeline'),
    h('dl', {},
      h('dt', {}, 'Ingest → stored lag'), h('dd', { id: 'lag' }, lag),
      h('dt', {}, 'Queue depth (jobs)'), h('dd', { id: 'queue-depth' }, depth === undefined ? '—' : fmtCount(depth)),
      h('dt', {}, 'Dead jobs'), h('dd', {}, dead === undefined ? '—' : fmtCount(dead))));
}

function chartPanel({ from, to, interval, app, series, total }) {
  const starts = bucketStarts(from, to, interval);
  const palette = colours(series.keys());
  const label = `Events per ${interval} and category, ${from} to ${to}: ${fmtCount(total)} in all`;
  return h('section', { class: 'panel', id: 'events-chart',
    dataset: { from, to, interval, groupBy: 'category', application: app } },
  h('h2', {}, `Events per ${interval}, by category`),
  lineChart({ starts, series, interval, label }),
  h('ul', { class: 'legend' }, [...series.keys()].map((group) =>
    h('li', {}, swatch(palette.get(group)), h('a', { href: viewLink('events', { category: group, from, to, app }) }, group)))));
}

function swatch(background) {
  const el = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  el.style.backgroundColor = background; // CSSOM, which the page's CSP allows (style attributes it does not)
  return el;
}
