// Review one item: accept the consensus, reject it back to the queue, or fix it with an answer
// built by the workspace's own question widgets (every question kind), prefilled from the
// consensus. Each action is POST /api/v1/projects/{id}/items/{item_id}/reviews; after it the
// page reloads with ?reviewed=ACTION, so status, consensus and history show what was saved.
// In the fix form the widgets' own keys work as in the workspace (1-9 picks a label, ...) for
// the active question: the one last clicked or focused, advancing when a choice is made.

import { api } from '../api.js';
import { clear, h, isTyping } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { createWidget } from '../widgets/index.js';
import { $, hideError, readJson, showError } from './common.js';

const config = readJson('review-data');
const errors = $('review-errors');
const fixForm = $('review-fix');
let widgets = null;
let active = 0;

async function send(action, value) {
  hideError(errors);
  const buttons = document.querySelectorAll('#review-panel button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const body = { action, comment: $('review-comment').value };
    if (value !== undefined) body.value = value;
    await api(`/projects/${config.project_id}/items/${config.item_id}/reviews`, { method: 'POST', body });
    window.location.assign(`${window.location.pathname}?review=1&reviewed=${action}`);
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
  widgets = config.label_schema.questions.map((q, i) => {
    const widget = createWidget(q, item, { changed: ({ advance } = {}) => {
      if (advance && i === active && i + 1 < widgets.length) setActive(i + 1);
    } });
    const start = config.consensus[q.name];
    if (start !== undefined && start !== null) widget.setValue(start);
    const card = h('fieldset', { class: 'question card', dataset: { question: q.name, kind: q.kind } },
      h('legend', {}, q.title || q.name),
      q.description ? h('div', { class: 'muted markdown' }, renderMarkdown(q.description)) : null,
      widget.el);
    card.addEventListener('pointerdown', () => setActive(i));
    card.addEventListener('focusin', () => setActive(i));
    box.appendChild(card);
    return [q, widget, card];
  });
  setActive(0);
});

function setActive(index) {
  active = index;
  widgets.forEach(([, , card], i) => card.classList.toggle('active', i === index));
}

document.addEventListener('keydown', (e) => {
  if (fixForm.hidden || !widgets || isTyping(e)) return;
  const [, widget] = widgets[active];
  if (widget.keydown && widget.keydown(e)) e.preventDefault();
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
