#!/usr/bin/env node
// The `simsiam` command: the compiled CLI (npm run compile builds out/).
require('../out/src/training/cli.js').main(process.argv);
