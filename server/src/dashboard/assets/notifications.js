// The notification outbox: status, attempts and last error, filtered by user, rule and status.

import { api } from './api.js';
import { h, fill, fmtTime, field, input, select, formValues, viewLink, table, errorBox } from './ui.js';

const STATUSES = ['pending', 'delivered', 'failed', 'undeliverable'];
const PAGE = 50;

export async function render(main, params, ctx) {
  const filters = { user_id: params.get('user_id'), rule: params.get('rule'), status: params.get('status') };
  const results = h('div', { id: 'notifications-results' });
  main.append(h('h1', {}, 'Notifications'), filterForm(params), results);
  await showPage(results, filters, [undefined], ctx);
}

function filterForm(params) {
  const form = h('form', { class: 'filters panel', 'aria-label': 'Filters', onsubmit: (event) => {
    event.preventDefault();
    location.hash = viewLink('notifications', formValues(form));
  } },
  field('User', input('user_id', params.get('user_id'))),
  field('Rule', input('rule', params.get('rule'))),
  field('Status', select('status', [['', 'Any'], ...STATUSES.map((s) => [s, s])], params.get('status'))),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '#/notifications' }, 'Clear')));
  return form;
}

// Servers before notification cursors answer without `next_cursor`: then only the newest page is shown.
async function showPage(results, filters, cursors, ctx) {
  const page = await api.notifications({ ...filters, limit: PAGE, cursor: cursors[cursors.length - 1] }, ctx.signal);
  const turn = (next) => showPage(results, filters, next, ctx).catch((e) => results.prepend(errorBox(e)));
  const pages = 'next_cursor' in page;
  fill(results,
    page.notifications.length ? table([
      ['Created (UTC)', (n) => fmtTime(n.created_at), 'time'],
      ['Status', (n) => h('span', { class: `status-${n.status}` }, n.status)],
      ['Attempts', (n) => n.attempts, 'num'],
      ['Last error', (n) => n.last_error || '—'],
      ['Rule', (n) => n.rule],
      ['User', (n) => h('a', { href: viewLink('events', { user_id: n.user_id, app: n.application_id }) }, n.user_id)],
      ['Message', (n) => n.message],
      ['Delivered (UTC)', (n) => fmtTime(n.delivered_at), 'time'],
    ], page.notifications) : h('p', { class: 'muted' }, 'No notifications match.'),
    pages ? h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', disabled: cursors.length < 2, onclick: () => turn(cursors.slice(0, -1)) }, '← Newer'),
      h('span', { class: 'muted' }, `Page ${cursors.length}`),
      h('button', { type: 'button', class: 'secondary', disabled: !page.next_cursor, onclick: () => turn([...cursors, page.next_cursor]) }, 'Older →'))
      : h('p', { class: 'muted' }, `The newest ${PAGE} are shown.`));
}
