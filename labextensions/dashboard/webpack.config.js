// Builds the dashboard page's client into carme-dashboards' static folder (never committed):
//   dashboard.js / dashboard.css   the page's script (async) and stylesheet, fixed names
//   theme-light.css / theme-dark.css   JupyterLab's theme variables, for the page template
//   *.[contenthash].js|css, fonts/   chunks loaded on demand (widgets, math, markdown...)
const fs = require('fs');
const path = require('path');
const MiniCssExtractPlugin = require('mini-css-extract-plugin');
const MinimizerPlugin = require('minimizer-webpack-plugin');
const { container } = require('webpack');

const OUTPUT = path.resolve(__dirname, '../../extensions/dashboards/carme_dashboards/static/client');

// The share scope widget libraries' remote entries are initialised with: what JupyterLab's own
// build shares as singletons and a widget library may consume without bundling it. Each is
// provided at its installed version; consumers' required versions come from their package.json.
const SHARED = [
  '@jupyter-widgets/base',
  '@jupyter-widgets/base-manager',
  '@jupyter-widgets/controls',
  '@jupyter-widgets/output',
  '@jupyterlab/coreutils',
  '@jupyterlab/nbformat',
  '@jupyterlab/observables',
  '@jupyterlab/outputarea',
  '@jupyterlab/rendermime',
  '@jupyterlab/rendermime-interfaces',
  '@jupyterlab/services',
  '@jupyterlab/translation',
  '@lumino/algorithm',
  '@lumino/commands',
  '@lumino/coreutils',
  '@lumino/disposable',
  '@lumino/domutils',
  '@lumino/dragdrop',
  '@lumino/keyboard',
  '@lumino/messaging',
  '@lumino/polling',
  '@lumino/properties',
  '@lumino/signaling',
  '@lumino/virtualdom',
  '@lumino/widgets'
];

/** The theme entries are CSS only: drop the empty scripts webpack makes for them. */
class DropThemeScripts {
  apply(compiler) {
    compiler.hooks.thisCompilation.tap('DropThemeScripts', compilation => {
      compilation.hooks.processAssets.tap(
        { name: 'DropThemeScripts', stage: compilation.constructor.PROCESS_ASSETS_STAGE_OPTIMIZE_TRANSFER },
        () => {
          for (const name of ['theme-light.js', 'theme-dark.js']) {
            compilation.deleteAsset(name);
          }
        }
      );
    });
  }
}

/**
 * Webpack leaves an unchanged file untouched; ./dev decides "stale" by comparing the sources'
 * times with dashboard.js', so every build marks it as made now.
 */
class StampEntry {
  apply(compiler) {
    compiler.hooks.afterEmit.tap('StampEntry', () => {
      const now = new Date();
      fs.utimesSync(path.join(OUTPUT, 'dashboard.js'), now, now);
    });
  }
}

module.exports = {
  mode: 'production',
  devtool: false,
  entry: {
    dashboard: './lib/index.js',
    'theme-light': '@jupyterlab/theme-light-extension/style/theme.css',
    'theme-dark': '@jupyterlab/theme-dark-extension/style/theme.css'
  },
  output: {
    path: OUTPUT,
    filename: '[name].js',
    chunkFilename: '[name].[contenthash:12].js',
    assetModuleFilename: 'assets/[name].[contenthash:12][ext]',
    // Chunks load from where dashboard.js was loaded: any base URL works.
    publicPath: 'auto',
    clean: true
  },
  module: {
    // A name imported from a module that does not export it is an error, not a warning (the
    // apputils alias must keep every name its importers use).
    parser: { javascript: { exportsPresence: 'error' } },
    rules: [
      {
        test: /\.css$/,
        use: [
          MiniCssExtractPlugin.loader,
          {
            loader: 'css-loader',
            options: {
              // KaTeX lists woff2, woff and ttf for each font; every browser we serve reads woff2,
              // so only those are emitted (the others stay unreferenced URLs, never fetched).
              url: { filter: url => !/\.(woff|ttf)$/.test(url) }
            }
          }
        ]
      },
      { test: /\.woff2$/, type: 'asset/resource' },
      { test: /\.(svg|png|gif)$/, type: 'asset' }
    ]
  },
  resolve: {
    extensions: ['.js'],
    alias: {
      // Only the two names rendermime and outputarea use (see src/apputils.ts).
      '@jupyterlab/apputils$': path.resolve(__dirname, 'lib/apputils.js')
    }
  },
  plugins: [
    new MiniCssExtractPlugin({ filename: '[name].css', chunkFilename: '[name].[contenthash:12].css' }),
    new container.ModuleFederationPlugin({
      name: 'carme_dashboard',
      shareScope: 'default',
      shared: Object.fromEntries(SHARED.map(name => [name, { singleton: true }]))
    }),
    new DropThemeScripts(),
    new StampEntry()
  ],
  optimization: {
    // esbuild minifies in a fraction of terser's time (CI and ./dev build from nothing, on two
    // shared cores), for a few percent more bytes; the stylesheets are minified too.
    minimizer: [
      new MinimizerPlugin({ test: /\.js$/, minify: MinimizerPlugin.esbuildMinify, minimizerOptions: { target: 'es2021' } }),
      new MinimizerPlugin({ test: /\.css$/, minify: MinimizerPlugin.esbuildMinifyCss })
    ]
  },
  performance: {
    // Sizes are reported by the build and checked in the README's figures, not here.
    hints: false
  }
};
