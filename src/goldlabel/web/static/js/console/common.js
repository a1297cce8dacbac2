// Helpers shared by the console pages. DOM is always built with textContent (dom.js h()),
// never from HTML strings: names, labels and messages come from users and files.

import { ApiError } from '../api.js';
import { clear, h } from '../dom.js';

export const $ = (id) => document.getElementById(id);

export function readJson(id) {
  const el = $(id);
  return el ? JSON.parse(el.textContent) : null;
}

// Show an error (an ApiError with field errors, or any Error) in an alert box.
export function showError(box, error) {
  clear(box);
  box.hidden = false;
  box.appendChild(h('p', { class: 'strong' }, error.message || String(error)));
  const fields = error instanceof ApiError ? error.errors : [];
  if (fields && fields.length) {
    box.appendChild(h('ul', {}, fields.map((e) => h('li', {},
      h('code', {}, (e.loc || []).filter((p) => p !== 'body').join('.') || '–'), ' ',
      h('span', { class: 'muted' }, e.code || ''), ': ', e.message || ''))));
  }
}

export function hideError(box) {
  clear(box);
  box.hidden = true;
}

// A short notice at the top of the page; it stays until replaced.
export function flash(message, kind = 'ok') {
  const box = $('console-flash');
  if (!box) return;
  box.className = `flash ${kind}`;
  box.textContent = message;
  box.hidden = false;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
