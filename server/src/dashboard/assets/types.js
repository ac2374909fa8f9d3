// Registered event types and their current schemas (the registry is read with the admin token only).

import { api } from './api.js';
import { h, fmtTime, table, pretty, viewLink } from './ui.js';

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Event types'));
  if (!ctx.admin) {
    main.append(h('p', { class: 'notice' }, 'The registry of event types is read with the admin token.'));
    return;
  }
  const types = await api.eventTypes(ctx.signal);
  main.append(types.length ? table([
    ['Category', (t) => t.category],
    ['Name', (t) => h('a', { href: viewLink('events', { category: t.category, name: t.name }) }, t.name)],
    ['Version', (t) => t.version, 'num'],
    ['Published (UTC)', (t) => fmtTime(t.published_at), 'time'],
    ['Schema', (t) => h('details', {}, h('summary', {}, 'JSON Schema'), pretty(t.schema))],
  ], types) : h('p', { class: 'muted' }, 'No event types are registered.'));
}
