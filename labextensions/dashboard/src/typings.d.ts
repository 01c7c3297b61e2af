// Modules without their own type declarations.

declare module '*.css';

declare module 'katex/contrib/auto-render' {
  import type { KatexOptions } from 'katex';

  export interface RenderMathInElementOptions extends KatexOptions {
    delimiters?: { left: string; right: string; display: boolean }[];
    ignoredTags?: string[];
    ignoredClasses?: string[];
  }

  export default function renderMathInElement(element: HTMLElement, options?: RenderMathInElementOptions): void;
}

// Module federation's runtime (webpack): the share scopes and how to fill one.
declare const __webpack_init_sharing__: (scope: string) => Promise<void>;
declare const __webpack_share_scopes__: Record<string, unknown>;
