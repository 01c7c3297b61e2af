/**
 * The server extensions panel: a sidebar listing carme's server extensions (name, distribution,
 * version, enabled, whether it loads or its error, which config file decided it), with a switch
 * that enables or disables one for the user's level and a note where a restart is needed. Added
 * only for users the server lets read its extensions (`/api/me` permission read on server).
 */
import { type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { buildIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { requestJson, serverUrl } from './server';

/** One extension as GET /api/extensions reports it. */
export interface IServerExtension {
  name: string;
  distribution: string;
  version: string;
  running: boolean;
  enabled: boolean;
  source: string;
  error: string | null;
  restart_needed: boolean;
}

interface IListing {
  level: string;
  extensions: IServerExtension[];
}

interface IMe {
  permissions: Record<string, string[] | undefined>;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** The sidebar. */
export class ServerExtensionsPanel extends Widget {
  private readonly list = element('ul', 'carme-ServerExtensions-list');
  private readonly message = element('p', 'carme-ServerExtensions-message');

  constructor(private readonly canWrite: boolean) {
    super();
    this.id = 'carme-server-extensions';
    this.addClass('carme-ServerExtensions');
    this.title.icon = buildIcon;
    this.title.caption = 'Server extensions';
    const header = element('header', 'carme-ServerExtensions-header');
    header.append(element('h2', '', 'Server extensions'));
    const refresh = element('button', 'jp-Button jp-mod-minimal carme-ServerExtensions-refresh', 'Refresh');
    refresh.addEventListener('click', () => void this.refresh());
    header.append(refresh);
    this.node.append(header, this.message, this.list);
  }

  /** Ask the server for the list again and show it. */
  async refresh(): Promise<void> {
    try {
      const listing = await requestJson<IListing>(serverUrl('api/extensions'));
      this.render(listing);
    } catch (error) {
      this.message.textContent = `Cannot list the server extensions: ${(error as Error).message}`;
    }
  }

  private render(listing: IListing): void {
    const restart = listing.extensions.some(extension => extension.restart_needed);
    this.message.textContent = restart
      ? 'Restart carme to apply the changes marked below.'
      : `Changes are saved in your own (${listing.level}) configuration and apply when carme restarts.`;
    this.message.classList.toggle('carme-mod-restart', restart);
    this.list.replaceChildren(...listing.extensions.map(extension => this.row(extension)));
  }

  private row(extension: IServerExtension): HTMLLIElement {
    const row = element('li', 'carme-ServerExtensions-item');
    row.dataset.name = extension.name;
    const title = element('div', 'carme-ServerExtensions-title');
    const label = element('label', 'carme-ServerExtensions-name');
    const toggle = element('input', 'carme-ServerExtensions-toggle');
    toggle.type = 'checkbox';
    toggle.checked = extension.enabled;
    toggle.disabled = !this.canWrite;
    toggle.title = extension.enabled ? 'Enabled: uncheck to disable' : 'Disabled: check to enable';
    toggle.addEventListener('change', () => void this.setEnabled(extension.name, toggle.checked));
    label.append(toggle, document.createTextNode(` ${extension.name}`));
    title.append(label, element('span', 'carme-ServerExtensions-version', `${extension.distribution} ${extension.version}`));
    const state = element('div', 'carme-ServerExtensions-state', describe(extension));
    state.classList.toggle('carme-mod-error', extension.error !== null);
    const source = element('div', 'carme-ServerExtensions-source', `set by ${extension.source}`);
    row.append(title, state, source);
    if (extension.restart_needed) {
      row.append(element('div', 'carme-ServerExtensions-restart', 'restart needed'));
    }
    return row;
  }

  private async setEnabled(name: string, enabled: boolean): Promise<void> {
    try {
      await requestJson<IServerExtension>(serverUrl('api/extensions', encodeURIComponent(name)), {
        method: 'PATCH',
        body: JSON.stringify({ enabled })
      });
    } catch (error) {
      this.message.textContent = `Cannot change ${name}: ${(error as Error).message}`;
      return;
    }
    await this.refresh();
  }
}

function describe(extension: IServerExtension): string {
  const state = extension.enabled ? 'enabled' : 'disabled';
  if (extension.error !== null) {
    return `${state}, does not load: ${extension.error}`;
  }
  return `${state}, ${extension.running ? 'running' : 'not running'}`;
}

async function activate(app: JupyterFrontEnd): Promise<void> {
  const query = encodeURIComponent(JSON.stringify({ server: ['read', 'write'] }));
  let granted: string[];
  try {
    const me = await requestJson<IMe>(serverUrl(`api/me?permissions=${query}`));
    granted = me.permissions.server ?? [];
  } catch {
    return; // a server without /api/me: nothing to manage
  }
  if (!granted.includes('read')) {
    return;
  }
  const panel = new ServerExtensionsPanel(granted.includes('write'));
  app.shell.add(panel, 'left', { rank: 900 });
  await panel.refresh();
}

export const serverExtensionsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@carme/jupyterlab:server-extensions',
  description: "A sidebar listing carme's server extensions, to enable or disable them.",
  autoStart: true,
  activate
};
