/**
 * Dashboards: "Open as dashboard" in the notebook toolbar and the file browser's context menu
 * previews a notebook as carme-dashboards renders it, in a panel beside it that renders again
 * each time the notebook is saved; another entry opens the dashboard in a new browser tab.
 * Nothing is added while carme-dashboards does not run.
 */
import { type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, type NotebookPanel } from '@jupyterlab/notebook';
import { type Contents } from '@jupyterlab/services';
import { IFrame, launchIcon, notebookIcon } from '@jupyterlab/ui-components';

import { encodePath, extensionRuns, serverUrl } from './server';

const PREVIEW = 'carme:dashboard-preview';
const OPEN_TAB = 'carme:dashboard-open-tab';

/** The URL of the dashboard of the notebook at `path` (carme-dashboards' render route). */
export function dashboardUrl(path: string): string {
  return serverUrl('dashboards/render', encodePath(path));
}

/** The preview of one notebook's dashboard: an iframe reloaded on each save of the notebook. */
class DashboardPreview extends MainAreaWidget<IFrame> {
  constructor(readonly path: string) {
    // The dashboard page runs its own scripts and talks to this server with the same cookie.
    const frame = new IFrame({ sandbox: ['allow-scripts', 'allow-same-origin', 'allow-downloads', 'allow-popups'] });
    super({ content: frame });
    frame.url = dashboardUrl(path);
    this.id = `carme-dashboard-preview-${encodeURIComponent(path)}`;
    this.addClass('carme-DashboardPreview');
    this.title.label = `Dashboard: ${PathExt.basename(path)}`;
    this.title.icon = notebookIcon;
    this.title.closable = true;
  }

  /**
   * Render the dashboard of the notebook saved at `savedAt`. A dashboard page is one visit per
   * browser, notebook and query string, and a reload finds the visit already rendered: the
   * time of the save in the query makes it a new visit, which runs the notebook as saved (the
   * previous visit's kernel ends after the server's grace period).
   */
  render(savedAt: string): void {
    this.content.url = `${dashboardUrl(this.path)}?saved=${encodeURIComponent(savedAt)}`;
  }
}

function pathArgument(app: JupyterFrontEnd, notebooks: INotebookTracker, browsers: IFileBrowserFactory,
                      args: Record<string, unknown>): string | null {
  if (typeof args.path === 'string') {
    return args.path;
  }
  const selected = browsers.tracker.currentWidget?.selectedItems().next();
  if (selected && !selected.done && selected.value.type === 'notebook') {
    return selected.value.path;
  }
  const current = notebooks.currentWidget;
  return current && app.shell.currentWidget === current ? current.context.path : null;
}

function activate(app: JupyterFrontEnd, notebooks: INotebookTracker, browsers: IFileBrowserFactory): void {
  if (!extensionRuns('dashboards')) {
    return;
  }
  const previews = new Map<string, DashboardPreview>();

  const openPreview = (path: string, beside?: NotebookPanel): void => {
    let preview = previews.get(path);
    if (!preview || preview.isDisposed) {
      preview = new DashboardPreview(path);
      previews.set(path, preview);
      preview.disposed.connect(() => previews.delete(path));
      app.shell.add(preview, 'main', { mode: 'split-right', ref: beside?.id });
    }
    app.shell.activateById(preview.id);
  };

  // A notebook saved here renders its preview again.
  app.serviceManager.contents.fileChanged.connect((_, change: Contents.IChangedArgs) => {
    if (change.type === 'save' && change.newValue?.path) {
      previews.get(change.newValue.path)?.render(change.newValue.last_modified ?? String(Date.now()));
    }
  });

  app.commands.addCommand(PREVIEW, {
    label: 'Open as dashboard',
    caption: 'Preview this notebook as a dashboard, beside it (renders again on save)',
    icon: notebookIcon,
    execute: args => {
      const path = pathArgument(app, notebooks, browsers, args);
      if (path) {
        const panel = notebooks.find(candidate => candidate.context.path === path);
        openPreview(path, panel);
      }
    }
  });
  app.commands.addCommand(OPEN_TAB, {
    label: 'Open dashboard in a new browser tab',
    icon: launchIcon,
    execute: args => {
      const path = pathArgument(app, notebooks, browsers, args);
      if (path) {
        window.open(dashboardUrl(path), '_blank', 'noopener');
      }
    }
  });

  const selector = '.jp-DirListing-item[data-file-type="notebook"]';
  app.contextMenu.addItem({ command: PREVIEW, selector, rank: 4 });
  app.contextMenu.addItem({ command: OPEN_TAB, selector, rank: 4 });

  notebooks.widgetAdded.connect((_, panel) => {
    const button = new ToolbarButton({
      label: 'Dashboard',
      icon: notebookIcon,
      tooltip: 'Open as dashboard: preview this notebook as a dashboard, beside it',
      onClick: () => openPreview(panel.context.path, panel)
    });
    panel.toolbar.insertAfter('cellType', 'carme-dashboard', button);
  });
}

export const dashboardsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@carme/jupyterlab:dashboards',
  description: 'Notebooks previewed and opened as carme dashboards.',
  autoStart: true,
  requires: [INotebookTracker, IFileBrowserFactory],
  activate
};
