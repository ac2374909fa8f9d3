// The page's entry point: sign-in, navigation (hash routes, so every view is a link and the server
// serves one page) and the views' lifecycle.

import { api, session, ApiError } from './api.js';
import { h, fill, errorBox } from './ui.js';
import * as overview from './overview.js';
import * as explorer from './explorer.js';
import * as sessionView from './session.js';
import * as errors from './errors.js';
import * as notifications from './notifications.js';
import * as types from './types.js';

const VIEWS = { overview, events: explorer, session: sessionView, errors, notifications, types };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
let current = { stop: () => {} };
// What every view may use: the caller's role and, for the admin, application names by id.
const context = { admin: false, apps: new Map(), appName: (id) => context.apps.get(id) || id };

function route() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  return { view: VIEWS[path] ? path : 'overview', params: new URLSearchParams(query) };
}

async function show() {
  current.stop();
  if (!session.token()) return showSignIn();
  const { view, params } = route();
  const section = view === 'session' ? 'events' : view;
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  nav.hidden = false;
  const controller = new AbortController();
  current = { stop: () => controller.abort() };
  fill(main);
  try {
    await VIEWS[view].render(main, params, { ...context, signal: controller.signal });
  } catch (error) {
    if (error.name === 'AbortError') return;
    if (error instanceof ApiError && error.status === 401) return signOut('Your key was refused: sign in again.');
    main.append(errorBox(error));
  }
}

function showSignIn(message) {
  nav.hidden = true;
  const token = h('input', { type: 'password', name: 'token', id: 'token', required: true,
    autocomplete: 'off', 'aria-describedby': 'token-help' });
  const form = h('form', { onsubmit: (event) => { event.preventDefault(); signIn(token.value.trim(), form); } },
    h('label', { for: 'token' }, 'Read key or admin token', token),
    h('p', { id: 'token-help', class: 'muted' },
      'Kept in this tab only (sessionStorage) and sent as a bearer header. A read key shows only its applications.'),
    h('button', { type: 'submit' }, 'Sign in'));
  fill(main, h('section', { class: 'signin panel' }, h('h1', {}, 'Sign in'),
    message ? errorBox(message) : null, form));
  token.focus();
}

async function signIn(token, form) {
  session.signIn(token);
  try {
    await loadContext();
    form.reset();
    location.hash === '' || location.hash === '#/' ? (location.hash = '#/overview') : show();
  } catch (error) {
    session.signOut();
    showSignIn(error instanceof ApiError && error.status < 500 ? 'That key or token was refused.' : error);
  }
}

/** Checks the token on an endpoint its kind may use, and loads application names for the admin. */
async function loadContext() {
  context.admin = session.isAdmin();
  context.apps = new Map();
  if (context.admin) {
    const apps = await api.applications();
    for (const app of apps) context.apps.set(app.id, app.name);
  } else {
    await api.events({ limit: 1 });
  }
  document.getElementById('who').textContent = context.admin ? 'admin token' : 'read key';
}

function signOut(message) {
  session.signOut();
  current.stop();
  showSignIn(message);
}

document.getElementById('sign-out').addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => { show(); main.focus({ preventScroll: true }); });
if (session.token()) {
  loadContext().then(show, (error) => signOut(error instanceof ApiError ? 'Sign in again.' : error));
} else {
  showSignIn();
}
