// The staff pages' only script, loaded as a module (no inline script: the content
// security policy forbids it). It switches on the NHS.UK frontend's enhancements
// (the header's "More" menu, the error summary's focus, ...); every page works without it.
import { initAll } from "/assets/nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();
