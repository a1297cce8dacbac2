import { h } from '../dom.js';
import { codePointLength } from '../text_offsets.js';

export function createText(q, _item, env) {
  let touched = false;
  const area = h('textarea', { rows: '4', class: 'text-answer', 'aria-label': q.title || q.name,
    maxlength: String(q.max_length), placeholder: 'Type your answer… (Ctrl+Enter submits)' });
  const counter = h('span', { class: 'muted small' });
  area.addEventListener('input', () => {
    touched = true;
    render();
    env.changed({ advance: false });
  });
  const tools = h('span', { class: 'text-tools' });
  const el = h('div', { class: 'text-widget' }, area, h('div', { class: 'row-between' },
    h('span', { class: 'muted small' }, q.min_length ? `at least ${q.min_length} characters` : ''), tools, counter));

  // Put `text` at the caret (replacing a selection) and leave the caret after it.
  function insertText(text) {
    const start = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? start;
    area.setRangeText(text, start, end, 'end');
    area.focus();
    touched = true;
    render();
    env.changed({ advance: false });
  }

  function length() {
    return codePointLength(area.value);
  }
  function render() {
    counter.textContent = `${length()} / ${q.max_length}`;
    counter.classList.toggle('warn', length() < q.min_length || length() > q.max_length);
  }
  render();
  return {
    el,
    getValue: () => area.value,
    setValue(v) {
      area.value = typeof v === 'string' ? v : '';
      touched = typeof v === 'string';
      render();
    },
    // Untouched optional text stays unanswered; a required one needs min_length characters.
    isComplete: () => (touched || q.min_length === 0) && length() >= q.min_length && length() <= q.max_length &&
      (touched || q.required),
    keydown: () => false,
    focus() {
      area.focus();
    },
    insertText,
    // The item has audio or video: a timestamped note takes the player's current time.
    enableTimestamps(time) {
      tools.appendChild(h('button', { type: 'button', class: 'small', 'data-testid': 'insert-time',
        onclick: () => insertText(`[${time()}] `) }, 'Insert time ', h('kbd', {}, 'T')));
    },
    hints: [['Ctrl+Enter', 'submit from the text box'], ['Esc', 'leave the text box (shortcuts work again)']],
    consumes: [],
  };
}
