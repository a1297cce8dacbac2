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
  const el = h('div', { class: 'text-widget' }, area, h('div', { class: 'row-between' },
    h('span', { class: 'muted small' }, q.min_length ? `at least ${q.min_length} characters` : ''), counter));

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
    hints: [['Ctrl+Enter', 'submit from the text box'], ['Esc', 'leave the text box (shortcuts work again)']],
    consumes: [],
  };
}
