// Item browser: bulk actions on the ticked items or on every item matching the filter, restore
// of deleted items, and the undo banner after a delete. Every change is a call to /api/v1.

import { api } from '../api.js';
import { $, flash, hideError, readJson, showError } from './common.js';

const data = readJson('items-data');
const pid = data.project_id;
const form = $('bulk-form');

function checks() {
  return [...document.querySelectorAll('input.item-check')];
}

function selectedIds() {
  return checks().filter((c) => c.checked).map((c) => Number(c.value));
}

function showCount() {
  const n = selectedIds().length;
  const box = $('bulk-selected');
  if (box) box.textContent = `${n} selected`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// Read the page again; after a delete with the undo banner's stamp and count.
function reload(extra = {}) {
  const url = new URL(window.location.href);
  url.searchParams.delete('undo');
  url.searchParams.delete('n');
  url.searchParams.delete('after');
  for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, String(v));
  window.location.assign(url.toString());
}

const all = $('select-all');
if (all) {
  all.addEventListener('change', () => {
    for (const c of checks()) c.checked = all.checked;
    showCount();
  });
}
for (const c of checks()) c.addEventListener('change', showCount);

if (form && !data.deleted_view) {
  const priorityLabel = form.querySelector('.bulk-priority');
  form.elements.action.addEventListener('change', () => {
    priorityLabel.hidden = form.elements.action.value !== 'priority';
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const box = $('bulk-errors');
    hideError(box);
    const action = form.elements.action.value;
    const scope = form.elements.scope.value;
    const body = { action };
    let what;
    if (scope === 'filter') {
      body.filter = data.filter;
      what = Object.keys(data.filter).length ? 'every item matching the filter (all pages)' : 'every item of the project';
    } else {
      const ids = selectedIds();
      if (!ids.length) {
        showError(box, new Error('Select items first, or choose "every item matching the filter".'));
        return;
      }
      body.item_ids = ids;
      what = plural(ids.length, 'selected item');
    }
    if (action === 'priority') {
      const value = Number.parseInt(form.elements.priority.value, 10);
      if (Number.isNaN(value)) {
        showError(box, new Error('Priority must be a whole number.'));
        return;
      }
      body.priority = value;
    }
    const verb = { review: 'Send to review', priority: `Set the priority to ${body.priority} of`, delete: 'Delete' }[action];
    const note = action === 'delete' ? '\n\nDeleted items can be restored for a while (Undo), then they are removed for good.' : '';
    if (!window.confirm(`${verb} ${what}?${note}`)) return;
    try {
      const res = await api(`/projects/${pid}/items/bulk`, { method: 'POST', body });
      if (action === 'delete') {
        reload({ undo: res.deleted_at, n: res.changed });
        return;
      }
      const done = action === 'review' ? 'sent to review' : 'given the new priority';
      flash(`${plural(res.matched, 'item')} matched, ${res.changed} ${done} (${plural(res.batches, 'batch')}).`);
      window.setTimeout(() => reload(), 1200);
    } catch (e) {
      showError(box, e);
    }
  });
}

const restore = $('restore-selected');
if (restore) {
  restore.addEventListener('click', async () => {
    const box = $('bulk-errors');
    hideError(box);
    const ids = selectedIds();
    if (!ids.length) {
      showError(box, new Error('Select the items to restore.'));
      return;
    }
    try {
      const res = await api(`/projects/${pid}/items/restore`, { method: 'POST', body: { item_ids: ids } });
      flash(`${plural(res.restored, 'item')} restored.`);
      window.setTimeout(() => reload(), 1200);
    } catch (e) {
      showError(box, e);
    }
  });
}

const undo = $('undo-delete');
if (undo) {
  undo.addEventListener('click', async () => {
    const banner = undo.closest('.undo-banner');
    try {
      const res = await api(`/projects/${pid}/items/restore`, {
        method: 'POST', body: { deleted_at: Number(banner.dataset.deletedAt) },
      });
      banner.remove();
      flash(`${plural(res.restored, 'item')} restored.`);
      window.setTimeout(() => reload(), 1200);
    } catch (e) {
      flash(e.message, 'error');
    }
  });
}
