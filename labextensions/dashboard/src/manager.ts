/**
 * The widget manager of a dashboard page: JupyterLab's KernelWidgetManager (it restores the
 * kernel's widget state with jupyter.widget.control request_states and follows comm opens),
 * plus a signal per registered model, so views wait for models that are not there yet, and
 * third-party widget modules loaded on first use from the federated labextensions.
 */
import * as base from '@jupyter-widgets/base';
import { KernelWidgetManager } from '@jupyter-widgets/jupyterlab-manager/lib/manager';
import { JUPYTER_CONTROLS_VERSION } from '@jupyter-widgets/controls/lib/version';
import { OUTPUT_WIDGET_VERSION } from '@jupyter-widgets/output';
import { type IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { type Kernel } from '@jupyterlab/services';
import { type ISignal, Signal } from '@lumino/signaling';

/** Loads the widget module `moduleName` from wherever it can (a federated labextension). */
export interface IWidgetModuleLoader {
  /** Resolves once every library that could provide `moduleName` was tried. */
  loadModule(moduleName: string, isRegistered: (name: string) => boolean): Promise<void>;
}

export class DashboardWidgetManager extends KernelWidgetManager {
  constructor(kernel: Kernel.IKernelConnection, rendermime: IRenderMimeRegistry, loader: IWidgetModuleLoader) {
    // The base constructor already starts restoring the kernel's widgets; every step of that
    // is asynchronous, so the fields below are set before any model is registered.
    super(kernel, rendermime);
    this._loader = loader;
    this.registerCoreModules();
  }

  /** Emitted with a model id as soon as that model is registered (its promise may still be pending). */
  get modelRegistered(): ISignal<this, string> {
    return this._modelRegistered;
  }

  register(data: base.IWidgetRegistryData): void {
    super.register(data);
    this._modules.add(data.name);
  }

  register_model(model_id: string, modelPromise: Promise<base.WidgetModel>): void {
    super.register_model(model_id, modelPromise);
    this._modelRegistered.emit(model_id);
  }

  async loadClass(className: string, moduleName: string, moduleVersion: string): Promise<typeof base.WidgetModel | typeof base.WidgetView> {
    if (!this._modules.has(moduleName)) {
      await this._loader.loadModule(moduleName, name => this._modules.has(name));
    }
    return super.loadClass(className, moduleName, moduleVersion);
  }

  /** The modules JupyterLab's widget manager plugin registers: base, controls (lazily) and output. */
  private registerCoreModules(): void {
    this.register({
      name: '@jupyter-widgets/base',
      version: base.JUPYTER_WIDGETS_VERSION,
      exports: {
        WidgetModel: base.WidgetModel,
        WidgetView: base.WidgetView,
        DOMWidgetView: base.DOMWidgetView,
        DOMWidgetModel: base.DOMWidgetModel,
        LayoutModel: base.LayoutModel,
        LayoutView: base.LayoutView,
        StyleModel: base.StyleModel,
        StyleView: base.StyleView,
        ErrorWidgetView: base.ErrorWidgetView
      }
    });
    this.register({
      name: '@jupyter-widgets/controls',
      version: JUPYTER_CONTROLS_VERSION,
      // A separate chunk: pages without widgets never download it.
      // (The module also exports helpers besides classes, hence the cast.)
      exports: async () => (await import(/* webpackChunkName: "controls" */ '@jupyter-widgets/controls')) as unknown as base.ExportMap
    });
    this.register({
      name: '@jupyter-widgets/output',
      version: OUTPUT_WIDGET_VERSION,
      // Its own chunk too, with JupyterLab's output area.
      exports: async () => {
        const { OutputModel, OutputView } = await import(
          /* webpackChunkName: "output" */ '@jupyter-widgets/jupyterlab-manager/lib/output'
        );
        return { OutputModel, OutputView };
      }
    });
  }

  private _loader: IWidgetModuleLoader;
  private _modules = new Set<string>();
  private _modelRegistered = new Signal<this, string>(this);
}
