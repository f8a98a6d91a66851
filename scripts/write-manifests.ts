/** `npm run manifests`: rewrites manifest/server.json and manifest/manifest.json from the code. */
import { writeFileSync } from "node:fs";
import { mcpbManifest, serverJson } from "../src/mcp/manifests.js";

const write = (path: string, body: unknown) => writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
write("manifest/server.json", serverJson());
write("manifest/manifest.json", mcpbManifest());
process.stdout.write("wrote manifest/server.json and manifest/manifest.json\n");
