/**
 * The dashboard page's client: reads the page config, watches the streamed cells (math right
 * away, widget views once the kernel's widget state is there), connects to the visit's kernel,
 * and loads third-party widget libraries when a widget needs one.
 */
import { applyCellUpdate } from './cells';
import { type IDashboardConfig, readPageConfig } from './config';
import { WidgetLibraries } from './federation';
import { connectKernel } from './kernel';
import { DashboardWidgetManager } from './manager';
import { typesetMathElement } from './math';
import { PageWatcher } from './page';
import { addWidgetRenderer, createRendermime } from './rendermime';
import { ConnectionIndicator, RunStatus } from './status';
import { WidgetViews } from './views';

/** What the client exposes on `window.carmeDashboard`, for tests and for page scripts. */
export interface IDashboardClient {
  config: IDashboardConfig;
  /** Resolves with the widget manager once the kernel connection exists. */
  manager: Promise<DashboardWidgetManager>;
}

function applyTheme(config: IDashboardConfig): void {
  // Where JupyterLab puts it: widget libraries (bqplot, plotly...) read it to pick their colours.
  const apply = (): void => {
    document.body.dataset.jpThemeLight = String(config.theme === 'light');
    document.body.dataset.jpThemeName = config.theme === 'light' ? 'JupyterLab Light' : 'JupyterLab Dark';
  };
  if (document.body) {
    apply();
  } else {
    document.addEventListener('DOMContentLoaded', apply, { once: true });
  }
}

async function start(config: IDashboardConfig, views: WidgetViews, indicator: ConnectionIndicator): Promise<DashboardWidgetManager> {
  const rendermime = createRendermime();
  let manager: DashboardWidgetManager | null = null;
  const libraries = new WidgetLibraries(config.federatedExtensions, config.fullLabextensionsUrl, {
    registry: {
      registerWidget: data => {
        if (!manager) {
          throw new Error('carme dashboard: no widget manager yet');
        }
        manager.register(data);
      }
    },
    rendermime
  });
  let kernel;
  try {
    kernel = await connectKernel(config);
  } catch (error) {
    indicator.failed();
    throw error;
  }
  indicator.follow(kernel);
  manager = new DashboardWidgetManager(kernel, rendermime, libraries);
  addWidgetRenderer(rendermime, manager);
  views.attach(manager);
  return manager;
}

function main(): void {
  const config = readPageConfig();
  applyTheme(config);
  const views = new WidgetViews();
  const run = new RunStatus();
  const indicator = new ConnectionIndicator();
  new PageWatcher({
    widget: element => views.add(element),
    math: element => {
      typesetMathElement(element).catch(error => console.error('carme dashboard: math typesetting failed', error));
    },
    progress: element => run.progress(element),
    finished: element => run.finished(element),
    update: element => applyCellUpdate(element, node => views.closeWithin(node))
  }).start();
  const manager = start(config, views, indicator);
  manager.catch(error => console.error('carme dashboard: no kernel connection', error));
  (window as unknown as { carmeDashboard: IDashboardClient }).carmeDashboard = { config, manager };
}

main();
