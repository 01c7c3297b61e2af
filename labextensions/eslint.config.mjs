// Lint for every package of the workspace: `npm run lint` (tests/dashboards/test_client_lint.py runs it).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // build.js: the node script that runs @jupyterlab/builder (CommonJS, not browser code).
  { ignores: ['**/node_modules/', '**/lib/', '**/*.config.js', 'jupyterlab/build.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      eqeqeq: 'error',
      curly: 'error',
      'no-console': ['error', { allow: ['warn', 'error', 'debug'] }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }]
    }
  }
);
