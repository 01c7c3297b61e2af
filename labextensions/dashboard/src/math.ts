/**
 * Math typesetting with KaTeX, bundled and loaded on first use (its own chunk, with its CSS
 * and fonts served next to the client): a page without math never downloads it.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

type Katex = typeof import('katex').default;
type RenderMathInElement = typeof import('katex/contrib/auto-render').default;

interface IKatexModules {
  katex: Katex;
  renderMathInElement: RenderMathInElement;
}

/** The delimiters the server leaves in place (markdown-it's dollarmath/texmath) plus LaTeX environments. */
const DELIMITERS = [
  { left: '$$', right: '$$', display: true },
  { left: '\\[', right: '\\]', display: true },
  { left: '\\(', right: '\\)', display: false },
  { left: '$', right: '$', display: false },
  ...['equation', 'equation*', 'align', 'align*', 'alignat', 'alignat*', 'gather', 'gather*', 'CD'].map(env => ({
    left: `\\begin{${env}}`,
    right: `\\end{${env}}`,
    display: true
  }))
];

const OPTIONS = {
  // A bad formula shows its source in red instead of breaking the page.
  throwOnError: false,
  // No \href/\url/\includegraphics from notebook text: nothing may point the page elsewhere.
  trust: false,
  strict: 'ignore' as const
};

let loading: Promise<IKatexModules> | null = null;

function loadKatex(): Promise<IKatexModules> {
  loading ??= Promise.all([
    import(/* webpackChunkName: "katex" */ 'katex'),
    import(/* webpackChunkName: "katex" */ 'katex/contrib/auto-render'),
    import(/* webpackChunkName: "katex" */ 'katex/dist/katex.css')
  ]).then(([katex, autoRender]) => ({ katex: katex.default, renderMathInElement: autoRender.default }));
  return loading;
}

/** Typeset the math delimited in the text of `element`'s subtree. */
export async function typesetDelimited(element: HTMLElement): Promise<void> {
  const { renderMathInElement } = await loadKatex();
  renderMathInElement(element, { ...OPTIONS, delimiters: DELIMITERS });
}

/**
 * Typeset a `.carme-math` element of the page: its text is math with its delimiters (from
 * markdown) or, for text/latex outputs, LaTeX that may have none; a `div` without delimiters
 * is one display formula, a `span` one inline formula.
 */
export async function typesetMathElement(element: HTMLElement): Promise<void> {
  const source = element.textContent ?? '';
  const { katex, renderMathInElement } = await loadKatex();
  renderMathInElement(element, { ...OPTIONS, delimiters: DELIMITERS });
  if (!element.querySelector('.katex') && source.trim()) {
    katex.render(source.trim(), element, { ...OPTIONS, displayMode: element.tagName === 'DIV' });
  }
  element.classList.add('carme-math-typeset');
}

/** The typesetter rendermime uses for outputs inside widgets (the Output widget). */
export const latexTypesetter: IRenderMime.ILatexTypesetter = {
  typeset(element: HTMLElement): void {
    typesetDelimited(element).catch(error => console.warn('carme dashboard: math typesetting failed', error));
  }
};
