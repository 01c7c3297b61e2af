/**
 * The connection to the visit's kernel, through the dashboards services base: the client asks
 * {baseUrl}dashboards/api/kernels/{id} and opens {baseUrl}dashboards/api/kernels/{id}/channels,
 * never the server's own /api/kernels (a visitor may reach only their own kernel there).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { type Kernel, KernelAPI, KernelConnection, ServerConnection } from '@jupyterlab/services';

import { type IDashboardConfig } from './config';

/**
 * The server settings whose `baseUrl` is the services base: @jupyterlab/services appends
 * "api/kernels" to it, so "dashboards/api/" becomes the base "{baseUrl}dashboards/".
 */
export function servicesSettings(
  config: IDashboardConfig,
  location: Location = window.location
): ServerConnection.ISettings {
  const prefix = config.kernelApiUrl.slice(0, -'api/'.length);
  const baseUrl = new URL(URLExt.join(config.baseUrl, prefix), location.href).href;
  const wsBase = config.wsUrl
    ? new URL(URLExt.join(config.wsUrl, prefix), location.href).href
    : baseUrl.replace(/^http/, 'ws');
  return ServerConnection.makeSettings({
    baseUrl: baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`,
    wsUrl: wsBase.endsWith('/') ? wsBase : `${wsBase}/`,
    // Same-origin cookies authenticate the visit; a token never goes into a URL.
    appendToken: false
  });
}

/**
 * Connect to the visit's kernel. The server answers the model as soon as the visit exists
 * (the kernel may still be starting: its websocket waits for it). Throws when the visit's
 * kernel is unknown to the server.
 */
export async function connectKernel(config: IDashboardConfig): Promise<Kernel.IKernelConnection> {
  const serverSettings = servicesSettings(config);
  const model = await KernelAPI.getKernelModel(config.kernelId, serverSettings);
  if (!model) {
    throw new Error(`carme dashboard: the server does not know the kernel ${config.kernelId}`);
  }
  return new KernelConnection({ model, serverSettings, handleComms: true });
}
