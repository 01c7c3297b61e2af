/**
 * What the page shows about the run and the kernel: only the latest progress marker ("cell I
 * of N"), the end of the run on <body data-carme-run>, and a small connection indicator in
 * #carme-kernel-status (connecting / connected / reconnecting / dead).
 */
import { type Kernel } from '@jupyterlab/services';

/** The states of the connection indicator, in its `data-state`. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'dead';

const LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting to the kernel',
  connected: 'Kernel connected',
  reconnecting: 'Reconnecting to the kernel',
  dead: 'Kernel disconnected'
};

const FINISHED_TEXT: Record<string, string> = {
  error: 'Stopped at an error',
  timeout: 'Stopped: a cell ran out of time'
};

export class RunStatus {
  /** A new progress marker: it replaces every earlier one. */
  progress(element: HTMLElement): void {
    this._latest?.setAttribute('hidden', '');
    this._latest = element;
    if (!element.textContent?.trim()) {
      element.textContent = `cell ${element.dataset.done ?? '?'} of ${element.dataset.total ?? '?'}`;
    }
  }

  /** The run ended: ok, error or timeout. */
  finished(element: HTMLElement): void {
    const status = element.dataset.status ?? 'ok';
    this._latest?.setAttribute('hidden', '');
    document.body.dataset.carmeRun = status;
    if (!element.textContent?.trim() && FINISHED_TEXT[status]) {
      element.textContent = FINISHED_TEXT[status];
    }
  }

  private _latest: HTMLElement | null = null;
}

export class ConnectionIndicator {
  constructor() {
    this.show('connecting');
  }

  /** Follow `kernel`: its websocket's state, and whether the kernel died. */
  follow(kernel: Kernel.IKernelConnection): void {
    const update = (): void => {
      if (kernel.status === 'dead' || kernel.connectionStatus === 'disconnected') {
        this.show('dead');
      } else if (kernel.connectionStatus === 'connected') {
        this._connected = true;
        this.show('connected');
      } else {
        this.show(this._connected ? 'reconnecting' : 'connecting');
      }
    };
    kernel.connectionStatusChanged.connect(update);
    kernel.statusChanged.connect(update);
    update();
  }

  /** The kernel cannot be reached at all. */
  failed(): void {
    this.show('dead');
  }

  private show(state: ConnectionState): void {
    this._state = state;
    const element = this.element();
    if (element?.dataset.state === state) {
      // Busy/idle changes call this too: the page changes only with the connection.
      return;
    }
    if (element) {
      element.dataset.state = state;
      element.title = LABELS[state];
      element.setAttribute('aria-label', LABELS[state]);
      element.textContent = LABELS[state];
    } else if (!this._deferred) {
      // The client may run before <body> exists: show it once the page is there.
      this._deferred = true;
      document.addEventListener('DOMContentLoaded', () => this.show(this._state), { once: true });
    }
  }

  /** The page's #carme-kernel-status, or one of our own when the template has none. */
  private element(): HTMLElement | null {
    const existing = document.getElementById('carme-kernel-status');
    if (existing || !document.body || document.readyState === 'loading') {
      return existing;
    }
    const created = document.createElement('div');
    created.id = 'carme-kernel-status';
    created.className = 'carme-kernel-status-own';
    created.setAttribute('role', 'status');
    document.body.appendChild(created);
    return created;
  }

  private _state: ConnectionState = 'connecting';
  private _connected = false;
  private _deferred = false;
}
