/**
 * The widget manager of a dashboard page: JupyterLab's KernelWidgetManager (it restores the
 * kernel's widget state with jupyter.widget.control request_states and follows comm opens),
 * plus a signal per model once it is ready to be shown, so views wait for models that are not
 * there yet, and third-party widget modules loaded on first use from the federated labextensions.
 */
import * as base from '@jupyter-widgets/base';
import { KernelWidgetManager } from '@jupyter-widgets/jupyterlab-manager/lib/manager';
import { JUPYTER_CONTROLS_VERSION } from '@jupyter-widgets/controls/lib/version';
import { OUTPUT_WIDGET_VERSION } from '@jupyter-widgets/output';
import { type IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { type Kernel, type KernelMessage } from '@jupyterlab/services';
import { type ISignal, Signal } from '@lumino/signaling';

/** Loads the widget module `moduleName` from wherever it can (a federated labextension). */
export interface IWidgetModuleLoader {
  /** Resolves once every library that could provide `moduleName` was tried. */
  loadModule(moduleName: string, isRegistered: (name: string) => boolean): Promise<void>;
}

/**
 * @jupyterlab/services asks the kernel for a subshell for each comm (one per comm target) and
 * rejects the comm's `subshellStarted` when the request is cancelled, which it is when the kernel
 * dies or restarts before answering; nothing else waits on that promise, so the rejection would
 * surface as an unhandled page error. The comm then simply keeps using the main shell.
 */
function observeSubshell(comm: base.IClassicComm): void {
  const services = (comm as { jsServicesComm?: { subshellStarted?: Promise<void> } }).jsServicesComm;
  services?.subshellStarted?.catch(reason => {
    console.debug('carme dashboard: no subshell for comm', comm.comm_id, reason);
  });
}

export class DashboardWidgetManager extends KernelWidgetManager {
  constructor(kernel: Kernel.IKernelConnection, rendermime: IRenderMimeRegistry, loader: IWidgetModuleLoader) {
    // The base constructor already starts restoring the kernel's widgets; every step of that
    // is asynchronous, so the fields below are set before any model is registered.
    super(kernel, rendermime);
    this._loader = loader;
    this.registerCoreModules();
    kernel.iopubMessage.connect((_, msg) => this.settle(msg));
    // A kernel that died or restarts never sends the idle status of a request it was running:
    // that request's models are shown as they are (live again only if the new kernel has them).
    kernel.statusChanged.connect((_, status) => {
      if (status === 'dead' || status === 'restarting' || status === 'autorestarting') {
        this.settleAll();
      }
    });
  }

  /**
   * Emitted with a model id once that model may be shown (its promise may still be pending):
   * restored models at once, models opened by a request once that request is done (its idle
   * status, or its kernel died or restarts).
   */
  get modelReady(): ISignal<this, string> {
    return this._modelReady;
  }

  /** Whether the model `modelId` is registered and may be shown. */
  isReady(modelId: string): boolean {
    return this.has_model(modelId) && !this._unsettled.has(modelId);
  }

  /**
   * A model opened by the kernel while it handles a request starts with the state of its
   * constructor; the rest often follows in update messages of the same request (ipympl's
   * figure gets its toolbar that way). JupyterLab only shows a model when a later display_data
   * names it; a dashboard page already has the element, so its view waits for the request's
   * idle status instead, which iopub delivers after every message of that request.
   */
  handle_comm_open(comm: base.IClassicComm, msg: KernelMessage.ICommOpenMsg): Promise<base.WidgetModel> {
    const request = (msg.parent_header as Partial<KernelMessage.IHeader>)?.msg_id;
    if (request) {
      this._unsettled.add(comm.comm_id);
      const opened = this._openedBy.get(request) ?? [];
      opened.push(comm.comm_id);
      this._openedBy.set(request, opened);
    }
    observeSubshell(comm);
    return super.handle_comm_open(comm, msg);
  }

  async _create_comm(target_name: string, model_id: string, data?: unknown, metadata?: unknown,
    buffers?: ArrayBuffer[] | ArrayBufferView[]): Promise<base.IClassicComm> {
    const comm = await super._create_comm(target_name, model_id, data, metadata, buffers);
    observeSubshell(comm);
    return comm;
  }

  register(data: base.IWidgetRegistryData): void {
    super.register(data);
    this._modules.add(data.name);
  }

  register_model(model_id: string, modelPromise: Promise<base.WidgetModel>): void {
    super.register_model(model_id, modelPromise);
    if (!this._unsettled.has(model_id)) {
      this._modelReady.emit(model_id);
    }
  }

  async loadClass(className: string, moduleName: string, moduleVersion: string): Promise<typeof base.WidgetModel | typeof base.WidgetView> {
    if (!this._modules.has(moduleName)) {
      await this._loader.loadModule(moduleName, name => this._modules.has(name));
    }
    return super.loadClass(className, moduleName, moduleVersion);
  }

  /** The models opened by a request that is now done become ready. */
  private settle(msg: KernelMessage.IIOPubMessage): void {
    if (msg.header.msg_type !== 'status' || (msg.content as { execution_state?: string }).execution_state !== 'idle') {
      return;
    }
    const request = (msg.parent_header as Partial<KernelMessage.IHeader>)?.msg_id;
    const opened = request ? this._openedBy.get(request) : undefined;
    if (!request || !opened) {
      return;
    }
    this._openedBy.delete(request);
    this.release(opened);
  }

  /** Every model still waiting for its request's idle status becomes ready. */
  private settleAll(): void {
    const opened = [...this._openedBy.values()].flat();
    this._openedBy.clear();
    this.release(opened);
  }

  private release(modelIds: string[]): void {
    for (const modelId of modelIds) {
      this._unsettled.delete(modelId);
      if (this.has_model(modelId)) {
        this._modelReady.emit(modelId);
      }
    }
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
  private _modelReady = new Signal<this, string>(this);
  /** Models opened by a request whose idle status has not come yet. */
  private _unsettled = new Set<string>();
  /** The models each such request opened, by its msg_id. */
  private _openedBy = new Map<string, string[]>();
}
