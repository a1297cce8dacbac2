// Keypoints: pick the label (number keys), then click to place the skeleton's points in order
// (the next one is named above the image); X skips the next point (not labeled, v = 0), O marks
// the last placed point occluded (v = 1) or visible again (v = 2), Backspace takes back the last
// point, Enter finishes the instance early, Escape cancels it. The instance is finished when its
// last point is placed. Click a point of a finished instance to select the instance and drag the
// point to move it; O toggles the selected point, Delete removes the selected instance, Tab
// selects the next one. Skeleton edges are drawn between placed points.

import { clear, digitOf } from '../dom.js';
import { colorClass } from './index.js';
import { createStage, svg } from './shapes.js';

export function createKeypoints(q, item, env) {
  const skeletons = q.skeletons || {};
  let instances = []; // {label, points: {name: {x, y, v}}}, fractions of the image
  let draft = null; // {label, points, order: [names placed or skipped]}
  let current = 0;
  let selected = -1;
  let selectedPoint = null; // name of the selected point of the selected instance
  let drag = null;
  const stage = createStage(q, item, env, { testid: 'keypoints-layer', emptyNote: '', onLabel: pickLabel });
  const { layer } = stage;

  const skeletonOf = (label) => skeletons[label] || { points: [], edges: [] };
  const color = (label) => colorClass(q.labels.indexOf(label));

  function nextName() {
    if (!draft) return skeletonOf(q.labels[current]).points[0];
    return skeletonOf(draft.label).points[draft.order.length];
  }

  function prompt() {
    const s = skeletonOf(draft ? draft.label : q.labels[current]);
    const name = nextName();
    const k = draft ? draft.order.length : 0;
    stage.status.textContent = stage.url && name
      ? `Place “${name}” (${k + 1}/${s.points.length}) of ${draft ? draft.label : q.labels[current]} — X skips it, O marks the last point occluded`
      : '';
  }

  function finishDraft() {
    if (!draft) return;
    if (Object.keys(draft.points).length) {
      instances.push({ label: draft.label, points: draft.points });
      selected = instances.length - 1;
    }
    draft = null;
    render();
    env.changed({ advance: false });
  }

  function advanceDraft() {
    if (draft && draft.order.length >= skeletonOf(draft.label).points.length) finishDraft();
    else render();
  }

  layer.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !stage.url) return;
    e.preventDefault();
    const p = stage.point(e);
    const t = e.target;
    if (!draft && t.dataset && t.dataset.point !== undefined) {
      selected = Number(t.dataset.instance);
      selectedPoint = t.dataset.point;
      drag = { instance: selected, name: selectedPoint };
      layer.setPointerCapture(e.pointerId);
      render();
      return;
    }
    if (!draft) {
      selected = -1;
      draft = { label: q.labels[current], points: {}, order: [] };
    }
    const name = nextName();
    draft.points[name] = { x: p.x, y: p.y, v: 2 };
    draft.order.push(name);
    advanceDraft();
  });
  layer.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const p = stage.point(e);
    Object.assign(instances[drag.instance].points[drag.name], { x: p.x, y: p.y });
    render();
  });
  const finish = () => {
    if (!drag) return;
    drag = null;
    render();
    env.changed({ advance: false });
  };
  layer.addEventListener('pointerup', finish);
  layer.addEventListener('pointercancel', finish);

  function pickLabel(i) {
    current = i;
    if (draft && !draft.order.length) draft.label = q.labels[i];
    render();
  }

  function render() {
    stage.setLabel(current);
    prompt();
    const b = stage.box();
    layer.setAttribute('viewBox', `0 0 ${b.w} ${b.h}`);
    clear(layer);
    const all = instances.map((inst, i) => [inst, i]).filter(([, i]) => i !== selected);
    if (selected >= 0 && selected < instances.length) all.push([instances[selected], selected]); // on top
    if (draft) all.push([draft, -1]);
    for (const [inst, i] of all) {
      const s = skeletonOf(inst.label);
      const g = svg('g', { class: `skeleton ${color(inst.label)}${i === selected ? ' selected' : ''}${i < 0 ? ' draft' : ''}` });
      for (const [a, c] of s.edges || []) {
        const pa = inst.points[a];
        const pc = inst.points[c];
        if (pa && pc) g.appendChild(svg('line', { class: 'edge', x1: pa.x * b.w, y1: pa.y * b.h, x2: pc.x * b.w, y2: pc.y * b.h }));
      }
      for (const name of s.points) {
        const p = inst.points[name];
        if (!p) continue;
        const cls = `kp${p.v === 1 ? ' occluded' : ''}${i === selected && name === selectedPoint ? ' picked' : ''}`;
        g.appendChild(svg('circle', { class: cls, cx: p.x * b.w, cy: p.y * b.h, r: 5,
          dataset: i >= 0 ? { instance: String(i), point: name } : {} }, svg('title', {}, name)));
      }
      const first = s.points.map((n) => inst.points[n]).find(Boolean);
      if (first && i >= 0) g.appendChild(svg('text', { x: first.x * b.w + 7, y: first.y * b.h - 7 }, `${i + 1} ${inst.label}`));
      layer.appendChild(g);
    }
  }
  stage.onResize(render);

  function toggle(point) {
    point.v = point.v === 1 ? 2 : 1;
    render();
    env.changed({ advance: false });
  }

  function exportInstance(inst) {
    const s = skeletonOf(inst.label);
    const points = {};
    for (const name of s.points) {
      const p = inst.points[name];
      if (p) {
        const [x, y] = stage.out(p.x, p.y);
        points[name] = { x, y, v: p.v };
      }
    }
    return { label: inst.label, points };
  }

  function importInstance(v) {
    if (!v || !q.labels.includes(v.label) || !v.points || typeof v.points !== 'object') return null;
    const names = new Set(skeletonOf(v.label).points);
    const points = {};
    for (const [name, p] of Object.entries(v.points)) {
      const at = p && names.has(name) ? stage.in(Number(p.x), Number(p.y)) : null;
      const vis = p && p.v !== undefined ? Number(p.v) : 2;
      if (at && (vis === 1 || vis === 2)) points[name] = { ...at, v: vis };
    }
    return Object.keys(points).length ? { label: v.label, points } : null;
  }

  render();
  return {
    el: stage.el,
    getValue: () => instances.map(exportInstance),
    setValue(v) {
      instances = Array.isArray(v) ? v.map(importInstance).filter(Boolean) : [];
      draft = null;
      selected = -1;
      render();
    },
    isComplete: () => !draft,
    keydown(e) {
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      if (draft) {
        if (key === 'x') {
          draft.order.push(nextName());
          advanceDraft();
          return true;
        }
        if (key === 'o') {
          const last = [...draft.order].reverse().find((n) => draft.points[n]);
          if (last) toggle(draft.points[last]);
          return true;
        }
        if (key === 'Backspace') {
          const name = draft.order.pop();
          if (name) delete draft.points[name];
          if (!draft.order.length) draft = null;
          render();
          return true;
        }
        if (key === 'Enter') {
          finishDraft();
          return true;
        }
        if (key === 'Escape') {
          draft = null;
          render();
          return true;
        }
      }
      const n = digitOf(e);
      if (n && n <= q.labels.length) {
        pickLabel(n - 1);
        return true;
      }
      if (key === 'o' && selected >= 0 && selectedPoint && instances[selected].points[selectedPoint]) {
        toggle(instances[selected].points[selectedPoint]);
        return true;
      }
      if ((key === 'Delete' || key === 'Backspace') && selected >= 0) {
        instances.splice(selected, 1);
        selected = -1;
        selectedPoint = null;
        render();
        env.changed({ advance: false });
        return true;
      }
      if (key === 'Tab' && instances.length && !e.ctrlKey) {
        selected = (selected + (e.shiftKey ? instances.length - 1 : 1) + instances.length) % instances.length;
        selectedPoint = null;
        render();
        return true;
      }
      if (key === 'Escape' && selected >= 0) {
        selected = -1;
        selectedPoint = null;
        render();
        return true;
      }
      return stage.viewport.keydown(e);
    },
    focus() {},
    hints: [['click', 'place the next point of the skeleton'], ['X', 'skip the next point (not labeled)'],
      ['O', 'mark the last (or selected) point occluded / visible'], ['Backspace', 'take back the last point'],
      ['Enter', 'finish the instance early'], ['Escape', 'cancel the instance'], ['drag', 'move a point'],
      ['1–9', 'label of the next instance'], ['Tab', 'select the next instance'], ['Delete', 'delete the selected instance'], ...stage.viewport.hints],
    consumes: stage.consumes,
  };
}
