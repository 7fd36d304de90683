// The shot page's request form: the source chooser shows for the tasks on an element (upscale) only.
(function () {  // the source chooser shows for the tasks on an element (upscale) only
  const form = document.getElementById("new-request");
  const source = document.getElementById("element-source");
  const elementTasks = form.dataset.elementTasks.split(" ");
  function sync() {
    const on = elementTasks.includes(form.elements.task.value);
    source.style.display = on ? "" : "none";
    form.elements.source.disabled = !on;
  }
  form.elements.task.addEventListener("change", sync);
  sync();
})();
