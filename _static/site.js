/* Small, documented fixes to the theme's behaviour (loaded with `defer`). */
(() => {
  "use strict";

  // 1. Sidebar toggles (pydata-sphinx-theme#2451, sphinx-book-theme#865). The theme
  // wires only the first .primary-toggle / .secondary-toggle of the page, a hidden
  // button of the top navbar, so the visible buttons of the article header do
  // nothing. Forward their clicks to the wired button: it opens the drawer on narrow
  // screens and, through sphinx-book-theme's handler, collapses the sidebar on wide
  // ones. Remove this when the theme attaches its listeners to every toggle.
  document.addEventListener(
    "click",
    (event) => {
      for (const side of ["primary", "secondary"]) {
        const clicked = event.target.closest(`.${side}-toggle`);
        const wired = document.querySelector(`.${side}-toggle`);
        if (clicked && wired && clicked !== wired) {
          event.preventDefault();
          event.stopPropagation();
          wired.click();
        }
      }
    },
    true,
  );

  // 2. The chapter list's expand buttons (<summary>) show only an icon: name them.
  document.querySelectorAll(".bd-sidenav details > summary").forEach((summary) => {
    if (summary.textContent.trim() || summary.hasAttribute("aria-label")) return;
    const link = summary.parentElement.parentElement.querySelector(":scope > a");
    const title = link ? link.textContent.trim() : "cette partie";
    summary.setAttribute("aria-label", `Sous-parties de « ${title} »`);
  });

  // 3. Figures of notebook outputs are often wider than the column. Matplotlib
  // writes 10 pt text at the figure's dpi (PNG at 100 dpi: about 14 px): never
  // shrink a figure below 65 % of its size (text at 9 px or more), scroll it
  // instead, and a tap opens the image alone, at full size.
  const sizeFigure = (img) => {
    if (!img.naturalWidth) return;
    img.style.setProperty("--figure-width", `${img.naturalWidth}px`);
    img.style.setProperty("--figure-min-width", `${Math.ceil(img.naturalWidth * 0.65)}px`);
  };
  document.querySelectorAll("img.notebook-figure").forEach((img) => {
    if (img.complete) sizeFigure(img);
    else img.addEventListener("load", () => sizeFigure(img), { once: true });
    if (img.closest("a")) return;
    const box = document.createElement("div");
    box.className = "figure-scroll";
    const link = document.createElement("a");
    link.href = img.getAttribute("src");
    link.className = "figure-zoom";
    link.title = "Agrandir la figure";
    img.replaceWith(box);
    box.appendChild(link);
    link.appendChild(img);
  });

  // 4. Search result excerpts: Sphinx takes the text of [role=main], which in this
  // theme also holds the header buttons, the page's table of contents and the
  // previous/next links. Strip them before Sphinx extracts the excerpt.
  const CHROME = [
    ".bd-header-article",
    ".onlyprint",
    ".bd-sidebar-secondary",
    ".prev-next-area",
    ".bd-footer-article",
    ".bd-footer-content",
    ".notebook-launch",
    ".provenance",
  ].join(",");
  // searchtools.js declares `const Search`, a global that is not on `window`.
  if (typeof Search !== "undefined" && typeof Search.htmlToText === "function") {
    const htmlToText = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(CHROME).forEach((el) => el.remove());
      return htmlToText(doc.documentElement.outerHTML, anchor);
    };
  }
})();
