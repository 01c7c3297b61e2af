/**
 * The rendermime registry the widget manager renders with (the Output widget's outputs): the
 * standard JupyterLab renderers, KaTeX for math, markdown with marked (its own chunk, loaded on
 * first markdown output), and widget views nested in outputs.
 */
import { WidgetRenderer } from '@jupyter-widgets/jupyterlab-manager/lib/renderer';
import { WIDGET_VIEW_MIMETYPE } from '@jupyter-widgets/jupyterlab-manager/lib/manager';
import { RenderMimeRegistry, standardRendererFactories } from '@jupyterlab/rendermime';
import { type IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { type DashboardWidgetManager } from './manager';
import { latexTypesetter } from './math';

const markdownParser: IRenderMime.IMarkdownParser = {
  async render(source: string): Promise<string> {
    const { marked } = await import(/* webpackChunkName: "marked" */ 'marked');
    return marked.parse(source, { async: true });
  }
};

/** A registry with the standard renderers (widget views are added with the manager). */
export function createRendermime(): RenderMimeRegistry {
  return new RenderMimeRegistry({ initialFactories: standardRendererFactories, latexTypesetter, markdownParser });
}

/** Render widget view outputs (a widget displayed inside an Output widget) with `manager`. */
export function addWidgetRenderer(rendermime: RenderMimeRegistry, manager: DashboardWidgetManager): void {
  rendermime.removeMimeType(WIDGET_VIEW_MIMETYPE);
  rendermime.addFactory(
    {
      safe: false,
      mimeTypes: [WIDGET_VIEW_MIMETYPE],
      createRenderer: options => new WidgetRenderer(options, manager)
    },
    -10
  );
}
