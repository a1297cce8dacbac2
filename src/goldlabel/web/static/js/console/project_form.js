// Create or edit a project: the label schema editor (JSON, or a small form that adds questions)
// with a live preview of the annotator view built from the workspace's own widgets.

import { api } from '../api.js';
import { clear, h, safeImageUrl } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { createWidget } from '../widgets/index.js';
import { $, flash, hideError, readJson, showError } from './common.js';

const config = readJson('project-form-data');
const form = $('project-form');
const schemaBox = $('schema-json');
const sampleBox = $('sample-json');
const schemaErrors = $('schema-errors');
const preview = $('preview');
const instructions = form.elements.instructions;

const SAMPLE_TEXT = 'The battery easily lasts two days, but the camera is disappointing in low light.';
const SAMPLE_IMAGE = 'data:image/svg+xml;base64,' + btoa(
  '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="300" viewBox="0 0 480 300">' +
  '<rect width="480" height="300" fill="#cfe3f3"/><rect y="200" width="480" height="100" fill="#8a8f98"/>' +
  '<rect x="50" y="140" width="170" height="70" rx="14" fill="#c0392b"/><circle cx="90" cy="215" r="18" fill="#222"/>' +
  '<circle cx="180" cy="215" r="18" fill="#222"/><circle cx="330" cy="110" r="20" fill="#f1c27d"/>' +
  '<rect x="310" y="132" width="40" height="80" rx="8" fill="#2e86c1"/></svg>');

schemaBox.value = JSON.stringify(config.label_schema, null, 2);
let sampleEdited = false;

const IMAGE_KINDS = ['boxes', 'polygons', 'keypoints'];
const LABELED_KINDS = ['choice', 'multi_choice', 'spans', ...IMAGE_KINDS];

// The server normalizes schemas; the preview fills in the defaults the widgets rely on.
function withDefaults(q) {
  const out = { required: true, ...q };
  if (q.kind === 'spans') out.source = q.source || 'text';
  if (IMAGE_KINDS.includes(q.kind)) Object.assign(out, { source: q.source || 'image', coordinates: q.coordinates || 'relative',
    width_field: q.width_field || 'width', height_field: q.height_field || 'height' });
  if (q.kind === 'keypoints' && (!q.skeletons || typeof q.skeletons !== 'object')) out.skeletons = {};
  if (q.kind === 'ranking' && !q.candidates) out.source = q.source || 'responses';
  if (q.kind === 'rating') Object.assign(out, { min: q.min ?? 1, max: q.max ?? 5, step: q.step === undefined ? 1 : q.step });
  if (q.kind === 'multi_choice') out.min_selections = q.min_selections || 0;
  if (!Array.isArray(out.labels) && LABELED_KINDS.includes(q.kind)) out.labels = [];
  return out;
}

function sampleFor(questions) {
  const data = { text: SAMPLE_TEXT };
  for (const q of questions) {
    if (q.kind === 'spans') data[q.source] = SAMPLE_TEXT;
    if (IMAGE_KINDS.includes(q.kind)) data[q.source] = SAMPLE_IMAGE;
    if (q.kind === 'ranking' && q.source) {
      data.prompt = 'Summarize the review in one sentence.';
      data[q.source] = ['Great battery, weak low-light camera.', 'The phone is **fine** overall.'];
    }
  }
  return data;
}

function parseSchema() {
  let schema;
  try {
    schema = JSON.parse(schemaBox.value);
  } catch (e) {
    return { error: `Not valid JSON: ${e.message}` };
  }
  if (!schema || !Array.isArray(schema.questions) || !schema.questions.length) {
    return { error: 'The schema needs a non-empty "questions" list.' };
  }
  for (const [i, q] of schema.questions.entries()) {
    if (!q || typeof q.name !== 'string' || !q.name) return { error: `Question ${i + 1} needs a "name".` };
    if (typeof q.kind !== 'string') return { error: `Question "${q.name}" needs a "kind".` };
  }
  return { schema };
}

function renderPreview() {
  const { schema, error } = parseSchema();
  if (error) {
    showError(schemaErrors, new Error(error));
    return;
  }
  hideError(schemaErrors);
  const questions = schema.questions.map(withDefaults);
  let data;
  if (sampleEdited) {
    try { data = JSON.parse(sampleBox.value); } catch { data = sampleFor(questions); }
  } else {
    data = sampleFor(questions);
    sampleBox.value = JSON.stringify(data, null, 2);
  }
  const item = { id: 0, data };
  const consumed = new Set();
  const cards = [];
  for (const q of questions) {
    let widget;
    try {
      widget = createWidget(q, item, { changed: () => {} });
    } catch (e) {
      cards.push(h('div', { class: 'alert error' }, `${q.name}: ${e.message}`));
      continue;
    }
    widget.consumes.forEach((f) => consumed.add(f));
    cards.push(h('fieldset', { class: 'question card', dataset: { question: q.name, kind: q.kind } },
      h('legend', {}, q.title || q.name, q.required === false ? h('span', { class: 'muted small' }, ' (optional)') : null),
      q.description ? h('div', { class: 'muted markdown' }, renderMarkdown(q.description)) : null,
      widget.el));
  }
  const fields = Object.keys(data || {}).filter((k) => !consumed.has(k));
  const dataBox = fields.length ? h('div', { class: 'item-data' }, fields.map((k) => {
    const v = data[k];
    const img = typeof v === 'string' && safeImageUrl(v) && /^(image|img|url|image_url)$/.test(k);
    return h('div', { class: 'field' }, h('div', { class: 'field-name' }, k),
      img ? h('img', { class: 'item-image', src: safeImageUrl(v), alt: k })
        : h('div', { class: 'field-text' }, typeof v === 'string' ? v : JSON.stringify(v)));
  })) : null;
  clear(preview).appendChild(h('div', { class: 'view' }, dataBox, cards));
}

function renderInstructions() {
  clear($('instructions-preview')).appendChild(renderMarkdown(instructions.value || '_No instructions yet._'));
}

// "Add a question": append to the JSON, which stays the single source of truth.
const kindSelect = $('q-kind');
function syncKindFields() {
  const kind = kindSelect.value;
  $('q-labels-row').hidden = !LABELED_KINDS.includes(kind);
  $('q-range-row').hidden = kind !== 'rating';
}
kindSelect.addEventListener('change', syncKindFields);
syncKindFields();

$('q-add').addEventListener('click', () => {
  const { schema, error } = parseSchema();
  const base = error ? { questions: [] } : schema;
  const name = $('q-name').value.trim();
  const kind = kindSelect.value;
  if (!name) {
    showError(schemaErrors, new Error('The new question needs a name.'));
    $('q-name').focus();
    return;
  }
  if (base.questions.some((q) => q.name === name)) {
    showError(schemaErrors, new Error(`There is already a question named "${name}".`));
    return;
  }
  const q = { name, kind };
  const title = $('q-title').value.trim();
  if (title) q.title = title;
  if (LABELED_KINDS.includes(kind)) {
    q.labels = $('q-labels').value.split(',').map((s) => s.trim()).filter(Boolean);
    if (!q.labels.length) {
      showError(schemaErrors, new Error('Add at least one label (comma-separated).'));
      return;
    }
  }
  if (kind === 'keypoints') {
    // A starting skeleton per label, to edit in the JSON (points in order, edges between them).
    q.skeletons = Object.fromEntries(q.labels.map((label) => [label,
      { points: ['head', 'left_hand', 'right_hand'], edges: [['head', 'left_hand'], ['head', 'right_hand']] }]));
  }
  if (kind === 'rating') {
    const m = /^\s*(-?\d+)\s*-\s*(-?\d+)\s*$/.exec($('q-range').value);
    if (m) Object.assign(q, { min: Number(m[1]), max: Number(m[2]) });
  }
  base.questions.push(q);
  schemaBox.value = JSON.stringify(base, null, 2);
  for (const id of ['q-name', 'q-title', 'q-labels']) $(id).value = '';
  renderPreview();
});

schemaBox.addEventListener('input', renderPreview);
sampleBox.addEventListener('input', () => { sampleEdited = true; renderPreview(); });
instructions.addEventListener('input', renderInstructions);

function numberField(name) {
  const v = form.elements[name].value;
  return v === '' ? undefined : Number(v);
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const errors = $('form-errors');
  hideError(errors);
  const { schema, error } = parseSchema();
  if (error) {
    showError(errors, new Error(error));
    return;
  }
  const settings = {
    target_confidence: numberField('target_confidence'),
    gold_rate: numberField('gold_rate'),
    qualification_gold: numberField('qualification_gold'),
    qualification_accuracy: numberField('qualification_accuracy'),
    suspend_below: numberField('suspend_below'),
    max_leases_per_annotator: numberField('max_leases_per_annotator'),
    show_predictions: form.elements.show_predictions.checked,
    // Blank: the default (half a step); null, not undefined, so an edit can clear it.
    gold_rating_tolerance: numberField('gold_rating_tolerance') ?? null,
  };
  for (const name of ['gold_multi_choice_min_jaccard', 'gold_ranking_min_tau', 'gold_spans_min_f1',
    'gold_spans_min_iou', 'gold_text_min_similarity', 'gold_boxes_min_f1', 'gold_boxes_min_iou',
    'gold_polygons_min_f1', 'gold_polygons_min_iou', 'gold_keypoints_min_f1', 'gold_keypoints_min_oks']) {
    settings[name] = numberField(name);
  }
  const body = {
    name: form.elements.name.value.trim(),
    description: form.elements.description.value,
    instructions: instructions.value,
    label_schema: schema,
    overlap_min: numberField('overlap_min'),
    overlap_max: numberField('overlap_max'),
    lease_ttl_s: numberField('lease_ttl_s'),
    settings,
  };
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    if (config.project_id) {
      await api(`/projects/${config.project_id}`, { method: 'PATCH', body });
      flash('Saved.');
    } else {
      const project = await api('/projects', { method: 'POST', body });
      window.location.assign(`/console/projects/${project.id}/import`);
    }
  } catch (e) {
    showError(errors, e);
  } finally {
    button.disabled = false;
  }
});

// Members (settings page only).
const memberForm = $('member-form');
if (memberForm) {
  memberForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const box = $('member-errors');
    hideError(box);
    const username = memberForm.elements.username.value.trim();
    try {
      const user = await findUser(username);
      if (!user) throw new Error(`No user named "${username}".`);
      await api(`/projects/${config.project_id}/members`, { method: 'PUT',
        body: { user_id: user.id, role: memberForm.elements.role.value } });
      window.location.reload();
    } catch (e) {
      showError(box, e);
    }
  });
  for (const button of document.querySelectorAll('[data-remove-member]')) {
    button.addEventListener('click', async () => {
      try {
        await api(`/projects/${config.project_id}/members/${button.dataset.removeMember}`, { method: 'DELETE' });
        button.closest('tr').remove();
      } catch (e) {
        showError($('member-errors'), e);
      }
    });
  }
}

async function findUser(username) {
  let after = 0;
  for (;;) {
    const page = await api('/users', { query: { limit: 1000, after } });
    const found = page.items.find((u) => u.username === username);
    if (found || page.next_after === null) return found || null;
    after = page.next_after;
  }
}

renderPreview();
renderInstructions();
