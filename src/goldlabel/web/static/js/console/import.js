// Upload a file to POST /api/v1/projects/{id}/imports with XMLHttpRequest (fetch cannot report
// upload progress), then show the import report: counts and a table of the bad rows.

import { csrfToken } from '../api.js';
import { clear, h } from '../dom.js';
import { $, formatBytes, readJson } from './common.js';

const config = readJson('import-data');
const form = $('import-form');
const bar = $('import-bar');
const percent = $('import-percent');
const phase = $('import-phase');

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const file = form.elements.file.files[0];
  if (!file) {
    showProblem({ detail: 'Choose a file to import first.' });
    return;
  }
  if (file.size > config.max_upload_bytes) {
    showProblem({ detail: `The file is ${formatBytes(file.size)}; the server accepts at most ${formatBytes(config.max_upload_bytes)}.` });
    return;
  }
  upload(file);
});

function upload(file) {
  const params = new URLSearchParams({ on_conflict: form.elements.on_conflict.value });
  if (form.elements.partial.checked) params.set('partial', 'true');
  // For a name that does not tell (no or another extension) the user picks the format.
  const format = form.elements.format.value;
  if (format) params.set('format', format);
  // Boxes of COCO and YOLO label the project's items as predictions or gold.
  if (format === 'coco' || format === 'yolo') params.set('target', form.elements.target.value);
  const body = new FormData();
  body.append('file', file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `/api/v1/projects/${config.project_id}/imports?${params}`);
  xhr.setRequestHeader('X-CSRF-Token', csrfToken());
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.responseType = 'json';
  $('import-progress').hidden = false;
  $('import-result').hidden = true;
  $('import-file-name').textContent = `${file.name} · ${formatBytes(file.size)}`;
  setProgress(0, 'Uploading…');
  form.querySelector('button[type=submit]').disabled = true;
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) setProgress(e.loaded / e.total, 'Uploading…');
  });
  xhr.upload.addEventListener('load', () => setProgress(1, 'Uploaded; checking and importing the rows…'));
  xhr.addEventListener('load', () => {
    form.querySelector('button[type=submit]').disabled = false;
    const data = xhr.response || {};
    if (xhr.status === 201) {
      setProgress(1, 'Done.');
      showReport(data, true);
    } else if (data.report) {
      setProgress(1, 'Rejected.');
      showReport(data.report, false, data.detail);
    } else {
      setProgress(0, '');
      showProblem(data.detail ? data : { detail: `The server answered HTTP ${xhr.status}.` });
    }
  });
  xhr.addEventListener('error', () => {
    form.querySelector('button[type=submit]').disabled = false;
    showProblem({ detail: 'The upload failed: the connection was lost.' });
  });
  xhr.send(body);
}

function setProgress(fraction, text) {
  bar.value = Math.round(fraction * 100);
  percent.textContent = `${Math.round(fraction * 100)}%`;
  phase.textContent = text;
}

function fact(summary, name, value) {
  summary.appendChild(h('dt', {}, name));
  summary.appendChild(h('dd', {}, String(value)));
}

function showReport(report, ok, detail) {
  $('import-result').hidden = false;
  const title = $('import-title');
  title.textContent = ok
    ? (report.error_count ? `Imported, with ${report.error_count} bad row(s) left out` : 'Imported')
    : 'Nothing was imported';
  title.className = ok ? 'ok' : 'error';
  const summary = clear($('import-summary'));
  if (detail) fact(summary, 'Why', detail);
  fact(summary, 'Format', report.format);
  fact(summary, 'Rows read', report.rows);
  fact(summary, 'Created', report.created);
  fact(summary, 'Updated', report.updated);
  fact(summary, 'Skipped (already there)', report.skipped);
  if (report.answers) fact(summary, 'Answers', report.answers);
  fact(summary, 'Errors', report.error_count);
  const table = $('import-errors');
  const body = clear(table.querySelector('tbody'));
  for (const e of report.errors || []) {
    body.appendChild(h('tr', {},
      h('td', { class: 'num' }, e.line ?? '–'),
      h('td', {}, h('code', {}, (e.loc || []).join('.') || '–')),
      h('td', {}, h('code', {}, e.code || '')),
      h('td', {}, e.message || '')));
  }
  if (report.error_count > (report.errors || []).length) {
    body.appendChild(h('tr', {}, h('td', { colspan: '4', class: 'muted' },
      `… and ${report.error_count - report.errors.length} more; fix these and upload again.`)));
  }
  table.hidden = !(report.errors || []).length;
  $('import-next').hidden = !ok;
}

function showProblem(problem) {
  $('import-result').hidden = false;
  $('import-title').textContent = 'Upload refused';
  $('import-title').className = 'error';
  const summary = clear($('import-summary'));
  fact(summary, 'Why', problem.detail);
  for (const e of problem.errors || []) fact(summary, (e.loc || []).join('.'), e.message);
  $('import-errors').hidden = true;
  $('import-next').hidden = true;
}
