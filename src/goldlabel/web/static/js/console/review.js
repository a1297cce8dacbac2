// Review one item: accept the consensus, reject it back to the queue, or fix it with an answer
// built by the workspace's own question widgets (every question kind), prefilled from the
// consensus. Each action is POST /api/v1/projects/{id}/items/{item_id}/reviews.

import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { createWidget } from '../widgets/index.js';
import { $, hideError, readJson, showError } from './common.js';

const config = readJson('review-data');
const errors = $('review-errors');
const fixForm = $('review-fix');
let widgets = null;

async function send(action, value) {
  hideError(errors);
  const buttons = document.querySelectorAll('#review-panel button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const body = { action, comment: $('review-comment').value };
    if (value !== undefined) body.value = value;
    const review = await api(`/projects/${config.project_id}/items/${config.item_id}/reviews`, { method: 'POST', body });
    const done = $('review-done');
    done.hidden = false;
    clear(done).append(`Saved: ${action} (item is now ${review.item_status.replace('_', ' ')}). `,
      h('a', { href: `/console/projects/${config.project_id}/review/next?after=${config.item_id}`, 'data-testid': 'review-next' },
        'Next item to review →'), ' ',
      h('a', { href: window.location.pathname }, 'See the updated item'));
    fixForm.hidden = true;
  } catch (e) {
    showError(errors, e);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

$('review-accept').addEventListener('click', () => send('accept'));
$('review-reject').addEventListener('click', () => send('reject'));

$('review-fix-open').addEventListener('click', () => {
  fixForm.hidden = false;
  if (widgets) return;
  const item = { id: config.item_id, data: config.data };
  const box = clear($('fix-questions'));
  widgets = config.label_schema.questions.map((q) => {
    const widget = createWidget(q, item, { changed: () => {} });
    const start = config.consensus[q.name];
    if (start !== undefined && start !== null) widget.setValue(start);
    box.appendChild(h('fieldset', { class: 'question card', dataset: { question: q.name, kind: q.kind } },
      h('legend', {}, q.title || q.name),
      q.description ? h('div', { class: 'muted markdown' }, renderMarkdown(q.description)) : null,
      widget.el));
    return [q, widget];
  });
});

// The buttons are rendered disabled: a click before this module has bound them would do nothing.
for (const id of ['review-accept', 'review-reject', 'review-fix-open']) $(id).disabled = false;

$('review-fix-cancel').addEventListener('click', () => { fixForm.hidden = true; });

fixForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = {};
  for (const [q, widget] of widgets) {
    const v = widget.getValue();
    if (v !== null && v !== undefined) value[q.name] = v;
  }
  send('fix', value);
});
