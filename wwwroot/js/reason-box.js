// The reason box of a confirm dialog (see ConfirmActionDialog and ReasonBox.cs).

// The text as the person typed it. Read at the moment of confirming, because keystroke events may still be on their way
// to the server when the click arrives (a fast "type, click" otherwise sent only the first letters).
export function textOf(element) {
  return element ? element.value : null;
}

// Focus the box, and keep it focused while the dialog settles (its opening may move focus once more a few milliseconds
// later); stops at the person's first key or click, or after half a second.
export function focusBox(element) {
  if (!element) return;
  let settled = false;
  const stop = () => { settled = true; };
  document.addEventListener('pointerdown', stop, { capture: true, once: true });
  document.addEventListener('keydown', stop, { capture: true, once: true });
  const started = performance.now();
  const keep = () => {
    if (settled || !element.isConnected) return;
    if (document.activeElement !== element) element.focus();
    if (performance.now() - started < 500) requestAnimationFrame(keep);
  };
  keep();
}
