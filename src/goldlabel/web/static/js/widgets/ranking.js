// Ranking: order the candidates best first. Two candidates become a pairwise A/B comparison
// (an LLM response comparison: the prompt and both responses rendered as safe Markdown).
// Candidate ids are never shown: a model name would bias the judgment.

import { clear, digitOf, h } from '../dom.js';
import { renderMarkdown } from '../markdown.js';

function displayText(entry) {
  if (typeof entry === 'string') return entry;
  if (entry && typeof entry === 'object') {
    for (const key of ['text', 'content', 'response', 'output', 'answer']) {
      if (typeof entry[key] === 'string') return entry[key];
    }
  }
  return JSON.stringify(entry, null, 2);
}

export function candidatesOf(q, data) {
  if (q.candidates) return q.candidates.map((id) => ({ id: String(id), text: String(id) }));
  const list = data ? data[q.source || 'responses'] : null;
  if (!Array.isArray(list)) return [];
  const objectIds = list.length > 0 && list.every((e) => e && typeof e === 'object' && !Array.isArray(e) &&
    (typeof e.id === 'string' || Number.isInteger(e.id)));
  return list.map((e, i) => ({ id: objectIds ? String(e.id) : String(i), text: displayText(e) }));
}

export function createRanking(q, item, env) {
  const data = item.data || {};
  const candidates = candidatesOf(q, data);
  const source = q.candidates ? null : q.source || 'responses';
  const prompt = source && typeof data.prompt === 'string' ? data.prompt : null;
  const consumes = source ? [source, ...(prompt !== null ? ['prompt'] : [])] : [];
  const promptEl = prompt !== null
    ? h('div', { class: 'prompt card' }, h('div', { class: 'muted small' }, 'Prompt'), h('div', { class: 'markdown' }, renderMarkdown(prompt)))
    : null;
  if (candidates.length === 2) return pairwise(q, candidates, promptEl, consumes, env);
  return list(q, candidates, promptEl, consumes, env);
}

function pairwise(q, candidates, promptEl, consumes, env) {
  let choice = null; // 'A' | 'B' | 'tie'
  const [a, b] = candidates;
  const cards = ['A', 'B'].map((name, i) => h('div', { class: 'response card', dataset: { side: name } },
    h('div', { class: 'response-head' }, h('b', {}, `Response ${name}`)),
    h('div', { class: 'markdown' }, renderMarkdown(candidates[i].text))));
  const buttons = [
    h('button', { type: 'button', class: 'opt', tabindex: '-1', 'aria-pressed': 'false', onclick: () => pick('A') },
      h('kbd', {}, '1'), h('span', {}, 'A is better')),
    q.allow_ties ? h('button', { type: 'button', class: 'opt', tabindex: '-1', 'aria-pressed': 'false', onclick: () => pick('tie') },
      h('kbd', {}, '3'), h('span', {}, 'Tie')) : null,
    h('button', { type: 'button', class: 'opt', tabindex: '-1', 'aria-pressed': 'false', onclick: () => pick('B') },
      h('kbd', {}, '2'), h('span', {}, 'B is better')),
  ].filter(Boolean);
  const el = h('div', { class: 'pairwise' }, promptEl, h('div', { class: 'responses' }, cards),
    h('div', { class: 'options center' }, buttons));

  function pick(c) {
    choice = c;
    render();
    env.changed({ advance: true });
  }
  function render() {
    const names = ['A', ...(q.allow_ties ? ['tie'] : []), 'B'];
    buttons.forEach((btn, i) => btn.setAttribute('aria-pressed', String(names[i] === choice)));
    cards.forEach((card) => card.classList.toggle('winner', card.dataset.side === choice));
  }
  return {
    el,
    getValue() {
      if (choice === null) return null;
      const order = choice === 'B' ? [b.id, a.id] : [a.id, b.id];
      if (!q.allow_ties) return order;
      return choice === 'tie' ? [[a.id, b.id].sort()] : order.map((id) => [id]);
    },
    setValue(v) {
      choice = null;
      if (Array.isArray(v) && v.length) {
        const first = v[0];
        if (Array.isArray(first)) choice = first.length === 2 ? 'tie' : String(first[0]) === a.id ? 'A' : 'B';
        else choice = String(first) === a.id ? 'A' : String(first) === b.id ? 'B' : null;
        if (choice === 'tie' && !q.allow_ties) choice = null;
      }
      render();
    },
    isComplete: () => choice !== null,
    keydown(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      const key = e.key.toLowerCase();
      if (key === '1' || key === 'a') pick('A');
      else if (key === '2' || key === 'b') pick('B');
      else if ((key === '3' || key === 't') && q.allow_ties) pick('tie');
      else return false;
      return true;
    },
    focus() {},
    hints: [['1 or A', 'response A is better'], ['2 or B', 'response B is better'], ...(q.allow_ties ? [['3 or T', 'a tie']] : [])],
    consumes,
  };
}

function list(q, candidates, promptEl, consumes, env) {
  let order = candidates.map((_, i) => i);
  let tied = candidates.map(() => false); // tied[k]: position k ties with position k - 1
  let touched = false;
  let selected = 0;
  let dragFrom = null;
  const ol = h('ol', { class: 'ranking-list' });
  const confirm = h('button', { type: 'button', tabindex: '-1', onclick: () => { touched = true; render(); env.changed({ advance: true }); } },
    h('kbd', {}, 'C'), ' This order is right');
  const el = h('div', { class: 'ranking' }, promptEl, h('p', { class: 'muted small' },
    'Best first. Drag to reorder, or select with a number key and move with ↑ ↓.'), ol, confirm);

  function move(from, to) {
    if (to < 0 || to >= order.length || from === to) return;
    const [c] = order.splice(from, 1);
    order.splice(to, 0, c);
    const [t] = tied.splice(from, 1);
    tied.splice(to, 0, t);
    tied[0] = false;
    selected = to;
    touched = true;
    render();
    env.changed({ advance: false });
  }

  function render() {
    clear(ol);
    let rank = 0;
    order.forEach((ci, pos) => {
      if (!tied[pos]) rank = pos + 1;
      const li = h('li', { class: `rank-card card${pos === selected ? ' selected' : ''}${tied[pos] ? ' tied' : ''}`,
        draggable: 'true', dataset: { pos: String(pos), id: candidates[ci].id } },
      h('span', { class: 'rank-pos' }, pos < 9 ? h('kbd', {}, String(pos + 1)) : null, ` #${rank}`),
      h('div', { class: 'markdown rank-text' }, renderMarkdown(candidates[ci].text)),
      h('span', { class: 'rank-buttons' },
        h('button', { type: 'button', tabindex: '-1', title: 'Move up', 'aria-label': 'Move up', onclick: () => move(pos, pos - 1) }, '↑'),
        h('button', { type: 'button', tabindex: '-1', title: 'Move down', 'aria-label': 'Move down', onclick: () => move(pos, pos + 1) }, '↓'),
        q.allow_ties && pos > 0 ? h('button', { type: 'button', tabindex: '-1', title: 'Tie with the one above', 'aria-pressed': String(tied[pos]),
          onclick: () => toggleTie(pos) }, '=') : null));
      li.addEventListener('click', () => { selected = pos; render(); });
      li.addEventListener('dragstart', (e) => { dragFrom = pos; e.dataTransfer.effectAllowed = 'move'; e.dataTransfer.setData('text/plain', String(pos)); });
      li.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'move'; });
      li.addEventListener('drop', (e) => {
        e.preventDefault();
        const from = dragFrom ?? Number(e.dataTransfer.getData('text/plain'));
        dragFrom = null;
        move(from, pos);
      });
      ol.appendChild(li);
    });
    confirm.classList.toggle('done', touched);
  }

  function toggleTie(pos) {
    if (pos <= 0) return;
    tied[pos] = !tied[pos];
    touched = true;
    render();
    env.changed({ advance: false });
  }

  render();
  return {
    el,
    getValue() {
      if (!touched) return null;
      const ids = order.map((ci) => candidates[ci].id);
      if (!q.allow_ties) return ids;
      const groups = [];
      ids.forEach((id, pos) => (tied[pos] && groups.length ? groups[groups.length - 1].push(id) : groups.push([id])));
      return groups;
    },
    setValue(v) {
      touched = false;
      if (!Array.isArray(v)) { render(); return; }
      const groups = q.allow_ties ? v.filter(Array.isArray) : v.map((id) => [id]);
      const ids = groups.flat().map(String);
      const positions = ids.map((id) => candidates.findIndex((c) => c.id === id));
      if (positions.length === candidates.length && positions.every((p) => p >= 0) && new Set(positions).size === positions.length) {
        order = positions;
        tied = [];
        groups.forEach((g) => g.forEach((_, k) => tied.push(k > 0)));
        touched = true;
      }
      render();
    },
    isComplete: () => touched,
    keydown(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      const n = digitOf(e);
      if (n && n <= order.length) {
        selected = n - 1;
        render();
        return true;
      }
      if (e.key === 'ArrowUp' || e.key === 'k') { move(selected, selected - 1); return true; }
      if (e.key === 'ArrowDown' || e.key === 'j') { move(selected, selected + 1); return true; }
      if (e.key === 'c' || e.key === 'C') { touched = true; render(); env.changed({ advance: true }); return true; }
      if (e.key === '=' && q.allow_ties) { toggleTie(selected); return true; }
      return false;
    },
    focus() {},
    hints: [['1–9', 'select the candidate at that position'], ['↑ ↓ (k j)', 'move the selected candidate'],
      ['C', 'confirm the order as shown'], ...(q.allow_ties ? [['=', 'tie the selected candidate with the one above']] : [])],
    consumes,
  };
}
