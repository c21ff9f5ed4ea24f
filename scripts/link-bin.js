// Links this checkout's own `veil` command into node_modules/.bin, so that
// `npx veil` runs the build in this checkout instead of installing a copy
// of the package into npx's cache.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const binDir = path.join(root, 'node_modules', '.bin');
if (!fs.existsSync(path.join(root, 'node_modules'))) process.exit(0); // installed as a package: npm links bins itself
fs.mkdirSync(binDir, { recursive: true });
const link = path.join(binDir, 'veil');
fs.rmSync(link, { force: true });
fs.symlinkSync(path.join('..', '..', 'dist', 'cli.js'), link);
fs.chmodSync(path.join(root, 'dist', 'cli.js'), 0o755);
