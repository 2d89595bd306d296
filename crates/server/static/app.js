// A page form submits once: its button is disabled as soon as the browser sends it (the
// server also answers a repeat of the same form with the first answer; see once.rs).
document.addEventListener('submit', (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement) || form.method !== 'post') return;
  const buttons = form.querySelectorAll('button[type=submit], button:not([type])');
  // After this tick, so that the clicked button's own value is still sent.
  setTimeout(() => buttons.forEach((b) => (b.disabled = true)), 0);
  // The answer may be a download that leaves the page: let the form be used again.
  setTimeout(() => buttons.forEach((b) => (b.disabled = false)), 8000);
});

// The print button of a printable page (no inline handlers: the content policy forbids them).
document.addEventListener('click', (e) => {
  if (e.target instanceof Element && e.target.closest('[data-print]')) window.print();
});
