// Builds one self-contained, minified ESM per widget into ../agentgraph_nb/static/<name>.js.
//
// Every top-level file src/<name>.ts is a widget entry point (it exports the anywidget
// `default { render }`); shared code lives in src/lib/. CSS is imported as text and inlined.
// The build is deterministic (sorted entries, no source maps, no paths or dates in the output),
// so CI can rebuild and fail on `git diff --exit-code agentgraph_nb/static`.
import { readdirSync } from "node:fs";
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

for (const name of widgets) {
  await esbuild.build({
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
    charset: "utf8",
    loader: { ".css": "text" },
    banner: { js: `/* agentgraph_nb ${name} widget: built from widgets/src by widgets/build.mjs; do not edit */` },
    logLevel: "warning",
  });
  console.log(`built agentgraph_nb/static/${name}.js`);
}
