// Delete with a confirmation, and restore within the undo window: an item (item page), a
// project (settings page), a recently deleted project (projects page).

import { api } from '../api.js';
import { $, showError } from './common.js';

function onClick(el, action) {
  if (!el) return;
  el.addEventListener('click', async () => {
    try {
      await action(el);
    } catch (e) {
      showError($('trash-errors'), e);
    }
  });
}

onClick($('delete-item'), async (button) => {
  const { project, item, name } = button.dataset;
  if (!window.confirm(`Delete item ${name}? It disappears from the queue, lists and exports; you can undo this for a while.`)) return;
  await api(`/projects/${project}/items/${item}`, { method: 'DELETE' });
  // The deleted item's page is gone: the item list shows the undo banner.
  const list = await api(`/projects/${project}/items`, { query: { status: 'deleted', q: name, limit: 1000 } });
  const row = list.items.find((i) => i.id === Number(item));
  const stamp = row ? row.deleted_at : Date.now();
  window.location.assign(`/console/projects/${project}/items?undo=${stamp}&n=1`);
});

onClick($('delete-project'), async (button) => {
  const { project, name } = button.dataset;
  const typed = window.prompt(`Delete project "${name}" with all its items and answers? Type the project's name to confirm.`);
  if (typed === null) return;
  if (typed.trim() !== name) {
    showError($('trash-errors'), new Error('The name did not match: nothing was deleted.'));
    return;
  }
  await api(`/projects/${project}`, { method: 'DELETE' });
  window.location.assign('/console');
});

for (const button of document.querySelectorAll('[data-restore-project]')) {
  onClick(button, async () => {
    const project = await api(`/projects/${button.dataset.restoreProject}/restore`, { method: 'POST' });
    window.location.assign(`/console/projects/${project.id}`);
  });
}
