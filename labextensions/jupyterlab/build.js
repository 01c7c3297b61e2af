// Builds the prebuilt JupyterLab extension with @jupyterlab/builder into carme-lab's package
// (package.json `jupyterlab.outputDir`; never committed). The builder needs the package.json of
// the JupyterLab core it builds for (its shared and singleton packages): that of the pinned
// jupyterlab-js, from JUPYTERLAB_CORE_PATH (carme-lab's wheel build sets it) or the repository's
// .venv (./dev).
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const candidates = [
  process.env.JUPYTERLAB_CORE_PATH,
  path.resolve(__dirname, '../../.venv/share/jupyter/lab/static')
].filter(Boolean);
const core = candidates.find(dir => fs.existsSync(path.join(dir, 'package.json')));
if (!core) {
  console.error(
    'carme labextension: no JupyterLab core package.json found in ' + candidates.join(', ') +
      '; install jupyterlab-js (uv sync --all-packages) or set JUPYTERLAB_CORE_PATH'
  );
  process.exit(1);
}
const builder = require.resolve('@jupyterlab/builder/lib/build-labextension.js');
const result = spawnSync(process.execPath, [builder, '--core-path', core, __dirname], { stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
