#!/usr/bin/env node
// The CLI compiled and bundled by `npm run build` (run by `npm ci` through the prepare
// script); scripts/bundle-server.js says why it is bundled.
import { main } from "../dist/src/cli.bundle.js";

main();
