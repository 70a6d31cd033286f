#!/usr/bin/env node
// The `simsiam` command: the compiled CLI (npm run compile builds out/).
const { buildProgram } = require('../out/src/training/cli.js');
buildProgram().parseAsync(process.argv).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(1);
  });
