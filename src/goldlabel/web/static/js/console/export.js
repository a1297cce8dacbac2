// The export form downloads GET /api/v1/projects/{id}/export: leave out empty filters so
// "all statuses" is no filter at all, then let the browser stream the attachment.

const form = document.getElementById('export-form');
form.addEventListener('submit', (event) => {
  event.preventDefault();
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value !== '') params.set(key, value);
  window.location.assign(`${form.getAttribute('action')}?${params}`);
});
