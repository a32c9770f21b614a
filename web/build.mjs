// Builds the browser bundles into dist/ (the npm package) and copies them to
// ../gateway/static/ (served by the gateway under /static/). `node build.mjs --watch` rebuilds on change.
import { cp, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const staticDir = join(here, "..", "gateway", "static");
const watch = process.argv.includes("--watch");

/** The React bundle imports the client from ./tocsin.js instead of carrying a second copy. */
const clientAsSibling = {
  name: "client-as-sibling",
  setup(build) {
    build.onResolve({ filter: /\/client\/index\.js$/ }, () => ({ path: "./tocsin.js", external: true }));
  },
};

const common = {
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome111", "firefox120", "safari17"],
  sourcemap: "linked",
  minify: !watch,
  legalComments: "none",
  logLevel: "info",
  loader: { ".css": "text" },
};

const builds = [
  { entryPoints: { tocsin: "src/client/index.ts" } },
  {
    entryPoints: { "tocsin-react": "src/react/index.ts" },
    // Bundling drops module directives, so the one React Server Components frameworks need to
    // treat the components as client code is put back as the file's first line.
    banner: { js: '"use client";' },
    external: ["react", "react-dom", "react/jsx-runtime"],
    jsx: "automatic",
    plugins: [clientAsSibling],
  },
  { entryPoints: { "tocsin-bell": "src/element/index.ts" } },
  // The service worker: a classic script (module workers are not everywhere yet), in the npm
  // package for apps that serve it themselves, and served by the gateway at /tocsin-sw.js.
  { entryPoints: { "tocsin-sw": "src/sw/tocsin-sw.ts" }, format: "iife" },
  {
    entryPoints: { demo: "src/demo/main.tsx" },
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' },
    sourcemap: false,
    // The demo (React bundled in) is for the gateway only, not part of the npm package.
    outdir: staticDir,
  },
].map((options) => ({ ...common, outdir: dist, ...options }));

async function copyStatic() {
  await mkdir(staticDir, { recursive: true });
  await cp(join(here, "src/ui/tocsin.css"), join(dist, "tocsin.css"));
  await cp(join(here, "src/demo/demo.html"), join(staticDir, "demo.html"));
  await mkdir(join(staticDir, "icons"), { recursive: true });
  for (const name of await readdir(join(here, "src/sw/icons"))) {
    if (name.endsWith(".png")) await cp(join(here, "src/sw/icons", name), join(staticDir, "icons", name));
  }
  for (const name of await readdir(dist)) {
    if (name !== "types") await cp(join(dist, name), join(staticDir, name));
  }
}

/** Fails the build if a bundler change ever drops the directive again. */
async function checkUseClient() {
  const react = await readFile(join(dist, "tocsin-react.js"), "utf8");
  if (!react.startsWith('"use client";')) throw new Error('dist/tocsin-react.js must begin with "use client"');
}

await rm(dist, { recursive: true, force: true });
if (watch) {
  for (const options of builds) {
    const ctx = await esbuild.context({ ...options, plugins: [...(options.plugins ?? []), { name: "copy", setup: (b) => b.onEnd(copyStatic) }] });
    await ctx.watch();
  }
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
  await checkUseClient();
  await copyStatic();
}
