/**
 * Widget views in the page: each `.carme-widget[data-model-id]` element gets a live view of its
 * model, as soon as both the element and the model exist (either may come first: cells stream
 * in while the kernel's widget state is restored). The server's text fallback stays in the
 * element and CSS hides it once the view is there.
 */
import { type DOMWidgetView } from '@jupyter-widgets/base';
import { Widget } from '@lumino/widgets';

import { type DashboardWidgetManager } from './manager';

/** The element's state, in `data-carme-widget`: the page's CSS keys on it. */
export type ViewState = 'waiting' | 'loading' | 'rendered' | 'closed' | 'error';

export class WidgetViews {
  /** Show `element`'s model once the manager and the model are there. */
  add(element: HTMLElement): void {
    const modelId = element.dataset.modelId;
    if (!modelId || element.dataset.carmeWidget) {
      return;
    }
    setState(element, 'waiting');
    if (this._manager && this._manager.isReady(modelId)) {
      void this.show(this._manager, element, modelId);
      return;
    }
    const waiting = this._waiting.get(modelId) ?? [];
    waiting.push(element);
    this._waiting.set(modelId, waiting);
  }

  /** Close the views inside `root`, which leaves the page (the outputs of an updated cell). */
  closeWithin(root: Element): void {
    for (const host of Array.from(root.querySelectorAll('.carme-widget-view'))) {
      this._widgets.get(host)?.dispose();
    }
  }

  /** Start showing views with `manager`: the waiting elements first. */
  attach(manager: DashboardWidgetManager): void {
    this._manager = manager;
    manager.modelReady.connect((_, modelId) => this.release(modelId));
    for (const modelId of [...this._waiting.keys()]) {
      if (manager.isReady(modelId)) {
        this.release(modelId);
      }
    }
  }

  private release(modelId: string): void {
    const elements = this._waiting.get(modelId);
    if (!elements || !this._manager) {
      return;
    }
    this._waiting.delete(modelId);
    for (const element of elements) {
      void this.show(this._manager, element, modelId);
    }
  }

  private async show(manager: DashboardWidgetManager, element: HTMLElement, modelId: string): Promise<void> {
    setState(element, 'loading');
    try {
      const model = await manager.get_model(modelId);
      const view = await manager.create_view<DOMWidgetView>(model);
      const host = document.createElement('div');
      host.className = 'carme-widget-view';
      element.appendChild(host);
      Widget.attach(view.luminoWidget, host);
      this._widgets.set(host, view.luminoWidget);
      // The model closed in the kernel (widget.close()): the view is gone, and so is its place.
      view.luminoWidget.disposed.connect(() => {
        host.remove();
        setState(element, 'closed');
      });
      setState(element, 'rendered');
    } catch (error) {
      setState(element, 'error');
      console.error(`carme dashboard: cannot show widget ${modelId}`, error);
    }
  }

  private _manager: DashboardWidgetManager | null = null;
  private _waiting = new Map<string, HTMLElement[]>();
  private _widgets = new WeakMap<Element, Widget>();
}

function setState(element: HTMLElement, state: ViewState): void {
  element.dataset.carmeWidget = state;
}
