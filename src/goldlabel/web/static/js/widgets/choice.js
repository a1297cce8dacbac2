import { digitOf, h } from '../dom.js';

function optionButton(label, index, onPick) {
  return h('button', { type: 'button', class: 'opt', 'aria-pressed': 'false', tabindex: '-1',
    onclick: () => onPick(index) },
  index < 9 ? h('kbd', {}, String(index + 1)) : null, h('span', {}, label));
}

export function createChoice(q, _item, env) {
  let value = null;
  const buttons = q.labels.map((label, i) => optionButton(label, i, pick));
  const el = h('div', { class: 'options', role: 'radiogroup' }, buttons);

  function pick(i) {
    value = q.labels[i];
    render();
    env.changed({ advance: true });
  }
  function render() {
    buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(q.labels[i] === value)));
  }
  return {
    el,
    getValue: () => value,
    setValue(v) {
      value = typeof v === 'string' && q.labels.includes(v) ? v : null;
      render();
    },
    isComplete: () => value !== null,
    keydown(e) {
      const n = digitOf(e);
      if (n && n <= q.labels.length) {
        pick(n - 1);
        return true;
      }
      return false;
    },
    focus() {},
    hints: [['1–9', 'choose that label']],
    consumes: [],
  };
}

export function createMultiChoice(q, _item, env) {
  const selected = new Set();
  const buttons = q.labels.map((label, i) => optionButton(label, i, toggle));
  const note = h('p', { class: 'muted small' });
  const el = h('div', {}, h('div', { class: 'options multi', role: 'group' }, buttons), note);
  const lo = q.min_selections || 0;
  const hi = q.max_selections ?? q.labels.length;
  if (lo || hi < q.labels.length) {
    note.textContent = lo && hi < q.labels.length ? `Choose ${lo} to ${hi}.`
      : lo ? `Choose at least ${lo}.` : `Choose at most ${hi}.`;
  }

  function toggle(i) {
    const label = q.labels[i];
    if (selected.has(label)) selected.delete(label);
    else if (selected.size < hi) selected.add(label);
    else {
      note.textContent = `At most ${hi} may be chosen: unselect one first.`;
      note.classList.add('warn');
      return;
    }
    note.classList.remove('warn');
    render();
    env.changed({ advance: false });
  }
  function render() {
    buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(selected.has(q.labels[i]))));
  }
  return {
    el,
    // In schema order, as the server normalizes it.
    getValue: () => q.labels.filter((l) => selected.has(l)),
    setValue(v) {
      selected.clear();
      if (Array.isArray(v)) v.filter((l) => q.labels.includes(l)).slice(0, hi).forEach((l) => selected.add(l));
      render();
    },
    isComplete: () => selected.size >= lo && selected.size <= hi,
    keydown(e) {
      const n = digitOf(e);
      if (n && n <= q.labels.length) {
        toggle(n - 1);
        return true;
      }
      return false;
    },
    focus() {},
    hints: [['1–9', 'select / unselect that label']],
    consumes: [],
  };
}
