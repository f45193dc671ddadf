// Administration → Backups: only the chosen remote's fields are shown (all of them
// without JavaScript, each in its own fieldset), core/apps/backup/web.py.
(function () {
  const kind = document.getElementById("bk-kind");
  if (!kind) return;
  function show() {
    for (const set of document.querySelectorAll("fieldset[data-remote]")) {
      set.hidden = set.dataset.remote !== kind.value;
    }
  }
  kind.addEventListener("change", show);
  show();
})();
