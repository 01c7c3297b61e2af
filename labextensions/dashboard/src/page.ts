/**
 * Watches the streamed page: cells arrive in #carme-cells while the client runs (its script is
 * async), so elements are picked up by a MutationObserver as the parser adds them, and once
 * more at the end. Elements whose text matters (math, progress) are handed over only once the
 * parser is past them, so a formula split over two network reads is never typeset half.
 */

/** What the page hands to the client, each element once. */
export interface IPageHandlers {
  /** A `.carme-widget[data-model-id]` element (its id is known from its start tag). */
  widget(element: HTMLElement): void;
  /** A complete `.carme-math` element. */
  math(element: HTMLElement): void;
  /** A complete `.carme-progress` element. */
  progress(element: HTMLElement): void;
  /** The complete `#carme-finished` element. */
  finished(element: HTMLElement): void;
  /** A complete `template.carme-cell-update`: new outputs for an earlier cell. */
  update(element: HTMLTemplateElement): void;
}

const WIDGET = '.carme-widget[data-model-id]';
const MATH = '.carme-math';
const PROGRESS = '.carme-progress';
const FINISHED = '#carme-finished';
const UPDATE = 'template.carme-cell-update';
const ALL = [WIDGET, MATH, PROGRESS, FINISHED, UPDATE].join(',');
/** Subtrees the client itself fills: never scanned (a widget's DOM changes constantly). */
const OWN = '.carme-widget-view';

export class PageWatcher {
  constructor(handlers: IPageHandlers, doc: Document = document) {
    this._handlers = handlers;
    this._doc = doc;
    this._observer = new MutationObserver(records => this.onMutations(records));
  }

  /** Hand over what is already there, then everything the parser or a script adds. */
  start(): void {
    this._observer.observe(this._doc.documentElement, { childList: true, subtree: true });
    this.scan(this._doc.documentElement);
    if (this._doc.readyState === 'loading') {
      this._doc.addEventListener('DOMContentLoaded', () => this.flush(), { once: true });
    }
  }

  stop(): void {
    this._observer.disconnect();
  }

  private onMutations(records: MutationRecord[]): void {
    for (const record of records) {
      const target = record.target as Element;
      if (target.closest?.(OWN)) {
        continue;
      }
      for (const node of Array.from(record.addedNodes)) {
        if (node.nodeType === Node.ELEMENT_NODE) {
          this.scan(node as Element);
        } else if (target.nodeType === Node.ELEMENT_NODE) {
          // Text added to an element we wait for (e.g. the rest of a formula).
          this.scan(target);
        }
      }
    }
    this.flush();
  }

  private scan(root: Element): void {
    if (root.closest(OWN)) {
      return;
    }
    const found = root.matches(ALL) ? [root] : [];
    found.push(...Array.from(root.querySelectorAll(ALL)).filter(element => !element.closest(OWN)));
    for (const element of found) {
      if (element instanceof HTMLElement && !this._seen.has(element)) {
        if (element.matches(WIDGET)) {
          this._seen.add(element);
          this._handlers.widget(element);
        } else {
          this._pending.add(element);
        }
      }
    }
  }

  /** Hand over the pending elements the parser is done with. */
  private flush(): void {
    const loading = this._doc.readyState === 'loading';
    // Document order: the last progress marker handed over is the latest one.
    const pending = [...this._pending].sort((a, b) =>
      a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1
    );
    for (const element of pending) {
      if (loading && !parsedPast(element)) {
        continue;
      }
      this._pending.delete(element);
      this._seen.add(element);
      if (element.matches(MATH)) {
        this._handlers.math(element);
      } else if (element.matches(PROGRESS)) {
        this._handlers.progress(element);
      } else if (element instanceof HTMLTemplateElement) {
        this._handlers.update(element);
      } else {
        this._handlers.finished(element);
      }
    }
  }

  private _handlers: IPageHandlers;
  private _doc: Document;
  private _observer: MutationObserver;
  private _seen = new WeakSet<Element>();
  private _pending = new Set<HTMLElement>();
}

/**
 * Whether the HTML parser has closed `element`: closing tags make no nodes, but the parser
 * only ever appends, so once any node follows the element (outside it), the element is whole.
 */
function parsedPast(element: Element): boolean {
  for (let node: Node | null = element; node && node.parentNode; node = node.parentNode) {
    if (node.nextSibling) {
      return true;
    }
  }
  return false;
}
