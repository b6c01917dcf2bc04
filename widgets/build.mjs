// Builds one self-contained, minified ESM per widget into ../agentgraph_nb/static/<name>.js.
//
// Every top-level file src/<name>.ts is a widget entry point (it exports the anywidget
// `default { render }`); shared code lives in src/lib/. CSS is imported as text and inlined.
// The build is deterministic (sorted entries, no source maps, no paths or dates in the output),
// so CI can rebuild and fail on `git diff --exit-code agentgraph_nb/static`.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const srcDir = path.join(here, "src");
const outDir = path.resolve(here, "..", "agentgraph_nb", "static");

const widgets = readdirSync(srcDir)
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
  .map((f) => f.slice(0, -3))
  .sort();

// Third-party code bundled into any widget, by package directory: its licence travels with the
// bundles in static/THIRD_PARTY_LICENSES.txt (esbuild's legalComments only keeps /*! comments,
// which dagre does not carry).
const bundled = new Set();

for (const name of widgets) {
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: [path.join(srcDir, `${name}.ts`)],
    outfile: path.join(outDir, `${name}.js`),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2020"],
    minify: true,
    splitting: false,
    sourcemap: false,
    legalComments: "none",
    metafile: true,
    charset: "utf8",
    loader: { ".css": "text" },
    banner: {
      js: `/* agentgraph_nb ${name} widget: built from widgets/src by widgets/build.mjs; do not edit.
 Includes third-party code; licences in THIRD_PARTY_LICENSES.txt beside this file. */`,
    },
    logLevel: "warning",
  });
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = input.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) bundled.add(m[1]);
  }
  console.log(`built agentgraph_nb/static/${name}.js`);
}

// A package's own dist may inline its dependencies (dagre's carries graphlib): their licences too.
const withDeps = new Set();
const addWithDeps = (pkg) => {
  if (withDeps.has(pkg)) return;
  withDeps.add(pkg);
  const meta = JSON.parse(readFileSync(path.join(here, "node_modules", pkg, "package.json"), "utf8"));
  for (const dep of Object.keys(meta.dependencies ?? {})) addWithDeps(dep);
};
for (const pkg of bundled) addWithDeps(pkg);

const notices = [...withDeps].sort().map((pkg) => {
  const dir = path.join(here, "node_modules", pkg);
  const meta = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  const licenceFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text = licenceFile ? readFileSync(path.join(dir, licenceFile), "utf8").trim() : `License: ${meta.license}`;
  return `${pkg} ${meta.version} (${meta.license})\n${"-".repeat(60)}\n${text}\n`;
});
writeFileSync(
  path.join(outDir, "THIRD_PARTY_LICENSES.txt"),
  `Third-party software bundled in agentgraph_nb's widget files (static/*.js).\n\n${notices.join("\n")}`,
);
console.log(`wrote agentgraph_nb/static/THIRD_PARTY_LICENSES.txt (${withDeps.size} packages)`);
