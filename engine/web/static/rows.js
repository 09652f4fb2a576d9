// Repeated rows: "添加一行" clones the row template with the next index. Forms work without it.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button.add-row") : null;
  if (!button) return;
  var fieldset = button.closest("fieldset");
  var list = fieldset.querySelector(".row-list");
  var template = fieldset.querySelector("template");
  var index = list.querySelectorAll(".row").length;
  var html = template.innerHTML.split("__i__").join(String(index));
  list.insertAdjacentHTML("beforeend", html);
  var first = list.lastElementChild.querySelector("input,select,textarea");
  if (first) first.focus();
});
