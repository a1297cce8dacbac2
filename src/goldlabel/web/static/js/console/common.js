// Helpers shared by the console pages. DOM is always built with textContent (dom.js h()),
// never from HTML strings: names, labels and messages come from users and files.

import { ApiError } from '../api.js';
import { clear, h } from '../dom.js';

export const $ = (id) => document.getElementById(id);

export function readJson(id) {
  const el = $(id);
  return el ? JSON.parse(el.textContent) : null;
}

// Show an error (an ApiError with field errors, or any Error) in an alert box. A field error
// reads as a sentence about the field ("Password must have at least 8 characters"); its stable
// code stays available as the tooltip, for a bug report.
export function showError(box, error) {
  clear(box);
  box.hidden = false;
  const fields = error instanceof ApiError ? error.errors : [];
  if (fields && fields.length) {
    // "1 invalid field(s) in the request" says less than the list under it.
    const generic = error.code === 'validation_failed';
    box.appendChild(h('p', { class: 'strong' }, generic ? `Please correct ${fields.length === 1 ? 'this' : 'these'}:` : error.message));
    box.appendChild(h('ul', {}, fields.map((e) => h('li', { title: e.code || '' }, fieldSentence(e)))));
  } else {
    box.appendChild(h('p', { class: 'strong' }, error.message || String(error)));
  }
}

// One field error as text: "Password must have at least 8 characters" for a form field; a
// nested location (a schema's label_schema.questions.0.labels) keeps its path, which says where.
export function fieldSentence(e) {
  const path = (e.loc || []).filter((p) => p !== 'body');
  // Pydantic says "String should have at least 8 characters": the field is the subject instead.
  const message = (e.message || e.code || 'is not valid').replace(/^(String|Value|Input) should/, 'must');
  if (path.length === 0) return message;
  if (path.length > 1) return [h('code', {}, path.join('.')), `: ${message}`];
  const name = String(path[0]).replace(/_/g, ' ');
  const subject = name.charAt(0).toUpperCase() + name.slice(1);
  return message.startsWith('must ') ? `${subject} ${message}` : `${subject}: ${message}`;
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
