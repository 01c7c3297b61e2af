/**
 * Updates of earlier cells: an update_display_data from a later cell changes outputs that were
 * already streamed, so the server streams the cell's new outputs in a
 * `<template class="carme-cell-update" data-cell-index="I">` and the client puts them in place.
 */

/**
 * Replace cell I's outputs with the template's content: the section's `.carme-outputs` element
 * when it has one, else everything in the section but the source. `leaving` is told of each
 * element that goes (to close its widget views). The template is removed; widgets and math in
 * the new outputs are picked up by the page watcher like any new element.
 */
export function applyCellUpdate(
  template: HTMLTemplateElement,
  leaving: (node: Element) => void,
  doc: Document = document
): void {
  const index = template.dataset.cellIndex;
  const cell = doc.querySelector<HTMLElement>(`section.carme-cell[data-cell-index="${CSS.escape(index ?? '')}"]`);
  template.remove();
  if (!cell) {
    console.warn(`carme dashboard: an update for cell ${index}, which is not on the page`);
    return;
  }
  const outputs = cell.querySelector(':scope > .carme-outputs');
  if (outputs) {
    leaving(outputs);
    outputs.replaceChildren(template.content);
    return;
  }
  for (const child of Array.from(cell.childNodes)) {
    if (!(child instanceof Element && child.classList.contains('carme-source'))) {
      if (child instanceof Element) {
        leaving(child);
      }
      child.remove();
    }
  }
  cell.appendChild(template.content);
}
