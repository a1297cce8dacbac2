// Users: create accounts, suspend or reactivate them, set a password (admins), create and
// revoke my API tokens.
// A new token's secret is shown once, here, and never again.

import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { $, flash, hideError, readJson, showError } from './common.js';

const config = readJson('users-data');

const userForm = $('user-form');
userForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const box = $('user-errors');
  hideError(box);
  const f = userForm.elements;
  try {
    const user = await api('/users', { method: 'POST', body: {
      username: f.username.value.trim(), role: f.role.value, password: f.password.value || null,
      display_name: f.display_name.value } });
    flash(`Created ${user.username} (${user.role}).`);
    // The same row the page renders, Suspend button included (whoever may create may suspend).
    const suspend = h('button', { type: 'button', class: 'small', 'data-user-id': String(user.id), 'data-active': 'false',
      'data-testid': `suspend-${user.username}` }, 'Suspend');
    bindStatusButton(suspend);
    let setPassword = null;
    if (config.is_admin) {
      setPassword = h('button', { type: 'button', class: 'small', 'data-set-password': String(user.id),
        'data-username': user.username, 'data-testid': `set-password-${user.username}` }, 'Set password…');
      bindSetPassword(setPassword);
    }
    const row = h('tr', { dataset: { user: String(user.id) } }, h('td', {}, user.username),
      h('td', {}, user.display_name || ''), h('td', {}, user.role), h('td', {}, h('span', { class: 'badge status-final' }, 'active')),
      h('td', { class: 'actions' }, suspend, setPassword ? ' ' : null, setPassword));
    $('users-body').appendChild(row);
    userForm.reset();
  } catch (e) {
    showError(box, e);
  }
});

// Suspend / reactivate in place: a reload would show page 1 again, where the row may not be.
function bindStatusButton(button) {
  button.addEventListener('click', async () => {
    hideError($('user-errors'));
    const active = button.dataset.active === 'true';
    try {
      const user = await api(`/users/${button.dataset.userId}`, { method: 'PATCH', body: { is_active: active } });
      const status = button.closest('tr').querySelector('.badge');
      status.className = `badge ${user.is_active ? 'status-final' : 'status-needs_review'}`;
      status.textContent = user.is_active ? 'active' : 'suspended';
      button.dataset.active = String(!user.is_active);
      button.textContent = user.is_active ? 'Suspend' : 'Reactivate';
      flash(`${user.username} is ${user.is_active ? 'active again' : 'suspended'}.`);
    } catch (e) {
      showError($('user-errors'), e);
    }
  });
}

document.querySelectorAll('[data-active]').forEach(bindStatusButton);

// Set another user's password (admins): a dialog with one field.
const dialog = $('password-dialog');
const passwordForm = $('set-password-form');
let passwordTarget = null;

function bindSetPassword(button) {
  button.addEventListener('click', () => {
    passwordTarget = { id: button.dataset.setPassword, username: button.dataset.username };
    $('password-user').textContent = passwordTarget.username;
    passwordForm.reset();
    hideError($('set-password-errors'));
    dialog.showModal();
    passwordForm.elements.password.focus();
  });
}

document.querySelectorAll('[data-set-password]').forEach(bindSetPassword);
$('set-password-cancel').addEventListener('click', () => dialog.close());

passwordForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const box = $('set-password-errors');
  hideError(box);
  const password = passwordForm.elements.password.value;
  if (password.length < 8) {
    showError(box, new Error('The new password must have at least 8 characters.'));
    return;
  }
  try {
    await api(`/users/${passwordTarget.id}`, { method: 'PATCH', body: { password } });
    dialog.close();
    flash(`New password set for ${passwordTarget.username}; their browser sessions have ended.`);
  } catch (e) {
    showError(box, e);
  }
});

const tokenForm = $('token-form');
tokenForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const box = $('token-errors');
  hideError(box);
  try {
    const token = await api(`/users/${config.me}/tokens`, { method: 'POST', body: { name: tokenForm.elements.name.value } });
    const shown = clear($('token-secret'));
    shown.hidden = false;
    shown.append(h('p', { class: 'strong' }, 'Copy this token now: it is shown only once.'),
      h('code', { class: 'secret', 'data-testid': 'token-secret' }, token.token));
    $('tokens-body').appendChild(h('tr', {}, h('td', {}, token.name || '–'), h('td', {}, h('code', {}, token.prefix)),
      h('td', {}, 'just now'), h('td', {}, '–'), h('td')));
    tokenForm.reset();
  } catch (e) {
    showError(box, e);
  }
});

for (const button of document.querySelectorAll('[data-revoke]')) {
  button.addEventListener('click', async () => {
    try {
      await api(`/users/${config.me}/tokens/${button.dataset.revoke}`, { method: 'DELETE' });
      button.closest('tr').remove();
    } catch (e) {
      showError($('token-errors'), e);
    }
  });
}
