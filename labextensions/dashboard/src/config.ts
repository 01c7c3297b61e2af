/**
 * The page config the server writes into the dashboard page (extensions/dashboards/CONTRACT.md):
 * JupyterLab's PageConfig keys in `<script id="jupyter-config-data" type="application/json">`.
 */

/** One federated labextension, as JupyterLab's page config lists it. */
export interface IFederatedExtension {
  /** The package name, also the container's name on `window._JUPYTERLAB`. */
  name: string;
  /** The remote entry, relative to the extension's folder. */
  load: string;
  /** The exposed module holding the extension's plugins, e.g. "./extension". */
  extension?: string;
  /** The exposed module holding its mime renderers. */
  mimeExtension?: string;
  /** The exposed module holding its styles. */
  style?: string;
}

/** What the client reads from the page. */
export interface IDashboardConfig {
  /** The app's base URL, absolute or root-relative, ending with "/". */
  baseUrl: string;
  /** The websocket base URL; "" to derive it from the page's location. */
  wsUrl: string;
  /** The visit's kernel id (it may still be starting). */
  kernelId: string;
  /** The kernels service base relative to baseUrl, ending with "api/": "dashboards/api/". */
  kernelApiUrl: string;
  /** Where federated labextensions are served: {baseUrl}dashboards/labextensions. */
  fullLabextensionsUrl: string;
  /** The federated labextensions the page may load (third-party widget libraries). */
  federatedExtensions: IFederatedExtension[];
  /** The page's theme. */
  theme: 'light' | 'dark';
}

/** The id of the script element holding the page config. */
export const CONFIG_ELEMENT_ID = 'jupyter-config-data';

/**
 * Read and check the page config. Throws an Error naming the missing or bad key: a page
 * without a usable config cannot connect to its kernel.
 */
export function readPageConfig(doc: Document = document): IDashboardConfig {
  const element = doc.getElementById(CONFIG_ELEMENT_ID);
  if (!element || !element.textContent) {
    throw new Error(`carme dashboard: no #${CONFIG_ELEMENT_ID} page config in the page`);
  }
  const raw: unknown = JSON.parse(element.textContent);
  if (typeof raw !== 'object' || raw === null) {
    throw new Error('carme dashboard: the page config is not a JSON object');
  }
  const data = raw as Record<string, unknown>;
  const text = (key: string, fallback?: string): string => {
    const value = data[key];
    if (typeof value === 'string') {
      return value;
    }
    if (value === undefined && fallback !== undefined) {
      return fallback;
    }
    throw new Error(`carme dashboard: page config key "${key}" must be a string`);
  };
  const baseUrl = text('baseUrl');
  if (!baseUrl.endsWith('/')) {
    throw new Error(`carme dashboard: page config "baseUrl" must end with "/": ${baseUrl}`);
  }
  const kernelApiUrl = text('kernelApiUrl', 'dashboards/api/');
  if (!/(^|\/)api\/$/.test(kernelApiUrl)) {
    throw new Error(`carme dashboard: page config "kernelApiUrl" must end with "api/": ${kernelApiUrl}`);
  }
  const theme = text('theme', 'light');
  return {
    baseUrl,
    wsUrl: text('wsUrl', ''),
    kernelId: text('kernelId'),
    kernelApiUrl,
    fullLabextensionsUrl: text('fullLabextensionsUrl', `${baseUrl}dashboards/labextensions`),
    federatedExtensions: federated(data['federated_extensions']),
    theme: theme === 'dark' ? 'dark' : 'light'
  };
}

function federated(value: unknown): IFederatedExtension[] {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value)) {
    throw new Error('carme dashboard: page config "federated_extensions" must be a list');
  }
  return value.map((item: unknown, index: number) => {
    const entry = item as Partial<IFederatedExtension> | null;
    if (!entry || typeof entry.name !== 'string' || typeof entry.load !== 'string') {
      throw new Error(`carme dashboard: federated_extensions[${index}] needs a "name" and a "load"`);
    }
    return {
      name: entry.name,
      load: entry.load,
      extension: typeof entry.extension === 'string' ? entry.extension : undefined,
      mimeExtension: typeof entry.mimeExtension === 'string' ? entry.mimeExtension : undefined,
      style: typeof entry.style === 'string' ? entry.style : undefined
    };
  });
}
