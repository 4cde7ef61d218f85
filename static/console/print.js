// A link or button marked data-print prints the page. A file, not an inline handler or a
// javascript: URL, so the Content Security Policy allows it.
document.addEventListener("click", (event) => {
  const trigger = event.target.closest("[data-print]");
  if (trigger) {
    event.preventDefault();
    window.print();
  }
});
