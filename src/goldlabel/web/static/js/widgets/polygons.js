// Polygons: click on the image to add vertices; close the outline by clicking its first vertex
// or pressing Enter; Backspace removes the last vertex while drawing; Escape cancels the
// drawing. Click a polygon to select it, drag any vertex to move it, Delete (or Backspace)
// removes the selected polygon, number keys pick the label (of the selected polygon and of the
// next ones), Tab selects the next polygon. Points are kept as fractions of the image and
// written in the question's coordinates.

import { clear, digitOf } from '../dom.js';
import { colorClass } from './index.js';
import { createStage, polygonProblem, svg } from './shapes.js';

const CLOSE_RADIUS = 8; // px: a click this near the first vertex closes the outline

export function createPolygons(q, item, env) {
  let polygons = []; // {points: [{x, y}], label}, fractions of the image
  let draft = null; // points of the outline being drawn
  let cursor = null; // pointer position while drawing (the rubber band)
  let current = 0; // label for new polygons
  let selected = -1;
  let drag = null; // {poly, vertex, orig}
  const EMPTY = 'Click on the image to add points; click the first point or press Enter to close.';
  const stage = createStage(q, item, env, { testid: 'polygons-layer', emptyNote: EMPTY, onLabel: pickLabel });
  const { layer } = stage;

  function say(text) {
    stage.note.textContent = text;
  }

  function color(label) {
    return colorClass(q.labels.indexOf(label));
  }

  function near(p, target) {
    const b = stage.box();
    return Math.hypot((p.x - target.x) * b.w, (p.y - target.y) * b.h) <= CLOSE_RADIUS;
  }

  function closeDraft() {
    if (!draft) return false;
    const problem = polygonProblem(draft);
    if (problem) {
      say(problem);
      return true;
    }
    polygons.push({ points: draft, label: q.labels[current] });
    selected = polygons.length - 1;
    draft = null;
    cursor = null;
    say('');
    render();
    env.changed({ advance: false });
    return true;
  }

  layer.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !stage.url) return;
    e.preventDefault();
    const p = stage.point(e);
    const t = e.target;
    if (draft) {
      if (draft.length >= 3 && near(p, draft[0])) closeDraft();
      else {
        draft.push(p);
        say(`${draft.length} point${draft.length === 1 ? '' : 's'}: click the first point or press Enter to close, Backspace removes the last, Escape cancels.`);
      }
      render();
      return;
    }
    if (t.dataset && t.dataset.vertex !== undefined) {
      selected = Number(t.dataset.poly);
      const vertex = Number(t.dataset.vertex);
      drag = { poly: selected, vertex, orig: { ...polygons[selected].points[vertex] } };
      layer.setPointerCapture(e.pointerId);
      render();
      return;
    }
    if (t.dataset && t.dataset.poly !== undefined) {
      selected = Number(t.dataset.poly);
      render();
      return;
    }
    selected = -1;
    draft = [p];
    cursor = p;
    say('1 point: keep clicking to outline the object.');
    render();
  });
  layer.addEventListener('pointermove', (e) => {
    if (drag) {
      polygons[drag.poly].points[drag.vertex] = stage.point(e);
      render();
    } else if (draft) {
      cursor = stage.point(e);
      render();
    }
  });
  const finish = () => {
    if (!drag) return;
    const poly = polygons[drag.poly];
    const problem = polygonProblem(poly.points);
    if (problem) {
      poly.points[drag.vertex] = drag.orig; // a move that would break the outline is undone
      say(problem);
    }
    drag = null;
    render();
    env.changed({ advance: false });
  };
  layer.addEventListener('pointerup', finish);
  layer.addEventListener('pointercancel', finish);

  function pickLabel(i) {
    current = i;
    if (selected >= 0 && !draft) {
      polygons[selected].label = q.labels[i];
      env.changed({ advance: false });
    }
    render();
  }

  function px(p) {
    const b = stage.box();
    return `${p.x * b.w},${p.y * b.h}`;
  }

  function render() {
    stage.setLabel(current);
    const b = stage.box();
    layer.setAttribute('viewBox', `0 0 ${b.w} ${b.h}`);
    clear(layer);
    // the selected polygon last: its vertex handles stay on top of overlapping polygons
    const order = polygons.map((_, i) => i).filter((i) => i !== selected);
    if (selected >= 0 && selected < polygons.length) order.push(selected);
    order.forEach((i) => {
      const poly = polygons[i];
      const g = svg('g', { class: `polygon ${color(poly.label)}${i === selected ? ' selected' : ''}` },
        svg('polygon', { points: poly.points.map(px).join(' '), dataset: { poly: String(i) } }, svg('title', {}, poly.label)),
        svg('text', { x: poly.points[0].x * b.w + 4, y: poly.points[0].y * b.h - 4 }, `${i + 1} ${poly.label}`));
      if (i === selected) {
        poly.points.forEach((p, k) => g.appendChild(svg('circle', { class: 'vertex', cx: p.x * b.w, cy: p.y * b.h, r: 5,
          dataset: { poly: String(i), vertex: String(k) } })));
      }
      layer.appendChild(g);
    });
    if (draft) {
      const c = color(q.labels[current]);
      const pts = cursor ? [...draft, cursor] : draft;
      const g = svg('g', { class: `polygon draft ${c}` }, svg('polyline', { points: pts.map(px).join(' ') }));
      draft.forEach((p, k) => g.appendChild(svg('circle', { class: k === 0 ? 'vertex first' : 'vertex', cx: p.x * b.w, cy: p.y * b.h, r: k === 0 ? 6 : 4 })));
      layer.appendChild(g);
    }
  }
  stage.onResize(render);

  function exportPolygon(poly) {
    return { points: poly.points.map((p) => stage.out(p.x, p.y)), label: poly.label };
  }

  function importPolygon(v) {
    if (!v || !q.labels.includes(v.label) || !Array.isArray(v.points)) return null;
    const points = v.points.map((p) => (Array.isArray(p) ? stage.in(Number(p[0]), Number(p[1])) : null));
    return points.length >= 3 && points.every(Boolean) ? { points, label: v.label } : null;
  }

  render();
  return {
    el: stage.el,
    getValue: () => polygons.map(exportPolygon),
    setValue(v) {
      polygons = Array.isArray(v) ? v.map(importPolygon).filter(Boolean) : [];
      draft = null;
      selected = -1;
      render();
    },
    isComplete: () => !draft, // an outline still open is not an answer yet; "nothing here" is
    keydown(e) {
      if (draft) {
        if (e.key === 'Enter') return closeDraft() || true;
        if (e.key === 'Backspace') {
          draft.pop();
          if (!draft.length) {
            draft = null;
            say(EMPTY);
          }
          render();
          return true;
        }
        if (e.key === 'Escape') {
          draft = null;
          cursor = null;
          say('Drawing cancelled.');
          render();
          return true;
        }
      }
      const n = digitOf(e);
      if (n && n <= q.labels.length) {
        pickLabel(n - 1);
        return true;
      }
      if ((e.key === 'Delete' || e.key === 'Backspace') && selected >= 0) {
        polygons.splice(selected, 1);
        selected = -1;
        render();
        env.changed({ advance: false });
        return true;
      }
      if (e.key === 'Tab' && polygons.length && !e.ctrlKey) {
        selected = (selected + (e.shiftKey ? polygons.length - 1 : 1) + polygons.length) % polygons.length;
        render();
        return true;
      }
      if (e.key === 'Escape' && selected >= 0) {
        selected = -1;
        render();
        return true;
      }
      return stage.viewport.keydown(e);
    },
    focus() {},
    hints: [['click', 'add a point; click the first point to close'], ['Enter', 'close the outline'],
      ['Backspace', 'remove the last point (drawing) / delete the selected polygon'], ['Escape', 'cancel the drawing'],
      ['drag', 'move a point of the selected polygon'], ['1–9', 'label'], ['Tab', 'select the next polygon'],
      ['Delete', 'delete the selected polygon'], ...stage.viewport.hints],
    consumes: stage.consumes,
  };
}
