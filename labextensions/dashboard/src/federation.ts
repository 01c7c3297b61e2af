/**
 * Third-party widget libraries, installed as prebuilt (federated) JupyterLab extensions, loaded
 * the way JupyterLab loads them: the remote entry script defines a container on
 * `window._JUPYTERLAB[name]`, the container is initialised with this client's share scope (so
 * it uses our @jupyter-widgets/base, @jupyterlab/* and @lumino/* singletons), its extension
 * module gives plugins, and those that ask for IJupyterWidgetRegistry register their widget
 * modules. A library is loaded only when a widget model needs a module nobody registered yet.
 */
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { URLExt } from '@jupyterlab/coreutils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { type IFederatedExtension } from './config';
import { type IWidgetModuleLoader } from './manager';

/** A module federation container, as a remote entry defines it. */
interface IContainer {
  init(shareScope: unknown): Promise<void> | void;
  get(module: string): Promise<() => unknown>;
}

/** The part of a JupyterLab plugin this page can run. */
interface IPlugin {
  id: string;
  autoStart?: boolean | 'defer';
  requires?: ({ name: string } | null | undefined)[];
  optional?: ({ name: string } | null | undefined)[];
  activate: (app: unknown, ...services: unknown[]) => unknown;
}

/** Our own widget manager, built into this client: its remote entry is never loaded. */
const BUILT_IN = new Set(['@jupyter-widgets/jupyterlab-manager']);

/** What plugins of a widget library may ask for, by token name. */
export interface IPluginServices {
  registry: IJupyterWidgetRegistry;
  rendermime: IRenderMimeRegistry;
}

export class WidgetLibraries implements IWidgetModuleLoader {
  constructor(extensions: IFederatedExtension[], labextensionsUrl: string, services: IPluginServices) {
    this._extensions = extensions.filter(ext => !BUILT_IN.has(ext.name));
    this._labextensionsUrl = labextensionsUrl;
    this._services = new Map<string, unknown>([
      [IJupyterWidgetRegistry.name, services.registry],
      [IRenderMimeRegistry.name, services.rendermime]
    ]);
  }

  /**
   * Make `moduleName` available: the extension of that name first (widget libraries mostly
   * name their module after their package), then, if that was not it, every other one.
   */
  async loadModule(moduleName: string, isRegistered: (name: string) => boolean): Promise<void> {
    const named = this._extensions.filter(ext => ext.name === moduleName);
    await Promise.all(named.map(ext => this.load(ext)));
    if (!isRegistered(moduleName)) {
      await Promise.all(this._extensions.map(ext => this.load(ext)));
    }
  }

  /** Load one extension once; a broken one is reported and skipped, never fatal to the page. */
  private load(ext: IFederatedExtension): Promise<void> {
    let loading = this._loading.get(ext.name);
    if (!loading) {
      loading = this.loadExtension(ext).catch(error => {
        console.error(`carme dashboard: cannot load the labextension ${ext.name}`, error);
      });
      this._loading.set(ext.name, loading);
    }
    return loading;
  }

  private async loadExtension(ext: IFederatedExtension): Promise<void> {
    const url = new URL(URLExt.join(this._labextensionsUrl, ext.name, ext.load), window.location.href);
    if (url.origin !== window.location.origin) {
      throw new Error(`refusing to load ${url.href}: not this page's origin`);
    }
    await loadScript(url.href);
    const containers = (window as unknown as { _JUPYTERLAB?: Record<string, IContainer> })._JUPYTERLAB;
    const container = containers?.[ext.name];
    if (!container) {
      throw new Error(`${url.href} defined no container "${ext.name}"`);
    }
    await __webpack_init_sharing__('default');
    await container.init(__webpack_share_scopes__['default']);
    if (ext.style) {
      (await container.get(ext.style))();
    }
    if (ext.extension) {
      const module = (await container.get(ext.extension))() as { default?: unknown };
      const exported = module.default ?? module;
      const plugins = (Array.isArray(exported) ? exported : [exported]) as IPlugin[];
      for (const plugin of plugins) {
        await this.activate(plugin);
      }
    }
  }

  /** Activate a plugin whose required services this page has; others are not for a dashboard. */
  private async activate(plugin: IPlugin): Promise<void> {
    if (!plugin || typeof plugin.activate !== 'function' || plugin.autoStart === false) {
      return;
    }
    const required = (plugin.requires ?? []).map(token => (token ? this._services.get(token.name) : undefined));
    if (required.some(service => service === undefined)) {
      console.debug(`carme dashboard: plugin ${plugin.id} needs services a dashboard does not have`);
      return;
    }
    const optional = (plugin.optional ?? []).map(token => (token ? this._services.get(token.name) ?? null : null));
    try {
      await plugin.activate(APP, ...required, ...optional);
    } catch (error) {
      console.error(`carme dashboard: plugin ${plugin.id} failed to activate`, error);
    }
  }

  private _extensions: IFederatedExtension[];
  private _labextensionsUrl: string;
  private _services: Map<string, unknown>;
  private _loading = new Map<string, Promise<void>>();
}

/** What a plugin gets as its `app`: the dashboard page is no JupyterLab application. */
const APP = Object.freeze({ name: 'carme-dashboard', version: '', restored: Promise.resolve() });

function loadScript(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.async = true;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`failed to load ${src}`));
    document.head.appendChild(script);
  });
}
