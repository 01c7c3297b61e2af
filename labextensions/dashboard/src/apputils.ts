/**
 * What @jupyterlab/rendermime and @jupyterlab/outputarea take from @jupyterlab/apputils, and
 * nothing else: webpack resolves the bare '@jupyterlab/apputils' here (webpack.config.js), as its
 * index would bring dialogs, session contexts and sanitize-html (~45 KB gzipped) to every page.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

export { WidgetTracker } from '@jupyterlab/apputils/lib/widgettracker';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * A sanitizer that keeps only text. Rendermime sanitizes only untrusted outputs, and a dashboard
 * renders none (Output widget areas are trusted, as in JupyterLab); should one come, showing
 * its markup as text is safe, where a lesser HTML filter would not be.
 */
export class Sanitizer implements IRenderMime.ISanitizer {
  sanitize(dirty: string): string {
    return dirty.replace(/[&<>"']/g, char => ESCAPES[char]);
  }

  getAutolink(): boolean {
    return false;
  }

  readonly allowNamedProperties = false;
}
