/**
 * carme's extensions in JupyterLab. Each plugin asks the page config which of carme's server
 * extensions run and stays out of the page when the one it needs does not.
 */
import { type JupyterFrontEndPlugin } from '@jupyterlab/application';

import { dashboardsPlugin } from './dashboards';
import { serverExtensionsPlugin } from './serverextensions';
import { watchPlugin } from './watch';

const plugins: JupyterFrontEndPlugin<void>[] = [dashboardsPlugin, serverExtensionsPlugin, watchPlugin];

export default plugins;
