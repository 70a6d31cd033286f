// Mocha's spec reporter plus the plain closing line `N passed, N failed` that the CI checker
// reads. Usable inside the extension host (suite/index.ts) and from the mocha CLI:
// `mocha --reporter out/test/vscode/closingLineReporter.js ...`.
import Mocha = require('mocha');

class ClosingLineReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    // Registered after Spec's own end handler, so the line comes after its summary.
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const stats = runner.stats;
      console.log(`${stats?.passes ?? 0} passed, ${stats?.failures ?? 0} failed`);
    });
  }
}

export = ClosingLineReporter;
