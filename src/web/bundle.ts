/**
 * The browser apps the bridge serves (the dashboard at `/`, the browser camera at `/camera`), bundled from their
 * TypeScript sources with esbuild, in memory, on first use: no build step, no build output to go stale, nothing
 * copied by hand. mqtt.js comes from its own browser build (esbuild picks the package's `browser` export).
 *
 * Why at run time rather than in an npm `prepare` script: `npm ci --ignore-scripts` (the Docker image) and npm's
 * install-script policy skip `prepare`, a pre-built bundle can lag behind the sources it came from, and esbuild
 * needs ~0.3 s for both apps, once per process, shared by every bridge in it.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** The repository root (or dist/ in the built package): src/web/ is two levels down. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The entry points' extension: `ts` running from the sources, `js` in the built package (scripts/build.ts). */
const EXT = import.meta.url.endsWith('.ts') ? 'ts' : 'js';

/**
 * Each app: its HTML page (with `{{script}}` and `{{style}}` placeholders), its TypeScript entry point and its
 * stylesheet (an entry of its own: TypeScript does not type `import './x.css'`).
 */
export const WEB_APPS = {
  dashboard: { page: 'src/dashboard/index.html', entry: `src/dashboard/main.${EXT}`, style: 'src/dashboard/style.css' },
  camera: { page: 'devices/browser-camera/index.html', entry: `devices/browser-camera/main.${EXT}`, style: 'devices/browser-camera/style.css' },
} as const;
export type WebAppName = keyof typeof WEB_APPS;

/** URL prefix of the bundled files; their names carry a content hash, so they can be cached forever. */
export const ASSETS_PATH = '/assets/';

export interface Asset {
  body: Buffer;
  /** The same bytes gzipped (mqtt.js makes the shared chunk ~0.5 MB; ~0.15 MB gzipped, which phones notice). */
  gzip: Buffer;
  contentType: string;
}

export interface WebBundle {
  /** The finished HTML page of each app. */
  pages: Record<WebAppName, string>;
  /** Bundled scripts, styles and source maps, by URL path (under ASSETS_PATH). */
  assets: Map<string, Asset>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

let shared: Promise<WebBundle> | undefined;

/** The bundle, built once per process (concurrent callers share the build); a failed build is retried next time. */
export function webBundle(): Promise<WebBundle> {
  shared ??= buildWebBundle().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

async function buildWebBundle(): Promise<WebBundle> {
  // Imported here so that a bridge that never serves a page never loads esbuild.
  const { build } = await import('esbuild');
  const names = Object.keys(WEB_APPS) as WebAppName[];
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(names.flatMap((name) => [[name, WEB_APPS[name].entry], [`${name}-style`, WEB_APPS[name].style]])),
    bundle: true,
    splitting: true, // the protocol code and mqtt.js, shared by both apps, load once
    format: 'esm',
    platform: 'browser',
    target: ['chrome111', 'firefox115', 'safari16.4'],
    minify: true,
    sourcemap: 'linked',
    outdir: 'assets',
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    write: false,
    logLevel: 'silent',
  });
  const assets = new Map<string, Asset>();
  for (const file of result.outputFiles) {
    const name = basename(file.path);
    const extension = name.slice(name.lastIndexOf('.'));
    const body = Buffer.from(file.contents);
    assets.set(`${ASSETS_PATH}${name}`, { body, gzip: gzipSync(body), contentType: CONTENT_TYPES[extension] ?? 'application/octet-stream' });
  }
  const pages = {} as Record<WebAppName, string>;
  const outputOf = (entry: string) => {
    const found = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === entry)?.[0];
    if (found === undefined) throw new Error(`esbuild produced no output for ${entry}`);
    return `${ASSETS_PATH}${basename(found)}`;
  };
  for (const name of names) {
    const html = await readFile(join(ROOT, WEB_APPS[name].page), 'utf8');
    pages[name] = html
      .replace('{{style}}', `<link rel="stylesheet" href="${outputOf(WEB_APPS[name].style)}">`)
      .replace('{{script}}', `<script type="module" src="${outputOf(WEB_APPS[name].entry)}"></script>`);
  }
  return { pages, assets };
}
