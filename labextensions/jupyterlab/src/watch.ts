/**
 * Files changed outside JupyterLab, from carme-watch's events (`/api/events/subscribe`):
 * - the file browsers showing a folder where something was added, removed or renamed list it
 *   again at once, instead of at their next poll (which, with events arriving, is slowed down to
 *   a rare safety net);
 * - an open document whose file changed on disk (an editor, git, a script) gets a bar above it,
 *   "Changed on disk: Reload / Keep mine", instead of JupyterLab's modal dialog at save time.
 *   With carme-collab running, collaboration reloads documents itself and the bar stays away.
 * Nothing is done while carme-watch does not run.
 */
import { type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { type DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { type FileBrowserModel, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { type Contents, type Event } from '@jupyterlab/services';
import { Poll, Throttler } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { extensionRuns } from './server';

/** carme-watch's event schema (extensions/watch/README.md). */
export const FILE_CHANGED = 'https://events.carme.dev/watch/file_changed/v1';
/** How often a file browser still polls while events keep it up to date (a missed event's cure). */
const SAFETY_POLL_MS = 5 * 60 * 1000;
/** Events come one per path: a folder's listings coalesce into one request per this period. */
const COALESCE_MS = 100;

/** One carme-watch event. */
export interface IFileChange {
  path: string;
  change: 'added' | 'modified' | 'deleted' | 'moved';
  source: 'api' | 'external';
  old_path?: string | null;
}

function asFileChange(event: Event.Emission): IFileChange | null {
  if (event.schema_id !== FILE_CHANGED || typeof event.path !== 'string') {
    return null;
  }
  return event as unknown as IFileChange;
}

/** The folder holding an API path ('' for the root). */
function folderOf(path: string): string {
  const folder = PathExt.dirname(path);
  return folder === '.' ? '' : folder;
}

/** Keeps the file browsers' listings current. */
class BrowserRefresher {
  private readonly throttlers = new WeakMap<FileBrowserModel, Throttler>();

  constructor(private readonly browsers: IFileBrowserFactory) {
    browsers.tracker.widgetAdded.connect((_, browser) => this.slowPoll(browser.model));
    browsers.tracker.forEach(browser => this.slowPoll(browser.model));
  }

  changed(change: IFileChange): void {
    if (change.change === 'modified') {
      return; // a listing shows names, and sizes and times only on demand
    }
    const folders = new Set([folderOf(change.path)]);
    if (change.old_path) {
      folders.add(folderOf(change.old_path));
    }
    this.browsers.tracker.forEach(browser => {
      if (folders.has(browser.model.path)) {
        this.throttler(browser.model).invoke().catch(() => undefined);
      }
    });
  }

  private throttler(model: FileBrowserModel): Throttler {
    let throttler = this.throttlers.get(model);
    if (!throttler) {
      throttler = new Throttler(() => model.refresh(), { limit: COALESCE_MS, edge: 'trailing' });
      this.throttlers.set(model, throttler);
    }
    return throttler;
  }

  /**
   * The model polls its folder every 10 s; with every change arriving as an event that is waste.
   * Its poll is private, so it is reached by name, and left alone if it is not there.
   */
  private slowPoll(model: FileBrowserModel): void {
    const poll = (model as unknown as { _poll?: unknown })._poll;
    if (poll instanceof Poll) {
      poll.frequency = { ...poll.frequency, interval: SAFETY_POLL_MS, max: SAFETY_POLL_MS };
      void poll.schedule({ interval: SAFETY_POLL_MS, phase: 'reconnected' });
    }
  }
}

/** The bar shown above a document whose file changed on disk. */
class ChangedOnDiskBar extends Widget {
  constructor(onReload: () => void, onKeep: () => void) {
    super();
    this.addClass('carme-ChangedOnDisk');
    this.node.setAttribute('role', 'status');
    const text = document.createElement('span');
    text.textContent = 'Changed on disk:';
    const reload = document.createElement('button');
    reload.className = 'jp-Button jp-mod-accept carme-ChangedOnDisk-reload';
    reload.textContent = 'Reload';
    reload.addEventListener('click', onReload);
    const keep = document.createElement('button');
    keep.className = 'jp-Button jp-mod-reject carme-ChangedOnDisk-keep';
    keep.textContent = 'Keep mine';
    keep.addEventListener('click', onKeep);
    this.node.append(text, reload, keep);
  }
}

/** Shows the bar on open documents whose file is no longer what they loaded or saved. */
class DiskChanges {
  private readonly bars = new Map<DocumentRegistry.Context, ChangedOnDiskBar>();

  constructor(private readonly app: JupyterFrontEnd, private readonly docs: IDocumentManager) {}

  async changed(change: IFileChange): Promise<void> {
    if (change.source !== 'external' || (change.change !== 'modified' && change.change !== 'added')) {
      return; // this page's own saves come through the API; deletions and moves are not handled here
    }
    const widget = this.docs.findWidget(change.path, null);
    const context = widget ? this.docs.contextForWidget(widget) : undefined;
    if (!(widget instanceof DocumentWidget) || !context || this.bars.has(context)) {
      return;
    }
    const disk = await this.app.serviceManager.contents.get(change.path, { content: false, hash: true });
    if (sameFile(context.contentsModel, disk) || this.bars.has(context) || widget.isDisposed) {
      return;
    }
    const dismiss = (): void => {
      this.bars.get(context)?.dispose();
      this.bars.delete(context);
    };
    const bar = new ChangedOnDiskBar(
      () => void context.revert().then(dismiss),
      () => {
        keepMine(context, disk);
        dismiss();
      }
    );
    this.bars.set(context, bar);
    context.fileChanged.connect(dismiss); // saved or reverted some other way
    context.disposed.connect(dismiss);
    widget.contentHeader.addWidget(bar);
  }
}

/**
 * Mine wins: the context takes the file on disk as the one it last saw, so the next save
 * overwrites it without JupyterLab's conflict dialog. The context hands out only a copy of that
 * model, so its own is reached by name; without it the dialog simply comes back at save time.
 */
function keepMine(context: DocumentRegistry.Context, disk: Contents.IModel): void {
  const own = (context as unknown as { _contentsModel?: unknown })._contentsModel;
  if (own && typeof own === 'object') {
    Object.assign(own, { hash: disk.hash, hash_algorithm: disk.hash_algorithm, last_modified: disk.last_modified });
  }
}

function sameFile(mine: Partial<Contents.IModel> | null, disk: Contents.IModel): boolean {
  if (!mine) {
    return false;
  }
  if (mine.hash && disk.hash) {
    return mine.hash === disk.hash;
  }
  return mine.last_modified === disk.last_modified;
}

function activate(app: JupyterFrontEnd, docs: IDocumentManager, browsers: IFileBrowserFactory): void {
  if (!extensionRuns('watch')) {
    return;
  }
  const refresher = new BrowserRefresher(browsers);
  const disk = extensionRuns('collab') ? null : new DiskChanges(app, docs);
  app.serviceManager.events.stream.connect((_, event) => {
    const change = asFileChange(event);
    if (change) {
      refresher.changed(change);
      disk?.changed(change).catch(error => console.warn('carme: checking a file changed on disk', error));
    }
  });
}

export const watchPlugin: JupyterFrontEndPlugin<void> = {
  id: '@carme/jupyterlab:watch',
  description: 'Files changed outside JupyterLab: file browsers updated at once, a bar on open documents.',
  autoStart: true,
  requires: [IDocumentManager, IFileBrowserFactory],
  activate
};
