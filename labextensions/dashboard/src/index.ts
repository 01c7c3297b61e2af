// The page's stylesheet is the entry's (dashboard.css, linked by the page itself).
import '../style/index.css';

// The entry chunk only opens the async boundary module federation needs: the shared modules
// (@jupyter-widgets/*, @jupyterlab/*, @lumino/*) are resolved against the share scope before
// any of them runs, so a widget library's remote entry later shares the very same instances.
import(/* webpackChunkName: "client" */ './bootstrap').catch(error =>
  console.error('carme dashboard: the client failed to start', error)
);
