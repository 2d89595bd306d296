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

// A client's photo with the browser's camera, where there is one: "use the camera" shows the
// picture, "take photo" puts a JPEG of it into the form's file field, which is sent as a chosen
// file would be. Without a camera (or without permission) the file field alone still works.
document.querySelectorAll('form[data-camera]').forEach((form) => {
  const ui = form.querySelector('[data-camera-ui]');
  const input = form.querySelector('input[type=file][name=photo]');
  if (!ui || !input || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  const video = ui.querySelector('[data-camera-video]');
  const canvas = ui.querySelector('[data-camera-canvas]');
  const start = ui.querySelector('[data-camera-start]');
  const take = ui.querySelector('[data-camera-take]');
  let stream = null;
  const stop = () => {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
  };
  ui.hidden = false;
  video.hidden = true;
  start.addEventListener('click', async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user' }, audio: false });
    } catch (_) {
      ui.hidden = true;
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    canvas.hidden = true;
    take.hidden = false;
  });
  take.addEventListener('click', () => {
    const w = Math.min(video.videoWidth || 640, 640);
    const h = Math.round(w * ((video.videoHeight || 480) / (video.videoWidth || 640)));
    canvas.width = w;
    canvas.height = h;
    canvas.getContext('2d').drawImage(video, 0, 0, w, h);
    canvas.toBlob((blob) => {
      if (!blob) return;
      const dt = new DataTransfer();
      dt.items.add(new File([blob], 'photo.jpg', { type: 'image/jpeg' }));
      input.files = dt.files;
      stop();
      video.hidden = true;
      canvas.hidden = false;
      take.hidden = true;
    }, 'image/jpeg', 0.85);
  });
  form.addEventListener('submit', stop);
});
