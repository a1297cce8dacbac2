import { h } from '../dom.js';

function snap(q, v) {
  const clamped = Math.min(q.max, Math.max(q.min, v));
  if (q.step === null || q.step === undefined) return Number(clamped.toFixed(6));
  const k = Math.round((clamped - q.min) / q.step);
  return Number((q.min + k * q.step).toFixed(10));
}

export function createRating(q, _item, env) {
  let value = null;
  const step = q.step ?? null;
  const points = [];
  if (step !== null) for (let k = 0; q.min + k * step <= q.max + 1e-9; k++) points.push(snap(q, q.min + k * step));
  // Keys name values when the scale is integers within 0..9 (a 1-5 scale: key 4 means 4);
  // otherwise key N picks the N-th point.
  const keysAreValues = points.length > 0 && points.every((p) => Number.isInteger(p) && p >= 0 && p <= 9);
  const keyFor = (p, k) => (keysAreValues ? String(p) : k < 9 ? String(k + 1) : null);

  const slider = h('input', { type: 'range', min: q.min, max: q.max, step: step ?? (q.max - q.min) / 100,
    class: 'rating-slider unset', 'aria-label': q.title || q.name, tabindex: '-1' });
  slider.value = String((q.min + q.max) / 2);
  slider.addEventListener('input', () => set(Number(slider.value)));
  const shown = h('output', { class: 'rating-value' }, '–');
  const buttons = points.length && points.length <= 11
    ? points.map((p, k) => h('button', { type: 'button', class: 'opt point', tabindex: '-1', 'aria-pressed': 'false',
      onclick: () => set(p, true) },
    keyFor(p, k) ? h('kbd', {}, keyFor(p, k)) : null,
    h('span', {}, q.scale_labels ? `${p} · ${q.scale_labels[k]}` : String(p))))
    : [];
  const el = h('div', { class: 'rating' },
    buttons.length ? h('div', { class: 'options' }, buttons) : null,
    h('div', { class: 'rating-row' }, h('span', { class: 'muted' }, String(q.min)), slider,
      h('span', { class: 'muted' }, String(q.max)), shown));

  function set(v, advance = false) {
    value = snap(q, v);
    render();
    env.changed({ advance });
  }
  function render() {
    slider.classList.toggle('unset', value === null);
    if (value !== null) slider.value = String(value);
    const k = points.indexOf(value);
    shown.textContent = value === null ? '–' : q.scale_labels && k >= 0 ? `${value} · ${q.scale_labels[k]}` : String(value);
    buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(points[i] === value)));
  }
  return {
    el,
    getValue: () => value,
    setValue(v) {
      value = typeof v === 'number' && Number.isFinite(v) && v >= q.min && v <= q.max ? snap(q, v) : null;
      render();
    },
    isComplete: () => value !== null,
    keydown(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      const delta = step ?? (q.max - q.min) / 100;
      if (e.key === 'ArrowRight' || e.key === 'ArrowUp') {
        set(value === null ? q.min : value + delta);
        return true;
      }
      if (e.key === 'ArrowLeft' || e.key === 'ArrowDown') {
        set(value === null ? q.max : value - delta);
        return true;
      }
      if (/^[0-9]$/.test(e.key) && points.length) {
        const p = keysAreValues ? Number(e.key) : points[Number(e.key) - 1];
        if (p !== undefined && points.includes(p)) {
          set(p, true);
          return true;
        }
      }
      return false;
    },
    focus() {},
    hints: [[keysAreValues ? '0–9' : '1–9', 'rate'], ['← →', 'lower / higher']],
    consumes: [],
  };
}
