// The annotate workspace: lease an item, show it, collect the answer, submit, repeat.
// The next item is leased in the background while the annotator works on the current one,
// so submit -> next item costs one POST and a render, not two round trips.

import { api, ApiError, csrfToken } from './api.js';
import { clear, formatDuration, h, isTyping, setImageHosts } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { createItemImage, createMediaView } from './media.js';
import { createWidget } from './widgets/index.js';

const config = JSON.parse(document.getElementById('workspace-data').textContent);
const base = `/projects/${config.id}`;
const questions = config.label_schema.questions;
const maxLeases = config.settings.max_leases_per_annotator || 1;
setImageHosts(config.media_http_hosts);
const $ = (id) => document.getElementById(id);

const ui = {
  start: $('ws-start'), startButton: $('start-button'), task: $('ws-task'), item: $('ws-item'),
  form: $('ws-questions'), errors: $('ws-errors'), message: $('ws-message'), failure: $('ws-failure'), mode: $('ws-mode'),
  predictionNote: $('ws-prediction-note'), submit: $('submit-button'), skip: $('skip-button'),
  historyButton: $('history-button'), history: $('ws-history'), historyList: $('history-list'),
  historyMore: $('history-more'), historyClose: $('history-close'), countdown: $('lease-countdown'),
  today: $('stat-today'), streak: $('stat-streak'), instructions: $('instructions'),
  instructionsBody: $('instructions-body'), shortcuts: $('shortcuts'), shortcutsTable: $('shortcuts-table'),
};

const state = {
  mode: 'start', // start | task | edit | history | empty | busy
  lease: null, // the lease being answered
  leaseView: null, // its rendered view (kept while browsing history)
  view: null, // the view on screen: {root, widgets, active, shownAt, readOnly}
  prefetch: null, // Promise<lease|null> of the next lease
  editing: null, // the answer being edited
  historyAfter: null,
  submitting: false,
  started: false,
  inflight: Promise.resolve(), // answers sent but not yet acknowledged
  answeredDays: new Map(), // 'YYYY-MM-DD' -> answers that day
};

// Exposed for the browser tests' timing; never read by the page itself.
window.__goldlabel = { transitions: [] };

// ---------------------------------------------------------------------------------------
// Rendering an item and its questions

const GENERIC_IMAGE_FIELDS = new Set(['image', 'image_url', 'img', 'picture', 'url']);

// The item's fields the questions do not show themselves: media get their viewer (view.media,
// which also takes the keys the active question leaves), the rest is shown as text.
function renderItemData(view, data, consumed, onFailed) {
  const box = h('div', { class: 'item-data', 'data-testid': 'item-data' });
  data = data || {};
  // Fields a viewer reads (the PDF's page count, the video's frame rate) are not repeated.
  const hidden = new Set(consumed);
  if (typeof data.pdf === 'string') hidden.add('pages');
  if (typeof data.video === 'string') hidden.add('fps');
  const fields = Object.keys(data).filter((k) => !hidden.has(k));
  for (const key of fields) {
    const value = data[key];
    const label = fields.length > 1 || key !== 'text' ? h('div', { class: 'field-name' }, key) : null;
    let body;
    const viewer = createMediaView(key, value, data, { onFailed })
      || (typeof value === 'string' && GENERIC_IMAGE_FIELDS.has(key) ? createItemImage(key, value, onFailed) : null);
    if (viewer) {
      view.media.push(viewer);
      if (key === 'messages') view.chat = viewer;
      body = viewer.el;
    } else if (typeof value === 'string') {
      body = h('div', { class: 'field-text' }, value);
    } else if (value !== null && typeof value === 'object') {
      body = h('pre', { class: 'field-json' }, JSON.stringify(value, null, 2));
    } else {
      body = h('div', { class: 'field-text' }, String(value));
    }
    box.appendChild(h('div', { class: 'field', dataset: { field: key } }, label, body));
  }
  return fields.length ? box : null;
}

// The clock a timestamped note reads: the item's audio or video player, if any.
function playerOf(view) {
  return view.media.find((m) => typeof m.time === 'function') || null;
}

function buildView(item, value, { readOnly = false } = {}) {
  const view = { root: h('div', { class: 'view' }), widgets: [], cards: [], media: [], chat: null, active: 0,
    shownAt: performance.now(), readOnly };
  view.notice = h('div', { class: 'media-failed', role: 'alert', 'data-testid': 'media-failed', hidden: true },
    h('p', { class: 'media-failed-text' }),
    readOnly ? null : h('button', { type: 'button', class: 'report-media', 'data-testid': 'report-media',
      onclick: () => reportMedia() }, 'Report broken image'));
  view.root.appendChild(view.notice);
  const failed = (what = 'image') => onMediaFailed(view, typeof what === 'string' ? what : 'image');
  const env = (index) => ({ changed: ({ advance }) => onChanged(view, index, advance), mediaFailed: failed });
  const consumed = new Set();
  questions.forEach((q, i) => {
    const widget = createWidget(q, item, env(i));
    widget.consumes.forEach((f) => consumed.add(f));
    if (value && value[q.name] !== undefined && value[q.name] !== null) widget.setValue(value[q.name]);
    view.widgets.push(widget);
    const card = h('fieldset', { class: 'question card', dataset: { question: q.name, kind: q.kind } },
      h('legend', {}, q.title || q.name, q.required ? null : h('span', { class: 'muted small' }, ' (optional)')),
      q.description ? h('div', { class: 'muted markdown' }, renderMarkdown(q.description)) : null,
      widget.el, h('div', { class: 'question-error', role: 'alert' }));
    card.addEventListener('pointerdown', () => setActive(view, i));
    view.cards.push(card);
  });
  const dataBox = renderItemData(view, item.data, consumed, failed);
  if (dataBox) view.root.appendChild(dataBox);
  view.cards.forEach((c, i) => {
    // A question about one turn of a chat transcript sits under that turn.
    const slot = view.chat && Number.isInteger(questions[i].turn) ? view.chat.slot(questions[i].turn) : null;
    (slot || view.root).appendChild(c);
  });
  const player = playerOf(view);
  if (player) view.widgets.forEach((w) => w.enableTimestamps && w.enableTimestamps(player.time));
  if (readOnly) view.root.classList.add('read-only');
  setActive(view, 0, false);
  return view;
}

// The item's image failed to load or its source is refused: nothing on it can be answered
// truthfully, so submitting is off for this view (Skip and Release stay).
function onMediaFailed(view, what) {
  view.mediaFailed = true;
  view.notice.firstChild.textContent = `The ${what} could not be loaded: this item cannot be answered. Skip it, or report it to the project's reviewers.`;
  view.notice.hidden = false;
  if (view === state.view) syncSubmit();
}

function syncSubmit() {
  const view = state.view;
  ui.submit.disabled = !view || view.readOnly || Boolean(view.mediaFailed);
}

function setActive(view, index, focus = true) {
  view.active = Math.max(0, Math.min(questions.length - 1, index));
  view.cards.forEach((c, i) => c.classList.toggle('active', i === view.active));
  if (focus && view === state.view) view.widgets[view.active].focus();
}

function onChanged(view, index, advance) {
  view.cards[index].classList.remove('has-error');
  view.cards[index].querySelector('.question-error').textContent = '';
  ui.errors.hidden = true;
  if (advance && index === view.active && index + 1 < questions.length) setActive(view, index + 1);
}

function showView(view) {
  state.view = view;
  clear(ui.item).appendChild(view.root);
  ui.task.hidden = false;
  ui.errors.hidden = true;
  // A control outside the new view (the history entry just clicked, now hidden; "My answers")
  // must not keep the focus: Enter on a focused button is left to the button, not submit.
  const active = document.activeElement;
  if (active instanceof HTMLElement && active !== document.body && !ui.item.contains(active)) active.blur();
  view.widgets[view.active].focus();
}

function predictionFor(item) {
  if (!config.settings.show_predictions || !item.predictions || !item.predictions.length) return null;
  return [...item.predictions].sort((a, b) => (b.score ?? -1) - (a.score ?? -1))[0];
}

// ---------------------------------------------------------------------------------------
// The lease loop

function showMessage(text, actions = []) {
  clear(ui.message).appendChild(h('p', {}, text));
  if (actions.length) ui.message.appendChild(h('div', { class: 'ws-actions' }, actions));
  ui.message.hidden = false;
}

function hideMessage() {
  ui.message.hidden = true;
}

function showLease(lease) {
  state.lease = lease;
  state.mode = 'task';
  const prediction = predictionFor(lease.item);
  const view = buildView(lease.item, prediction ? prediction.value : null);
  state.leaseView = view;
  ui.predictionNote.hidden = !prediction;
  if (prediction) {
    const by = prediction.model_version ? ` from ${prediction.model_version}` : '';
    const score = typeof prediction.score === 'number' ? ` (score ${prediction.score.toFixed(2)})` : '';
    ui.predictionNote.textContent = `Pre-filled with a model prediction${by}${score}: check it and correct what is wrong.`;
  }
  ui.mode.hidden = true;
  ui.submit.firstChild.textContent = 'Submit ';
  ui.submit.disabled = false;
  ui.skip.hidden = false;
  ui.start.hidden = true;
  ui.history.hidden = true;
  hideMessage();
  showView(view);
  syncSubmit();
  tickCountdown();
}

function clearLease() {
  state.lease = null;
  state.leaseView = null;
  ui.task.hidden = true;
  ui.countdown.hidden = true;
}

function prefetchNext() {
  if (maxLeases < 2 || state.prefetch) return;
  const current = state.lease;
  state.prefetch = api(`${base}/next`, { method: 'POST' }).then((lease) => {
    // Holding the maximum of leases, the server hands back the oldest one with a new token.
    if (lease && current && lease.item.id === current.item.id) {
      current.token = lease.token;
      return null;
    }
    return lease;
  }).catch(() => null);
}

async function takePrefetched() {
  if (!state.prefetch) return null;
  const lease = await state.prefetch;
  state.prefetch = null;
  if (lease && lease.expires_at - Date.now() < 10_000) {
    releaseLease(lease);
    return null;
  }
  return lease;
}

async function advance({ prefetch = true } = {}) {
  state.mode = 'busy';
  state.started = true;
  let lease = await takePrefetched();
  try {
    if (!lease) {
      // Answers still travelling may start a prefetch when they land (see submitLease): wait
      // for them and take that lease rather than asking for yet another one.
      await state.inflight;
      lease = await takePrefetched();
    }
    if (!lease) lease = await api(`${base}/next`, { method: 'POST' });
  } catch (err) {
    clearLease();
    state.mode = 'empty';
    showMessage(`Could not get the next item: ${err.message}`, [retryButton()]);
    return false;
  }
  if (!lease) {
    clearLease();
    state.mode = 'empty';
    ui.start.hidden = true;
    showMessage('No items need your answer right now. Thank you! New work may arrive later.', [retryButton()]);
    return false;
  }
  showLease(lease);
  if (prefetch) prefetchNext();
  return true;
}

function retryButton() {
  return h('button', { type: 'button', class: 'primary', onclick: () => advance() }, 'Check again ', h('kbd', {}, 'R'));
}

function collectAnswer(view) {
  const value = {};
  const missing = [];
  questions.forEach((q, i) => {
    const w = view.widgets[i];
    if (!w.isComplete()) {
      if (q.required) missing.push(i);
      return;
    }
    const v = w.getValue();
    if (v !== null && v !== undefined) value[q.name] = v;
  });
  return { value, missing };
}

function showErrors(view, problem) {
  const general = [];
  for (const err of problem.errors || []) {
    const qi = questions.findIndex((q) => q.name === (err.loc || [])[1]);
    if (qi >= 0) {
      view.cards[qi].classList.add('has-error');
      view.cards[qi].querySelector('.question-error').textContent = err.message;
    } else general.push(err.message);
  }
  if (general.length || !(problem.errors || []).length) {
    clear(ui.errors).appendChild(document.createTextNode([problem.message || problem.detail, ...general].filter(Boolean).join(' · ')));
    ui.errors.hidden = false;
  }
}

async function submit() {
  const view = state.view;
  if (state.submitting || !view || view.readOnly || view.mediaFailed) return;
  const { value, missing } = collectAnswer(view);
  if (missing.length) {
    missing.forEach((i) => {
      view.cards[i].classList.add('has-error');
      view.cards[i].querySelector('.question-error').textContent = 'This question needs an answer.';
    });
    setActive(view, missing[0]);
    return;
  }
  state.submitting = true;
  try {
    if (state.mode === 'edit') await saveEdit(view, value);
    else await submitLease(view, value);
  } finally {
    state.submitting = false;
  }
}

async function saveEdit(view, value) {
  try {
    await api(`${base}/my-answers/${state.editing.id}`, { method: 'PUT', body: { value } });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    showErrors(view, err);
    return;
  }
  state.editing.value = value;
  await openHistory(`Answer #${state.editing.id} saved.`);
}

async function submitLease(view, value) {
  const started = performance.now();
  const lease = state.lease;
  const body = { lease_token: lease.token, value, duration_ms: Math.round(performance.now() - view.shownAt) };
  // keepalive: the answer still arrives if the page is closed right after submitting.
  const keepalive = JSON.stringify(body).length < 60_000;
  const post = () => api(`${base}/answers`, { method: 'POST', body, keepalive });
  if (maxLeases < 2) {
    // One live lease: the server would hand the same item back while the answer travels.
    try {
      await post();
    } catch (err) {
      submitFailed(err, lease, view);
      return;
    }
    countAnswer(Date.now());
    if (await advance()) recordTransition(started);
    return;
  }
  // Optimistic: show the prefetched next item while the answer travels. The annotator may go on
  // at once; the next prefetch waits until the server has the answer, so the answered lease is
  // not counted among the ones held.
  const pending = post().then(() => countAnswer(Date.now()), (err) => submitFailed(err, lease, view));
  state.inflight = Promise.all([state.inflight, pending]);
  if (await advance({ prefetch: false })) recordTransition(started);
  pending.then(() => prefetchNext());
}

function recordTransition(started) {
  // Measured to the frame after the next item is in the DOM: what the annotator sees.
  requestAnimationFrame(() => setTimeout(() => window.__goldlabel.transitions.push(performance.now() - started), 0));
}

function submitFailed(err, lease, view) {
  if (!(err instanceof ApiError)) {
    err = new ApiError(0, { detail: `the server could not be reached (${err.message})`, code: 'network' });
  }
  const gone = ['lease_expired', 'max_overlap_reached', 'lease_skipped', 'not_found', 'item_deleted']
    .includes(err.code);
  const reason = err.code === 'lease_expired'
    ? 'the lease expired and the item no longer needs your answer'
    : err.code === 'item_deleted' ? 'a manager deleted the item' : err.message;
  clear(ui.failure).appendChild(h('p', {}, `Your answer to the previous item was not saved: ${reason}.`));
  if (!gone) {
    ui.failure.appendChild(h('div', { class: 'ws-actions' }, h('button', { type: 'button', class: 'primary',
      onclick: () => goBackTo(lease, view, err) }, 'Go back to it')));
  }
  ui.failure.hidden = false;
}

function goBackTo(lease, view, err) {
  // The item shown meanwhile stays leased: it becomes the prefetched next item again.
  if (state.lease && state.lease !== lease) {
    if (state.prefetch) releaseLease(state.lease);
    else state.prefetch = Promise.resolve(state.lease);
  }
  state.lease = lease;
  state.leaseView = view;
  state.mode = 'task';
  hideMessage();
  ui.failure.hidden = true;
  ui.start.hidden = true;
  showView(view);
  showErrors(view, err);
  tickCountdown();
}

async function skip() {
  if (state.mode !== 'task' || !state.lease || state.submitting) return;
  state.submitting = true;
  try {
    await api(`${base}/skip`, { method: 'POST', body: { lease_token: state.lease.token } });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err; // an expired or lost lease needs no skip
  } finally {
    state.submitting = false;
  }
  await advance();
}

// The item's media failed to load: report it (it goes to review, flagged media_broken, and the
// lease is skipped: it is not shown to this annotator again), then go on.
async function reportMedia() {
  if (state.mode !== 'task' || !state.lease || state.submitting) return;
  state.submitting = true;
  try {
    await api(`${base}/items/${encodeURIComponent(state.lease.item.id)}/report`, { method: 'POST',
      body: { reason: 'media_broken', lease_token: state.lease.token } });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err; // a lost lease: the item is someone else's now
  } finally {
    state.submitting = false;
  }
  await advance();
}

function releaseLease(lease) {
  // keepalive lets the request outlive the page (fetch can carry the CSRF header; a beacon cannot).
  fetch(`/api/v1${base}/release`, { method: 'POST', keepalive: true, credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify({ lease_token: lease.token }) }).catch(() => {});
}

window.addEventListener('pagehide', () => {
  // Hand held items back so nobody waits for the lease to expire.
  if (state.lease) releaseLease(state.lease);
  if (state.prefetch) state.prefetch.then((lease) => lease && releaseLease(lease));
});

// ---------------------------------------------------------------------------------------
// Countdown and progress

function tickCountdown() {
  if (!state.lease || state.mode === 'history' || state.mode === 'edit') {
    if (!state.lease) ui.countdown.hidden = true;
    return;
  }
  const left = state.lease.expires_at - Date.now();
  ui.countdown.hidden = false;
  ui.countdown.textContent = left > 0 ? `lease ${formatDuration(left)}` : 'lease expired';
  ui.countdown.classList.toggle('warn', left < 60_000);
  if (left <= 0 && ui.message.hidden && state.mode === 'task') {
    showMessage('The lease on this item expired. You can still submit: the answer is kept if the item still needs it.');
  }
}
setInterval(tickCountdown, 1000);

function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function countAnswer(ms) {
  const key = dayKey(ms);
  state.answeredDays.set(key, (state.answeredDays.get(key) || 0) + 1);
  renderProgress();
}

function renderProgress() {
  const today = new Date();
  ui.today.textContent = String(state.answeredDays.get(dayKey(today.getTime())) || 0);
  // Days in a row with answers, ending today (or yesterday, when today has none yet).
  let streak = 0;
  const day = new Date(today.getFullYear(), today.getMonth(), today.getDate());
  if (!state.answeredDays.has(dayKey(day.getTime()))) day.setDate(day.getDate() - 1);
  while (state.answeredDays.has(dayKey(day.getTime()))) {
    streak++;
    day.setDate(day.getDate() - 1);
  }
  ui.streak.textContent = String(streak);
}

async function loadProgress() {
  // One page of recent answers (the largest the server allows) is enough for today and streak.
  try {
    const page = await api(`${base}/my-answers`, { query: { limit: 1000 } });
    for (const a of page.items) {
      const key = dayKey(a.created_at);
      state.answeredDays.set(key, (state.answeredDays.get(key) || 0) + 1);
    }
  } catch {
    // progress is a nicety; the workspace works without it
  }
  renderProgress();
}

// ---------------------------------------------------------------------------------------
// My answers: look back, edit while the item is open

function summarize(value) {
  return questions.filter((q) => value[q.name] !== undefined).map((q) => {
    const v = value[q.name];
    if (q.kind === 'spans' || q.kind === 'boxes') return `${q.name}: ${v.length} ${q.kind === 'spans' ? 'span' : 'box'}${v.length === 1 ? '' : q.kind === 'spans' ? 's' : 'es'}`;
    if (q.kind === 'polygons' || q.kind === 'keypoints') return `${q.name}: ${v.length} ${q.kind === 'polygons' ? 'polygon' : 'instance'}${v.length === 1 ? '' : 's'}`;
    if (Array.isArray(v)) return `${q.name}: ${v.flat().join(q.kind === 'ranking' ? ' > ' : ', ')}`;
    const text = String(v);
    return `${q.name}: ${text.length > 60 ? text.slice(0, 60) + '…' : text}`;
  }).join(' · ');
}

function preview(item) {
  const data = item.data || {};
  const first = ['text', 'prompt', 'title'].map((k) => data[k]).find((v) => typeof v === 'string') ||
    Object.values(data).find((v) => typeof v === 'string') || `item ${String(item.id).slice(0, 8)}`;
  return first.length > 90 ? first.slice(0, 90) + '…' : first;
}

async function openHistory(notice = null) {
  if (state.mode === 'busy') return;
  state.mode = 'history';
  state.editing = null;
  ui.task.hidden = true;
  ui.start.hidden = true;
  hideMessage();
  ui.history.hidden = false;
  clear(ui.historyList);
  if (notice) ui.historyList.appendChild(h('li', { class: 'notice' }, notice));
  state.historyAfter = null;
  await loadHistoryPage();
  const first = ui.historyList.querySelector('button');
  if (first) first.focus();
}

async function loadHistoryPage() {
  const query = { limit: 20 };
  if (state.historyAfter) query.after = state.historyAfter;
  let page;
  try {
    page = await api(`${base}/my-answers`, { query });
  } catch (err) {
    ui.historyList.appendChild(h('li', { class: 'notice' }, `Could not load your answers: ${err.message}`));
    return;
  }
  if (!page.items.length && !state.historyAfter) ui.historyList.appendChild(h('li', { class: 'notice' }, 'No answers yet.'));
  for (const answer of page.items) {
    const editable = answer.item_status === 'open';
    ui.historyList.appendChild(h('li', {},
      h('button', { type: 'button', class: 'history-entry', dataset: { answerId: String(answer.id) }, onclick: () => openEdit(answer) },
        h('span', { class: 'history-preview' }, preview(answer.item)),
        h('span', { class: 'muted small' }, summarize(answer.value)),
        h('span', { class: `badge ${editable ? 'open' : 'closed'}` }, editable ? 'editable' : answer.item_status.replace('_', ' ')))));
  }
  state.historyAfter = page.next_after;
  ui.historyMore.hidden = !page.next_after;
}

function openEdit(answer) {
  state.mode = 'edit';
  state.editing = answer;
  const readOnly = answer.item_status !== 'open';
  ui.history.hidden = true;
  ui.predictionNote.hidden = true;
  ui.mode.hidden = false;
  ui.mode.textContent = readOnly
    ? `Your answer #${answer.id}. The item is ${answer.item_status.replace('_', ' ')}: the answer can no longer change.`
    : `Editing your answer #${answer.id}. Enter saves, Esc goes back.`;
  ui.submit.firstChild.textContent = 'Save changes ';
  ui.submit.disabled = readOnly;
  ui.skip.hidden = true;
  showView(buildView(answer.item, answer.value, { readOnly }));
  syncSubmit();
}

function backToWork() {
  ui.history.hidden = true;
  ui.mode.hidden = true;
  if (state.leaseView && state.lease) {
    state.mode = 'task';
    ui.submit.firstChild.textContent = 'Submit ';
    ui.submit.disabled = false;
    ui.skip.hidden = false;
    ui.predictionNote.hidden = !predictionFor(state.lease.item);
    showView(state.leaseView);
    syncSubmit();
    tickCountdown();
  } else if (state.started) {
    advance();
  } else {
    state.mode = 'start';
    ui.start.hidden = false;
    ui.startButton.focus();
  }
}

// ---------------------------------------------------------------------------------------
// Keyboard

const GLOBAL_SHORTCUTS = [
  ['Enter', 'submit (or save an edited answer)'], ['S', 'skip this item (it is not shown to you again)'],
  ['H', 'my previous answers'], ['Esc', 'back'], ['] [', 'next / previous question'],
  ['I', 'show / hide the instructions'], ['R', 'check again for work (when the queue was empty)'], ['?', 'this list'],
];

// T: the current time of the item's audio or video goes into the active text question (or
// the first one), where the annotator goes on typing the note.
function insertTime(view) {
  const player = playerOf(view);
  if (!player) return false;
  const at = view.widgets[view.active].insertText ? view.active : view.widgets.findIndex((w) => w.insertText);
  if (at < 0) return false;
  setActive(view, at, false);
  view.widgets[at].insertText(`[${player.time()}] `);
  return true;
}

function openShortcuts() {
  clear(ui.shortcutsTable);
  const view = state.view;
  const rows = [...GLOBAL_SHORTCUTS];
  if (view && (state.mode === 'task' || state.mode === 'edit')) {
    const q = questions[view.active];
    rows.push([`— ${q.title || q.name} (${q.kind})`, '']);
    rows.push(...view.widgets[view.active].hints);
    for (const m of view.media) if (m.hints.length) rows.push(['— the item', ''], ...m.hints);
  }
  for (const [keys, what] of rows) {
    ui.shortcutsTable.appendChild(h('tr', {}, h('th', {}, keys), h('td', {}, what)));
  }
  ui.shortcuts.showModal();
}

document.addEventListener('keydown', (e) => {
  if (ui.shortcuts.open) return; // the dialog closes itself on Esc
  if (e.key === '?' && !isTyping(e)) {
    e.preventDefault();
    openShortcuts();
    return;
  }
  const mode = state.mode;
  if (mode === 'task' || mode === 'edit') {
    if (isTyping(e)) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit();
      } else if (e.key === 'Escape') {
        e.target.blur();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const view = state.view;
    if (view && !view.readOnly && view.widgets[view.active].keydown(e)) {
      e.preventDefault();
      return;
    }
    // Then the item's viewers (zoom, play, pages), which work in a read-only view too.
    if (view && view.media.some((m) => m.keydown(e))) {
      e.preventDefault();
      return;
    }
    if ((e.key === 't' || e.key === 'T') && view && !view.readOnly && insertTime(view)) {
      e.preventDefault();
      return;
    }
    const onButton = e.target instanceof HTMLButtonElement && !e.target.classList.contains('opt');
    switch (e.key) {
      case 'Enter':
        if (onButton) return; // a focused button (Skip, History) does its own thing
        e.preventDefault();
        submit();
        return;
      case 's': case 'S':
        if (mode === 'task') { e.preventDefault(); skip(); }
        return;
      case 'h': case 'H':
        e.preventDefault();
        openHistory();
        return;
      case 'Escape':
        if (mode === 'edit') openHistory();
        return;
      case ']':
        setActive(view, view.active + 1);
        return;
      case '[':
        setActive(view, view.active - 1);
        return;
      case 'i': case 'I':
        ui.instructions.open = !ui.instructions.open;
        return;
      default:
    }
    return;
  }
  if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (mode === 'history' && e.key === 'Escape') {
    e.preventDefault();
    backToWork();
  } else if (mode === 'empty' && (e.key === 'r' || e.key === 'R')) {
    e.preventDefault();
    advance();
  } else if ((mode === 'empty' || mode === 'start') && (e.key === 'h' || e.key === 'H')) {
    e.preventDefault();
    openHistory();
  } else if (e.key === 'i' || e.key === 'I') {
    ui.instructions.open = !ui.instructions.open;
  }
});

// ---------------------------------------------------------------------------------------
// Start

if (config.instructions && config.instructions.trim()) {
  ui.instructionsBody.appendChild(renderMarkdown(config.instructions));
} else {
  ui.instructions.hidden = true;
}
ui.startButton.addEventListener('click', () => advance());
ui.submit.addEventListener('click', () => submit());
ui.skip.addEventListener('click', () => skip());
ui.historyButton.addEventListener('click', () => openHistory());
ui.historyClose.addEventListener('click', () => backToWork());
ui.historyMore.addEventListener('click', () => loadHistoryPage());
ui.startButton.focus();
loadProgress();
