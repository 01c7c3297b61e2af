/**
 * What the page knows of the carme server: which of its extensions run (from the page config
 * carme-lab writes), and JSON requests to its REST API.
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The page config key carme-lab fills with the names of the extensions running. */
const RUNNING_KEY = 'carmeExtensions';

/** Whether carme's server extension `name` runs (loaded, started) in the server of this page. */
export function extensionRuns(name: string): boolean {
  const raw = PageConfig.getOption(RUNNING_KEY);
  if (!raw) {
    return false;
  }
  try {
    const names: unknown = JSON.parse(raw);
    return Array.isArray(names) && names.includes(name);
  } catch {
    return false;
  }
}

/** A URL of this server for `path` (API-relative, no leading slash), its parts encoded. */
export function serverUrl(...parts: string[]): string {
  return URLExt.join(PageConfig.getBaseUrl(), ...parts);
}

/** An API path's parts encoded for a URL (`a b/c.ipynb` -> `a%20b/c.ipynb`). */
export function encodePath(path: string): string {
  return URLExt.encodeParts(path);
}

/** A JSON request to the server with JupyterLab's credentials; throws the server's message. */
export async function requestJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(url, init, settings);
  const body: unknown = await response.json();
  if (!response.ok) {
    const message = (body as { message?: unknown } | null)?.message;
    throw new Error(typeof message === 'string' ? message : `${response.status} ${response.statusText}`);
  }
  return body as T;
}
